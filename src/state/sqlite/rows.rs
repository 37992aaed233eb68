//! Mapping between SQL rows and the model types, by column position (the column lists live next
//! to the mappers so they cannot drift apart). Must not run queries.

use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use std::collections::BTreeMap;
use std::str::FromStr;

use crate::model::{Address, DesiredStatus, Labels, ResourceKind};
use crate::state::StateError;
use crate::state::model::{CardPhase, CardRecord, OrderKind, OrderPhase, OrderRecord};
use crate::state::{CallRecord, RunRecord};

// Column lists as macros so queries can be `concat!`ed into `&'static str` at compile time.

macro_rules! card_columns {
    () => {
        "key, external_user_id, product_code, initial_topup, desired_status, labels, card_id, \
         phase, provider_status, last4, charged, attempt, replaced_by, created_at, updated_at"
    };
}
pub(super) use card_columns;

macro_rules! order_columns {
    () => {
        "idempotency_key, resource_kind, resource_key, kind, attempt, request, order_id, phase, \
         provider_status, sub_status, error_slug, error_message, estimated_charge, charge, \
         created_at, updated_at"
    };
}
pub(super) use order_columns;

macro_rules! run_columns {
    () => {
        "serial, at, finished_at, actor, host, command, summary"
    };
}
pub(super) use run_columns;

macro_rules! call_columns {
    () => {
        "at, endpoint, idempotency_key, order_id, resource_kind, resource_key, result, charge"
    };
}
pub(super) use call_columns;

fn corrupt(what: &str, value: &str) -> StateError {
    StateError::Corrupt(format!("unreadable {what}: {value:?}"))
}

pub(super) fn decimal(what: &str, s: &str) -> Result<Decimal, StateError> {
    Decimal::from_str(s).map_err(|_| corrupt(what, s))
}

fn opt_decimal(what: &str, s: Option<String>) -> Result<Option<Decimal>, StateError> {
    s.map(|s| decimal(what, &s)).transpose()
}

fn u32_of(what: &str, v: i64) -> Result<u32, StateError> {
    u32::try_from(v).map_err(|_| corrupt(what, &v.to_string()))
}

pub(super) fn desired_status(s: &str) -> Result<DesiredStatus, StateError> {
    match s {
        "active" => Ok(DesiredStatus::Active),
        "frozen" => Ok(DesiredStatus::Frozen),
        _ => Err(corrupt("desired status", s)),
    }
}

pub(super) fn card_phase(s: &str) -> Result<CardPhase, StateError> {
    Ok(match s {
        "pending" => CardPhase::Pending,
        "failed" => CardPhase::Failed,
        "active" => CardPhase::Active,
        "frozen" => CardPhase::Frozen,
        "closed" => CardPhase::Closed,
        _ => return Err(corrupt("card phase", s)),
    })
}

pub(super) fn order_kind(s: &str) -> Result<OrderKind, StateError> {
    Ok(match s {
        "issue" => OrderKind::Issue,
        "topup" => OrderKind::Topup,
        "freeze" => OrderKind::Freeze,
        "unfreeze" => OrderKind::Unfreeze,
        _ => return Err(corrupt("order kind", s)),
    })
}

pub(super) fn order_phase(s: &str) -> Result<OrderPhase, StateError> {
    Ok(match s {
        "prepared" => OrderPhase::Prepared,
        "open" => OrderPhase::Open,
        "completed" => OrderPhase::Completed,
        "failed" => OrderPhase::Failed,
        _ => return Err(corrupt("order phase", s)),
    })
}

/// Labels as canonical JSON: [`Labels`] serializes with sorted keys and no whitespace.
pub(super) fn labels_json(labels: &Labels) -> Result<String, StateError> {
    serde_json::to_string(labels).map_err(|e| StateError::Corrupt(format!("labels: {e}")))
}

/// The change-log image of a card: canonical JSON of the whole record.
pub(super) fn card_image(card: &CardRecord) -> Result<String, StateError> {
    serde_json::to_string(card).map_err(|e| StateError::Corrupt(format!("card image: {e}")))
}

/// Cards by key from `json_group_object(key, json(image))` over the change log.
pub(super) fn cards_from_images(packed: &str) -> Result<BTreeMap<String, CardRecord>, StateError> {
    serde_json::from_str(packed).map_err(|e| StateError::Corrupt(format!("change log: {e}")))
}

/// The columns of [`card_columns!`] packed into one JSON array per card (labels embedded as an
/// object), so a snapshot crosses from SQLite to Rust as one value instead of 1.5 million.
macro_rules! card_packed {
    () => {
        "json_array(key, external_user_id, product_code, initial_topup, desired_status, \
         json(labels), card_id, phase, provider_status, last4, charged, attempt, replaced_by, \
         created_at, updated_at)"
    };
}
pub(super) use card_packed;

/// One element of [`card_packed!`]. Enum and decimal columns are borrowed from the input (they
/// never contain JSON escapes) to save allocations that dominate a 100,000-card snapshot.
type PackedCard<'a> = (
    String,
    String,
    String,
    Option<&'a str>,
    &'a str,
    Labels,
    Option<String>,
    &'a str,
    Option<String>,
    Option<String>,
    &'a str,
    i64,
    Option<String>,
    String,
    String,
);

/// Cards by key from `SELECT json_group_array(card_packed!) ...`.
pub(super) fn cards_from_packed(packed: &str) -> Result<BTreeMap<String, CardRecord>, StateError> {
    let all: Vec<PackedCard<'_>> =
        serde_json::from_str(packed).map_err(|e| StateError::Corrupt(format!("card rows: {e}")))?;
    // Rows arrive in key order, so collecting is a linear bulk build, not 100,000 inserts.
    all.into_iter()
        .map(|p| card_from_tuple(p).map(|c| (c.key.clone(), c)))
        .collect()
}

fn card_from_tuple(p: PackedCard<'_>) -> Result<CardRecord, StateError> {
    Ok(CardRecord {
        initial_topup: p.3.map(|s| decimal("initial top-up", s)).transpose()?,
        desired_status: desired_status(p.4)?,
        labels: p.5,
        phase: card_phase(p.7)?,
        charged: decimal("charged amount", p.10)?,
        attempt: u32_of("attempt", p.11)?,
        key: p.0,
        external_user_id: p.1,
        product_code: p.2,
        card_id: p.6,
        provider_status: p.8,
        last4: p.9,
        replaced_by: p.12,
        created_at: p.13,
        updated_at: p.14,
    })
}

/// Expects [`card_columns!`] in order, starting at column 0.
pub(super) fn card(row: &SqliteRow) -> Result<CardRecord, StateError> {
    let labels: String = row.try_get(5)?;
    let charged: String = row.try_get(10)?;
    let status: String = row.try_get(4)?;
    let phase: String = row.try_get(7)?;
    Ok(CardRecord {
        key: row.try_get(0)?,
        external_user_id: row.try_get(1)?,
        product_code: row.try_get(2)?,
        initial_topup: opt_decimal("initial top-up", row.try_get(3)?)?,
        desired_status: desired_status(&status)?,
        labels: serde_json::from_str(&labels).map_err(|_| corrupt("labels", &labels))?,
        card_id: row.try_get(6)?,
        phase: card_phase(&phase)?,
        provider_status: row.try_get(8)?,
        last4: row.try_get(9)?,
        charged: decimal("charged amount", &charged)?,
        attempt: u32_of("attempt", row.try_get(11)?)?,
        replaced_by: row.try_get(12)?,
        created_at: row.try_get(13)?,
        updated_at: row.try_get(14)?,
    })
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
    })
}

/// An address from its two columns.
fn address(kind: String, key: String) -> Result<Address, StateError> {
    let kind: ResourceKind = kind.parse().map_err(|_| corrupt("resource kind", &kind))?;
    Ok(Address::new(kind, key))
}

/// Expects [`run_columns!`] in order.
pub(super) fn run(row: &SqliteRow) -> Result<RunRecord, StateError> {
    let serial: i64 = row.try_get(0)?;
    let summary: String = row.try_get(6)?;
    Ok(RunRecord {
        serial: u64::try_from(serial).map_err(|_| corrupt("serial", &serial.to_string()))?,
        at: row.try_get(1)?,
        finished_at: row.try_get(2)?,
        user: row.try_get(3)?,
        host: row.try_get(4)?,
        command: row.try_get(5)?,
        summary: serde_json::from_str(&summary).map_err(|_| corrupt("run summary", &summary))?,
    })
}

/// Expects [`call_columns!`] in order.
pub(super) fn call(row: &SqliteRow) -> Result<CallRecord, StateError> {
    Ok(CallRecord {
        at: row.try_get(0)?,
        endpoint: row.try_get(1)?,
        idempotency_key: row.try_get(2)?,
        order_id: row.try_get(3)?,
        address: match (row.try_get::<Option<String>, _>(4)?, row.try_get(5)?) {
            (Some(kind), Some(key)) => Some(address(kind, key)?),
            _ => None,
        },
        result: row.try_get(6)?,
        charge: opt_decimal("charge", row.try_get(7)?)?,
    })
}
