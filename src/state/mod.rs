//! State: where cardform records what it manages, the order journal, the change log, the audit
//! of provider calls, the run history and the lock. The only place in cardform that holds SQL.
//!
//! Everything above this module sees [`Store`] and domain types only: no sqlx, no connection, no
//! row, no file path. A [`StateLocation`] says where a state lives (a file, or a named state in a
//! PostgreSQL database); [`Store`] is an enum over backends (`sqlite/`, `postgres/`), so nothing
//! above this line asks which backend it talks to. Its writes and the snapshot are written once
//! (`writes.rs`, `rules.rs`, what journal rows imply in `journal.rs`) over the narrow seam a
//! backend offers inside a transaction (`seam/`; statement texts and read filters of both
//! dialects in `sql.rs`; how values cross as text in `codec/`), and so are its reads outside the
//! snapshot (`reads.rs`, `on_reader!`); what only one backend can say (opening, the lock, dump and
//! load, the snapshot's read transaction) delegates.
//!
//! It records what it is told and answers questions about it; it must not decide what to do (that
//! is `plan` and `exec`), and it must never store a card number, CVV or personal data (no column
//! could hold one; personal request fields arrive already digested).

// `StateError::Locked` carries the holder inline because callers match on it and print it; the
// error path is rare, so its size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod approvals;
mod changes;
mod codec;
mod dump;
mod journal;
mod location;
mod lock;
pub mod model;
pub mod money;
pub mod named;
mod postgres;
mod reads;
mod rules;
mod schema;
mod seam;
mod sql;
mod sqlite;
mod writes;

use seam::Tx;

pub use approvals::{Approval, ApprovalStatus, ApprovalSummary};
pub use changes::Changed;
pub use location::{PgLocation, StateLocation, redact_command_line, redact_url};
pub use lock::{LockInfo, LockRequest, local_host};
pub use model::*;
pub use schema::{SCHEMA_VERSION, Upgrade};

use compact_str::CompactString;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::model::{Address, ResourceKind};

/// Who started a run and what it does; `at` is RFC 3339. `command` is recorded as given, so it
/// must already be redacted ([`redact_command_line`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub command: String,
    pub user: String,
    pub host: String,
    pub at: String,
}

/// One command that wrote state, with its own serial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub serial: u64,
    pub at: String,
    pub finished_at: Option<String>,
    pub user: String,
    pub host: String,
    pub command: String,
    /// Whatever the command chose to summarise (counts, money); `{}` until the run finishes.
    pub summary: serde_json::Value,
    /// What the orders this run sent were charged, whichever run saw them finish; `None` when it
    /// sent none that charged. Read from the journal, so a killed run's money is counted too.
    #[serde(
        with = "crate::wire::decimal::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub charged: Option<Decimal>,
    /// How many top-up orders this run sent (each attempt counts), whatever became of them; `None`
    /// when it sent none. Read from the journal, so a killed run's top-ups are counted too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topups_sent: Option<u64>,
}

/// One provider call that changed something (or tried to). Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// RFC 3339.
    pub at: String,
    pub endpoint: String,
    pub idempotency_key: Option<String>,
    pub order_id: Option<String>,
    /// The resource the call was about.
    pub address: Option<Address>,
    /// `"ok"` or the error slug.
    pub result: String,
    #[serde(with = "crate::wire::decimal::option", default)]
    pub charge: Option<Decimal>,
}

/// A whole state, as `state migrate` moves it from one backend to another: every row of every
/// table, each table in the order it was written, with the serial each row was last written under.
#[derive(Debug, Clone, PartialEq)]
pub struct StateDump {
    pub lineage: String,
    /// The currency its money is charged in, once known.
    pub currency: Option<String>,
    /// The provider it belongs to, once recorded.
    pub provider: Option<String>,
    pub serial: u64,
    pub runs: Vec<RunRecord>,
    pub cards: Vec<(CardRecord, u64)>,
    /// In journal order.
    pub orders: Vec<(OrderRecord, u64)>,
    /// The records of resources that are not cards, by address.
    pub resources: Vec<(ResourceRecord, u64)>,
    /// The change log: (resource, serial, image), `None` for a removal.
    pub changes: Vec<(Address, u64, Option<String>)>,
    pub calls: Vec<CallRecord>,
    pub observed_fees: Vec<ObservedFee>,
    /// Plans that waited or wait for approval (schema 8), under their own ids: `cardform approve
    /// ID` names the same plan after a migration.
    pub approvals: Vec<Approval>,
}

/// The fee estimate of last resort for one product (see `observed_fees` in the schema).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedFee {
    pub product_code: String,
    pub charge: Decimal,
    pub observed_at: String,
    pub idempotency_key: String,
}

/// Everything that can go wrong reading or writing state.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("{location}: {source}")]
    Io {
        location: String,
        #[source]
        source: std::io::Error,
    },

    /// The backend failed; the message names what it could, never a credential.
    #[error("state database error: {0}")]
    Database(String),

    /// The state's server could not be reached, or refused us (a wrong password, say).
    #[error("cannot open the state at {location}: {message}")]
    #[diagnostic(help(
        "check the host, port, database and user in the URL; the password comes from the URL or PGPASSWORD"
    ))]
    Unreachable { location: String, message: String },

    #[error(
        "{location}: written by a newer cardform (schema {found}, this build supports {supported}): upgrade cardform"
    )]
    #[diagnostic(help(
        "this state was not modified; run a cardform release that knows schema {found}"
    ))]
    NewerSchema {
        found: i64,
        supported: i64,
        location: String,
    },

    /// A read-only command met a state of an older schema: it never changes a schema itself.
    #[error(
        "{location}: written by an older cardform (schema {found}; this build uses schema {supported}) and not upgraded yet"
    )]
    #[diagnostic(help(
        "upgrade it with `cardform init --upgrade --state {location}` (apply, refresh, import and state rm upgrade it too); a copy of the old file is kept beside it"
    ))]
    OlderSchema {
        found: i64,
        supported: i64,
        location: String,
    },

    #[error("{}", lock::locked_message(.0))]
    Locked(LockInfo),

    /// This run's lock is gone (its database session ended, or another cardform took the state
    /// over after `force-unlock`): the run writes nothing more (fencing).
    #[error(
        "the state lock was lost (its database session ended, or another cardform took the state over): this run wrote nothing more and started no new order; orders it had in flight stay open in the journal"
    )]
    #[diagnostic(help(
        "run the same command again: it resumes the open orders under their own idempotency keys, so nothing is sent or paid twice"
    ))]
    LockLost,

    #[error("not found: {0}")]
    NotFound(String),

    /// An approval that is not pending (approved already, applied, superseded) cannot be
    /// approved again.
    #[error("approval {id} is {status}, not pending: only a pending plan can be approved")]
    #[diagnostic(help(
        "list the approvals with `cardform approve --list`; a superseded plan's newer one is pending"
    ))]
    NotPending { id: String, status: &'static str },

    /// A card key is taken already (`state mv` onto an existing card).
    #[error("{0} is already in state: pick another key, or `cardform state rm {0}` first")]
    KeyExists(String),

    /// A state to load into (`state migrate`) already holds something.
    #[error("the target state is not empty: {0}")]
    NotEmpty(String),

    #[error("state is corrupt or not a cardform state: {0}")]
    Corrupt(String),

    /// Nothing is where the state should be: only `cardform init` creates one, so a command
    /// pointed at the wrong place never starts a new lineage and pays for every card again.
    #[error("no state at {location} (nothing was sent to the provider)")]
    #[diagnostic(help(
        "run `cardform init --state {location}` to create it, or point --state / CARDFORM_STATE at your team's shared state"
    ))]
    Missing { location: String },

    /// Something is where the state should be, and it is not a cardform state: an empty file (a
    /// full disk, a bad copy, a cache restored empty), another program's database, an empty or
    /// foreign PostgreSQL schema. Never taken for a new state: that would issue every card again.
    #[error(
        "{location} is not a cardform state: {what}; refusing to use it (nothing was changed or sent to the provider)"
    )]
    #[diagnostic(help(
        "restore the state from a backup, or point --state / CARDFORM_STATE at the right one; `cardform init` creates a new state only where none exists"
    ))]
    NotAState { location: String, what: String },

    /// A state was to be created where something already is.
    #[error("{location} already exists: refusing to create a new state over it")]
    #[diagnostic(help(
        "use the state that is there with --state {location}, or name a place where nothing exists yet"
    ))]
    Exists { location: String },

    /// The journal already holds this idempotency key for a different request: sending it again
    /// would either be refused by the provider or, worse, return an unrelated order.
    #[error(
        "order journal conflict: idempotency key {key} is already journaled for a different request"
    )]
    JournalConflict { key: String },

    #[error("serial {0} has no run: call begin_run first")]
    UnknownSerial(u64),

    #[error("invalid timestamp {value:?}: expected RFC 3339 (e.g. 2025-01-31T12:00:00Z)")]
    InvalidTimestamp { value: String },
}

/// The time seam: every timestamp the store makes itself comes from here.
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}

/// A handle on one state. Cheap to clone (connections are pooled and shared).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    location: StateLocation,
    upgraded: Option<Upgrade>,
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite(sqlite::SqliteStore),
    /// Boxed: its pool options are large, and a `Store` is cloned into every executor task.
    Postgres(Box<postgres::PgStore>),
}

/// Every backend method with the same signature on each backend: one line here per method,
/// instead of a `match` written out by hand in each.
macro_rules! delegate {
    ($( $(#[$m:meta])* pub async fn $name:ident(&self $(, $arg:ident : $ty:ty)* $(,)?) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$m])*
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match &self.backend {
                        Backend::Sqlite(b) => b.$name($($arg),*).await,
                        Backend::Postgres(b) => b.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

/// `$f(conn, args…)` on a connection of the backend's read pool, `$f` generic over `seam::Tx`:
/// a read written once (`reads.rs`), run on whichever backend this is.
macro_rules! on_reader {
    ($store:expr, $f:path $(, $arg:expr)*) => {
        match &$store.backend {
            Backend::Sqlite(b) => $f(&mut *b.read_conn().await?, $($arg),*).await,
            Backend::Postgres(b) => $f(&mut *b.read_conn().await?, $($arg),*).await,
        }
    };
}
use on_reader;

impl Store {
    /// Opens an existing state for a command that writes, bringing an older schema up to date
    /// (keeping a copy of the old file; see [`Store::upgraded`]). Never creates one:
    /// [`StateError::Missing`] where nothing is, [`StateError::NotAState`] where something else
    /// is (an empty file, another database, an empty or foreign schema), both before any write.
    pub async fn open(location: &StateLocation) -> Result<Store, StateError> {
        let (backend, upgraded) = match location {
            StateLocation::File(path) => {
                let (s, up) = sqlite::SqliteStore::open_for_write(path).await?;
                (Backend::Sqlite(s), up)
            }
            StateLocation::Postgres(pg) => {
                let (s, up) = postgres::PgStore::open_for_write(pg).await?;
                (Backend::Postgres(Box::new(s)), up)
            }
        };
        Ok(Store {
            backend,
            location: location.clone(),
            upgraded,
        })
    }

    /// Creates a new, empty state and opens it: what `cardform init` does (and the sandbox, for
    /// its own default state). [`StateError::Exists`] when anything is there already, even an
    /// empty file: a state is never created over something. A file appears whole or not at all
    /// (built beside it and linked into place), so an interrupted creation leaves no empty file.
    pub async fn create(location: &StateLocation) -> Result<Store, StateError> {
        let backend = match location {
            StateLocation::File(path) => Backend::Sqlite(sqlite::SqliteStore::create(path).await?),
            StateLocation::Postgres(pg) => {
                Backend::Postgres(Box::new(postgres::PgStore::create(pg).await?))
            }
        };
        Ok(Store {
            backend,
            location: location.clone(),
            upgraded: None,
        })
    }

    /// What `cardform init` followed by [`Store::open`] does: creates the state when nothing is
    /// there, else opens it (refusing what is not a state). For tests and tools that set up a
    /// state of their own, and `state migrate` (whose target it checked is absent or unused);
    /// commands use [`Store::open`] or [`Store::create`].
    pub async fn open_or_create(location: &StateLocation) -> Result<Store, StateError> {
        match Store::create(location).await {
            Err(StateError::Exists { .. }) => Store::open(location).await,
            created => created,
        }
    }

    /// Opens the state for a command that only reads: `None` when nothing is there (read-only
    /// commands never create one), [`StateError::NotAState`] when something else is,
    /// [`StateError::OlderSchema`] when it needs an upgrade first (they never change a schema).
    pub async fn open_existing(location: &StateLocation) -> Result<Option<Store>, StateError> {
        let backend = match location {
            StateLocation::File(path) => match sqlite::SqliteStore::open_for_read(path).await? {
                Some(s) => Backend::Sqlite(s),
                None => return Ok(None),
            },
            StateLocation::Postgres(pg) => match postgres::PgStore::open_for_read(pg).await? {
                Some(s) => Backend::Postgres(Box::new(s)),
                None => return Ok(None),
            },
        };
        Ok(Some(Store {
            backend,
            location: location.clone(),
            upgraded: None,
        }))
    }

    /// Whether anything is at `location` (a file, a schema), without opening or creating
    /// anything: opening decides whether it is a state.
    pub async fn exists(location: &StateLocation) -> Result<bool, StateError> {
        match location {
            StateLocation::File(path) => sqlite::SqliteStore::exists(path),
            StateLocation::Postgres(pg) => postgres::PgStore::exists(pg).await,
        }
    }

    /// The schema this state is at, read without changing anything; `None` when nothing is
    /// there, [`StateError::NotAState`] when something else is.
    pub async fn schema_version(location: &StateLocation) -> Result<Option<i64>, StateError> {
        match location {
            StateLocation::File(path) => sqlite::SqliteStore::schema_version(path).await,
            StateLocation::Postgres(pg) => postgres::PgStore::schema_version(pg).await,
        }
    }

    /// The upgrade opening this state performed, if any, for the command to report.
    pub fn upgraded(&self) -> Option<&Upgrade> {
        self.upgraded.as_ref()
    }

    pub fn location(&self) -> &StateLocation {
        &self.location
    }

    /// Takes the lock, polling until `wait` has elapsed; then [`StateError::Locked`] naming the
    /// holder. A zero `wait` fails fast after one look.
    pub async fn acquire_lock(
        &self,
        who: LockRequest,
        wait: Duration,
    ) -> Result<LockInfo, StateError> {
        let mut waiting = lock::Waiting::new(wait);
        loop {
            let attempt = match &self.backend {
                Backend::Sqlite(b) => b.try_lock(&who).await?,
                Backend::Postgres(b) => b.try_lock(&who).await?,
            };
            match attempt {
                Ok(mine) => return Ok(mine),
                Err(holder) => waiting.again(holder).await?,
            }
        }
    }

    /// Closes the connections; a SQLite file is checkpointed into one self-contained file.
    pub async fn close(self) {
        match self.backend {
            Backend::Sqlite(b) => b.close().await,
            Backend::Postgres(b) => (*b).close().await,
        }
    }
}

impl Store {
    pub async fn lineage(&self) -> Result<String, StateError> {
        on_reader!(self, reads::lineage_in)
    }

    pub async fn serial(&self) -> Result<u64, StateError> {
        on_reader!(self, reads::serial_in)
    }

    /// The currency the state's money is charged in (upper case), once a run has learned it.
    pub async fn currency(&self) -> Result<Option<String>, StateError> {
        on_reader!(self, reads::currency_in)
    }

    /// The provider the state belongs to (see `crate::cli::provider`), once recorded: the
    /// sandbox, or the origin of the API URL; never a credential.
    pub async fn provider(&self) -> Result<Option<String>, StateError> {
        on_reader!(self, reads::provider_in)
    }

    /// One record per serial, oldest first.
    pub async fn history(&self) -> Result<Vec<RunRecord>, StateError> {
        on_reader!(self, reads::history_in)
    }

    pub async fn get_card(&self, key: &str) -> Result<Option<CardRecord>, StateError> {
        on_reader!(self, Tx::card, key)
    }

    /// Every order ever journaled for `address`, in journal order.
    pub async fn orders_of(&self, address: &Address) -> Result<Vec<OrderRecord>, StateError> {
        on_reader!(self, Tx::orders_of, address)
    }

    /// Orders not yet terminal, of resources state still manages, in journal order. An order of a
    /// card removed with `state rm` stays in the journal (its key is never reused) but is not
    /// tracked.
    pub async fn open_orders(&self) -> Result<Vec<OrderRecord>, StateError> {
        on_reader!(self, Tx::open_orders)
    }

    pub async fn get_order(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<OrderRecord>, StateError> {
        on_reader!(self, Tx::order, idempotency_key)
    }

    pub async fn get_resource(
        &self,
        address: &Address,
    ) -> Result<Option<ResourceRecord>, StateError> {
        on_reader!(self, Tx::resource, address)
    }

    /// The records of `kind` (of every kind but cards, with `None`), in address order.
    pub async fn resources(
        &self,
        kind: Option<ResourceKind>,
    ) -> Result<Vec<ResourceRecord>, StateError> {
        Ok(on_reader!(self, Tx::resources, kind)?
            .into_values()
            .collect())
    }

    /// The records of card `card`'s top-ups (not those of a card whose key merely starts the same).
    pub async fn topup_records_of(&self, card: &str) -> Result<Vec<ResourceRecord>, StateError> {
        on_reader!(self, Tx::topup_records, card)
    }

    /// Every order of card `card`'s top-ups, in journal order.
    pub async fn topup_orders_of(&self, card: &str) -> Result<Vec<OrderRecord>, StateError> {
        on_reader!(self, Tx::topup_orders, card)
    }

    /// Failed orders that were charged and whose refund is unknown (settled before schema 7,
    /// which did not record `refunded_amount`), in journal order: `refresh` asks the provider.
    pub async fn refunds_unknown(&self) -> Result<Vec<OrderRecord>, StateError> {
        on_reader!(self, Tx::refunds_unknown)
    }

    /// Recorded calls in time order, from `since` (RFC 3339 or a bare date) on.
    pub async fn calls(&self, since: Option<&str>) -> Result<Vec<CallRecord>, StateError> {
        let from = since
            .map(codec::timestamp_micros)
            .transpose()?
            .unwrap_or(i64::MIN);
        on_reader!(self, Tx::calls, from)
    }

    /// The managed cards as they were at the end of run `serial`.
    pub async fn cards_at(
        &self,
        serial: u64,
    ) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        on_reader!(self, Tx::cards_at, serial)
    }

    /// The records of resources that are not cards as they were at the end of run `serial`.
    pub async fn resources_at(
        &self,
        serial: u64,
    ) -> Result<BTreeMap<Address, ResourceRecord>, StateError> {
        on_reader!(self, Tx::resources_at, serial)
    }
}

delegate! {
    /// Everything plan needs, read in one transaction so it is a consistent picture.
    pub async fn snapshot(&self) -> Result<Snapshot, StateError>;





    /// Releases the lock if `lock_id` still holds it; a lock already gone is not an error.
    pub async fn release_lock(&self, lock_id: &str) -> Result<(), StateError>;
    /// Removes the lock `lock_id` whoever holds it, returning who held it.
    pub async fn force_unlock(&self, lock_id: &str) -> Result<LockInfo, StateError>;
    pub async fn current_lock(&self) -> Result<Option<LockInfo>, StateError>;

    /// Every row of the state, for `state migrate`.
    pub async fn dump(&self) -> Result<StateDump, StateError>;
    /// Fills a state that was just created (serial 0, no runs) with `dump`, lineage and serial
    /// included, in one transaction; refuses a state that already holds anything.
    pub async fn load(&self, dump: &StateDump) -> Result<(), StateError>;
}
