//! The SQLite schema: embedded migrations, the version a file is at, and the checks that a file is
//! a cardform state this build may touch. Must not touch data beyond what a migration moves and
//! the one `state_info` row it creates.
//!
//! Versions are recorded in `cardform_migrations` (from schema 2 on) and mirrored in
//! `PRAGMA user_version`, which is all schema 1 had and what older releases read to refuse a newer
//! file. The version of a file is the larger of the two.

use sqlx::{Connection, SqliteConnection};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::state::{SCHEMA_VERSION, StateError, Upgrade, now};

/// `PRAGMA application_id` of a cardform state ("CRDF"), so another program's SQLite file is
/// refused instead of being migrated into.
const APPLICATION_ID: i64 = 0x4352_4446;

/// Migration N brings the schema from version N-1 to N. Append only; never edit a shipped one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "init", include_str!("migrations/0001_init.sql")),
    (
        2,
        "addresses",
        include_str!("migrations/0002_addresses.sql"),
    ),
    (
        3,
        "sent_serial",
        include_str!("migrations/0003_sent_serial.sql"),
    ),
    (
        4,
        "resources",
        include_str!("migrations/0004_resources.sql"),
    ),
    (5, "compact", include_str!("migrations/0005_compact.sql")),
    (
        6,
        "tombstones",
        include_str!("migrations/0006_tombstones.sql"),
    ),
    (7, "money", include_str!("migrations/0007_money.sql")),
    (
        8,
        "approvals",
        include_str!("migrations/0008_approvals.sql"),
    ),
];

const _: () = assert!(MIGRATIONS[MIGRATIONS.len() - 1].0 == SCHEMA_VERSION);

/// Where a file stands before anything is done to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// An empty database: a state being created (see [`create`]), or not a state at all.
    Empty,
    /// A cardform state at this version.
    At(i64),
}

async fn pragma(conn: &mut SqliteConnection, name: &str) -> Result<i64, StateError> {
    // PRAGMA takes no bound parameters; `name` is one of this module's literals.
    Ok(
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Reads the version of the file behind `conn` and checks it is a cardform state.
pub(super) async fn status(conn: &mut SqliteConnection, path: &Path) -> Result<Status, StateError> {
    let user_version = pragma(conn, "user_version").await?;
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_schema")
        .fetch_one(&mut *conn)
        .await?;
    if user_version == 0 {
        return if tables == 0 {
            Ok(Status::Empty)
        } else {
            Err(not_ours(path, ""))
        };
    }
    if pragma(conn, "application_id").await? != APPLICATION_ID {
        return Err(not_ours(path, " (application_id differs)"));
    }
    let has_table: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'cardform_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let recorded: Option<i64> = match has_table {
        Some(_) => {
            sqlx::query_scalar("SELECT max(version) FROM cardform_migrations")
                .fetch_one(&mut *conn)
                .await?
        }
        None => None,
    };
    Ok(Status::At(user_version.max(recorded.unwrap_or(0))))
}

fn newer(found: i64, path: &Path) -> StateError {
    StateError::NewerSchema {
        found,
        supported: SCHEMA_VERSION,
        location: path.display().to_string(),
    }
}

fn not_ours(path: &Path, why: &str) -> StateError {
    super::not_a_state(
        path,
        &format!("an SQLite database that cardform did not create{why}"),
    )
}

/// For a read-only command: the file must be at exactly this build's schema.
pub(super) async fn check_readable(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<(), StateError> {
    match status(conn, path).await? {
        Status::At(SCHEMA_VERSION) => Ok(()),
        Status::At(found) if found > SCHEMA_VERSION => Err(newer(found, path)),
        Status::At(found) => Err(StateError::OlderSchema {
            found,
            supported: SCHEMA_VERSION,
            location: path.display().to_string(),
        }),
        Status::Empty => Err(empty(path)),
    }
}

/// An SQLite database with nothing in it is not a state: states are built whole before they
/// appear (see `SqliteStore::create`), so this is someone else's file, or one emptied.
pub(super) fn empty(path: &Path) -> StateError {
    super::not_a_state(path, "an empty SQLite database")
}

/// For a writing command: brings an older state to [`SCHEMA_VERSION`], keeping a copy of the
/// older file first. Refuses a newer schema, or a database that holds no state, before writing
/// anything.
pub(super) async fn migrate(
    conn: &mut SqliteConnection,
    path: &Path,
) -> Result<Option<Upgrade>, StateError> {
    // Checked outside the write transaction first so a newer or current state costs no write lock
    // (another, newer cardform may be using it right now).
    let found = match status(conn, path).await? {
        Status::At(v) if v > SCHEMA_VERSION => return Err(newer(v, path)),
        Status::At(SCHEMA_VERSION) => return Ok(None),
        Status::At(v) => v,
        Status::Empty => return Err(empty(path)),
    };
    let backup = keep_copy(conn, path, found).await?;

    // IMMEDIATE: two processes opening the same file at once must not both migrate it.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let found = match status(&mut tx, path).await? {
        Status::At(v) if v > SCHEMA_VERSION => return Err(newer(v, path)),
        Status::At(v) => v,
        Status::Empty => return Err(empty(path)),
    };
    if found == SCHEMA_VERSION {
        // Someone else upgraded it while we copied: nothing left to do.
        return Ok(None);
    }
    if let Some(holder) = schema_one_lock_holder(&mut tx).await? {
        // An older cardform is applying right now: changing the tables under it would break its
        // journal writes mid-run. It must finish first.
        let _ = std::fs::remove_file(&backup);
        return Err(StateError::Locked(holder));
    }
    apply_migrations(&mut tx, found).await?;
    if found < 7 {
        crate::state::rules::recompute_charged_in(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Some(Upgrade {
        from: found,
        to: SCHEMA_VERSION,
        backup: Some(backup.display().to_string()),
    }))
}

/// Makes the empty database behind `conn` a new state at [`SCHEMA_VERSION`] with a new lineage.
/// `path` is where it will live, for messages.
pub(super) async fn create(conn: &mut SqliteConnection, path: &Path) -> Result<(), StateError> {
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    if status(&mut tx, path).await? != Status::Empty {
        return Err(StateError::Exists {
            location: path.display().to_string(),
        });
    }
    apply_migrations(&mut tx, 0).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PRAGMA application_id = {APPLICATION_ID}"
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO state_info (id, lineage, serial) VALUES (1, ?, 0)")
        .bind(uuid::Uuid::new_v4().to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Every migration after `found`, each recorded as it goes.
async fn apply_migrations(conn: &mut SqliteConnection, found: i64) -> Result<(), StateError> {
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        sqlx::raw_sql(*sql).execute(&mut *conn).await?;
        if *version >= 2 {
            sqlx::query(
                "INSERT INTO cardform_migrations (version, description, applied_at) \
                 VALUES (?, ?, ?) ON CONFLICT (version) DO NOTHING",
            )
            .bind(version)
            .bind(name)
            .bind(now())
            .execute(&mut *conn)
            .await?;
        }
        // PRAGMA takes no bound parameters; the value is a compile-time integer.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {version}"
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// A consistent copy of the whole state, as it is now, beside it: `NAME.schema-N.bak` (or
/// `NAME.schema-N.2.bak`, … when that exists). `VACUUM INTO` reads a snapshot, so a WAL not yet
/// checkpointed is included; the copy is created with mode 0600 like the state itself.
async fn keep_copy(
    conn: &mut SqliteConnection,
    path: &Path,
    version: i64,
) -> Result<PathBuf, StateError> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    let name = name.unwrap_or_else(|| "cardform.db".into());
    let mut n = 1;
    let copy = loop {
        let suffix = if n == 1 {
            format!("{name}.schema-{version}.bak")
        } else {
            format!("{name}.schema-{version}.{n}.bak")
        };
        let candidate = path.with_file_name(suffix);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&candidate)
        {
            Ok(_) => break candidate,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(source) => {
                return Err(StateError::Io {
                    location: candidate.display().to_string(),
                    source,
                });
            }
        }
    };
    sqlx::query("VACUUM INTO ?")
        .bind(copy.display().to_string())
        .execute(&mut *conn)
        .await?;
    Ok(copy)
}

/// Who holds the lock of a state not yet upgraded, read with the columns every schema has.
async fn schema_one_lock_holder(
    conn: &mut SqliteConnection,
) -> Result<Option<crate::state::LockInfo>, StateError> {
    use sqlx::Row;
    let Some(row) = sqlx::query("SELECT lock_id, pid, host, command, since FROM lock WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?
    else {
        return Ok(None);
    };
    let pid: i64 = row.try_get(1)?;
    let pid = u32::try_from(pid).unwrap_or_default();
    let host: String = row.try_get(2)?;
    Ok(Some(crate::state::LockInfo {
        lock_id: row.try_get(0)?,
        pid,
        stale: crate::state::lock::is_stale(pid, &host),
        host,
        user: "?".into(),
        command: row.try_get(3)?,
        since: row.try_get(4)?,
    }))
}
