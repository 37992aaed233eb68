//! The PostgreSQL schema: one schema per state (`cardform_<name>`), its migrations recorded in
//! `cardform_migrations`, created only by `cardform init` (never over an existing schema, even an
//! empty one) and brought up to date only by a writing command, under a
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
    (
        8,
        "approvals",
        include_str!("migrations/0008_approvals.sql"),
    ),
];

const _: () = assert!(MIGRATIONS[MIGRATIONS.len() - 1].0 == SCHEMA_VERSION);

/// Serialises schema changes of one state across every process and machine.
fn migration_lock_key(location: &PgLocation) -> i64 {
    super::lock::key(location, "migrate")
}

/// The schema version of the state; `None` when its PostgreSQL schema does not exist at all;
/// [`StateError::NotAState`] when it exists and holds no cardform state (empty, or someone
/// else's tables): never taken for a new state.
pub(super) async fn status(
    pool: &PgPool,
    location: &PgLocation,
) -> Result<Option<i64>, StateError> {
    let mut conn = pool.acquire().await?;
    status_on(&mut conn, location).await
}

async fn status_on(
    conn: &mut sqlx::PgConnection,
    location: &PgLocation,
) -> Result<Option<i64>, StateError> {
    let schema = location.schema();
    let tables: Option<Vec<String>> = sqlx::query_scalar(
        "SELECT array(SELECT c.relname::text FROM pg_class c WHERE c.relnamespace = n.oid \
         AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1) \
         FROM pg_namespace n WHERE n.nspname = $1",
    )
    .bind(schema.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(tables) = tables else {
        return Ok(None);
    };
    if !tables.iter().any(|t| t == "cardform_migrations") {
        let what = if tables.is_empty() {
            format!("schema {schema} exists but is empty")
        } else {
            let mut shown = tables
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if tables.len() > 5 {
                shown.push_str(", …");
            }
            format!("schema {schema} holds tables cardform did not create ({shown})")
        };
        return Err(not_a_state(location, what));
    }
    let version: Option<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT max(version) FROM {schema}.cardform_migrations"
    )))
    .fetch_one(&mut *conn)
    .await?;
    match version {
        Some(v) => Ok(Some(v)),
        None => Err(not_a_state(
            location,
            format!("schema {schema} records no cardform migration"),
        )),
    }
}

fn not_a_state(location: &PgLocation, what: String) -> StateError {
    StateError::NotAState {
        location: location.redacted(),
        what,
    }
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

/// For `cardform init`: creates the schema and a new state in it, refusing when the schema
/// exists at all (even empty: it may be someone's, or a state emptied by mistake).
pub(super) async fn create(pool: &PgPool, location: &PgLocation) -> Result<(), StateError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(migration_lock_key(location))
        .execute(&mut *tx)
        .await?;
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_namespace WHERE nspname = $1")
        .bind(location.schema().as_str())
        .fetch_optional(&mut *tx)
        .await?;
    if exists.is_some() {
        return Err(StateError::Exists {
            location: location.redacted(),
        });
    }
    // The schema name is `cardform_` and a name checked to be [a-z0-9_]: safe to interpolate.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {}",
        location.schema()
    )))
    .execute(&mut *tx)
    .await?;
    apply_migrations(&mut tx, 0).await?;
    sqlx::query("INSERT INTO state_info (id, lineage, serial) VALUES (1, $1, 0)")
        .bind(uuid::Uuid::new_v4().to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// For a writing command: brings an existing state to [`SCHEMA_VERSION`]; refuses a newer one,
/// a missing one ([`StateError::Missing`]) or a schema holding no state, before writing anything.
pub(super) async fn migrate(
    pool: &PgPool,
    location: &PgLocation,
) -> Result<Option<Upgrade>, StateError> {
    let missing = || StateError::Missing {
        location: location.redacted(),
    };
    match status(pool, location).await? {
        None => return Err(missing()),
        Some(v) if v > SCHEMA_VERSION => return Err(newer(v, location)),
        Some(SCHEMA_VERSION) => return Ok(None),
        Some(_) => {}
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(migration_lock_key(location))
        .execute(&mut *tx)
        .await?;
    let found = status_on(&mut tx, location).await?.ok_or_else(missing)?;
    if found > SCHEMA_VERSION {
        return Err(newer(found, location));
    }
    if found == SCHEMA_VERSION {
        // Another runner upgraded it while we waited for the lock.
        return Ok(None);
    }
    apply_migrations(&mut tx, found).await?;
    if found < 7 {
        crate::state::rules::recompute_charged_in(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(Some(Upgrade {
        from: found,
        to: SCHEMA_VERSION,
        backup: None,
    }))
}

/// Every migration after `found`, each recorded as it goes.
async fn apply_migrations(conn: &mut sqlx::PgConnection, found: i64) -> Result<(), StateError> {
    for (version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| *v > found) {
        sqlx::raw_sql(*sql).execute(&mut *conn).await?;
        sqlx::query(
            "INSERT INTO cardform_migrations (version, description, applied_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(version)
        .bind(name)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
