//! The PostgreSQL backend: a named state in a database a team shares (CI runners included). Each
//! state lives in its own schema (`cardform_<name>`), so several states (one per environment) sit
//! side by side in one database. Opening it (creating, refusing), every read and write, and the
//! lock (`lock.rs`). Must not decide what to do with what it holds, must never print or store the
//! connection's password, and nothing outside `state` sees a type of this module.
//!
//! Rows cross over as packed JSON (`json_build_array`, decoded by `state::codec`), the same shape
//! the SQLite backend uses for its snapshot: one value per chunk instead of one per column.

mod dump;
mod lock;
pub(super) mod named;
mod schema;
mod tx;

use compact_str::CompactString;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::state::codec::cards_from_packed;
use crate::state::location::PgLocation;
use crate::state::model::{CardRecord, Snapshot};
use crate::state::{StateError, Upgrade};

/// Connections a command may use at once: exec's writers queue here, readers run beside them.
const POOL: u32 = 8;

/// How long to wait for the database before saying it cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Cards per chunk of a snapshot (see the SQLite backend for why chunks).
const SNAPSHOT_CHUNK: i64 = 4096;

/// SQLSTATE of a failed foreign key: a write under a serial no run has.
const FOREIGN_KEY_VIOLATION: &str = "23503";

const CARD_PACKED: &str = "json_build_array(key, external_user_id, product_code, initial_topup, \
     desired_status, labels::json, card_id, phase, provider_status, last4, charged, attempt, \
     replaced_by, created_at, updated_at, balance)";

const ORDER_PACKED: &str = "json_build_array(idempotency_key, resource_kind, resource_key, kind, \
     attempt, request, order_id, phase, provider_status, sub_status, error_slug, error_message, \
     estimated_charge, charge, created_at, updated_at, sent_serial, refunded)";

/// A handle on one state. Cheap to clone (the pool and the lock connection are shared).
#[derive(Clone)]
pub(super) struct PgStore {
    pool: PgPool,
    options: PgConnectOptions,
    location: PgLocation,
    /// The connection holding the session advisory lock, while this process holds the lock.
    lock_conn: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
    /// The lock this handle holds, if any, and whether its session has been seen to die.
    held: Arc<std::sync::Mutex<Option<Arc<lock::Held>>>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("location", &self.location.redacted())
            .finish_non_exhaustive()
    }
}

/// Every failure to talk to the server names the state (never the password) and what failed.
fn connect_err(location: &PgLocation) -> impl FnOnce(sqlx::Error) -> StateError + '_ {
    move |e| StateError::Unreachable {
        location: location.redacted(),
        message: scrub(&e.to_string(), location.connect_url()),
    }
}

fn serial_err(serial: u64) -> impl FnOnce(sqlx::Error) -> StateError {
    move |e| match e.as_database_error().and_then(|d| d.code()) {
        Some(code) if code == FOREIGN_KEY_VIOLATION => StateError::UnknownSerial(serial),
        _ => StateError::from(e),
    }
}

impl PgStore {
    fn options(location: &PgLocation) -> Result<PgConnectOptions, StateError> {
        let options = PgConnectOptions::from_str(location.connect_url()).map_err(|e| {
            StateError::Unreachable {
                location: location.redacted(),
                message: scrub(&e.to_string(), location.connect_url()),
            }
        })?;
        // Every statement of this handle resolves table names in this state's schema.
        Ok(options
            .options([("search_path", location.schema().as_str())])
            .application_name("cardform"))
    }

    async fn connect(location: &PgLocation) -> Result<PgStore, StateError> {
        let options = Self::options(location)?;
        // One connection first, by hand: a pool would only say it timed out, where this says
        // "connection refused" or "password authentication failed", and within seconds.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options))
            .await
            .map_err(|_| StateError::Unreachable {
                location: location.redacted(),
                message: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            })?
            .map_err(connect_err(location))?;
        let _ = first.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(POOL)
            .min_connections(0)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options.clone());
        Ok(PgStore {
            pool,
            options,
            location: location.clone(),
            lock_conn: Arc::new(tokio::sync::Mutex::new(None)),
            held: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    /// Creates a new state, refusing when its schema exists at all; then opens it for writing.
    pub(super) async fn create(location: &PgLocation) -> Result<PgStore, StateError> {
        let store = Self::connect(location).await?;
        if let Err(e) = schema::create(&store.pool, location).await {
            store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Whether the state's schema exists (opening decides whether it holds a state).
    pub(super) async fn exists(location: &PgLocation) -> Result<bool, StateError> {
        let store = Self::connect(location).await?;
        let found: Result<Option<i32>, _> =
            sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
                .bind(location.schema().as_str())
                .fetch_optional(&store.pool)
                .await;
        store.close().await;
        Ok(found?.is_some())
    }

    /// Opens an existing state for a command that writes, upgrading an older schema; never
    /// creates one.
    pub(super) async fn open_for_write(
        location: &PgLocation,
    ) -> Result<(PgStore, Option<Upgrade>), StateError> {
        let store = Self::connect(location).await?;
        let upgraded = schema::migrate(&store.pool, location).await?;
        Ok((store, upgraded))
    }

    /// Opens the state for a command that only reads: `None` when there is none.
    pub(super) async fn open_for_read(
        location: &PgLocation,
    ) -> Result<Option<PgStore>, StateError> {
        let store = Self::connect(location).await?;
        match schema::status(&store.pool, location).await? {
            None => {
                store.close().await;
                Ok(None)
            }
            Some(_) => {
                schema::check_readable(&store.pool, location).await?;
                Ok(Some(store))
            }
        }
    }

    /// The schema of the state, changing nothing; `None` without a state there.
    pub(super) async fn schema_version(location: &PgLocation) -> Result<Option<i64>, StateError> {
        let store = Self::connect(location).await?;
        let v = schema::status(&store.pool, location).await;
        store.close().await;
        v
    }

    pub(super) async fn close(self) {
        if let Some(conn) = self.lock_conn.lock().await.take() {
            let _ = conn.close().await;
        }
        self.pool.close().await;
    }

    /// A connection of the pool, for a read written once over the seam (`state::reads`).
    pub(in crate::state) async fn read_conn(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<Postgres>, StateError> {
        Ok(self.pool.acquire().await?)
    }

    pub(in crate::state) async fn snapshot(&self) -> Result<Snapshot, StateError> {
        let mut tx = self.pool.begin().await?;
        // One consistent picture across the several statements of the snapshot.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let snapshot = crate::state::rules::snapshot_in(&mut *tx).await?;
        tx.commit().await?;
        Ok(snapshot)
    }

    /// Every card, read in key order in chunks of [`SNAPSHOT_CHUNK`].
    async fn all_cards_in(
        conn: &mut PgConnection,
    ) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        let mut cards = BTreeMap::new();
        let mut after = String::new();
        loop {
            let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT coalesce(json_agg({CARD_PACKED} ORDER BY key), '[]')::text FROM \
                   (SELECT * FROM cards WHERE key > $1 ORDER BY key LIMIT $2) AS c"
            )))
            .bind(&after)
            .bind(SNAPSHOT_CHUNK)
            .fetch_one(&mut *conn)
            .await?;
            let mut chunk = cards_from_packed(&packed)?;
            let full = chunk.len() >= SNAPSHOT_CHUNK as usize;
            match chunk.last_key_value() {
                Some((k, _)) => after = k.to_string(),
                None => break,
            }
            // Chunks come in key order, so appending keeps the tree packed.
            cards.append(&mut chunk);
            if !full {
                break;
            }
        }
        Ok(cards)
    }

    // ----- cards -----

    // ----- order journal -----

    /// A write transaction, fenced: while this handle holds the lock, it begins only if the
    /// lock's session is alive and the lock row still names it. FOR SHARE makes a takeover
    /// (which deletes our row) wait until this write is committed, or see it gone first.
    pub(in crate::state) async fn write(&self) -> Result<Transaction<'_, Postgres>, StateError> {
        let held = self.held_lock()?;
        let mut tx = self.pool.begin().await?;
        let token = held.as_ref().map(|h| h.lock_id.as_str());
        crate::state::rules::fence(&mut *tx, token).await?;
        Ok(tx)
    }

    // ----- audit -----
}

/// A resource row packed for [`crate::state::codec::resources_from_packed`].
pub(super) const RESOURCE_PACKED: &str =
    "json_build_array(resource_kind, resource_key, image::json, created_at, updated_at, serial)";

/// A call packed for [`crate::state::codec::calls_from_packed`], its order filling in what
/// schema 5 no longer repeats (over [`CALLS_JOINED`]).
pub(super) const CALL_PACKED: &str = "c.at, c.at_us, c.endpoint, \
     coalesce(c.idempotency_key, o.idempotency_key), c.order_id, \
     coalesce(c.resource_kind, o.resource_kind), coalesce(c.resource_key, o.resource_key), \
     c.result, c.charge";

/// The calls, each beside the order it names (if any).
pub(super) const CALLS_JOINED: &str = "calls AS c LEFT JOIN orders AS o ON o.seq = c.order_seq";

/// `text` with the password of `url` (if it has one) hidden: a driver's error may quote what it
/// was given, and no message may carry a credential.
fn scrub(text: &str, url: &str) -> String {
    let password = crate::state::location::password_span(url)
        .map(|span| &url[span])
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => text.replace(p, "***"),
        None => text.to_owned(),
    }
}
