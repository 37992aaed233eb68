//! The change log since a serial, in the SQLite state (see `state::changes`).

use super::*;
use crate::state::codec::serial_i64;

impl SqliteStore {
    /// `(kind, key, serial)` of every change logged after `serial`.
    pub(in crate::state) async fn changes_since(
        &self,
        serial: u64,
    ) -> Result<Vec<(String, String, i64)>, StateError> {
        Ok(sqlx::query_as(sqlx::AssertSqlSafe(
            crate::state::changes::changes_since_sql("?"),
        ))
        .bind(serial_i64(serial)?)
        .fetch_all(&self.reader)
        .await?)
    }
}
