//! Runs and the call audit in the SQLite state: one serial per command that writes, and one row
//! per provider call that changed something.

use super::rows::{self, call_columns, calls_joined, run_columns};
use super::*;
use crate::state::codec::attach_charges;

impl SqliteStore {
    /// Starts a run: the serial goes up by one and the run is recorded under it.
    pub(in crate::state) async fn begin_run(&self, info: RunInfo) -> Result<u64, StateError> {
        let mut tx = self.write().await?;
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

    pub(in crate::state) async fn finish_run(
        &self,
        serial: u64,
        summary: &serde_json::Value,
    ) -> Result<(), StateError> {
        let summary = serde_json::to_string(summary)
            .map_err(|e| StateError::Corrupt(format!("run summary: {e}")))?;
        let mut tx = self.write().await?;
        let done = sqlx::query("UPDATE runs SET finished_at = ?, summary = ? WHERE serial = ?")
            .bind(now())
            .bind(summary)
            .bind(serial_i64(serial)?)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StateError::NotFound(format!("run with serial {serial}")));
        }
        tx.commit().await?;
        Ok(())
    }

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
