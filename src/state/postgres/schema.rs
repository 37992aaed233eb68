//! The PostgreSQL schema: one schema per state (`cardform_<name>`), its migrations recorded in
//! `cardform_migrations`, created or brought up to date only by a writing command, under a
//! transaction-scoped advisory lock so two runners opening a new state at once cannot both create
//! it. Must not touch data beyond the one `state_info` row it creates.

use sqlx::PgPool;

use crate::state::location::PgLocation;
use crate::state::{SCHEMA_VERSION, StateError, Upgrade, now};

/// Migrations of PostgreSQL states. States there begin at schema 2 (they never had schema 1);
/// a later schema appends its migration here and beside the SQLite one.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (2, "init", include_str!("migrations/0002_init.sql")),
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
];

const _: () = assert!(MIGRATIONS[MIGRATIONS.len() - 1].0 == SCHEMA_VERSION);

/// Serialises schema changes of one state across every process and machine.
fn migration_lock_key(location: &PgLocation) -> i64 {
    super::lock::key(location, "migrate")
}

/// The schema version of the state, or `None` when the database holds no such state.
pub(super) async fn status(
    pool: &PgPool,
    location: &PgLocation,
) -> Result<Option<i64>, StateError> {
    let table = format!("{}.cardform_migrations", location.schema());
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&table)
        .fetch_one(pool)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT max(version) FROM cardform_migrations")
            .fetch_one(pool)
            .await?,
    )
}

fn newer(found: i64, location: &PgLocation) -> StateError {
    StateError::NewerSchema {
        found,
        supported: SCHEMA_VERSION,
        location: location.redacted(),
    }
}

/// For a read-only command: the state must be at exactly this build's schema.
pub(super) async fn check_readable(pool: &PgPool, location: &PgLocation) -> Result<(), StateError> {
    match status(pool, location).await? {
        Some(SCHEMA_VERSION) | None => Ok(()),
        Some(found) if found > SCHEMA_VERSION => Err(newer(found, location)),
        Some(found) => Err(StateError::OlderSchema {
            found,
            supported: SCHEMA_VERSION,
            location: location.redacted(),
        }),
    }
}

/// For a writing command: creates the state when missing, or brings it to [`SCHEMA_VERSION`];
/// refuses a newer one before writing anything.
pub(super) async fn migrate(
    pool: &PgPool,
    location: &PgLocation,
) -> Result<Option<Upgrade>, StateError> {
    match status(pool, location).await? {
        Some(v) if v > SCHEMA_VERSION => return Err(newer(v, location)),
        Some(SCHEMA_VERSION) => return Ok(None),
        _ => {}
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(migration_lock_key(location))
        .execute(&mut *tx)
        .await?;
    // The schema name is `cardform_` and a name checked to be [a-z0-9_]: safe to interpolate.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        location.schema()
    )))
    .execute(&mut *tx)
    .await?;
    let table = format!("{}.cardform_migrations", location.schema());
    let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(&table)
        .fetch_one(&mut *tx)
        .await?;
    let found: i64 = match exists {
        Some(_) => {
            sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM cardform_migrations")
                .fetch_one(&mut *tx)
                .await?
        }
        None => 0,
    };
    if found > SCHEMA_VERSION {
        return Err(newer(found, location));
    }
    if found == SCHEMA_VERSION {
        // Another runner created it while we waited for the lock.
        return Ok(None);
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        sqlx::raw_sql(*sql).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO cardform_migrations (version, description, applied_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    }
    if (1..7).contains(&found) {
        super::recompute_charged_in(&mut tx).await?;
    }
    if found == 0 {
        sqlx::query("INSERT INTO state_info (id, lineage, serial) VALUES (1, $1, 0)")
            .bind(uuid::Uuid::new_v4().to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok((found > 0).then_some(Upgrade {
        from: found,
        to: SCHEMA_VERSION,
        backup: None,
    }))
}
