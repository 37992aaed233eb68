//! The SQLite side of the write seam ([`Tx`] on a connection inside `BEGIN IMMEDIATE`): the reads
//! it decodes its own way (rows in `rows`' column order), the order binds and the fencing check;
//! every other primitive is `seam::shared_primitives!`, stamped here with the SQLite texts of
//! `state::sql`. The rules that combine them are `state::rules`'. Must decide nothing.

use sqlx::sqlite::SqliteConnection;

use super::resources::resource_packed;
use super::rows::{self, call_columns, calls_joined, card_columns, order_columns};
use super::{SqliteStore, serial_err};
use crate::model::Address;
use crate::state::codec::{self, resources_from_packed};
use crate::state::model::{CardRecord, OrderRecord, ResourceRecord};
use crate::state::seam::Tx;
use crate::state::{StateError, sql};
use compact_str::CompactString;
use std::collections::BTreeMap;

/// Every order of `address`, oldest first.
const ORDERS_OF: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM orders WHERE resource_kind = $1 AND resource_key = $2 ORDER BY seq"
);

/// The orders of a card's top-ups: a key range (see `codec::topup_key_range`).
pub(super) const TOPUP_ORDERS: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM orders WHERE resource_kind = 'topup' AND resource_key >= $1 \
      AND resource_key < $2 ORDER BY seq"
);

pub(super) const ORDER_BY_KEY: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM orders WHERE idempotency_key = $1"
);

pub(super) const CARD_BY_KEY: &str =
    concat!("SELECT ", card_columns!(), " FROM cards WHERE key = $1");

pub(super) async fn orders_of_in(
    conn: &mut SqliteConnection,
    address: &Address,
) -> Result<Vec<OrderRecord>, StateError> {
    sqlx::query(ORDERS_OF)
        .bind(address.kind.as_str())
        .bind(&address.key)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::order)
        .collect()
}

impl Tx for SqliteConnection {
    async fn holds_lock(&mut self, lock_id: &str) -> Result<bool, StateError> {
        let ours: Option<i64> = sqlx::query_scalar(sql::HOLDS_LOCK.sqlite)
            .bind(lock_id)
            .fetch_optional(&mut *self)
            .await?;
        Ok(ours.is_some())
    }

    async fn order(&mut self, key: &str) -> Result<Option<OrderRecord>, StateError> {
        sqlx::query(ORDER_BY_KEY)
            .bind(key)
            .fetch_optional(&mut *self)
            .await?
            .as_ref()
            .map(rows::order)
            .transpose()
    }

    async fn orders_of(&mut self, address: &Address) -> Result<Vec<OrderRecord>, StateError> {
        orders_of_in(self, address).await
    }

    async fn card_orders(&mut self, key: &str) -> Result<Vec<OrderRecord>, StateError> {
        let mut orders = orders_of_in(self, &Address::card(key)).await?;
        let (from, to) = codec::topup_key_range(key);
        for row in &sqlx::query(TOPUP_ORDERS)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *self)
            .await?
        {
            orders.push(rows::order(row)?);
        }
        Ok(orders)
    }

    async fn card(&mut self, key: &str) -> Result<Option<CardRecord>, StateError> {
        sqlx::query(CARD_BY_KEY)
            .bind(key)
            .fetch_optional(&mut *self)
            .await?
            .as_ref()
            .map(rows::card)
            .transpose()
    }

    async fn resource(&mut self, address: &Address) -> Result<Option<ResourceRecord>, StateError> {
        let packed: Option<String> = sqlx::query_scalar(concat!(
            "SELECT json_group_array(",
            resource_packed!(),
            ") FROM resources WHERE resource_kind = $1 AND resource_key = $2"
        ))
        .bind(address.kind.as_str())
        .bind(&address.key)
        .fetch_one(&mut *self)
        .await?;
        Ok(resources_from_packed(packed.as_deref().unwrap_or("[]"))?
            .pop()
            .map(|(r, _)| r))
    }

    async fn topup_records(&mut self, card: &str) -> Result<Vec<ResourceRecord>, StateError> {
        let (from, to) = codec::topup_key_range(card);
        let packed: Option<String> = sqlx::query_scalar(concat!(
            "SELECT json_group_array(",
            resource_packed!(),
            ") FROM (SELECT * FROM resources WHERE resource_kind = 'topup' AND resource_key >= $1 \
               AND resource_key < $2 ORDER BY resource_key)"
        ))
        .bind(from)
        .bind(to)
        .fetch_one(&mut *self)
        .await?;
        Ok(resources_from_packed(packed.as_deref().unwrap_or("[]"))?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    crate::state::seam::shared_primitives!(sqlite, i64);

    async fn all_cards(&mut self) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        SqliteStore::cards_in(self).await
    }

    async fn open_orders(&mut self) -> Result<Vec<OrderRecord>, StateError> {
        SqliteStore::open_orders_in(self).await
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
        SqliteStore::removed_cards_in(self).await
    }

    async fn topup_orders(&mut self, card: &str) -> Result<Vec<OrderRecord>, StateError> {
        let (from, to) = crate::state::codec::topup_key_range(card);
        sqlx::query(super::tx::TOPUP_ORDERS)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *self)
            .await?
            .iter()
            .map(rows::order)
            .collect()
    }

    async fn refunds_unknown(&mut self) -> Result<Vec<OrderRecord>, StateError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM orders WHERE {} ORDER BY seq",
            order_columns!(),
            crate::state::sql::REFUND_UNKNOWN
        )))
        .fetch_all(&mut *self)
        .await?
        .iter()
        .map(rows::order)
        .collect()
    }

    async fn calls(&mut self, from: i64) -> Result<Vec<crate::state::CallRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM ",
            calls_joined!(),
            " WHERE c.at_us >= ? ORDER BY c.at_us, c.id"
        ))
        .bind(from)
        .fetch_all(&mut *self)
        .await?
        .iter()
        .map(rows::call)
        .collect()
    }
}
