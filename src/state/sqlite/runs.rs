//! Runs and the call audit in the SQLite state: one serial per command that writes, and one row
//! per provider call that changed something.

use super::rows::{self, call_columns, calls_joined};
use super::*;

impl SqliteStore {
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
