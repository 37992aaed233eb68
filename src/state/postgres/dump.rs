//! A whole PostgreSQL state as a [`StateDump`] and back, for `state migrate`. Reads every table in
//! the order it was written, in one snapshot; loads into a state just created, in one
//! transaction. Must not change a state that already holds anything.

use super::RESOURCE_PACKED;
use super::{CALL_PACKED, CALLS_JOINED, CARD_PACKED, ORDER_PACKED, PgStore};
use crate::state::codec::{
    cards_with_serial_from_packed, changes_from_packed, observed_fees_from_packed,
    orders_with_serial_from_packed, resources_from_packed, serial_u64,
};
use crate::state::{StateDump, StateError, rules};

impl PgStore {
    pub(in crate::state) async fn dump(&self) -> Result<StateDump, StateError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let (lineage, serial, currency, provider): (String, i64, Option<String>, Option<String>) =
            sqlx::query_as(
                "SELECT lineage, serial, currency, provider FROM state_info WHERE id = 1",
            )
            .fetch_one(&mut *tx)
            .await?;
        let mut packed = async |sql: String| -> Result<String, StateError> {
            Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                .fetch_one(&mut *tx)
                .await?)
        };
        let runs = packed(
            "SELECT coalesce(json_agg(json_build_array(serial, at, finished_at, actor, host, \
               command, summary) ORDER BY serial), '[]')::text FROM runs"
                .into(),
        )
        .await?;
        let calls = packed(format!(
            "SELECT coalesce(json_agg(json_build_array({CALL_PACKED}) ORDER BY c.at_us, c.id), \
               '[]')::text FROM {CALLS_JOINED}"
        ))
        .await?;
        let cards = packed(format!(
            "SELECT coalesce(json_agg(json_build_array({CARD_PACKED}, serial) ORDER BY key), \
             '[]')::text FROM cards"
        ))
        .await?;
        let orders = packed(format!(
            "SELECT coalesce(json_agg(json_build_array({ORDER_PACKED}, serial) ORDER BY seq), \
             '[]')::text FROM orders"
        ))
        .await?;
        let resources = packed(format!(
            "SELECT coalesce(json_agg({RESOURCE_PACKED} ORDER BY resource_kind, resource_key), \
             '[]')::text FROM resources"
        ))
        .await?;
        let changes = packed(
            "SELECT coalesce(json_agg(json_build_array(resource_kind, resource_key, serial, image) \
             ORDER BY serial, resource_kind, resource_key), '[]')::text FROM changes"
                .into(),
        )
        .await?;
        let fees = packed(
            "SELECT coalesce(json_agg(json_build_array(product_code, charge, observed_at, \
             idempotency_key) ORDER BY product_code), '[]')::text FROM observed_fees"
                .into(),
        )
        .await?;
        tx.commit().await?;
        Ok(StateDump {
            lineage,
            currency,
            provider,
            serial: serial_u64(serial)?,
            runs: crate::state::codec::runs_from_packed(&runs)?,
            cards: cards_with_serial_from_packed(&cards)?,
            orders: orders_with_serial_from_packed(&orders)?,
            resources: resources_from_packed(&resources)?,
            changes: changes_from_packed(&changes)?,
            calls: crate::state::codec::calls_from_packed(&calls)?,
            observed_fees: observed_fees_from_packed(&fees)?,
        })
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
