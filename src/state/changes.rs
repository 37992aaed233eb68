//! Which resources each run changed since a given serial, read from the change log: what
//! `apply PLANFILE` asks to decide whether a saved plan is stale for what it touches.
//!
//! Answers the question only; what makes a plan stale is `plan::stale`'s to decide. The SQL is
//! the backends' (`sqlite/changes.rs`, `postgres/changes.rs`), one query each.

use super::{Backend, StateError, Store};
use crate::model::Address;

/// One resource changed by the run `serial` (its record written, or removed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Changed {
    pub serial: u64,
    pub address: Address,
}

/// The SQL both backends read the change log since a serial with, its one parameter the serial
/// (bound as `?` in SQLite and `$1` in PostgreSQL, which each backend writes in).
pub(super) fn changes_since_sql(placeholder: &str) -> String {
    format!(
        "SELECT resource_kind, resource_key, serial FROM changes WHERE serial > {placeholder} \
         ORDER BY serial, resource_kind, resource_key"
    )
}

impl Store {
    /// Every resource a run after `serial` changed, oldest run first, one entry per resource
    /// and run.
    pub async fn changes_since(&self, serial: u64) -> Result<Vec<Changed>, StateError> {
        let rows = match &self.backend {
            Backend::Sqlite(b) => b.changes_since(serial).await?,
            Backend::Postgres(b) => b.changes_since(serial).await?,
        };
        rows.into_iter()
            .map(|(kind, key, s)| {
                Ok(Changed {
                    serial: super::codec::serial_u64(s)?,
                    address: super::codec::address(kind, key)?,
                })
            })
            .collect()
    }
}
