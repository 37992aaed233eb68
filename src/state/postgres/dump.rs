//! A whole PostgreSQL state as a [`StateDump`] and back, for `state migrate`: the snapshot the
//! dump is taken in (repeatable read), and how each table is packed for it (`json_agg`); which
//! rows a dump holds is `state::dump`'s, loading `rules::load_in`'s. Must not change a state that
//! already holds anything.

use super::{CARD_PACKED, ORDER_PACKED, PgStore, RESOURCE_PACKED};
use crate::state::dump::Dumped;
use crate::state::{StateDump, StateError, rules};

/// The statement that packs `table` whole into one JSON array.
pub(super) fn dump_text(table: Dumped) -> String {
    match table {
        Dumped::Cards => format!(
            "SELECT coalesce(json_agg(json_build_array({CARD_PACKED}, serial) ORDER BY key), \
             '[]')::text FROM cards"
        ),
        Dumped::Orders => format!(
            "SELECT coalesce(json_agg(json_build_array({ORDER_PACKED}, serial) ORDER BY seq), \
             '[]')::text FROM orders"
        ),
        Dumped::Resources => format!(
            "SELECT coalesce(json_agg({RESOURCE_PACKED} ORDER BY resource_kind, resource_key), \
             '[]')::text FROM resources"
        ),
        Dumped::Changes => "SELECT coalesce(json_agg(json_build_array(resource_kind, \
             resource_key, serial, image) ORDER BY serial, resource_kind, resource_key), \
             '[]')::text FROM changes"
            .to_owned(),
        Dumped::ObservedFees => "SELECT coalesce(json_agg(json_build_array(product_code, charge, \
             observed_at, idempotency_key) ORDER BY product_code), '[]')::text FROM observed_fees"
            .to_owned(),
    }
}

impl PgStore {
    pub(in crate::state) async fn dump(&self) -> Result<StateDump, StateError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let dump = crate::state::dump::dump_in(&mut *tx).await?;
        tx.commit().await?;
        Ok(dump)
    }

    /// Loads `dump` in one transaction (the rule is `rules::load_in`); not fenced, as the
    /// target was just created by this command.
    pub(in crate::state) async fn load(&self, dump: &StateDump) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        rules::load_in(&mut *tx, dump).await?;
        tx.commit().await?;
        Ok(())
    }
}
