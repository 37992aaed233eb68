//! A SQLite file's summary for `workspace list` (see `state::named`): a file is one state, so this is
//! all there is of named states here. Reads only.

use super::SqliteStore;
use crate::state::StateError;
use crate::state::named::{StateSummary, summary_of, summary_sql};

impl SqliteStore {
    /// This state's summary, lock aside (see `Store::summary`).
    pub(in crate::state) async fn summary(&self) -> Result<StateSummary, StateError> {
        let row: (i64, i64, i64, Option<String>) =
            sqlx::query_as(sqlx::AssertSqlSafe(summary_sql(None)))
                .fetch_one(&self.reader)
                .await?;
        Ok(summary_of(row))
    }
}
