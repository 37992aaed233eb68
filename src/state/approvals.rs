//! Plans that wait for approval (schema 8): `cardform serve` applies a plan on its own only within
//! its policy, and records one outside it here, pending, with the reasons and a digest of its
//! actions. Someone approves it (`cardform approve`, the dashboard); the next reconcile applies
//! it only when it plans the same actions again (same digest), and then marks it applied; a newer
//! plan supersedes whatever was still open.
//!
//! Records and answers only: whether a plan is within policy, and which approval applies to a
//! plan, is `serve::policy`'s. Holds no card data and nothing personal (counts, money, reasons
//! naming limits, the approver's name as given). Both backends run the same statement texts
//! (`sql`), each through its own connection type ([`approval_rows!`]).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Backend, StateError, Store, codec, now, sql};

/// Where an approval stands. Only `pending` may be approved; only `approved` may be applied;
/// `pending` and `approved` are "open", and a newer plan supersedes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Applied,
    Superseded,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Applied => "applied",
            ApprovalStatus::Superseded => "superseded",
        }
    }

    fn parse(text: &str) -> Result<Self, StateError> {
        Ok(match text {
            "pending" => ApprovalStatus::Pending,
            "approved" => ApprovalStatus::Approved,
            "applied" => ApprovalStatus::Applied,
            "superseded" => ApprovalStatus::Superseded,
            other => {
                return Err(StateError::Corrupt(format!(
                    "approval status {other:?} is none of pending, approved, applied, superseded"
                )));
            }
        })
    }
}

/// What a waiting plan would do, in the figures a reviewer reads first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApprovalSummary {
    pub create: usize,
    pub update: usize,
    pub destroy: usize,
    /// The plan's known fees.
    #[serde(with = "crate::wire::decimal")]
    pub fees: Decimal,
    pub currency: String,
}

/// One plan that waited (or waits) for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub status: ApprovalStatus,
    /// RFC 3339, as are the other times.
    pub created: String,
    pub updated: String,
    /// The digest of the plan's actions (see `serve::policy::digest`).
    pub digest: String,
    pub summary: ApprovalSummary,
    /// Why the plan was outside policy.
    pub reasons: Vec<String>,
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    /// The state's serial when it was approved: a failure brake of a later run is not lifted.
    pub approved_serial: Option<u64>,
    /// The run that applied it.
    pub applied_serial: Option<u64>,
}

impl Approval {
    pub fn is_open(&self) -> bool {
        matches!(
            self.status,
            ApprovalStatus::Pending | ApprovalStatus::Approved
        )
    }
}

/// A row of `sql::APPROVALS` (and of `sql::INSERT_APPROVAL_AS`'s binds).
pub(super) type Row = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

pub(super) fn from_row(row: Row) -> Result<Approval, StateError> {
    let (id, status, created, updated, digest, summary, reasons, by, at, approved, applied) = row;
    let corrupt = |what: &str, e: serde_json::Error| {
        StateError::Corrupt(format!("approval {id}: its {what} is not readable: {e}"))
    };
    Ok(Approval {
        id: id.to_string(),
        status: ApprovalStatus::parse(&status)?,
        created,
        updated,
        digest,
        summary: serde_json::from_str(&summary).map_err(|e| corrupt("summary", e))?,
        reasons: serde_json::from_str(&reasons).map_err(|e| corrupt("reasons", e))?,
        approved_by: by,
        approved_at: at,
        approved_serial: approved.map(codec::serial_u64).transpose()?,
        applied_serial: applied.map(codec::serial_u64).transpose()?,
    })
}

/// `a` as a row of the table, for loading a dump under the same ids.
pub(super) fn to_row(a: &Approval) -> Result<Row, StateError> {
    let id = row_id(&a.id)
        .ok_or_else(|| StateError::Corrupt(format!("approval id {:?} is not a row id", a.id)))?;
    let text = |what: &str, v: Result<String, serde_json::Error>| {
        v.map_err(|e| StateError::Database(format!("approval {id}: its {what}: {e}")))
    };
    Ok((
        id,
        a.status.as_str().to_owned(),
        a.created.clone(),
        a.updated.clone(),
        a.digest.clone(),
        text("summary", serde_json::to_string(&a.summary))?,
        text("reasons", serde_json::to_string(&a.reasons))?,
        a.approved_by.clone(),
        a.approved_at.clone(),
        a.approved_serial.map(codec::serial_i64).transpose()?,
        a.applied_serial.map(codec::serial_i64).transpose()?,
    ))
}

/// An approval id as the table keys it; `None` for text that cannot be one (so: unknown).
fn row_id(id: &str) -> Option<i64> {
    id.trim().parse().ok().filter(|n: &i64| *n > 0)
}

/// The statements of this module on one backend's connection type: the same texts, each
/// backend's own binds and decoding.
macro_rules! approval_rows {
    ($module:ident, $conn:ty) => {
        mod $module {
            use super::*;

            pub(super) async fn all(conn: &mut $conn) -> Result<Vec<Approval>, StateError> {
                let rows: Vec<Row> = sqlx::query_as(sql::APPROVALS).fetch_all(&mut *conn).await?;
                rows.into_iter().map(from_row).collect()
            }

            pub(super) async fn insert(
                conn: &mut $conn,
                at: &str,
                digest: &str,
                summary: &str,
                reasons: &str,
            ) -> Result<i64, StateError> {
                Ok(sqlx::query_scalar(sql::INSERT_APPROVAL)
                    .bind(at)
                    .bind(at)
                    .bind(digest)
                    .bind(summary)
                    .bind(reasons)
                    .fetch_one(&mut *conn)
                    .await?)
            }

            pub(super) async fn supersede_open(
                conn: &mut $conn,
                at: &str,
                except: i64,
            ) -> Result<u64, StateError> {
                let done = sqlx::query(sql::SUPERSEDE_OPEN)
                    .bind(at)
                    .bind(except)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected())
            }

            pub(super) async fn approve(
                conn: &mut $conn,
                id: i64,
                by: &str,
                at: &str,
            ) -> Result<bool, StateError> {
                let (_, serial): (String, i64) = sqlx::query_as(sql::LINEAGE_SERIAL)
                    .fetch_one(&mut *conn)
                    .await?;
                let done = sqlx::query(sql::APPROVE)
                    .bind(by)
                    .bind(at)
                    .bind(serial)
                    .bind(at)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            pub(super) async fn mark_applied(
                conn: &mut $conn,
                at: &str,
                serial: i64,
                id: i64,
            ) -> Result<bool, StateError> {
                let done = sqlx::query(sql::MARK_APPLIED)
                    .bind(at)
                    .bind(serial)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            pub(super) async fn update_reasons(
                conn: &mut $conn,
                at: &str,
                reasons: &str,
                id: i64,
            ) -> Result<bool, StateError> {
                let done = sqlx::query(sql::UPDATE_REASONS)
                    .bind(at)
                    .bind(reasons)
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
                Ok(done.rows_affected() > 0)
            }
        }
    };
}

approval_rows!(on_sqlite, sqlx::SqliteConnection);
approval_rows!(on_postgres, sqlx::PgConnection);

/// `$body` (an expression of `$conn` and `$rows`, the backend's module above) in a fenced write
/// transaction of this store's backend, committed when it succeeds.
macro_rules! approval_write {
    ($store:expr, |$conn:ident, $rows:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(b) => {
                let mut t = b.write().await?;
                let out = {
                    let $conn = &mut *t;
                    use on_sqlite as $rows;
                    $body
                };
                t.commit().await?;
                Ok::<_, StateError>(out)
            }
            Backend::Postgres(b) => {
                let mut t = b.write().await?;
                let out = {
                    let $conn = &mut *t;
                    use on_postgres as $rows;
                    $body
                };
                t.commit().await?;
                Ok::<_, StateError>(out)
            }
        }
    };
}

impl Store {
    /// Every approval ever recorded, oldest first.
    pub async fn approvals(&self) -> Result<Vec<Approval>, StateError> {
        match &self.backend {
            Backend::Sqlite(b) => on_sqlite::all(&mut *b.read_conn().await?).await,
            Backend::Postgres(b) => on_postgres::all(&mut *b.read_conn().await?).await,
        }
    }

    /// Records a plan that waits for approval, and marks every approval still open superseded
    /// by it, in one transaction.
    pub async fn record_pending(
        &self,
        digest: &str,
        summary: &ApprovalSummary,
        reasons: &[String],
    ) -> Result<Approval, StateError> {
        let at = now();
        let summary_text = serde_json::to_string(summary)
            .map_err(|e| StateError::Database(format!("approval summary: {e}")))?;
        let reasons_text = serde_json::to_string(reasons)
            .map_err(|e| StateError::Database(format!("approval reasons: {e}")))?;
        let id: i64 = approval_write!(self, |conn, rows| {
            let id = rows::insert(conn, &at, digest, &summary_text, &reasons_text).await?;
            rows::supersede_open(conn, &at, id).await?;
            id
        })?;
        Ok(Approval {
            id: id.to_string(),
            status: ApprovalStatus::Pending,
            created: at.clone(),
            updated: at,
            digest: digest.to_owned(),
            summary: summary.clone(),
            reasons: reasons.to_vec(),
            approved_by: None,
            approved_at: None,
            approved_serial: None,
            applied_serial: None,
        })
    }

    /// Marks every open approval but `except` superseded; how many were.
    pub async fn supersede_open(&self, except: Option<&str>) -> Result<u64, StateError> {
        let except = except.and_then(row_id).unwrap_or(0);
        let at = now();
        approval_write!(self, |conn, rows| rows::supersede_open(conn, &at, except)
            .await?)
    }

    /// Approves pending approval `id` in `by`'s name: [`StateError::NotFound`] when there is no
    /// such approval, [`StateError::NotPending`] when it is not pending (any more).
    pub async fn approve(&self, id: &str, by: &str) -> Result<Approval, StateError> {
        let unknown = || StateError::NotFound(format!("approval {id}"));
        let key = row_id(id).ok_or_else(unknown)?;
        let at = now();
        let done: bool =
            approval_write!(self, |conn, rows| rows::approve(conn, key, by, &at).await?)?;
        let found = self
            .approvals()
            .await?
            .into_iter()
            .find(|a| a.id == key.to_string());
        match found {
            None => Err(unknown()),
            Some(a) if done => Ok(a),
            Some(a) => Err(StateError::NotPending {
                id: a.id,
                status: a.status.as_str(),
            }),
        }
    }

    /// Marks approved approval `id` applied by run `serial`; `false` when it was not approved.
    pub async fn mark_applied(&self, id: &str, serial: u64) -> Result<bool, StateError> {
        let Some(key) = row_id(id) else {
            return Ok(false);
        };
        let (at, serial) = (now(), codec::serial_i64(serial)?);
        approval_write!(self, |conn, rows| rows::mark_applied(
            conn, &at, serial, key
        )
        .await?)
    }

    /// Brings the reasons of pending approval `id` up to date (the same plan, waiting for other
    /// reasons now); `false` when it is not pending.
    pub async fn update_reasons(&self, id: &str, reasons: &[String]) -> Result<bool, StateError> {
        let Some(key) = row_id(id) else {
            return Ok(false);
        };
        let at = now();
        let text = serde_json::to_string(reasons)
            .map_err(|e| StateError::Database(format!("approval reasons: {e}")))?;
        approval_write!(self, |conn, rows| rows::update_reasons(
            conn, &at, &text, key
        )
        .await?)
    }
}
