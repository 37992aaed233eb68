//! The PostgreSQL side of the write seam ([`Tx`] on a connection inside a fenced transaction):
//! the reads it decodes its own way (rows packed as JSON, see the module header of `postgres`),
//! the order binds and the fencing check; every other primitive is `seam::shared_primitives!`,
//! stamped here with the PostgreSQL texts of `state::sql`. The rules that combine them are
//! `state::rules`'. Must decide nothing.

use sqlx::PgConnection;

use super::resources::RESOURCE_PACKED;
use super::{CALL_PACKED, CALLS_JOINED, CARD_PACKED, ORDER_PACKED, PgStore, serial_err};
use crate::model::Address;
use crate::state::codec::{self, cards_from_packed, resources_from_packed};
use crate::state::model::{CardRecord, OrderRecord, ResourceRecord};
use crate::state::seam::Tx;
use crate::state::{StateError, sql};
use compact_str::CompactString;
use std::collections::BTreeMap;

/// Every order of `address`, oldest first.
pub(super) async fn orders_of_in(
    conn: &mut PgConnection,
    address: &Address,
) -> Result<Vec<OrderRecord>, StateError> {
    let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
         WHERE resource_kind = $1 AND resource_key = $2"
    )))
    .bind(address.kind.as_str())
    .bind(&address.key)
    .fetch_one(&mut *conn)
    .await?;
    codec::orders_from_packed(&packed)
}

impl Tx for PgConnection {
    async fn holds_lock(&mut self, lock_id: &str) -> Result<bool, StateError> {
        let ours: Option<i32> = sqlx::query_scalar(sql::HOLDS_LOCK.postgres)
            .bind(lock_id)
            .fetch_optional(&mut *self)
            .await?;
        Ok(ours.is_some())
    }

    async fn order(&mut self, key: &str) -> Result<Option<OrderRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED}), '[]')::text FROM orders \
             WHERE idempotency_key = $1"
        )))
        .bind(key)
        .fetch_one(&mut *self)
        .await?;
        Ok(codec::orders_from_packed(&packed)?.pop())
    }

    async fn orders_of(&mut self, address: &Address) -> Result<Vec<OrderRecord>, StateError> {
        orders_of_in(self, address).await
    }

    async fn card_orders(&mut self, key: &str) -> Result<Vec<OrderRecord>, StateError> {
        let (from, to) = codec::topup_key_range(key);
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE (resource_kind = 'card' AND resource_key = $1) \
                OR (resource_kind = 'topup' AND resource_key >= $2 AND resource_key < $3)"
        )))
        .bind(key)
        .bind(from)
        .bind(to)
        .fetch_one(&mut *self)
        .await?;
        codec::orders_from_packed(&packed)
    }

    async fn card(&mut self, key: &str) -> Result<Option<CardRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({CARD_PACKED}), '[]')::text FROM cards WHERE key = $1"
        )))
        .bind(key)
        .fetch_one(&mut *self)
        .await?;
        Ok(cards_from_packed(&packed)?.into_values().next())
    }

    async fn resource(&mut self, address: &Address) -> Result<Option<ResourceRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({RESOURCE_PACKED}), '[]')::text FROM resources \
             WHERE resource_kind = $1 AND resource_key = $2"
        )))
        .bind(address.kind.as_str())
        .bind(&address.key)
        .fetch_one(&mut *self)
        .await?;
        Ok(resources_from_packed(&packed)?.pop().map(|(r, _)| r))
    }

    async fn topup_records(&mut self, card: &str) -> Result<Vec<ResourceRecord>, StateError> {
        let (from, to) = codec::topup_key_range(card);
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({RESOURCE_PACKED} ORDER BY resource_key), '[]')::text \
             FROM resources WHERE resource_kind = 'topup' AND resource_key >= $1 \
               AND resource_key < $2"
        )))
        .bind(from)
        .bind(to)
        .fetch_one(&mut *self)
        .await?;
        Ok(resources_from_packed(&packed)?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    crate::state::seam::shared_primitives!(postgres, i32);

    async fn all_cards(&mut self) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        PgStore::all_cards_in(self).await
    }

    async fn open_orders(&mut self) -> Result<Vec<OrderRecord>, StateError> {
        PgStore::open_orders_in(self).await
    }

    async fn resources(
        &mut self,
        kind: Option<crate::model::ResourceKind>,
    ) -> Result<BTreeMap<Address, ResourceRecord>, StateError> {
        super::resources::resources_in(self, kind).await
    }

    async fn removed_cards(
        &mut self,
    ) -> Result<BTreeMap<CompactString, Vec<OrderRecord>>, StateError> {
        PgStore::removed_cards_in(self).await
    }

    async fn topup_orders(&mut self, card: &str) -> Result<Vec<OrderRecord>, StateError> {
        let (from, to) = codec::topup_key_range(card);
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE resource_kind = 'topup' AND resource_key >= $1 AND resource_key < $2"
        )))
        .bind(from)
        .bind(to)
        .fetch_one(&mut *self)
        .await?;
        codec::orders_from_packed(&packed)
    }

    async fn refunds_unknown(&mut self) -> Result<Vec<OrderRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE {}",
            crate::state::sql::REFUND_UNKNOWN
        )))
        .fetch_one(&mut *self)
        .await?;
        codec::orders_from_packed(&packed)
    }

    async fn calls(&mut self, from: i64) -> Result<Vec<crate::state::CallRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg(json_build_array({CALL_PACKED}) ORDER BY c.at_us, c.id), \
               '[]')::text FROM {CALLS_JOINED} WHERE c.at_us >= $1"
        )))
        .bind(from)
        .fetch_one(&mut *self)
        .await?;
        codec::calls_from_packed(&packed)
    }
}
