//! A whole PostgreSQL state as a [`StateDump`] and back, for `state migrate`. Reads every table in
//! the order it was written, in one snapshot; loads into a state just created, in one
//! transaction. Must not change a state that already holds anything.

use super::resources::RESOURCE_PACKED;
use super::{CALL_PACKED, CALLS_JOINED, CARD_PACKED, ORDER_PACKED, PgStore};
use crate::state::codec::{
    cards_with_serial_from_packed, changes_from_packed, observed_fees_from_packed,
    orders_with_serial_from_packed, resources_from_packed, serial_i64, serial_u64,
};
use crate::state::seam::Tx;
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

    pub(in crate::state) async fn load(&self, dump: &StateDump) -> Result<(), StateError> {
        let mut tx = self.pool.begin().await?;
        let (serial, runs): (i64, i64) = sqlx::query_as(
            "SELECT serial, (SELECT count(*) FROM runs) FROM state_info WHERE id = 1 FOR UPDATE",
        )
        .fetch_one(&mut *tx)
        .await?;
        if serial != 0 || runs != 0 {
            return Err(StateError::NotEmpty(format!(
                "it already holds {runs} runs (serial {serial})"
            )));
        }
        sqlx::query("UPDATE state_info SET lineage = $1, serial = $2, currency = $3, provider = $4 WHERE id = 1")
            .bind(&dump.lineage)
            .bind(serial_i64(dump.serial)?)
            .bind(&dump.currency)
            .bind(&dump.provider)
            .execute(&mut *tx)
            .await?;
        for r in &dump.runs {
            sqlx::query(
                "INSERT INTO runs (serial, at, finished_at, actor, host, command, summary) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(serial_i64(r.serial)?)
            .bind(&r.at)
            .bind(&r.finished_at)
            .bind(&r.user)
            .bind(&r.host)
            .bind(&r.command)
            .bind(r.summary.to_string())
            .execute(&mut *tx)
            .await?;
        }
        for (card, serial) in &dump.cards {
            rules::put_card_in(&mut *tx, *serial, card).await?;
        }
        for (order, serial) in &dump.orders {
            rules::upsert_order_in(&mut *tx, *serial, order).await?;
        }
        for (record, serial) in &dump.resources {
            rules::put_resource_in(&mut *tx, *serial, record).await?;
        }
        // After the cards and resources: the change log as it was replaces what writing them logged.
        for (address, serial, image) in &dump.changes {
            sqlx::query(
                "INSERT INTO changes (resource_kind, resource_key, serial, image) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = excluded.image",
            )
            .bind(address.kind.as_str())
            .bind(&address.key)
            .bind(serial_i64(*serial)?)
            .bind(image)
            .execute(&mut *tx)
            .await?;
        }
        // After the orders: a call names the order it was made for.
        for c in &dump.calls {
            tx.insert_call(c).await?;
        }
        for f in &dump.observed_fees {
            sqlx::query(
                "INSERT INTO observed_fees (product_code, charge, observed_at, idempotency_key) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&f.product_code)
            .bind(f.charge.to_string())
            .bind(&f.observed_at)
            .bind(&f.idempotency_key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
