//! The SQLite backend: a state in one local file. Opening it (creating, upgrading, refusing), and
//! every read and write of runs, cards, the order journal, the change log and the audit of
//! provider calls. Must not decide what to do with what it holds, and nothing outside `state`
//! sees a type of this module.

mod lock;
mod rows;
mod schema;

use rust_decimal::Decimal;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Connection, Row};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use crate::model::Address;
use crate::state::model::{CardRecord, OrderKind, OrderPhase, OrderRecord, Snapshot};
use crate::state::{CallRecord, RunInfo, RunRecord, StateError, Upgrade, now};
use crate::wire::assumed::INITIAL_TOPUP_FIELD;
use rows::{call_columns, card_columns, card_packed, order_columns, run_columns};

impl From<sqlx::Error> for StateError {
    fn from(e: sqlx::Error) -> Self {
        StateError::Database(e.to_string())
    }
}

/// How long one statement waits for another process's write transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Concurrent readers: enough that `show`/snapshot reads never queue behind exec's writes.
const READERS: u32 = 2;

/// Rows the SQLite worker thread may run ahead of us: the default (50) makes a 100,000-card
/// snapshot wait on a thread hand-off every few rows.
const READ_ROW_BUFFER: usize = 10_000;

/// Cards per chunk of a snapshot: large enough that the per-query cost vanishes, small enough
/// that one chunk's JSON (about 500 bytes a card) stays a few megabytes.
const SNAPSHOT_CHUNK: i64 = 4096;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// SQLite's extended result code for a failed foreign key constraint.
const SQLITE_CONSTRAINT_FOREIGNKEY: &str = "787";

/// A handle on one state file. Cheap to clone (the pools are shared).
#[derive(Debug, Clone)]
pub(super) struct SqliteStore {
    /// Exactly one connection: SQLite allows one writer at a time, so in-process writers queue
    /// here instead of spinning on SQLITE_BUSY.
    writer: SqlitePool,
    /// Read-only work (snapshots, history, show) in WAL runs beside the writer.
    reader: SqlitePool,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        location: path.display().to_string(),
        source,
    }
}

/// Creates the file with mode 0600 before SQLite writes a byte to it, or checks that an existing
/// file is an SQLite database at all (so a wrong `--state` gets a clear error, not a migration).
fn prepare_file(path: &Path) -> Result<(), StateError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(path)(e)),
    }
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut head = Vec::with_capacity(16);
    file.by_ref()
        .take(16)
        .read_to_end(&mut head)
        .map_err(io_err(path))?;
    // An empty file is one we (or a crashed open) created and SQLite has not initialised yet.
    if !head.is_empty() && head.as_slice() != SQLITE_MAGIC {
        return Err(StateError::Corrupt(format!(
            "{}: not an SQLite database",
            path.display()
        )));
    }
    Ok(())
}

fn connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
}

/// Maps a foreign-key failure on a `serial` column to the error that says what went wrong.
fn serial_err(serial: u64) -> impl FnOnce(sqlx::Error) -> StateError {
    move |e| match e.as_database_error().and_then(|d| d.code()) {
        Some(code) if code == SQLITE_CONSTRAINT_FOREIGNKEY => StateError::UnknownSerial(serial),
        _ => StateError::from(e),
    }
}

fn serial_i64(serial: u64) -> Result<i64, StateError> {
    i64::try_from(serial).map_err(|_| StateError::UnknownSerial(serial))
}

fn serial_u64(serial: i64) -> Result<u64, StateError> {
    u64::try_from(serial).map_err(|_| StateError::Corrupt(format!("negative serial {serial}")))
}

fn timestamp_micros(value: &str) -> Result<i64, StateError> {
    let bad = || StateError::InvalidTimestamp {
        value: value.to_string(),
    };
    if let Ok(ts) = value.parse::<jiff::Timestamp>() {
        return Ok(ts.as_microsecond());
    }
    // A bare date (`--since 2025-01-31`) means its start, in UTC.
    let date: jiff::civil::Date = value.parse().map_err(|_| bad())?;
    let ts = jiff::tz::Offset::UTC
        .to_timestamp(date.at(0, 0, 0, 0))
        .map_err(|_| bad())?;
    Ok(ts.as_microsecond())
}

impl SqliteStore {
    /// Opens the state at `path` for a command that writes: creating it (and its directory) when
    /// missing, upgrading an older schema after keeping a copy of it.
    ///
    /// The file is created with mode 0600 before SQLite writes to it; SQLite gives the WAL and
    /// shared-memory files the same mode. Journal mode is WAL so readers (`show`, `plan`) never
    /// block an apply. `synchronous=NORMAL` means a power loss may drop the last few commits
    /// (WAL frames not yet synced), but never corrupts the file; and losing a journal entry is
    /// safe because idempotency keys are deterministic (lineage, card key, attempt): the re-run
    /// journals the same key again and the provider answers with the same order, so nothing is
    /// issued or charged twice. FULL would cost an fsync per commit, at 100–500 commits/s.
    pub(super) async fn open_for_write(
        path: &Path,
    ) -> Result<(SqliteStore, Option<Upgrade>), StateError> {
        prepare_file(path)?;
        let writer_opts = connect_options(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let mut conn = SqliteConnection::connect_with(&writer_opts).await?;
        let migrated = schema::migrate(&mut conn, path).await;
        conn.close().await?;
        let upgraded = migrated?;
        Ok((Self::pools(path, writer_opts).await?, upgraded))
    }

    /// Opens the state at `path` for a command that only reads: `None` when there is no state
    /// there; an error, changing nothing, when its schema is not this build's.
    pub(super) async fn open_for_read(path: &Path) -> Result<Option<SqliteStore>, StateError> {
        if !Self::exists(path)? {
            return Ok(None);
        }
        prepare_file(path)?;
        let opts = connect_options(path).synchronous(SqliteSynchronous::Normal);
        let mut conn = SqliteConnection::connect_with(&opts).await?;
        let checked = match schema::status(&mut conn, path).await {
            // A file created by a writer that never got to its first migration: no state yet.
            Ok(schema::Status::Empty) => Ok(false),
            Ok(_) => schema::check_readable(&mut conn, path).await.map(|()| true),
            Err(e) => Err(e),
        };
        conn.close().await?;
        if !checked? {
            return Ok(None);
        }
        // Writing methods are never called by read-only commands; the journal mode was set for
        // good by the writer that created the file.
        Ok(Some(Self::pools(path, opts).await?))
    }

    /// Whether a state file exists (an empty file left by a crash counts: opening decides).
    pub(super) fn exists(path: &Path) -> Result<bool, StateError> {
        match std::fs::metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// The schema of the file at `path`, changing nothing; `None` without a state there.
    pub(super) async fn schema_version(path: &Path) -> Result<Option<i64>, StateError> {
        if !Self::exists(path)? {
            return Ok(None);
        }
        prepare_file(path)?;
        let mut conn = SqliteConnection::connect_with(&connect_options(path)).await?;
        let status = schema::status(&mut conn, path).await;
        conn.close().await?;
        Ok(match status? {
            schema::Status::Empty => None,
            schema::Status::At(v) => Some(v),
        })
    }

    async fn pools(
        path: &Path,
        writer_opts: SqliteConnectOptions,
    ) -> Result<SqliteStore, StateError> {
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .connect_with(writer_opts)
            .await?;
        // Readers never change the journal mode (that needs an exclusive lock); the writer's
        // connection already made the file WAL for good.
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .min_connections(0)
            .connect_with(
                connect_options(path)
                    .synchronous(SqliteSynchronous::Normal)
                    // No `mmap_size`: a snapshot reads the whole cards table, and every mapped
                    // page of it would count in the process's resident memory (60 MB for
                    // 100,000 cards) for no measurable gain in speed over read().
                    .row_buffer_size(READ_ROW_BUFFER),
            )
            .await?;
        Ok(SqliteStore { writer, reader })
    }

    /// Closes both pools, checkpointing the WAL into the main file.
    pub(super) async fn close(self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    pub(super) async fn lineage(&self) -> Result<String, StateError> {
        Ok(
            sqlx::query_scalar("SELECT lineage FROM state_info WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    pub(super) async fn serial(&self) -> Result<u64, StateError> {
        let s: i64 = sqlx::query_scalar("SELECT serial FROM state_info WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        serial_u64(s)
    }

    /// Everything plan needs, read in one transaction so it is a consistent picture.
    pub(super) async fn snapshot(&self) -> Result<Snapshot, StateError> {
        let mut tx = self.reader.begin().await?;
        let info = sqlx::query("SELECT lineage, serial FROM state_info WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let lineage: String = info.try_get(0)?;
        let serial = serial_u64(info.try_get(1)?)?;

        let cards = Self::cards_in(&mut tx).await?;

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
            observed_issue_fees.insert(product, rows::decimal("observed fee", &charge)?);
        }
        tx.commit().await?;
        Ok(Snapshot {
            lineage,
            serial,
            cards,
            open_orders,
            observed_issue_fees,
        })
    }

    /// Every managed card, read in key order a chunk at a time.
    ///
    /// Each chunk crosses from SQLite as one JSON document instead of thousands of rows of
    /// fifteen columns: sqlx's per-row and per-value overhead would dominate, and SQLite packs
    /// them far faster. Chunks rather than one document for the whole table, because a
    /// 100,000-card document (about 50 MB, plus its parse) would double a plan's peak memory.
    async fn cards_in(
        conn: &mut SqliteConnection,
    ) -> Result<BTreeMap<String, CardRecord>, StateError> {
        let mut runs: Vec<BTreeMap<String, CardRecord>> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            // Keyset paging on the primary key: each chunk is a range seek, where OFFSET would
            // rescan everything before it.
            let query = match &after {
                None => sqlx::query_scalar(concat!(
                    "SELECT json_group_array(",
                    card_packed!(),
                    ") FROM (SELECT * FROM cards ORDER BY key LIMIT ?)"
                )),
                Some(_) => sqlx::query_scalar(concat!(
                    "SELECT json_group_array(",
                    card_packed!(),
                    ") FROM (SELECT * FROM cards WHERE key > ? ORDER BY key LIMIT ?)"
                )),
            };
            let query = match &after {
                Some(last) => query.bind(last.as_str()),
                None => query,
            };
            let packed: Option<String> = query.bind(SNAPSHOT_CHUNK).fetch_one(&mut *conn).await?;
            let mut chunk = rows::cards_from_packed(packed.as_deref().unwrap_or("[]"))?;
            drop(packed);
            let full = chunk.len() >= SNAPSHOT_CHUNK as usize;
            after = chunk.last_key_value().map(|(k, _)| k.clone());
            // Chunks are merged like a binary counter: two trees of about the same size become
            // one, so each card is moved a logarithmic number of times rather than once per
            // later chunk. (`append` rebuilds packed nodes; inserting cards one by one in
            // order would leave nodes half empty.)
            while let Some(last) = runs.last_mut() {
                if last.len() > chunk.len() {
                    break;
                }
                last.append(&mut chunk);
                chunk = runs.pop().unwrap_or_default();
            }
            runs.push(chunk);
            if !full || after.is_none() {
                let mut cards = BTreeMap::new();
                while let Some(mut run) = runs.pop() {
                    run.append(&mut cards);
                    cards = run;
                }
                return Ok(cards);
            }
        }
    }

    // ----- runs -----

    /// Starts a run: the serial goes up by one and the run is recorded under it.
    pub(super) async fn begin_run(&self, info: RunInfo) -> Result<u64, StateError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let serial: i64 = sqlx::query_scalar(
            "UPDATE state_info SET serial = serial + 1 WHERE id = 1 RETURNING serial",
        )
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO runs (serial, at, actor, host, command, summary) \
             VALUES (?, ?, ?, ?, ?, '{}')",
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

    pub(super) async fn finish_run(
        &self,
        serial: u64,
        summary: &serde_json::Value,
    ) -> Result<(), StateError> {
        let summary = serde_json::to_string(summary)
            .map_err(|e| StateError::Corrupt(format!("run summary: {e}")))?;
        let done = sqlx::query("UPDATE runs SET finished_at = ?, summary = ? WHERE serial = ?")
            .bind(now())
            .bind(summary)
            .bind(serial_i64(serial)?)
            .execute(&self.writer)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StateError::NotFound(format!("run with serial {serial}")));
        }
        Ok(())
    }

    /// One record per serial, oldest first.
    pub(super) async fn history(&self) -> Result<Vec<RunRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs ORDER BY serial"
        ))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(rows::run)
        .collect()
    }

    // ----- cards -----

    pub(super) async fn put_card(&self, serial: u64, card: &CardRecord) -> Result<(), StateError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        put_card_in(&mut tx, serial, card).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a card (state only) and logs a tombstone; `false` when there was no such card.
    pub(super) async fn remove_card(&self, serial: u64, key: &str) -> Result<bool, StateError> {
        let s = serial_i64(serial)?;
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let gone = sqlx::query("DELETE FROM cards WHERE key = ?")
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if gone {
            sqlx::query(
                "INSERT INTO changes (resource_kind, resource_key, serial, image) \
                 VALUES ('card', ?, ?, NULL) \
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

    pub(super) async fn get_card(&self, key: &str) -> Result<Option<CardRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            card_columns!(),
            " FROM cards WHERE key = ?"
        ))
        .bind(key)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(rows::card)
        .transpose()
    }

    // ----- order journal -----

    /// Journals an order before its request is sent. Committed when this returns. Journaling the
    /// same key again with the same request is a no-op (the existing entry, with whatever
    /// progress it recorded, is kept); with a different request it is a
    /// [`StateError::JournalConflict`].
    pub(super) async fn journal_order(
        &self,
        serial: u64,
        order: &OrderRecord,
    ) -> Result<(), StateError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = bind_order(
            sqlx::query(concat!(
                "INSERT INTO orders (",
                order_columns!(),
                ", serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (idempotency_key) DO NOTHING"
            )),
            order,
        )?
        .bind(serial_i64(serial)?)
        .execute(&mut *tx)
        .await
        .map_err(serial_err(serial))?
        .rows_affected()
            > 0;
        if !inserted {
            let same: Option<i64> = sqlx::query_scalar(
                "SELECT 1 FROM orders WHERE idempotency_key = ? AND resource_kind = ? \
                 AND resource_key = ? AND kind = ? AND attempt = ? AND request = ?",
            )
            .bind(&order.idempotency_key)
            .bind(order.address.kind.as_str())
            .bind(&order.address.key)
            .bind(order.kind.as_str())
            .bind(i64::from(order.attempt))
            .bind(&order.request)
            .fetch_optional(&mut *tx)
            .await?;
            if same.is_none() {
                return Err(StateError::JournalConflict {
                    key: order.idempotency_key.clone(),
                });
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Updates an order and/or its card in one transaction.
    pub(super) async fn record(
        &self,
        serial: u64,
        order: Option<&OrderRecord>,
        card: Option<&CardRecord>,
    ) -> Result<(), StateError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        record_in(&mut tx, serial, order, card).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Many [`Store::record`]s in one transaction: all or none are written.
    pub(super) async fn record_batch(
        &self,
        serial: u64,
        items: &[(Option<OrderRecord>, Option<CardRecord>)],
    ) -> Result<(), StateError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        for (order, card) in items {
            record_in(&mut tx, serial, order.as_ref(), card.as_ref()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every order ever journaled for `key`, oldest first.
    pub(super) async fn orders_of(
        &self,
        address: &Address,
    ) -> Result<Vec<OrderRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE resource_kind = ? AND resource_key = ? ORDER BY seq"
        ))
        .bind(address.kind.as_str())
        .bind(&address.key)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(rows::order)
        .collect()
    }

    /// Orders not yet terminal, of cards state still manages, oldest first. An order of a card
    /// removed with `state rm` stays in the journal (its key is never reused) but is not tracked.
    pub(super) async fn open_orders(&self) -> Result<Vec<OrderRecord>, StateError> {
        let mut conn = self.reader.acquire().await?;
        Self::open_orders_in(&mut conn).await
    }

    async fn open_orders_in(conn: &mut SqliteConnection) -> Result<Vec<OrderRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE phase IN ('prepared', 'open') \
             AND (resource_kind <> 'card' \
                  OR EXISTS (SELECT 1 FROM cards WHERE cards.key = orders.resource_key)) \
             ORDER BY seq"
        ))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::order)
        .collect()
    }

    pub(super) async fn get_order(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<OrderRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE idempotency_key = ?"
        ))
        .bind(idempotency_key)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(rows::order)
        .transpose()
    }

    // ----- history -----

    /// The managed cards as they were at the end of run `serial`: per key, the latest image at or
    /// before it, unless that image is a removal.
    pub(super) async fn cards_at(
        &self,
        serial: u64,
    ) -> Result<BTreeMap<String, CardRecord>, StateError> {
        // Per card, the image of its latest serial up to `serial` (a seek on the primary key);
        // the images are then handed over as one JSON object (see `snapshot` for why).
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT json_group_object(c.resource_key, json(c.image)) FROM changes AS c \
             WHERE c.resource_kind = 'card' AND c.image IS NOT NULL \
               AND c.serial = (SELECT MAX(l.serial) FROM changes AS l \
                               WHERE l.resource_kind = c.resource_kind \
                                 AND l.resource_key = c.resource_key AND l.serial <= ?)",
        )
        .bind(i64::try_from(serial).unwrap_or(i64::MAX))
        .fetch_one(&self.reader)
        .await?;
        rows::cards_from_images(packed.as_deref().unwrap_or("{}"))
    }

    // ----- audit -----

    pub(super) async fn record_call(&self, entry: &CallRecord) -> Result<(), StateError> {
        sqlx::query(concat!(
            "INSERT INTO calls (at_us, ",
            call_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(timestamp_micros(&entry.at)?)
        .bind(&entry.at)
        .bind(&entry.endpoint)
        .bind(&entry.idempotency_key)
        .bind(&entry.order_id)
        .bind(entry.address.as_ref().map(|a| a.kind.as_str()))
        .bind(entry.address.as_ref().map(|a| a.key.as_str()))
        .bind(&entry.result)
        .bind(entry.charge.map(|c| c.to_string()))
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Recorded calls in time order, from `since` (RFC 3339 or a bare date) on.
    pub(super) async fn calls(&self, since: Option<&str>) -> Result<Vec<CallRecord>, StateError> {
        let from = since.map(timestamp_micros).transpose()?.unwrap_or(i64::MIN);
        sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM calls WHERE at_us >= ? ORDER BY at_us, id"
        ))
        .bind(from)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(rows::call)
        .collect()
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds the fields of [`order_columns!`] in order.
fn bind_order<'q>(q: SqliteQuery<'q>, o: &'q OrderRecord) -> Result<SqliteQuery<'q>, StateError> {
    Ok(q.bind(&o.idempotency_key)
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
        .bind(&o.updated_at))
}

async fn put_card_in(
    conn: &mut SqliteConnection,
    serial: u64,
    c: &CardRecord,
) -> Result<(), StateError> {
    let s = serial_i64(serial)?;
    sqlx::query(concat!(
        "INSERT OR REPLACE INTO cards (",
        card_columns!(),
        ", serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&c.key)
    .bind(&c.external_user_id)
    .bind(&c.product_code)
    .bind(c.initial_topup.map(|d| d.to_string()))
    .bind(c.desired_status.as_str())
    .bind(rows::labels_json(&c.labels)?)
    .bind(&c.card_id)
    .bind(c.phase.as_str())
    .bind(&c.provider_status)
    .bind(&c.last4)
    .bind(c.charged.to_string())
    .bind(i64::from(c.attempt))
    .bind(&c.replaced_by)
    .bind(&c.created_at)
    .bind(&c.updated_at)
    .bind(s)
    .execute(&mut *conn)
    .await
    .map_err(serial_err(serial))?;
    // Only the last image per (key, serial) matters: history is per run, not per write.
    sqlx::query(
        "INSERT INTO changes (resource_kind, resource_key, serial, image) \
         VALUES ('card', ?, ?, ?) \
         ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = excluded.image",
    )
    .bind(&c.key)
    .bind(s)
    .bind(rows::card_image(c)?)
    .execute(&mut *conn)
    .await
    .map_err(serial_err(serial))?;
    Ok(())
}

async fn record_in(
    conn: &mut SqliteConnection,
    serial: u64,
    order: Option<&OrderRecord>,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    if let Some(o) = order {
        upsert_order(conn, serial, o).await?;
    }
    if let Some(c) = card {
        put_card_in(conn, serial, c).await?;
    }
    if let Some(o) = order {
        observe_issue_fee(conn, o, card).await?;
    }
    Ok(())
}

/// Writes an order's progress. The identity of a journaled order (card, kind, attempt, request)
/// never changes under its key: that is what makes resending the key safe.
async fn upsert_order(
    conn: &mut SqliteConnection,
    serial: u64,
    o: &OrderRecord,
) -> Result<(), StateError> {
    let written = bind_order(
        sqlx::query(concat!(
            "INSERT INTO orders (",
            order_columns!(),
            ", serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (idempotency_key) DO UPDATE SET \
               order_id = excluded.order_id, phase = excluded.phase, \
               provider_status = excluded.provider_status, sub_status = excluded.sub_status, \
               error_slug = excluded.error_slug, error_message = excluded.error_message, \
               estimated_charge = excluded.estimated_charge, charge = excluded.charge, \
               updated_at = excluded.updated_at, serial = excluded.serial \
             WHERE orders.resource_kind = excluded.resource_kind \
               AND orders.resource_key = excluded.resource_key AND orders.kind = excluded.kind \
               AND orders.attempt = excluded.attempt AND orders.request = excluded.request"
        )),
        o,
    )?
    .bind(serial_i64(serial)?)
    .execute(&mut *conn)
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

/// Keeps `observed_fees` current: a completed issue order without a top-up charged exactly the
/// product's issue fee. Product and top-up come from the request as sent when it says, else from
/// the card.
async fn observe_issue_fee(
    conn: &mut SqliteConnection,
    o: &OrderRecord,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    let Some(charge) = o.charge else {
        return Ok(());
    };
    if o.kind != OrderKind::Issue || o.phase != OrderPhase::Completed {
        return Ok(());
    }
    let request: Option<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(&o.request).ok();
    let req_product = request
        .as_ref()
        .and_then(|r| r.get("product_code"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let req_topup = request
        .as_ref()
        .and_then(|r| r.get(INITIAL_TOPUP_FIELD))
        .is_some_and(|v| !v.is_null());

    let stored;
    let Some(card_key) = o.address.card_key() else {
        return Ok(());
    };
    let card = match card.filter(|c| c.key == card_key) {
        Some(c) => Some(c),
        None if req_product.is_none() => {
            stored = sqlx::query(concat!(
                "SELECT ",
                card_columns!(),
                " FROM cards WHERE key = ?"
            ))
            .bind(card_key)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(rows::card)
            .transpose()?;
            stored.as_ref()
        }
        None => None,
    };
    let (product, topup) = match (req_product, card) {
        (Some(p), _) => (p, req_topup),
        (None, Some(c)) => (
            c.product_code.clone(),
            req_topup || c.initial_topup.is_some(),
        ),
        (None, None) => return Ok(()),
    };
    if topup {
        return Ok(());
    }
    upsert_observed_fee(conn, &product, charge, o).await
}

async fn upsert_observed_fee(
    conn: &mut SqliteConnection,
    product: &str,
    charge: Decimal,
    o: &OrderRecord,
) -> Result<(), StateError> {
    // Most recent wins; an older order recorded late (a resumed run) does not overwrite it.
    sqlx::query(
        "INSERT INTO observed_fees (product_code, charge, observed_at, idempotency_key) \
         VALUES (?, ?, ?, ?) \
         ON CONFLICT (product_code) DO UPDATE SET charge = excluded.charge, \
           observed_at = excluded.observed_at, idempotency_key = excluded.idempotency_key \
         WHERE excluded.observed_at >= observed_fees.observed_at",
    )
    .bind(product)
    .bind(charge.to_string())
    .bind(&o.updated_at)
    .bind(&o.idempotency_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
