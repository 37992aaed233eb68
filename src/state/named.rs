//! Named states: the states one PostgreSQL database holds side by side (`?state=NAME`, each in a
//! schema of its own), listed, created and deleted as a team keeps one per environment. A SQLite
//! file is one state: it is listed as itself, and there is nothing to create or delete in it.
//!
//! Owns what a state's summary is (serial, cards, live cards, last run, lock) and the refusals of
//! deleting one: a state whose lock is held, one that still has live cards unless allowed, a
//! schema that is not a cardform state. It must not ask anyone anything (confirmation and "is it
//! the selected state" are the command line's), and it must never drop a schema it did not
//! recognise as a cardform state. A state's own summary is read over the seam
//! (`Tx::summary`); what only PostgreSQL has (schemas, dropping one) is `postgres/named.rs`'.

use serde::Serialize;

use super::location::{PgLocation, StateLocation, redact_url};
use super::seam::Tx;
use super::{Backend, LockInfo, StateError, Store};

/// One state, as `workspace list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateSummary {
    /// The state's name in its database, or the file's path for a SQLite state.
    pub name: String,
    pub serial: u64,
    pub cards: u64,
    /// Cards pending, active or frozen: they exist (or may) at the provider.
    pub live_cards: u64,
    /// When the latest run began (RFC 3339); `None` before any.
    pub last_run: Option<String>,
    /// Whether a running cardform holds its lock now.
    pub locked: bool,
    /// Why this is not a usable state (a schema cardform did not create, a newer schema), when
    /// it is not; the counts are then zero.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// What can go wrong listing, creating or deleting named states.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum NamedError {
    /// `new` / `delete` on a SQLite file.
    #[error(
        "{location} is a SQLite file, which holds exactly one state: there are no named states \
         to {verb} in it"
    )]
    #[diagnostic(help(
        "for another state, use another file (`cardform init --state other.db`); named states \
         live in PostgreSQL (--state 'postgres://…/db?state=NAME')"
    ))]
    OneFileOneState {
        location: String,
        verb: &'static str,
    },

    #[error("state name {name:?} must be 1 to 40 characters from a-z 0-9 _")]
    BadName { name: String },

    #[error("no state named {name} in {database}{}", known_names(.known))]
    NotFound {
        name: String,
        database: String,
        known: Vec<String>,
    },

    #[error("a state named {name} already exists in {database}: refusing to create it again")]
    #[diagnostic(help("`cardform workspace list` lists the states there"))]
    Exists { name: String, database: String },

    /// The state still records cards that exist at the provider.
    #[error(
        "refusing to delete state {name}: it still has {live} live {} (pending, active or \
         frozen) that would stay at the provider with nothing managing them",
        if *.live == 1 { "card" } else { "cards" }
    )]
    #[diagnostic(help(
        "move them to another state first (`cardform state migrate`), or pass --force to delete \
         the state anyway"
    ))]
    LiveCards { name: String, live: u64 },

    #[error(transparent)]
    State(#[from] StateError),
}

fn known_names(known: &[String]) -> String {
    if known.is_empty() {
        " (it holds no cardform state)".to_owned()
    } else {
        format!(" (it holds: {})", known.join(", "))
    }
}

/// The database of a PostgreSQL state as it may be shown: password hidden, no `state=`.
pub fn database(pg: &PgLocation) -> String {
    redact_url(pg.connect_url())
}

/// The state called `name` in the same database as `pg`.
pub fn sibling(pg: &PgLocation, name: &str) -> Result<PgLocation, NamedError> {
    let url = pg.connect_url();
    let sep = if url.contains('?') { '&' } else { '?' };
    match StateLocation::parse(&format!("{url}{sep}state={name}")) {
        Ok(StateLocation::Postgres(pg)) if pg.name() == name => Ok(pg),
        _ => Err(NamedError::BadName {
            name: name.to_owned(),
        }),
    }
}

/// Every state at `location`'s database, by name (a SQLite file: itself). A schema named like a
/// state that holds none is listed with its problem, so nobody creates over it by mistake.
pub async fn list(location: &StateLocation) -> Result<Vec<StateSummary>, NamedError> {
    match location {
        StateLocation::File(_) => {
            let Some(store) = Store::open_existing(location).await? else {
                return Err(StateError::Missing {
                    location: location.to_string(),
                }
                .into());
            };
            let summary = store.summary().await;
            store.close().await;
            let mut summary = summary?;
            summary.name = location.to_string();
            Ok(vec![summary])
        }
        StateLocation::Postgres(pg) => Ok(super::postgres::named::list(pg).await?),
    }
}

/// Creates the empty state `name` beside `pg` (what `cardform init` does for it).
pub async fn create(pg: &PgLocation, name: &str) -> Result<Store, NamedError> {
    let target = sibling(pg, name)?;
    match Store::create(&StateLocation::Postgres(target)).await {
        Err(StateError::Exists { .. }) => Err(NamedError::Exists {
            name: name.to_owned(),
            database: database(pg),
        }),
        other => Ok(other?),
    }
}

/// The summary of state `name` beside `pg`; [`NamedError::NotFound`] naming the others.
pub async fn find(pg: &PgLocation, name: &str) -> Result<StateSummary, NamedError> {
    sibling(pg, name)?;
    let all = super::postgres::named::list(pg).await?;
    match all.iter().find(|s| s.name == name) {
        Some(found) => match &found.problem {
            None => Ok(found.clone()),
            // Never deleted, whatever it holds: it is not cardform's.
            Some(problem) => Err(StateError::NotAState {
                location: sibling(pg, name)?.redacted(),
                what: problem.clone(),
            }
            .into()),
        },
        None => Err(NamedError::NotFound {
            name: name.to_owned(),
            database: database(pg),
            known: all.into_iter().map(|s| s.name).collect(),
        }),
    }
}

/// Deletes state `name` beside `pg`: its schema and everything in it, under its lock so no run
/// can start meanwhile. Refuses a locked state ([`StateError::Locked`]), one with live cards
/// unless `allow_live`, and anything that is not a cardform state. Returns what it deleted.
pub async fn delete(
    pg: &PgLocation,
    name: &str,
    allow_live: bool,
) -> Result<StateSummary, NamedError> {
    let found = find(pg, name).await?;
    let target = sibling(pg, name)?;
    super::postgres::named::delete(&target, allow_live)
        .await
        .map(|s| StateSummary {
            name: found.name,
            ..s
        })
}

/// Who holds the lock of state `name` beside `pg` (an empty record when nobody does).
pub async fn lock_holder(pg: &PgLocation, name: &str) -> Result<LockInfo, NamedError> {
    let at = StateLocation::Postgres(sibling(pg, name)?);
    let Some(store) = Store::open_existing(&at).await? else {
        return Err(StateError::Missing {
            location: at.to_string(),
        }
        .into());
    };
    let holder = store.current_lock().await;
    store.close().await;
    Ok(holder?.unwrap_or_else(|| LockInfo {
        lock_id: String::new(),
        pid: 0,
        host: String::new(),
        user: String::new(),
        command: String::new(),
        since: super::now(),
        stale: false,
    }))
}

impl Store {
    /// This state's summary: serial, cards, live cards, last run and whether it is locked. Its
    /// name is the location's (a PostgreSQL state's name, a file's path).
    pub async fn summary(&self) -> Result<StateSummary, StateError> {
        let mut s = summary_of(super::on_reader!(self, Tx::summary)?);
        s.name = match &self.location {
            StateLocation::Postgres(pg) => pg.name().to_owned(),
            file => file.to_string(),
        };
        s.locked = self.current_lock().await?.is_some_and(|l| !l.stale);
        Ok(s)
    }
}

/// A summary from the row of `sql::SUMMARY` (or `sql::summary_of_schema`).
pub(super) fn summary_of(row: (i64, i64, i64, Option<String>)) -> StateSummary {
    let (serial, cards, live, last_run) = row;
    StateSummary {
        name: String::new(),
        serial: serial.max(0) as u64,
        cards: cards.max(0) as u64,
        live_cards: live.max(0) as u64,
        last_run,
        locked: false,
        problem: None,
    }
}
