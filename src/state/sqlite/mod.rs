//! The SQLite backend: a state in one local file. Opening it (creating, upgrading, refusing), and
//! every read and write of runs, cards, other resources' records, the order journal, the change
//! log and the audit of provider calls. Must not decide what to do with what it holds, and nothing outside `state`
//! sees a type of this module.

mod cards;
mod dump;
mod lock;
mod raw;
mod rows;
mod schema;
mod tx;

use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use crate::state::model::{CardRecord, Snapshot};
use crate::state::{StateError, Upgrade};

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

pub(super) fn not_a_state(path: &Path, what: &str) -> StateError {
    StateError::NotAState {
        location: path.display().to_string(),
        what: what.into(),
    }
}

/// Whether anything is at `path`, even a dangling symlink: a state is never created over it.
fn present(path: &Path) -> Result<bool, StateError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// Refuses, before SQLite opens it, a file that cannot be a state: not a regular file (opening
/// a FIFO would block), empty, or not an SQLite database. `false` when nothing is there. Reads
/// the first 16 bytes and changes nothing.
fn check_file(path: &Path) -> Result<bool, StateError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(path)(e)),
    };
    if !meta.is_file() {
        return Err(not_a_state(path, "not a regular file"));
    }
    if meta.len() == 0 {
        // A state made by an older release (which created the file in place) and killed before
        // its first checkpoint has all its data in the WAL beside an empty main file: SQLite
        // reads that, and the schema decides. Without one, an empty file is no state.
        let wal = path.with_file_name(format!(
            "{}-wal",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        return match std::fs::metadata(&wal) {
            Ok(w) if w.is_file() && w.len() > 0 => Ok(true),
            _ => Err(not_a_state(path, "an empty file (0 bytes)")),
        };
    }
    let mut file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut head = Vec::with_capacity(16);
    file.by_ref()
        .take(16)
        .read_to_end(&mut head)
        .map_err(io_err(path))?;
    if head.as_slice() != SQLITE_MAGIC {
        return Err(not_a_state(path, "not an SQLite database"));
    }
    Ok(true)
}

/// The schema of the state at `path`; `None` when nothing is there, [`StateError::NotAState`]
/// when something else is. Its connection sets no journal mode, so another program's database
/// is left as it was, byte for byte.
async fn probe(path: &Path) -> Result<Option<i64>, StateError> {
    if !check_file(path)? {
        return Ok(None);
    }
    let mut conn = SqliteConnection::connect_with(&connect_options(path)).await?;
    let status = schema::status(&mut conn, path).await;
    conn.close().await?;
    match status? {
        schema::Status::Empty => Err(schema::empty(path)),
        schema::Status::At(v) => Ok(Some(v)),
    }
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
    /// Creates a new state at `path` (and its directory), refusing when anything is there.
    ///
    /// The state is built in a file of its own beside `path` (mode 0600 before SQLite writes to
    /// it; SQLite gives the WAL and shared-memory files the same mode), closed, and then linked
    /// to `path`, which fails if anything appeared there meanwhile: a state appears whole or not
    /// at all, so a crash never leaves an empty file, and two processes creating the same state
    /// at once make exactly one (the other gets [`StateError::Exists`]).
    pub(in crate::state) async fn create(path: &Path) -> Result<SqliteStore, StateError> {
        let exists = || StateError::Exists {
            location: path.display().to_string(),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        if present(path)? {
            return Err(exists());
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let building = path.with_file_name(format!(".{name}.new-{}", uuid::Uuid::new_v4()));
        let built = Self::build(&building, path).await;
        let placed = built.and_then(|()| match std::fs::hard_link(&building, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(exists()),
            // A filesystem without hard links: a rename, after one more look.
            Err(_) if !present(path)? => std::fs::rename(&building, path).map_err(io_err(path)),
            Err(_) => Err(exists()),
        });
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", building.display()));
        }
        placed?;
        let (store, _) = Self::open_for_write(path).await?;
        Ok(store)
    }

    /// Makes a new state in the new file `building`, to live at `path`, and closes it, its WAL
    /// checkpointed into it.
    async fn build(building: &Path, path: &Path) -> Result<(), StateError> {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(building)
            .map_err(io_err(building))?;
        let opts = connect_options(building)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let mut conn = SqliteConnection::connect_with(&opts).await?;
        let created = schema::create(&mut conn, path).await;
        conn.close().await?;
        created
    }

    /// Opens the state at `path` for a command that writes, upgrading an older schema after
    /// keeping a copy of it. Refuses, changing nothing, when nothing is there
    /// ([`StateError::Missing`]) or something else is ([`StateError::NotAState`]).
    ///
    /// Journal mode is WAL so readers (`show`, `plan`) never
    /// block an apply. `synchronous=NORMAL` means a power loss may drop the last few commits
    /// (WAL frames not yet synced), but never corrupts the file; and losing a journal entry is
    /// safe because idempotency keys are deterministic (lineage, card key, attempt): the re-run
    /// journals the same key again and the provider answers with the same order, so nothing is
    /// issued or charged twice. FULL would cost an fsync per commit, at 100–500 commits/s.
    pub(in crate::state) async fn open_for_write(
        path: &Path,
    ) -> Result<(SqliteStore, Option<Upgrade>), StateError> {
        if probe(path).await?.is_none() {
            return Err(StateError::Missing {
                location: path.display().to_string(),
            });
        }
        let writer_opts = connect_options(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal);
        let mut conn = SqliteConnection::connect_with(&writer_opts).await?;
        let migrated = schema::migrate(&mut conn, path).await;
        conn.close().await?;
        let upgraded = migrated?;
        Ok((Self::pools(path, writer_opts).await?, upgraded))
    }

    /// Opens the state at `path` for a command that only reads: `None` when nothing is there;
    /// an error, changing nothing, when it is not a state or its schema is not this build's.
    pub(in crate::state) async fn open_for_read(
        path: &Path,
    ) -> Result<Option<SqliteStore>, StateError> {
        if probe(path).await?.is_none() {
            return Ok(None);
        }
        let opts = connect_options(path).synchronous(SqliteSynchronous::Normal);
        let mut conn = SqliteConnection::connect_with(&opts).await?;
        let checked = schema::check_readable(&mut conn, path).await;
        conn.close().await?;
        checked?;
        // Writing methods are never called by read-only commands; the journal mode was set for
        // good by the writer that created the file.
        Ok(Some(Self::pools(path, opts).await?))
    }

    /// Whether anything is at `path` (opening decides whether it is a state).
    pub(super) fn exists(path: &Path) -> Result<bool, StateError> {
        match std::fs::metadata(path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(path)(e)),
        }
    }

    /// The schema of the file at `path`, changing nothing; `None` when nothing is there.
    pub(in crate::state) async fn schema_version(path: &Path) -> Result<Option<i64>, StateError> {
        probe(path).await
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
    pub(in crate::state) async fn write(
        &self,
    ) -> Result<sqlx::Transaction<'_, sqlx::Sqlite>, StateError> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        crate::state::rules::fence(&mut *tx, self.fence.token().as_deref()).await?;
        Ok(tx)
    }

    /// A connection of the read pool, for a read written once over the seam (`state::reads`).
    pub(in crate::state) async fn read_conn(
        &self,
    ) -> Result<sqlx::pool::PoolConnection<sqlx::Sqlite>, StateError> {
        Ok(self.reader.acquire().await?)
    }
}
