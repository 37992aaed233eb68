//! Mapping between SQL rows and the model types, by column position (the column lists live next
//! to the mappers so they cannot drift apart). Must not run queries.

use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::state::CallRecord;
use crate::state::StateError;
use crate::state::codec::{
    address, call_at, card_from_columns, corrupt, opt_decimal, order_kind, order_phase, serial_u64,
    u32_of,
};
use crate::state::model::{CardRecord, OrderRecord};

// Column lists as macros so queries can be `concat!`ed into `&'static str` at compile time.

macro_rules! card_columns {
    () => {
        "key, external_user_id, product_code, initial_topup, desired_status, labels, card_id, \
         phase, provider_status, last4, charged, attempt, replaced_by, created_at, updated_at, \
         balance"
    };
}
pub(super) use card_columns;

macro_rules! order_columns {
    () => {
        "idempotency_key, resource_kind, resource_key, kind, attempt, request, order_id, phase, \
         provider_status, sub_status, error_slug, error_message, estimated_charge, charge, \
         created_at, updated_at, sent_serial, refunded"
    };
}
pub(super) use order_columns;

/// A call's columns, its order's filling in what schema 5 no longer repeats (see
/// [`calls_joined!`]).
macro_rules! call_columns {
    () => {
        "c.at, c.at_us, c.endpoint, coalesce(c.idempotency_key, o.idempotency_key), c.order_id, \
         coalesce(c.resource_kind, o.resource_kind), coalesce(c.resource_key, o.resource_key), \
         c.result, c.charge"
    };
}
pub(super) use call_columns;

/// The calls, each beside the order it names (if any).
macro_rules! calls_joined {
    () => {
        "calls AS c LEFT JOIN orders AS o ON o.seq = c.order_seq"
    };
}
pub(super) use calls_joined;

/// The columns of [`card_columns!`] packed into one JSON array per card (labels embedded as an
/// object), so a snapshot crosses from SQLite to Rust as one value instead of 1.5 million.
macro_rules! card_packed {
    () => {
        "json_array(key, external_user_id, product_code, initial_topup, desired_status, \
         json(labels), card_id, phase, provider_status, last4, charged, attempt, replaced_by, \
         created_at, updated_at, balance)"
    };
}
pub(super) use card_packed;

/// Expects [`card_columns!`] in order, starting at column 0.
pub(super) fn card(row: &SqliteRow) -> Result<CardRecord, StateError> {
    let labels: &str = row.try_get(5)?;
    card_from_columns((
        row.try_get::<&str, _>(0)?.into(),
        row.try_get::<&str, _>(1)?.into(),
        row.try_get::<&str, _>(2)?.into(),
        row.try_get(3)?,
        row.try_get(4)?,
        serde_json::from_str(labels).map_err(|_| corrupt("labels", labels))?,
        row.try_get::<Option<&str>, _>(6)?.map(Into::into),
        row.try_get(7)?,
        row.try_get::<Option<&str>, _>(8)?.map(Into::into),
        row.try_get::<Option<&str>, _>(9)?.map(Into::into),
        row.try_get(10)?,
        row.try_get(11)?,
        row.try_get::<Option<&str>, _>(12)?.map(Into::into),
        row.try_get(13)?,
        row.try_get(14)?,
        row.try_get(15)?,
    ))
}

/// Expects [`order_columns!`] in order, starting at column 0.
pub(super) fn order(row: &SqliteRow) -> Result<OrderRecord, StateError> {
    let kind: String = row.try_get(3)?;
    let phase: String = row.try_get(7)?;
    Ok(OrderRecord {
        idempotency_key: row.try_get(0)?,
        address: address(row.try_get(1)?, row.try_get(2)?)?,
        kind: order_kind(&kind)?,
        attempt: u32_of("attempt", row.try_get(4)?)?,
        request: row.try_get(5)?,
        order_id: row.try_get(6)?,
        phase: order_phase(&phase)?,
        provider_status: row.try_get(8)?,
        sub_status: row.try_get(9)?,
        error_slug: row.try_get(10)?,
        error_message: row.try_get(11)?,
        estimated_charge: opt_decimal("estimated charge", row.try_get(12)?)?,
        charge: opt_decimal("charge", row.try_get(13)?)?,
        created_at: row.try_get(14)?,
        updated_at: row.try_get(15)?,
        sent_serial: Some(serial_u64(row.try_get(16)?)?),
        refunded: opt_decimal("refunded", row.try_get(17)?)?,
    })
}

/// Expects [`call_columns!`] in order.
pub(super) fn call(row: &SqliteRow) -> Result<CallRecord, StateError> {
    Ok(CallRecord {
        at: call_at(row.try_get(0)?, row.try_get(1)?)?,
        endpoint: row.try_get(2)?,
        idempotency_key: row.try_get(3)?,
        order_id: row.try_get(4)?,
        address: match (row.try_get::<Option<String>, _>(5)?, row.try_get(6)?) {
            (Some(kind), Some(key)) => Some(address(kind, key)?),
            _ => None,
        },
        result: row.try_get(7)?,
        charge: opt_decimal("charge", row.try_get(8)?)?,
    })
}

/// The columns of a resource row packed into one JSON array (see `codec::resources_from_packed`).
macro_rules! resource_packed {
    () => {
        "json_array(resource_kind, resource_key, json(image), created_at, updated_at, serial)"
    };
}
pub(super) use resource_packed;
