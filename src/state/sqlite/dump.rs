//! A whole SQLite state as a [`StateDump`] and back, for `state migrate`. Reads every table in
//! the order it was written; loads into a state just created, in one transaction. Must not
//! change a state that already holds anything.

use sqlx::Connection;

use super::rows::card_packed;
use super::rows::resource_packed;
use super::*;
use crate::state::codec::{
    cards_with_serial_from_packed, changes_from_packed, observed_fees_from_packed,
    orders_with_serial_from_packed, resources_from_packed,
};
use crate::state::{StateDump, rules};

impl SqliteStore {
    pub(in crate::state) async fn dump(&self) -> Result<StateDump, StateError> {
        let mut conn = self.reader.acquire().await?;
        let mut tx = conn.begin().await?;
        let (lineage, serial, currency, provider): (String, i64, Option<String>, Option<String>) =
            sqlx::query_as(
                "SELECT lineage, serial, currency, provider FROM state_info WHERE id = 1",
            )
            .fetch_one(&mut *tx)
            .await?;
        // Every table in this one read transaction: a copy made while an apply writes is still
        // one consistent moment.
        let runs = sqlx::query(concat!(
            "SELECT ",
            rows::run_columns!(),
            " FROM runs ORDER BY serial"
        ))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(rows::run)
        .collect::<Result<Vec<_>, _>>()?;
        let calls = sqlx::query(concat!(
            "SELECT ",
            rows::call_columns!(),
            " FROM ",
            rows::calls_joined!(),
            " ORDER BY c.at_us, c.id"
        ))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(rows::call)
        .collect::<Result<Vec<_>, _>>()?;
        let mut packed = async |sql: &'static str| -> Result<String, StateError> {
            let v: Option<String> = sqlx::query_scalar(sql).fetch_one(&mut *tx).await?;
            Ok(v.unwrap_or_else(|| "[]".into()))
        };
        let cards = packed(concat!(
            "SELECT json_group_array(json_array(",
            card_packed!(),
            ", serial)) FROM (SELECT * FROM cards ORDER BY key)"
        ))
        .await?;
        let orders = packed(
            "SELECT json_group_array(json_array(json_array(idempotency_key, resource_kind, \
               resource_key, kind, attempt, request, order_id, phase, provider_status, \
               sub_status, error_slug, error_message, estimated_charge, charge, created_at, \
               updated_at, sent_serial, refunded), serial)) FROM (SELECT * FROM orders ORDER BY seq)",
        )
        .await?;
        let resources = packed(concat!(
            "SELECT json_group_array(",
            resource_packed!(),
            ") FROM (SELECT * FROM resources ORDER BY resource_kind, resource_key)"
        ))
        .await?;
        let changes = packed(
            "SELECT json_group_array(json_array(resource_kind, resource_key, serial, image)) \
             FROM (SELECT * FROM changes ORDER BY serial, resource_kind, resource_key)",
        )
        .await?;
        let fees = packed(
            "SELECT json_group_array(json_array(product_code, charge, observed_at, \
               idempotency_key)) FROM (SELECT * FROM observed_fees ORDER BY product_code)",
        )
        .await?;
        tx.commit().await?;
        drop(conn);
        Ok(StateDump {
            lineage,
            currency,
            provider,
            serial: serial_u64(serial)?,
            runs,
            cards: cards_with_serial_from_packed(&cards)?,
            orders: orders_with_serial_from_packed(&orders)?,
            resources: resources_from_packed(&resources)?,
            changes: changes_from_packed(&changes)?,
            calls,
            observed_fees: observed_fees_from_packed(&fees)?,
        })
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
