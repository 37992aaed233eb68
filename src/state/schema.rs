//! Embedded schema migrations, tracked by `PRAGMA user_version`, and the checks that a file is a
//! cardform state this build may touch. Must not touch data beyond the schema and the one
//! `state_info` row it creates.

use sqlx::{Connection, SqliteConnection};
use std::path::Path;

use super::StateError;

/// `PRAGMA application_id` of a cardform state ("CRDF"), so another program's SQLite file is
/// refused instead of being migrated into.
const APPLICATION_ID: i64 = 0x4352_4446;

/// Migration N brings the schema from version N-1 to N. Append only; never edit a shipped one.
const MIGRATIONS: &[(i64, &str)] = &[(1, include_str!("migrations/0001_init.sql"))];

/// The newest schema this build knows.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

async fn user_version(conn: &mut SqliteConnection) -> Result<i64, StateError> {
    Ok(sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut *conn)
        .await?)
}

async fn application_id(conn: &mut SqliteConnection) -> Result<i64, StateError> {
    Ok(sqlx::query_scalar("PRAGMA application_id")
        .fetch_one(&mut *conn)
        .await?)
}

fn newer(found: i64, path: &Path) -> StateError {
    StateError::NewerSchema {
        found,
        supported: SCHEMA_VERSION,
        path: path.to_path_buf(),
    }
}

/// Brings the database to [`SCHEMA_VERSION`] and sets the lineage on creation. Refuses a newer
/// schema before writing anything.
pub(super) async fn migrate(conn: &mut SqliteConnection, path: &Path) -> Result<(), StateError> {
    // Checked outside the write transaction first so a newer state is refused without taking the
    // write lock (another, newer cardform may be using it right now).
    let found = user_version(conn).await?;
    if found > SCHEMA_VERSION {
        return Err(newer(found, path));
    }
    if found == SCHEMA_VERSION {
        return check_identity(conn, path).await;
    }

    // IMMEDIATE: two processes opening a fresh file at once must not both run migration 1.
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    let found = user_version(&mut tx).await?;
    if found > SCHEMA_VERSION {
        return Err(newer(found, path));
    }
    if found == 0 {
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_schema")
            .fetch_one(&mut *tx)
            .await?;
        if tables > 0 {
            return Err(StateError::Corrupt(format!(
                "{}: an SQLite database that cardform did not create",
                path.display()
            )));
        }
    } else if application_id(&mut tx).await? != APPLICATION_ID {
        return Err(not_ours(path));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        // PRAGMA takes no bound parameters; the value is a compile-time integer.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA user_version = {version}"
        )))
        .execute(&mut *tx)
        .await?;
    }
    if found == 0 {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "PRAGMA application_id = {APPLICATION_ID}"
        )))
        .execute(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO state_info (id, lineage, serial) VALUES (1, ?, 0)")
            .bind(uuid::Uuid::new_v4().to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

fn not_ours(path: &Path) -> StateError {
    StateError::Corrupt(format!(
        "{}: an SQLite database that cardform did not create (application_id differs)",
        path.display()
    ))
}

async fn check_identity(conn: &mut SqliteConnection, path: &Path) -> Result<(), StateError> {
    if application_id(conn).await? != APPLICATION_ID {
        return Err(not_ours(path));
    }
    Ok(())
}
