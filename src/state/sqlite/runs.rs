//! Runs and the call audit in the SQLite state: one serial per command that writes, and one row
//! per provider call that changed something.

use super::rows::{self, call_columns, calls_joined, run_columns};
use super::*;
use crate::state::codec::attach_charges;

impl SqliteStore {
    /// One record per serial, oldest first.
    pub(in crate::state) async fn history(&self) -> Result<Vec<RunRecord>, StateError> {
        let mut runs = sqlx::query(concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs ORDER BY serial"
        ))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(rows::run)
        .collect::<Result<Vec<_>, _>>()?;
        let charges: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT sent_serial, group_concat({}, ' ') FROM orders \
                 WHERE charge IS NOT NULL GROUP BY sent_serial",
            crate::state::sql::ORDER_COST_TERMS
        )))
        .fetch_all(&self.reader)
        .await?;
        attach_charges(&mut runs, charges)?;
        let topups: Vec<(i64, i64)> = sqlx::query_as(crate::state::sql::TOPUPS_SENT_SQL)
            .fetch_all(&self.reader)
            .await?;
        crate::state::codec::attach_topups_sent(&mut runs, topups)?;
        Ok(runs)
    }

    /// Recorded calls in time order, from `since` (RFC 3339 or a bare date) on.
    pub(in crate::state) async fn calls(
        &self,
        since: Option<&str>,
    ) -> Result<Vec<CallRecord>, StateError> {
        let from = since.map(timestamp_micros).transpose()?.unwrap_or(i64::MIN);
        sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM ",
            calls_joined!(),
            " WHERE c.at_us >= ? ORDER BY c.at_us, c.id"
        ))
        .bind(from)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(rows::call)
        .collect()
    }
}
