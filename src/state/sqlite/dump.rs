//! A whole SQLite state as a [`StateDump`] and back, for `state migrate`: the read transaction
//! the dump is taken in, and how each table is packed for it (SQLite's JSON functions); which
//! rows a dump holds is `state::dump`'s, loading `rules::load_in`'s. Must not change a state
//! that already holds anything.

use sqlx::Connection;

use super::rows::{card_packed, resource_packed};
use super::*;
use crate::state::dump::Dumped;
use crate::state::{StateDump, rules};

/// The statement that packs `table` whole into one JSON array (NULL when it is empty).
pub(super) fn dump_text(table: Dumped) -> &'static str {
    match table {
        Dumped::Cards => concat!(
            "SELECT json_group_array(json_array(",
            card_packed!(),
            ", serial)) FROM (SELECT * FROM cards ORDER BY key)"
        ),
        Dumped::Orders => {
            "SELECT json_group_array(json_array(json_array(idempotency_key, resource_kind, \
               resource_key, kind, attempt, request, order_id, phase, provider_status, \
               sub_status, error_slug, error_message, estimated_charge, charge, created_at, \
               updated_at, sent_serial, refunded), serial)) FROM (SELECT * FROM orders ORDER BY seq)"
        }
        Dumped::Resources => concat!(
            "SELECT json_group_array(",
            resource_packed!(),
            ") FROM (SELECT * FROM resources ORDER BY resource_kind, resource_key)"
        ),
        Dumped::Changes => {
            "SELECT json_group_array(json_array(resource_kind, resource_key, serial, image)) \
             FROM (SELECT * FROM changes ORDER BY serial, resource_kind, resource_key)"
        }
        Dumped::ObservedFees => {
            "SELECT json_group_array(json_array(product_code, charge, observed_at, \
               idempotency_key)) FROM (SELECT * FROM observed_fees ORDER BY product_code)"
        }
    }
}

impl SqliteStore {
    pub(in crate::state) async fn dump(&self) -> Result<StateDump, StateError> {
        let mut conn = self.reader.acquire().await?;
        // Every table in this one read transaction: a copy made while an apply writes is still
        // one consistent moment.
        let mut tx = conn.begin().await?;
        let dump = crate::state::dump::dump_in(&mut *tx).await?;
        tx.commit().await?;
        Ok(dump)
    }

    /// Loads `dump` in one transaction (the rule is `rules::load_in`); not fenced, as the
    /// target was just created by this command.
    pub(in crate::state) async fn load(&self, dump: &StateDump) -> Result<(), StateError> {
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        rules::load_in(&mut *tx, dump).await?;
        tx.commit().await?;
        Ok(())
    }
}
