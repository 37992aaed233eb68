//! The packed JSON tuples a backend hands over in bulk (one value per chunk of rows instead of
//! one per column), decoded into records: cards (one decoder, [`card_from_columns`], for every
//! card row), orders, runs, calls, the change log, observed fees and resources. Must not run
//! queries; the texts that pack them are `sql`'s and each backend's.

use compact_str::CompactString;
use serde::Deserialize;
use std::collections::BTreeMap;

use super::{
    address, call_at, card_phase, corrupt, decimal, desired_status, opt_decimal, order_kind,
    order_phase, serial_u64, u32_of,
};
use crate::model::{Address, Labels};
use crate::state::model::{CardRecord, OrderRecord, ResourceImage, ResourceRecord};
use crate::state::{CallRecord, ObservedFee, RunRecord, StateError};

/// One card row's columns as read, in `card_columns!` order, before decoding: every card read
/// (a packed chunk, a SQLite row, the raw SQLite snapshot) goes through [`card_from_columns`].
/// Enum and decimal columns are borrowed from the input (they never contain JSON escapes) to
/// save allocations that dominate a 100,000-card snapshot.
pub(in crate::state) type CardColumns<'a> = (
    CompactString,
    CompactString,
    CompactString,
    Option<&'a str>,
    &'a str,
    Labels,
    Option<CompactString>,
    &'a str,
    Option<CompactString>,
    Option<CompactString>,
    &'a str,
    i64,
    Option<CompactString>,
    String,
    String,
    Option<&'a str>,
);

/// Cards by key from a JSON array of packed cards (a chunk, in key order).
pub(in crate::state) fn cards_from_packed(
    packed: &str,
) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
    let all: Vec<CardColumns<'_>> =
        serde_json::from_str(packed).map_err(|e| StateError::Corrupt(format!("card rows: {e}")))?;
    // Rows arrive in key order, so collecting is a linear bulk build, not 100,000 inserts.
    all.into_iter()
        .map(|p| card_from_columns(p).map(|c| (c.key.clone(), c)))
        .collect()
}

/// The one decoder of a card row.
pub(in crate::state) fn card_from_columns(p: CardColumns<'_>) -> Result<CardRecord, StateError> {
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
        created_at: p.13.into(),
        updated_at: p.14.into(),
        balance: p.15.map(|s| decimal("balance", s)).transpose()?,
    })
}

/// One packed order: the journal columns in stored order (a struct: serde's tuples stop at 16).
#[derive(Deserialize)]
struct PackedOrder(
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    /// `refunded` (schema 7), last so every older position holds.
    #[serde(default)]
    Option<String>,
);

/// Orders from a JSON array of packed orders, in the array's order.
pub(in crate::state) fn orders_from_packed(packed: &str) -> Result<Vec<OrderRecord>, StateError> {
    let all: Vec<PackedOrder> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("order rows: {e}")))?;
    all.into_iter()
        .map(|p| {
            Ok(OrderRecord {
                idempotency_key: p.0,
                address: address(p.1, p.2)?,
                kind: order_kind(&p.3)?,
                attempt: u32_of("attempt", p.4)?,
                request: p.5,
                order_id: p.6,
                phase: order_phase(&p.7)?,
                provider_status: p.8,
                sub_status: p.9,
                error_slug: p.10,
                error_message: p.11,
                estimated_charge: opt_decimal("estimated charge", p.12)?,
                charge: opt_decimal("charge", p.13)?,
                refunded: opt_decimal("refunded", p.17)?,
                created_at: p.14,
                updated_at: p.15,
                sent_serial: Some(serial_u64(p.16)?),
            })
        })
        .collect()
}

/// A run as `sql::RUNS` reads it: serial, at, finished at, actor, host, command, summary.
pub(in crate::state) type RunRow = (i64, String, Option<String>, String, String, String, String);

/// A run from its row, `charged` and `topups_sent` not yet attached.
pub(in crate::state) fn run_record(row: RunRow) -> Result<RunRecord, StateError> {
    let (serial, at, finished_at, user, host, command, summary) = row;
    Ok(RunRecord {
        serial: serial_u64(serial)?,
        at,
        finished_at,
        user,
        host,
        command,
        summary: serde_json::from_str(&summary).map_err(|_| corrupt("run summary", &summary))?,
        charged: None,
        topups_sent: None,
    })
}

/// One packed call: `at` (as stored), `at_us`, endpoint, idempotency key, order id, resource kind
/// and key (the order's, for a call that names one), result, charge.
type PackedCall = (
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
);

/// Calls from a JSON array of packed calls, in the array's order.
pub(in crate::state) fn calls_from_packed(packed: &str) -> Result<Vec<CallRecord>, StateError> {
    let all: Vec<PackedCall> =
        serde_json::from_str(packed).map_err(|e| StateError::Corrupt(format!("call rows: {e}")))?;
    all.into_iter()
        .map(|p| {
            Ok(CallRecord {
                at: call_at(p.0, p.1)?,
                endpoint: p.2,
                idempotency_key: p.3,
                order_id: p.4,
                address: match (p.5, p.6) {
                    (Some(kind), Some(key)) => Some(address(kind, key)?),
                    _ => None,
                },
                result: p.7,
                charge: opt_decimal("charge", p.8)?,
            })
        })
        .collect()
}

/// Cards with the serial they were last written under, from a JSON array of `[packed, serial]`.
pub(in crate::state) fn cards_with_serial_from_packed(
    packed: &str,
) -> Result<Vec<(CardRecord, u64)>, StateError> {
    let all: Vec<(CardColumns<'_>, i64)> =
        serde_json::from_str(packed).map_err(|e| StateError::Corrupt(format!("card rows: {e}")))?;
    all.into_iter()
        .map(|(p, s)| Ok((card_from_columns(p)?, serial_u64(s)?)))
        .collect()
}

/// Orders with their serial, from a JSON array of `[packed, serial]`, in the array's order.
pub(in crate::state) fn orders_with_serial_from_packed(
    packed: &str,
) -> Result<Vec<(OrderRecord, u64)>, StateError> {
    let all: Vec<(serde_json::Value, i64)> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("order rows: {e}")))?;
    let (orders, serials): (Vec<_>, Vec<_>) = all.into_iter().unzip();
    let orders = orders_from_packed(&serde_json::Value::Array(orders).to_string())?;
    orders
        .into_iter()
        .zip(serials)
        .map(|(o, s)| Ok((o, serial_u64(s)?)))
        .collect()
}

/// The change log from a JSON array of `[kind, key, serial, image]`.
pub(in crate::state) fn changes_from_packed(
    packed: &str,
) -> Result<Vec<(Address, u64, Option<String>)>, StateError> {
    let all: Vec<(String, String, i64, Option<String>)> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("change rows: {e}")))?;
    all.into_iter()
        .map(|(kind, key, s, image)| Ok((address(kind, key)?, serial_u64(s)?, image)))
        .collect()
}

/// Observed fees from a JSON array of `[product, charge, observed_at, idempotency_key]`.
pub(in crate::state) fn observed_fees_from_packed(
    packed: &str,
) -> Result<Vec<ObservedFee>, StateError> {
    let all: Vec<(String, String, String, String)> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("observed fee rows: {e}")))?;
    all.into_iter()
        .map(|(product_code, charge, observed_at, idempotency_key)| {
            Ok(ObservedFee {
                charge: decimal("observed fee", &charge)?,
                product_code,
                observed_at,
                idempotency_key,
            })
        })
        .collect()
}

/// One packed resource row: kind, key, image (embedded JSON), created_at, updated_at, serial.
type PackedResource = (String, String, ResourceImage, String, String, i64);

/// Resources with the serial they were last written under, from a JSON array of packed rows.
pub(in crate::state) fn resources_from_packed(
    packed: &str,
) -> Result<Vec<(ResourceRecord, u64)>, StateError> {
    let all: Vec<PackedResource> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("resource rows: {e}")))?;
    all.into_iter()
        .map(|(kind, key, image, created_at, updated_at, serial)| {
            let address = address(kind, key)?;
            if image.kind() != address.kind {
                return Err(corrupt("resource image", &address.to_string()));
            }
            Ok((
                ResourceRecord {
                    address,
                    image,
                    created_at,
                    updated_at,
                },
                serial_u64(serial)?,
            ))
        })
        .collect()
}

/// Resources by address from a JSON array of change-log images (whole records).
pub(in crate::state) fn resources_from_changes(
    packed: &str,
) -> Result<BTreeMap<Address, ResourceRecord>, StateError> {
    let all: Vec<ResourceRecord> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("change log: {e}")))?;
    Ok(all.into_iter().map(|r| (r.address.clone(), r)).collect())
}
