//! The SQLite backend: a state in one local file. Opening it (creating, upgrading, refusing), and
//! every read and write of runs, cards, other resources' records, the order journal, the change
//! log and the audit of provider calls. Must not decide what to do with what it holds, and nothing outside `state`
//! sees a type of this module.

mod cards;
mod dump;
mod journal;
mod lock;
mod raw;
mod resources;
mod rows;
mod runs;
mod schema;

use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use crate::model::Address;
use crate::state::codec::{serial_i64, serial_u64, timestamp_micros};
use crate::state::model::{CardRecord, OrderRecord, ResourceRecord, Snapshot};
use crate::state::{CallRecord, RunInfo, RunRecord, StateError, Upgrade, now};

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

/// Cards per chunk of a snapshot as it is gathered (see `cards::Runs`): about 20 MB.
const SNAPSHOT_CHUNK: usize = 1 << 16;

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
    /// The OS half of the state lock (see `lock`). A handle dropped without `close` closes its
    /// descriptor while its connections may still be closing: harmless, as they do no more work
    /// that SQLite's own locks must guard, and the OS lock must die with the handle.
    os_lock: lock::OsLock,
    /// The lock this handle holds, if any: every write checks it still does (fencing).
    fence: crate::state::lock::Fence,
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
    pub(in crate::state) async fn open_for_write(
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
    pub(in crate::state) async fn open_for_read(
        path: &Path,
    ) -> Result<Option<SqliteStore>, StateError> {
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
    pub(in crate::state) async fn schema_version(path: &Path) -> Result<Option<i64>, StateError> {
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
        let os_lock = lock::OsLock::open(path)?;
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
        Ok(SqliteStore {
            writer,
            reader,
            os_lock,
            fence: Default::default(),
        })
    }

    /// Closes both pools, checkpointing the WAL into the main file, then frees the OS lock: a
    /// closed handle does no more work under the lock, and its descriptor may only be closed once
    /// SQLite's are.
    pub(in crate::state) async fn close(self) {
        self.reader.close().await;
        self.writer.close().await;
        self.os_lock.close();
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// A write transaction, fenced: while this handle holds the lock, it begins only if the lock
    /// row still names it. `BEGIN IMMEDIATE` holds SQLite's write lock from here to the commit,
    /// so a takeover (which writes the row) lands wholly before or wholly after the write.
    async fn write(&self) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StateError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        if let Some(lock_id) = self.fence.token() {
            let ours: Option<i64> = sqlx::query_scalar("SELECT 1 FROM lock WHERE lock_id = ?")
                .bind(&lock_id)
                .fetch_optional(&mut *tx)
                .await?;
            if ours.is_none() {
                return Err(StateError::LockLost);
            }
        }
        Ok(tx)
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    pub(in crate::state) async fn lineage(&self) -> Result<String, StateError> {
        Ok(
            sqlx::query_scalar("SELECT lineage FROM state_info WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    pub(in crate::state) async fn currency(&self) -> Result<Option<String>, StateError> {
        Ok(
            sqlx::query_scalar("SELECT currency FROM state_info WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    pub(in crate::state) async fn set_currency(&self, currency: &str) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE state_info SET currency = ? WHERE id = 1")
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
                .fetch_one(&self.reader)
                .await?,
        )
    }

    pub(in crate::state) async fn set_provider(&self, provider: &str) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        sqlx::query("UPDATE state_info SET provider = ? WHERE id = 1")
            .bind(provider)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::state) async fn serial(&self) -> Result<u64, StateError> {
        let s: i64 = sqlx::query_scalar("SELECT serial FROM state_info WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        serial_u64(s)
    }
}
