//! The SQLite side of the write seam ([`Tx`] on a connection inside `BEGIN IMMEDIATE`): each
//! method runs one statement of `state::sql` (or reads rows in `rows`' column order) and decodes
//! it. The rules that combine them are `state::rules`'. Must decide nothing.

use rust_decimal::Decimal;
use sqlx::sqlite::SqliteConnection;

use super::resources::resource_packed;
use super::rows::{self, card_columns, order_columns};
use super::{SqliteQuery, serial_err};
use crate::model::Address;
use crate::state::codec::{
    self, resource_image_json, resources_from_packed, serial_i64, serial_u64,
};
use crate::state::model::{CardRecord, OrderRecord, ResourceRecord};
use crate::state::seam::Tx;
use crate::state::{CallRecord, ObservedFee, RunRecord, StateError, sql};

/// Binds an order's fields in the order of `sql::INSERT_ORDER`; a new entry was sent by run
/// `serial`, under which it is written.
fn bind_order<'q>(
    q: SqliteQuery<'q>,
    o: &'q OrderRecord,
    serial: u64,
) -> Result<SqliteQuery<'q>, StateError> {
    Ok(q.bind(&o.idempotency_key)
        .bind(o.address.kind.as_str())
        .bind(&o.address.key)
        .bind(o.kind.as_str())
        .bind(i64::from(o.attempt))
        .bind(&o.request)
        .bind(&o.order_id)
        .bind(o.phase.as_str())
        .bind(&o.provider_status)
        .bind(&o.sub_status)
        .bind(&o.error_slug)
        .bind(&o.error_message)
        .bind(o.estimated_charge.map(|d| d.to_string()))
        .bind(o.charge.map(|d| d.to_string()))
        .bind(&o.created_at)
        .bind(&o.updated_at)
        .bind(serial_i64(o.sent_serial.unwrap_or(serial))?)
        .bind(o.refunded.map(|d| d.to_string()))
        .bind(serial_i64(serial)?))
}

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

pub(super) async fn resource_in(
    conn: &mut SqliteConnection,
    address: &Address,
) -> Result<Option<ResourceRecord>, StateError> {
    let packed: Option<String> = sqlx::query_scalar(concat!(
        "SELECT json_group_array(",
        resource_packed!(),
        ") FROM resources WHERE resource_kind = $1 AND resource_key = $2"
    ))
    .bind(address.kind.as_str())
    .bind(&address.key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(resources_from_packed(packed.as_deref().unwrap_or("[]"))?
        .pop()
        .map(|(r, _)| r))
}

pub(super) async fn topup_records_in(
    conn: &mut SqliteConnection,
    card: &str,
) -> Result<Vec<ResourceRecord>, StateError> {
    let (from, to) = codec::topup_key_range(card);
    let packed: Option<String> = sqlx::query_scalar(concat!(
        "SELECT json_group_array(",
        resource_packed!(),
        ") FROM (SELECT * FROM resources WHERE resource_kind = 'topup' AND resource_key >= $1 \
           AND resource_key < $2 ORDER BY resource_key)"
    ))
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    Ok(resources_from_packed(packed.as_deref().unwrap_or("[]"))?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
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

    async fn insert_order(&mut self, serial: u64, o: &OrderRecord) -> Result<bool, StateError> {
        Ok(bind_order(sqlx::query(sql::INSERT_ORDER), o, serial)?
            .execute(&mut *self)
            .await
            .map_err(serial_err(serial))?
            .rows_affected()
            > 0)
    }

    async fn update_order(&mut self, serial: u64, o: &OrderRecord) -> Result<bool, StateError> {
        Ok(bind_order(sqlx::query(sql::UPSERT_ORDER), o, serial)?
            .execute(&mut *self)
            .await
            .map_err(serial_err(serial))?
            .rows_affected()
            > 0)
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

    async fn write_card(&mut self, serial: u64, c: &CardRecord) -> Result<(), StateError> {
        sqlx::query(sql::WRITE_CARD.sqlite)
            .bind(c.key.as_str())
            .bind(c.external_user_id.as_str())
            .bind(c.product_code.as_str())
            .bind(c.initial_topup.map(|d| d.to_string()))
            .bind(c.desired_status.as_str())
            .bind(codec::labels_json(&c.labels)?)
            .bind(c.card_id.as_deref())
            .bind(c.phase.as_str())
            .bind(c.provider_status.as_deref())
            .bind(c.last4.as_deref())
            .bind(c.charged.to_string())
            .bind(i64::from(c.attempt))
            .bind(c.replaced_by.as_deref())
            .bind(&c.created_at)
            .bind(&c.updated_at)
            .bind(c.balance.map(|d| d.to_string()))
            .bind(serial_i64(serial)?)
            .execute(&mut *self)
            .await
            .map_err(serial_err(serial))?;
        Ok(())
    }

    async fn resource(&mut self, address: &Address) -> Result<Option<ResourceRecord>, StateError> {
        resource_in(self, address).await
    }

    async fn write_resource(&mut self, serial: u64, r: &ResourceRecord) -> Result<(), StateError> {
        sqlx::query(sql::WRITE_RESOURCE)
            .bind(r.address.kind.as_str())
            .bind(&r.address.key)
            .bind(resource_image_json(&r.image)?)
            .bind(serial_i64(serial)?)
            .bind(&r.created_at)
            .bind(&r.updated_at)
            .execute(&mut *self)
            .await
            .map_err(serial_err(serial))?;
        Ok(())
    }

    async fn topup_records(&mut self, card: &str) -> Result<Vec<ResourceRecord>, StateError> {
        topup_records_in(self, card).await
    }

    async fn delete(&mut self, address: &Address) -> Result<bool, StateError> {
        let done = if address.kind.is_card() {
            sqlx::query(sql::DELETE_CARD).bind(&address.key)
        } else {
            sqlx::query(sql::DELETE_RESOURCE)
                .bind(address.kind.as_str())
                .bind(&address.key)
        }
        .execute(&mut *self)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn log_change(
        &mut self,
        serial: u64,
        address: &Address,
        image: Option<String>,
    ) -> Result<(), StateError> {
        sqlx::query(sql::LOG_CHANGE)
            .bind(address.kind.as_str())
            .bind(&address.key)
            .bind(serial_i64(serial)?)
            .bind(image)
            .execute(&mut *self)
            .await
            .map_err(serial_err(serial))?;
        Ok(())
    }

    async fn rekey_card(&mut self, old: &str, new: &str) -> Result<(), StateError> {
        for statement in sql::REKEY_CARD {
            sqlx::query(statement)
                .bind(new)
                .bind(old)
                .execute(&mut *self)
                .await?;
        }
        let (from, to) = codec::topup_key_range(old);
        let after = i64::try_from(old.chars().count() + 1).unwrap_or(i64::MAX);
        for statement in sql::REKEY_TOPUPS {
            sqlx::query(statement)
                .bind(new)
                .bind(after)
                .bind(&from)
                .bind(&to)
                .execute(&mut *self)
                .await?;
        }
        Ok(())
    }

    async fn insert_call(&mut self, call: &CallRecord) -> Result<(), StateError> {
        let at_us = codec::timestamp_micros(&call.at)?;
        sqlx::query(sql::INSERT_CALL)
            .bind(at_us)
            .bind(codec::stored_call_at(&call.at, at_us))
            .bind(&call.endpoint)
            .bind(&call.idempotency_key)
            .bind(&call.order_id)
            .bind(call.address.as_ref().map(|a| a.kind.as_str()))
            .bind(call.address.as_ref().map(|a| a.key.as_str()))
            .bind(&call.result)
            .bind(call.charge.map(|c| c.to_string()))
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn observe_fee(
        &mut self,
        product: &str,
        charge: Decimal,
        o: &OrderRecord,
    ) -> Result<(), StateError> {
        sqlx::query(sql::OBSERVE_FEE)
            .bind(product)
            .bind(charge.to_string())
            .bind(&o.updated_at)
            .bind(&o.idempotency_key)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn next_serial(&mut self) -> Result<u64, StateError> {
        let serial: i64 = sqlx::query_scalar(sql::NEXT_SERIAL)
            .fetch_one(&mut *self)
            .await?;
        serial_u64(serial)
    }

    async fn insert_run(&mut self, run: &RunRecord) -> Result<(), StateError> {
        sqlx::query(sql::INSERT_RUN)
            .bind(serial_i64(run.serial)?)
            .bind(&run.at)
            .bind(&run.finished_at)
            .bind(&run.user)
            .bind(&run.host)
            .bind(&run.command)
            .bind(run.summary.to_string())
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn finish_run(
        &mut self,
        serial: u64,
        at: &str,
        summary: &str,
    ) -> Result<bool, StateError> {
        let done = sqlx::query(sql::FINISH_RUN)
            .bind(at)
            .bind(summary)
            .bind(serial_i64(serial)?)
            .execute(&mut *self)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn charged_orders(
        &mut self,
    ) -> Result<Vec<(String, String, String, Option<String>)>, StateError> {
        Ok(sqlx::query_as(sql::CHARGED_ORDERS_SQL)
            .fetch_all(&mut *self)
            .await?)
    }

    async fn stored_charges(&mut self) -> Result<Vec<(String, String)>, StateError> {
        Ok(sqlx::query_as(sql::STORED_CHARGES)
            .fetch_all(&mut *self)
            .await?)
    }

    async fn load_target(&mut self) -> Result<(i64, i64), StateError> {
        Ok(sqlx::query_as(sql::LOAD_TARGET.sqlite)
            .fetch_one(&mut *self)
            .await?)
    }

    async fn set_identity(
        &mut self,
        lineage: &str,
        serial: u64,
        currency: Option<&str>,
        provider: Option<&str>,
    ) -> Result<(), StateError> {
        sqlx::query(sql::SET_IDENTITY)
            .bind(lineage)
            .bind(serial_i64(serial)?)
            .bind(currency)
            .bind(provider)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn insert_observed_fee(&mut self, fee: &ObservedFee) -> Result<(), StateError> {
        sqlx::query(sql::INSERT_OBSERVED_FEE)
            .bind(&fee.product_code)
            .bind(fee.charge.to_string())
            .bind(&fee.observed_at)
            .bind(&fee.idempotency_key)
            .execute(&mut *self)
            .await?;
        Ok(())
    }

    async fn set_info(&mut self, statement: &'static str, value: &str) -> Result<(), StateError> {
        sqlx::query(statement)
            .bind(value)
            .execute(&mut *self)
            .await?;
        Ok(())
    }
}
