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
mod resources;
mod schema;

use compact_str::CompactString;
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::model::Address;
use crate::state::codec::{
    self, FeeLesson, cards_from_images, cards_from_packed, serial_i64, serial_u64, timestamp_micros,
};
use crate::state::location::PgLocation;
use crate::state::model::{CardRecord, OrderRecord, ResourceRecord, Snapshot};
use crate::state::{CallRecord, RunInfo, RunRecord, StateError, Upgrade, money, now};

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

const ORDER_COLUMNS: &str = "idempotency_key, resource_kind, resource_key, kind, attempt, request, \
     order_id, phase, provider_status, sub_status, error_slug, error_message, estimated_charge, \
     charge, created_at, updated_at, sent_serial, serial, refunded";

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
        message: codec::scrub(&e.to_string(), location.connect_url()),
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
                message: codec::scrub(&e.to_string(), location.connect_url()),
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

    pub(in crate::state) async fn lineage(&self) -> Result<String, StateError> {
        Ok(
            sqlx::query_scalar("SELECT lineage FROM state_info WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub(in crate::state) async fn currency(&self) -> Result<Option<String>, StateError> {
        Ok(
            sqlx::query_scalar("SELECT currency FROM state_info WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub(in crate::state) async fn set_currency(&self, currency: &str) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE state_info SET currency = $1 WHERE id = 1")
            .bind(currency)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The provider this state belongs to, once a run has recorded it.
    pub(in crate::state) async fn provider(&self) -> Result<Option<String>, StateError> {
        Ok(
            sqlx::query_scalar("SELECT provider FROM state_info WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    pub(in crate::state) async fn set_provider(&self, provider: &str) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE state_info SET provider = $1 WHERE id = 1")
            .bind(provider)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::state) async fn serial(&self) -> Result<u64, StateError> {
        let s: i64 = sqlx::query_scalar("SELECT serial FROM state_info WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        serial_u64(s)
    }

    pub(in crate::state) async fn snapshot(&self) -> Result<Snapshot, StateError> {
        let mut tx = self.pool.begin().await?;
        // One consistent picture across the several statements below.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let info = sqlx::query("SELECT lineage, serial FROM state_info WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let lineage: String = info.try_get(0)?;
        let serial = serial_u64(info.try_get(1)?)?;

        let mut cards = BTreeMap::new();
        let mut after = String::new();
        loop {
            let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT coalesce(json_agg({CARD_PACKED} ORDER BY key), '[]')::text FROM \
                   (SELECT * FROM cards WHERE key > $1 ORDER BY key LIMIT $2) AS c"
            )))
            .bind(&after)
            .bind(SNAPSHOT_CHUNK)
            .fetch_one(&mut *tx)
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

        let mut open_orders: BTreeMap<Address, Vec<OrderRecord>> = BTreeMap::new();
        for o in Self::open_orders_in(&mut tx).await? {
            open_orders.entry(o.address.clone()).or_default().push(o);
        }
        let mut observed_issue_fees = BTreeMap::new();
        for row in sqlx::query("SELECT product_code, charge FROM observed_fees")
            .fetch_all(&mut *tx)
            .await?
        {
            let product: String = row.try_get(0)?;
            let charge: String = row.try_get(1)?;
            observed_issue_fees.insert(product, codec::decimal("observed fee", &charge)?);
        }
        let rows: Vec<codec::TopupRow> = sqlx::query_as(crate::state::sql::TOPUPS_SQL)
            .fetch_all(&mut *tx)
            .await?;
        let topups = codec::topups_from_rows(rows)?;
        let resources = resources::resources_in(&mut tx, None).await?;
        let removed_cards = Self::removed_cards_in(&mut tx).await?;
        tx.commit().await?;
        Ok(Snapshot {
            removed_cards,
            lineage,
            serial,
            cards,
            open_orders,
            observed_issue_fees,
            topups,
            resources,
        })
    }

    // ----- runs -----

    pub(in crate::state) async fn begin_run(&self, info: RunInfo) -> Result<u64, StateError> {
        let mut tx = self.write().await?;
        let serial: i64 = sqlx::query_scalar(
            "UPDATE state_info SET serial = serial + 1 WHERE id = 1 RETURNING serial",
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO runs (serial, at, actor, host, command, summary) \
             VALUES ($1, $2, $3, $4, $5, '{}')",
        )
        .bind(serial)
        .bind(&info.at)
        .bind(&info.user)
        .bind(&info.host)
        .bind(&info.command)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        serial_u64(serial)
    }

    pub(in crate::state) async fn finish_run(
        &self,
        serial: u64,
        summary: &serde_json::Value,
    ) -> Result<(), StateError> {
        let summary = serde_json::to_string(summary)
            .map_err(|e| StateError::Corrupt(format!("run summary: {e}")))?;
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE runs SET finished_at = $1, summary = $2 WHERE serial = $3")
            .bind(now())
            .bind(summary)
            .bind(serial_i64(serial)?)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StateError::NotFound(format!("run with serial {serial}")));
        }
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::state) async fn history(&self) -> Result<Vec<RunRecord>, StateError> {
        let packed: String = sqlx::query_scalar(
            "SELECT coalesce(json_agg(json_build_array(serial, at, finished_at, actor, host, \
               command, summary) ORDER BY serial), '[]')::text FROM runs",
        )
        .fetch_one(&self.pool)
        .await?;
        let mut runs = codec::runs_from_packed(&packed)?;
        let charges: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT sent_serial, string_agg({}, ' ') FROM orders \
                 WHERE charge IS NOT NULL GROUP BY sent_serial",
            crate::state::sql::ORDER_COST_TERMS
        )))
        .fetch_all(&self.pool)
        .await?;
        codec::attach_charges(&mut runs, charges)?;
        let topups: Vec<(i64, i64)> = sqlx::query_as(crate::state::sql::TOPUPS_SENT_SQL)
            .fetch_all(&self.pool)
            .await?;
        codec::attach_topups_sent(&mut runs, topups)?;
        Ok(runs)
    }

    // ----- cards -----

    pub(in crate::state) async fn put_card(
        &self,
        serial: u64,
        card: &CardRecord,
    ) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        put_card_costed_in(&mut tx, serial, card).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::state) async fn remove_card(
        &self,
        serial: u64,
        key: &str,
    ) -> Result<bool, StateError> {
        let s = serial_i64(serial)?;
        let mut tx = self.write().await?;
        let gone = sqlx::query("DELETE FROM cards WHERE key = $1")
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if gone {
            sqlx::query(
                "INSERT INTO changes (resource_kind, resource_key, serial, image) \
                 VALUES ('card', $1, $2, NULL) \
                 ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = NULL",
            )
            .bind(key)
            .bind(s)
            .execute(&mut *tx)
            .await
            .map_err(serial_err(serial))?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    pub(in crate::state) async fn rename_card(
        &self,
        serial: u64,
        old: &str,
        new: &str,
    ) -> Result<bool, StateError> {
        let s = serial_i64(serial)?;
        let mut tx = self.write().await?;
        let Some(mut card) = get_card_in(&mut tx, old).await? else {
            return Ok(false);
        };
        if get_card_in(&mut tx, new).await?.is_some() {
            return Err(StateError::KeyExists(new.to_owned()));
        }
        sqlx::query("DELETE FROM cards WHERE key = $1")
            .bind(old)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO changes (resource_kind, resource_key, serial, image) \
             VALUES ('card', $1, $2, NULL) \
             ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = NULL",
        )
        .bind(old)
        .bind(s)
        .execute(&mut *tx)
        .await
        .map_err(serial_err(serial))?;
        card.key = new.into();
        card.updated_at = now();
        put_card_in(&mut tx, serial, &card).await?;
        // The journal and the audit follow the card; its idempotency keys stay what they were.
        for sql in [
            "UPDATE orders SET resource_key = $1 WHERE resource_kind = 'card' AND resource_key = $2",
            "UPDATE calls SET resource_key = $1 WHERE resource_kind = 'card' AND resource_key = $2",
            "UPDATE cards SET replaced_by = $1 WHERE replaced_by = $2",
        ] {
            sqlx::query(sql)
                .bind(new)
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        // So do its top-ups (`OLD:ID` becomes `NEW:ID`), which would otherwise be sent again.
        let (from, to) = codec::topup_key_range(old);
        for table in ["orders", "calls"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET resource_key = $1 || substr(resource_key, $2) \
                 WHERE resource_kind = 'topup' AND resource_key >= $3 AND resource_key < $4"
            )))
            .bind(new)
            .bind(i32::try_from(old.chars().count() + 1).unwrap_or(i32::MAX))
            .bind(&from)
            .bind(&to)
            .execute(&mut *tx)
            .await?;
        }
        resources::rename_topups_in(&mut tx, serial, old, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(in crate::state) async fn get_card(
        &self,
        key: &str,
    ) -> Result<Option<CardRecord>, StateError> {
        let mut conn = self.pool.acquire().await?;
        get_card_in(&mut conn, key).await
    }

    pub(in crate::state) async fn cards_at(
        &self,
        serial: u64,
    ) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        let packed: String = sqlx::query_scalar(
            "SELECT coalesce(json_object_agg(c.resource_key, c.image::json), '{}')::text \
             FROM changes AS c \
             WHERE c.resource_kind = 'card' AND c.image IS NOT NULL \
               AND c.serial = (SELECT max(l.serial) FROM changes AS l \
                               WHERE l.resource_kind = c.resource_kind \
                                 AND l.resource_key = c.resource_key AND l.serial <= $1)",
        )
        .bind(i64::try_from(serial).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        cards_from_images(&packed)
    }

    // ----- order journal -----

    pub(in crate::state) async fn journal_order(
        &self,
        serial: u64,
        order: &OrderRecord,
    ) -> Result<Option<u64>, StateError> {
        self.journal_in(serial, order, None).await
    }

    pub(in crate::state) async fn journal_order_with(
        &self,
        serial: u64,
        order: &OrderRecord,
        record: &ResourceRecord,
    ) -> Result<Option<u64>, StateError> {
        self.journal_in(serial, order, Some(record)).await
    }

    /// A write transaction, fenced: while this handle holds the lock, it begins only if the
    /// lock's session is alive and the lock row still names it. FOR SHARE makes a takeover
    /// (which deletes our row) wait until this write is committed, or see it gone first.
    async fn write(&self) -> Result<Transaction<'_, Postgres>, StateError> {
        let held = self.held_lock()?;
        let mut tx = self.pool.begin().await?;
        if let Some(h) = held {
            let ours: Option<i32> =
                sqlx::query_scalar("SELECT 1 FROM lock WHERE lock_id = $1 FOR SHARE")
                    .bind(&h.lock_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if ours.is_none() {
                return Err(StateError::LockLost);
            }
        }
        Ok(tx)
    }

    async fn journal_in(
        &self,
        serial: u64,
        order: &OrderRecord,
        declared: Option<&ResourceRecord>,
    ) -> Result<Option<u64>, StateError> {
        let mut tx = self.write().await?;
        let inserted = bind_order(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT (idempotency_key) DO NOTHING"
            ))),
            order,
            serial_i64(serial)?,
        )
        .execute(&mut *tx)
        .await
        .map_err(serial_err(serial))?
        .rows_affected()
            > 0;
        let mut first_sent = None;
        if !inserted {
            let same: Option<i64> = sqlx::query_scalar(
                "SELECT sent_serial FROM orders WHERE idempotency_key = $1 AND resource_kind = $2 \
                 AND resource_key = $3 AND kind = $4 AND attempt = $5 AND request = $6",
            )
            .bind(&order.idempotency_key)
            .bind(order.address.kind.as_str())
            .bind(&order.address.key)
            .bind(order.kind.as_str())
            .bind(i64::from(order.attempt))
            .bind(&order.request)
            .fetch_optional(&mut *tx)
            .await?;
            match same {
                Some(s) => first_sent = Some(serial_u64(s)?),
                None => {
                    return Err(StateError::JournalConflict {
                        key: order.idempotency_key.clone(),
                    });
                }
            }
        }
        resources::follow_order_in(&mut tx, serial, order, declared).await?;
        tx.commit().await?;
        Ok(first_sent)
    }

    pub(in crate::state) async fn record(
        &self,
        serial: u64,
        order: Option<&OrderRecord>,
        card: Option<&CardRecord>,
    ) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        record_in(&mut tx, serial, order, card).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::state) async fn record_batch(
        &self,
        serial: u64,
        items: &[(Option<OrderRecord>, Option<CardRecord>)],
    ) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        for (order, card) in items {
            record_in(&mut tx, serial, order.as_ref(), card.as_ref()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::state) async fn orders_of(
        &self,
        address: &Address,
    ) -> Result<Vec<OrderRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE resource_kind = $1 AND resource_key = $2"
        )))
        .bind(address.kind.as_str())
        .bind(&address.key)
        .fetch_one(&self.pool)
        .await?;
        codec::orders_from_packed(&packed)
    }

    /// Every order of card `card`'s top-ups, in journal order: a key range (`CARD:` up to,
    /// not including, `CARD;`), so a card with a key that merely starts the same is not matched.
    pub(in crate::state) async fn topup_orders_of(
        &self,
        card: &str,
    ) -> Result<Vec<OrderRecord>, StateError> {
        let (from, to) = codec::topup_key_range(card);
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE resource_kind = 'topup' AND resource_key >= $1 AND resource_key < $2"
        )))
        .bind(from)
        .bind(to)
        .fetch_one(&self.pool)
        .await?;
        codec::orders_from_packed(&packed)
    }

    pub(in crate::state) async fn open_orders(&self) -> Result<Vec<OrderRecord>, StateError> {
        let mut conn = self.pool.acquire().await?;
        Self::open_orders_in(&mut conn).await
    }

    async fn open_orders_in(conn: &mut PgConnection) -> Result<Vec<OrderRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE phase IN ('prepared', 'open') \
               AND (resource_kind <> 'card' \
                    OR EXISTS (SELECT 1 FROM cards WHERE cards.key = orders.resource_key))"
        )))
        .fetch_one(&mut *conn)
        .await?;
        codec::orders_from_packed(&packed)
    }

    /// The keys that left state, with the card orders still under each (see
    /// [`Snapshot::removed_cards`]): from the change log's tombstones, an index of them.
    async fn removed_cards_in(
        conn: &mut PgConnection,
    ) -> Result<BTreeMap<CompactString, Vec<OrderRecord>>, StateError> {
        let keys: Vec<String> = sqlx::query_scalar(crate::state::sql::removed_card_keys_sql(false))
            .fetch_all(&mut *conn)
            .await?;
        if keys.is_empty() {
            return Ok(BTreeMap::new());
        }
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE resource_kind = 'card' AND resource_key IN ({})",
            crate::state::sql::removed_card_keys_sql(false)
        )))
        .fetch_one(&mut *conn)
        .await?;
        Ok(codec::removed_cards_from(
            keys,
            codec::orders_from_packed(&packed)?,
        ))
    }

    pub(in crate::state) async fn refunds_unknown(&self) -> Result<Vec<OrderRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE {}",
            crate::state::sql::REFUND_UNKNOWN
        )))
        .fetch_one(&self.pool)
        .await?;
        codec::orders_from_packed(&packed)
    }

    pub(in crate::state) async fn get_order(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<OrderRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED}), '[]')::text FROM orders \
             WHERE idempotency_key = $1"
        )))
        .bind(idempotency_key)
        .fetch_one(&self.pool)
        .await?;
        Ok(codec::orders_from_packed(&packed)?.pop())
    }

    // ----- audit -----

    pub(in crate::state) async fn record_call(&self, entry: &CallRecord) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        insert_call(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An order's progress and the audit row of the answer that moved it, in one transaction
    /// (see the SQLite store's).
    pub(in crate::state) async fn record_answer(
        &self,
        serial: u64,
        order: &OrderRecord,
        call: &CallRecord,
    ) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        write_order_in(&mut tx, serial, order).await?;
        if let Some(key) = order.address.card_key() {
            recost_card_in(&mut tx, serial, key).await?;
        }
        insert_call(&mut tx, call).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::state) async fn calls(
        &self,
        since: Option<&str>,
    ) -> Result<Vec<CallRecord>, StateError> {
        let from = since.map(timestamp_micros).transpose()?.unwrap_or(i64::MIN);
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg(json_build_array({CALL_PACKED}) ORDER BY c.at_us, c.id), \
               '[]')::text FROM {CALLS_JOINED} WHERE c.at_us >= $1"
        )))
        .bind(from)
        .fetch_one(&self.pool)
        .await?;
        codec::calls_from_packed(&packed)
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds the order's fields in [`ORDER_COLUMNS`] order; a new entry was sent by run `serial`.
fn bind_order<'q>(q: PgQuery<'q>, o: &'q OrderRecord, serial: i64) -> PgQuery<'q> {
    q.bind(&o.idempotency_key)
        .bind(o.address.kind.as_str())
        .bind(&o.address.key)
        .bind(o.kind.as_str())
        .bind(i64::from(o.attempt))
        .bind(&o.request)
        .bind(&o.order_id)
        .bind(o.phase.as_str())
        .bind(&o.provider_status)
        .bind(&o.sub_status)
        .bind(&o.error_slug)
        .bind(&o.error_message)
        .bind(o.estimated_charge.map(|d| d.to_string()))
        .bind(o.charge.map(|d| d.to_string()))
        .bind(&o.created_at)
        .bind(&o.updated_at)
        .bind(
            o.sent_serial
                .and_then(|s| i64::try_from(s).ok())
                .unwrap_or(serial),
        )
        .bind(serial)
        .bind(o.refunded.map(|d| d.to_string()))
}

async fn get_card_in(conn: &mut PgConnection, key: &str) -> Result<Option<CardRecord>, StateError> {
    let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(json_agg({CARD_PACKED}), '[]')::text FROM cards WHERE key = $1"
    )))
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(cards_from_packed(&packed)?.into_values().next())
}

pub(super) async fn put_card_in(
    tx: &mut Transaction<'_, Postgres>,
    serial: u64,
    c: &CardRecord,
) -> Result<(), StateError> {
    let s = serial_i64(serial)?;
    sqlx::query(
        "INSERT INTO cards (key, external_user_id, product_code, initial_topup, desired_status, \
           labels, card_id, phase, provider_status, last4, charged, attempt, replaced_by, \
           created_at, updated_at, balance, serial) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (key) DO UPDATE SET external_user_id = excluded.external_user_id, \
           product_code = excluded.product_code, initial_topup = excluded.initial_topup, \
           desired_status = excluded.desired_status, labels = excluded.labels, \
           card_id = excluded.card_id, phase = excluded.phase, \
           provider_status = excluded.provider_status, last4 = excluded.last4, \
           charged = excluded.charged, attempt = excluded.attempt, \
           replaced_by = excluded.replaced_by, created_at = excluded.created_at, \
           updated_at = excluded.updated_at, balance = excluded.balance, \
           serial = excluded.serial",
    )
    .bind(c.key.as_str())
    .bind(c.external_user_id.as_str())
    .bind(c.product_code.as_str())
    .bind(c.initial_topup.map(|d| d.to_string()))
    .bind(c.desired_status.as_str())
    .bind(codec::labels_json(&c.labels)?)
    .bind(c.card_id.as_deref())
    .bind(c.phase.as_str())
    .bind(c.provider_status.as_deref())
    .bind(c.last4.as_deref())
    .bind(c.charged.to_string())
    .bind(i64::from(c.attempt))
    .bind(c.replaced_by.as_deref())
    .bind(&c.created_at)
    .bind(&c.updated_at)
    .bind(c.balance.map(|d| d.to_string()))
    .bind(s)
    .execute(&mut **tx)
    .await
    .map_err(serial_err(serial))?;
    // Only the last image per (card, serial) matters: history is per run, not per write.
    sqlx::query(
        "INSERT INTO changes (resource_kind, resource_key, serial, image) \
         VALUES ('card', $1, $2, $3) \
         ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = excluded.image",
    )
    .bind(c.key.as_str())
    .bind(s)
    .bind(codec::card_image(c)?)
    .execute(&mut **tx)
    .await
    .map_err(serial_err(serial))?;
    Ok(())
}

async fn record_in(
    tx: &mut Transaction<'_, Postgres>,
    serial: u64,
    order: Option<&OrderRecord>,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    if let Some(o) = order {
        write_order_in(tx, serial, o).await?;
    }
    if let Some(c) = card {
        put_card_costed_in(tx, serial, c).await?;
    }
    if let Some(o) = order {
        if let Some(key) = o.address.card_key()
            && card.is_none_or(|c| c.key != key)
        {
            recost_card_in(tx, serial, key).await?;
        }
        observe_issue_fee(tx, o, card).await?;
    }
    Ok(())
}

/// Writes an order's progress with what follows from it in the same transaction (see the
/// SQLite store's).
async fn write_order_in(
    tx: &mut Transaction<'_, Postgres>,
    serial: u64,
    o: &OrderRecord,
) -> Result<(), StateError> {
    let before = order_in(tx, &o.idempotency_key).await?;
    if codec::is_late_write(before.as_ref(), o)? {
        return Ok(());
    }
    upsert_order(tx, serial, o).await?;
    resources::follow_order_in(tx, serial, o, None).await?;
    if let Some(amount) = money::new_refund(before.as_ref(), o) {
        insert_call(tx, &money::refund_call(o, amount, &o.updated_at)).await?;
    }
    Ok(())
}

async fn order_in(conn: &mut PgConnection, key: &str) -> Result<Option<OrderRecord>, StateError> {
    let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(json_agg({ORDER_PACKED}), '[]')::text FROM orders \
         WHERE idempotency_key = $1"
    )))
    .bind(key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(codec::orders_from_packed(&packed)?.pop())
}

/// Every order of `address`, oldest first, as the transaction sees them.
pub(super) async fn orders_of_in(
    conn: &mut PgConnection,
    address: &Address,
) -> Result<Vec<OrderRecord>, StateError> {
    let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
         WHERE resource_kind = $1 AND resource_key = $2"
    )))
    .bind(address.kind.as_str())
    .bind(&address.key)
    .fetch_one(&mut *conn)
    .await?;
    codec::orders_from_packed(&packed)
}

/// Every order of card `key` and of its top-ups: what its `charged` is derived from.
async fn card_orders_in(
    conn: &mut PgConnection,
    key: &str,
) -> Result<Vec<OrderRecord>, StateError> {
    let (from, to) = codec::topup_key_range(key);
    let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
         WHERE (resource_kind = 'card' AND resource_key = $1) \
            OR (resource_kind = 'topup' AND resource_key >= $2 AND resource_key < $3)"
    )))
    .bind(key)
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    codec::orders_from_packed(&packed)
}

/// Writes `card` with `charged` derived from its orders (see [`money`]).
async fn put_card_costed_in(
    tx: &mut Transaction<'_, Postgres>,
    serial: u64,
    card: &CardRecord,
) -> Result<(), StateError> {
    let cost = money::resource_cost(&card_orders_in(tx, &card.key).await?);
    if cost == card.charged {
        return put_card_in(tx, serial, card).await;
    }
    let mut costed = card.clone();
    costed.charged = cost;
    put_card_in(tx, serial, &costed).await
}

/// Brings the stored card `key`'s `charged` up to its orders, when one of them changed without
/// the card being written.
async fn recost_card_in(
    tx: &mut Transaction<'_, Postgres>,
    serial: u64,
    key: &str,
) -> Result<(), StateError> {
    let Some(card) = get_card_in(tx, key).await? else {
        return Ok(());
    };
    let cost = money::resource_cost(&card_orders_in(tx, key).await?);
    if cost != card.charged {
        put_card_in(
            tx,
            serial,
            &CardRecord {
                charged: cost,
                ..card
            },
        )
        .await?;
    }
    Ok(())
}

/// The upgrade to schema 7 (see the SQLite store's): every card's `charged` recomputed from its
/// orders, the cards whose figure changes written under a run of their own.
pub(super) async fn recompute_charged_in(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<u64, StateError> {
    let rows: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as(crate::state::sql::CHARGED_ORDERS_SQL)
            .fetch_all(&mut **tx)
            .await?;
    let costs = codec::card_costs(rows)?;
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT key, charged FROM cards")
        .fetch_all(&mut **tx)
        .await?;
    let wrong = codec::misstated(stored, &costs)?;
    if wrong.is_empty() {
        return Ok(0);
    }
    let serial: i64 = sqlx::query_scalar(
        "UPDATE state_info SET serial = serial + 1 WHERE id = 1 RETURNING serial",
    )
    .fetch_one(&mut **tx)
    .await?;
    let at = now();
    let summary = serde_json::json!({ "recomputed_charged": wrong.len() });
    sqlx::query(
        "INSERT INTO runs (serial, at, finished_at, actor, host, command, summary) \
         VALUES ($1, $2, $3, 'cardform', $4, $5, $6)",
    )
    .bind(serial)
    .bind(&at)
    .bind(&at)
    .bind(crate::state::local_host())
    .bind(money::RECOMPUTE_COMMAND)
    .bind(summary.to_string())
    .execute(&mut **tx)
    .await?;
    let serial = serial_u64(serial)?;
    for (key, charged) in &wrong {
        if let Some(card) = get_card_in(tx, key).await? {
            put_card_in(
                tx,
                serial,
                &CardRecord {
                    charged: *charged,
                    ..card
                },
            )
            .await?;
        }
    }
    Ok(wrong.len() as u64)
}

/// A call packed for [`codec::calls_from_packed`], its order filling in what schema 5 no longer
/// repeats (over [`CALLS_JOINED`]).
pub(super) const CALL_PACKED: &str = "c.at, c.at_us, c.endpoint, \
     coalesce(c.idempotency_key, o.idempotency_key), c.order_id, \
     coalesce(c.resource_kind, o.resource_kind), coalesce(c.resource_key, o.resource_key), \
     c.result, c.charge";

/// The calls, each beside the order it names (if any).
pub(super) const CALLS_JOINED: &str = "calls AS c LEFT JOIN orders AS o ON o.seq = c.order_seq";

pub(super) async fn insert_call(
    conn: &mut PgConnection,
    entry: &CallRecord,
) -> Result<(), StateError> {
    // A call made for a journaled order (the order is journaled before it is sent) names it by
    // `order_seq`; only a call with no such order keeps its own key and resource.
    let at_us = timestamp_micros(&entry.at)?;
    sqlx::query(
        "INSERT INTO calls (at_us, at, endpoint, order_seq, idempotency_key, order_id, \
           resource_kind, resource_key, result, charge) \
         SELECT n.at_us, n.at, n.endpoint, o.seq, \
                CASE WHEN o.seq IS NULL THEN n.idempotency_key END, n.order_id, \
                CASE WHEN o.seq IS NULL THEN n.resource_kind END, \
                CASE WHEN o.seq IS NULL THEN n.resource_key END, n.result, n.charge \
         FROM (SELECT $1::bigint AS at_us, $2::text AS at, $3::text AS endpoint, \
                      $4::text AS idempotency_key, $5::text AS order_id, \
                      $6::text AS resource_kind, $7::text AS resource_key, $8::text AS result, \
                      $9::text AS charge) AS n \
         LEFT JOIN orders AS o ON o.idempotency_key = n.idempotency_key \
               AND o.resource_kind = n.resource_kind AND o.resource_key = n.resource_key",
    )
    .bind(at_us)
    .bind(codec::stored_call_at(&entry.at, at_us))
    .bind(&entry.endpoint)
    .bind(&entry.idempotency_key)
    .bind(&entry.order_id)
    .bind(entry.address.as_ref().map(|a| a.kind.as_str()))
    .bind(entry.address.as_ref().map(|a| a.key.as_str()))
    .bind(&entry.result)
    .bind(entry.charge.map(|c| c.to_string()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes an order's progress; its identity (resource, kind, attempt, request) never changes
/// under its key: that is what makes resending the key safe.
pub(super) async fn upsert_order(
    tx: &mut Transaction<'_, Postgres>,
    serial: u64,
    o: &OrderRecord,
) -> Result<(), StateError> {
    let written = bind_order(
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             ON CONFLICT (idempotency_key) DO UPDATE SET \
               order_id = excluded.order_id, phase = excluded.phase, \
               provider_status = excluded.provider_status, sub_status = excluded.sub_status, \
               error_slug = excluded.error_slug, error_message = excluded.error_message, \
               estimated_charge = excluded.estimated_charge, charge = excluded.charge, \
               refunded = excluded.refunded, updated_at = excluded.updated_at, \
               serial = excluded.serial \
             WHERE orders.resource_kind = excluded.resource_kind \
               AND orders.resource_key = excluded.resource_key AND orders.kind = excluded.kind \
               AND orders.attempt = excluded.attempt AND orders.request = excluded.request"
        ))),
        o,
        serial_i64(serial)?,
    )
    .execute(&mut **tx)
    .await
    .map_err(serial_err(serial))?
    .rows_affected();
    if written == 0 {
        return Err(StateError::JournalConflict {
            key: o.idempotency_key.clone(),
        });
    }
    Ok(())
}

/// Keeps `observed_fees` current (the rule is [`FeeLesson`]'s).
async fn observe_issue_fee(
    tx: &mut Transaction<'_, Postgres>,
    o: &OrderRecord,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    let lesson = match FeeLesson::of(o, card) {
        FeeLesson::NeedsStoredCard(key) => {
            let stored = get_card_in(tx, &key).await?;
            FeeLesson::with_stored(o, stored.as_ref())
        }
        lesson => lesson,
    };
    let FeeLesson::Fee { product, charge } = lesson else {
        return Ok(());
    };
    upsert_observed_fee(tx, &product, charge, o).await
}

async fn upsert_observed_fee(
    tx: &mut Transaction<'_, Postgres>,
    product: &str,
    charge: Decimal,
    o: &OrderRecord,
) -> Result<(), StateError> {
    // Most recent wins; an older order recorded late (a resumed run) does not overwrite it.
    sqlx::query(
        "INSERT INTO observed_fees (product_code, charge, observed_at, idempotency_key) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (product_code) DO UPDATE SET charge = excluded.charge, \
           observed_at = excluded.observed_at, idempotency_key = excluded.idempotency_key \
         WHERE excluded.observed_at >= observed_fees.observed_at",
    )
    .bind(product)
    .bind(charge.to_string())
    .bind(&o.updated_at)
    .bind(&o.idempotency_key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
