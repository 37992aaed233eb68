//! The SQL of named states in PostgreSQL (see `state::named`): which `cardform_<name>` schemas a
//! database holds, each one's summary (`sql::summary_of_schema`), and dropping one under its lock.
//!
//! Must not drop a schema that [`super::schema::status`] does not recognise as a cardform state,
//! nor one whose state lock another session holds.

use sqlx::{Connection, PgConnection, Row};

use super::PgStore;
use crate::state::location::PgLocation;
use crate::state::named::{NamedError, StateSummary, sibling, summary_of};
use crate::state::sql::summary_of_schema;
use crate::state::{LockInfo, StateError};

/// The schemas that would hold a state: `cardform_` and a name cardform could have given.
const SCHEMAS: &str = "SELECT nspname::text FROM pg_namespace \
     WHERE nspname LIKE 'cardform\\_%' ORDER BY 1";

/// Whether any session holds the advisory lock `key` in this database.
const LOCK_HELD: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
     AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database \
     WHERE datname = current_database()) AND ((classid::bigint << 32) | objid::bigint) = $1)";

/// Every state in `pg`'s database, by name, each with its summary; a schema named like one that
/// holds no state (or one of a newer cardform) is listed with its problem.
pub(in crate::state) async fn list(pg: &PgLocation) -> Result<Vec<StateSummary>, StateError> {
    let store = PgStore::connect(pg).await?;
    let result = list_on(&store, pg).await;
    store.close().await;
    result
}

async fn list_on(store: &PgStore, pg: &PgLocation) -> Result<Vec<StateSummary>, StateError> {
    let schemas: Vec<String> = sqlx::query_scalar(SCHEMAS).fetch_all(&store.pool).await?;
    let mut out = Vec::new();
    for schema in schemas {
        let name = schema.trim_start_matches("cardform_");
        // A schema whose name cardform could not have given is not one of its states.
        let Ok(at) = sibling(pg, name) else { continue };
        let mut summary = match super::schema::status(&store.pool, &at).await {
            Ok(Some(_)) => {
                let row: (i64, i64, i64, Option<String>) =
                    sqlx::query_as(sqlx::AssertSqlSafe(summary_of_schema(&at.schema())))
                        .fetch_one(&store.pool)
                        .await?;
                summary_of(row)
            }
            Ok(None) => continue,
            Err(StateError::NotAState { what, .. }) => StateSummary {
                problem: Some(what),
                ..summary_of((0, 0, 0, None))
            },
            Err(e) => return Err(e),
        };
        summary.name = name.to_owned();
        summary.locked = sqlx::query_scalar(LOCK_HELD)
            .bind(super::lock::key(&at, "state"))
            .fetch_one(&store.pool)
            .await?;
        out.push(summary);
    }
    Ok(out)
}

/// Drops the state at `at` (checked to be a cardform state by the caller) holding its state lock
/// on a session of its own, so no run can begin meanwhile; the live-card check is made again
/// under that lock. Returns its summary as it was.
pub(in crate::state) async fn delete(
    at: &PgLocation,
    allow_live: bool,
) -> Result<StateSummary, NamedError> {
    let options = PgStore::options(at)?;
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(super::connect_err(at))?;
    let result = delete_on(&mut conn, at, allow_live).await;
    let _ = conn.close().await;
    result
}

async fn delete_on(
    conn: &mut PgConnection,
    at: &PgLocation,
    allow_live: bool,
) -> Result<StateSummary, NamedError> {
    let key = super::lock::key(at, "state");
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(key)
        .fetch_one(&mut *conn)
        .await
        .map_err(StateError::from)?;
    if !got {
        return Err(StateError::Locked(holder(conn, at).await?).into());
    }
    tracing::debug!(target: "cardform::state", state = at.name(), "lock taken for deletion");
    let schema = at.schema();
    let row: (i64, i64, i64, Option<String>) =
        sqlx::query_as(sqlx::AssertSqlSafe(summary_of_schema(&schema)))
            .fetch_one(&mut *conn)
            .await
            .map_err(StateError::from)?;
    let summary = summary_of(row);
    if summary.live_cards > 0 && !allow_live {
        return Err(NamedError::LiveCards {
            name: at.name().to_owned(),
            live: summary.live_cards,
        });
    }
    let mut tx = conn.begin().await.map_err(StateError::from)?;
    // The same lock `init` and upgrades take: no one is creating or upgrading it meanwhile.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(super::lock::key(at, "migrate"))
        .execute(&mut *tx)
        .await
        .map_err(StateError::from)?;
    // `cardform_` and a name checked to be [a-z0-9_]: safe to interpolate.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut *tx)
        .await
        .map_err(StateError::from)?;
    tx.commit().await.map_err(StateError::from)?;
    tracing::debug!(target: "cardform::state", state = at.name(), schema, "state deleted");
    // The session closes right after, which frees the advisory lock whatever this answers.
    let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(key)
        .execute(&mut *conn)
        .await;
    Ok(summary)
}

/// Who holds the state lock of `at`, as its `lock` row says.
async fn holder(conn: &mut PgConnection, at: &PgLocation) -> Result<LockInfo, StateError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT lock_id, pid, host, actor, command, since FROM {}.lock WHERE id = 1",
        at.schema()
    )))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(row) => LockInfo {
            lock_id: row.try_get(0)?,
            pid: u32::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0),
            host: row.try_get(2)?,
            user: row.try_get(3)?,
            command: row.try_get(4)?,
            since: row.try_get(5)?,
            stale: false,
        },
        // Held, its row not written yet: the holder is starting.
        None => LockInfo {
            lock_id: String::new(),
            pid: 0,
            host: "?".into(),
            user: "?".into(),
            command: "?".into(),
            since: crate::state::now(),
            stale: false,
        },
    })
}
