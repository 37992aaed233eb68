//! How records cross a backend boundary as text, the same for every backend: enum spellings,
//! exact decimals, labels, resource images as canonical JSON, serials and timestamps as integers,
//! a call's time stored once, and a card's top-up key range. Card images of the change log are
//! `card_image`'s, the packed JSON tuples a backend hands over in bulk (one value per chunk of
//! rows instead of one per column) `packed`'s; both are re-exported here, so a caller names
//! `codec::` only. Must not run queries or know any SQL dialect (statement texts are `sql`'s),
//! and must not decide anything: what rows imply is `journal`'s.

use rust_decimal::Decimal;
use std::str::FromStr;

use super::StateError;
use super::model::{CardPhase, OrderKind, OrderPhase, ResourceImage, ResourceRecord};
use crate::model::{Address, DesiredStatus, Labels, ResourceKind};

mod card_image;
mod packed;

pub(super) use card_image::{card_image, cards_from_images};
pub(super) use packed::*;

pub(in crate::state) fn corrupt(what: &str, value: &str) -> StateError {
    StateError::Corrupt(format!("unreadable {what}: {value:?}"))
}

pub(in crate::state) fn decimal(what: &str, s: &str) -> Result<Decimal, StateError> {
    Decimal::from_str(s).map_err(|_| corrupt(what, s))
}

pub(in crate::state) fn opt_decimal(
    what: &str,
    s: Option<String>,
) -> Result<Option<Decimal>, StateError> {
    s.map(|s| decimal(what, &s)).transpose()
}

pub(in crate::state) fn u32_of(what: &str, v: i64) -> Result<u32, StateError> {
    u32::try_from(v).map_err(|_| corrupt(what, &v.to_string()))
}

pub(in crate::state) fn desired_status(s: &str) -> Result<DesiredStatus, StateError> {
    match s {
        "active" => Ok(DesiredStatus::Active),
        "frozen" => Ok(DesiredStatus::Frozen),
        _ => Err(corrupt("desired status", s)),
    }
}

pub(in crate::state) fn card_phase(s: &str) -> Result<CardPhase, StateError> {
    Ok(match s {
        "pending" => CardPhase::Pending,
        "failed" => CardPhase::Failed,
        "active" => CardPhase::Active,
        "frozen" => CardPhase::Frozen,
        "closed" => CardPhase::Closed,
        _ => return Err(corrupt("card phase", s)),
    })
}

pub(in crate::state) fn order_kind(s: &str) -> Result<OrderKind, StateError> {
    Ok(match s {
        "issue" => OrderKind::Issue,
        "topup" => OrderKind::Topup,
        "freeze" => OrderKind::Freeze,
        "unfreeze" => OrderKind::Unfreeze,
        "user" => OrderKind::CreateUser,
        "cardholder" => OrderKind::CreateCardholder,
        _ => return Err(corrupt("order kind", s)),
    })
}

pub(in crate::state) fn order_phase(s: &str) -> Result<OrderPhase, StateError> {
    Ok(match s {
        "prepared" => OrderPhase::Prepared,
        "open" => OrderPhase::Open,
        "completed" => OrderPhase::Completed,
        "failed" => OrderPhase::Failed,
        _ => return Err(corrupt("order phase", s)),
    })
}

/// Labels as canonical JSON: [`Labels`] serializes with sorted keys and no whitespace.
pub(in crate::state) fn labels_json(labels: &Labels) -> Result<String, StateError> {
    serde_json::to_string(labels).map_err(|e| StateError::Corrupt(format!("labels: {e}")))
}

/// An address from its two columns.
pub(in crate::state) fn address(kind: String, key: String) -> Result<Address, StateError> {
    let kind: ResourceKind = kind.parse().map_err(|_| corrupt("resource kind", &kind))?;
    Ok(Address::new(kind, key))
}

/// A call's `at` as stored beside its `at_us` since schema 5: nothing when formatting `at_us`
/// gives back the very text (every call cardform records), else the text itself.
pub(in crate::state) fn stored_call_at(at: &str, at_us: i64) -> Option<&str> {
    let formatted = jiff::Timestamp::from_microsecond(at_us).map(|t| t.to_string());
    match formatted {
        Ok(formatted) if formatted == at => None,
        _ => Some(at),
    }
}

/// A call's `at` back from its stored form (see [`stored_call_at`]).
pub(in crate::state) fn call_at(stored: Option<String>, at_us: i64) -> Result<String, StateError> {
    match stored {
        Some(at) => Ok(at),
        None => jiff::Timestamp::from_microsecond(at_us)
            .map(|t| t.to_string())
            .map_err(|_| corrupt("call time", &at_us.to_string())),
    }
}

pub(in crate::state) fn serial_i64(serial: u64) -> Result<i64, StateError> {
    i64::try_from(serial).map_err(|_| StateError::UnknownSerial(serial))
}

pub(in crate::state) fn serial_u64(serial: i64) -> Result<u64, StateError> {
    u64::try_from(serial).map_err(|_| StateError::Corrupt(format!("negative serial {serial}")))
}

/// Microseconds since the epoch of an RFC 3339 timestamp or a bare date (its start, in UTC), so
/// the audit orders and filters calls by instant whatever offset they were written with.
pub(in crate::state) fn timestamp_micros(value: &str) -> Result<i64, StateError> {
    let bad = || StateError::InvalidTimestamp {
        value: value.to_string(),
    };
    if let Ok(ts) = value.parse::<jiff::Timestamp>() {
        return Ok(ts.as_microsecond());
    }
    let date: jiff::civil::Date = value.parse().map_err(|_| bad())?;
    let ts = jiff::tz::Offset::UTC
        .to_timestamp(date.at(0, 0, 0, 0))
        .map_err(|_| bad())?;
    Ok(ts.as_microsecond())
}

/// The keys of card `card`'s top-ups, as a half-open range `[CARD:, CARD;)`: `;` follows the
/// separator `:` byte for byte, and neither may appear in a key.
pub(in crate::state) fn topup_key_range(card: &str) -> (String, String) {
    let sep = crate::model::TOPUP_SEPARATOR;
    let next = char::from_u32(sep as u32 + 1).expect("`;` follows `:`");
    (format!("{card}{sep}"), format!("{card}{next}"))
}

/// A resource's image as the `resources` table holds it: JSON tagged with its kind.
pub(in crate::state) fn resource_image_json(image: &ResourceImage) -> Result<String, StateError> {
    serde_json::to_string(image).map_err(|e| StateError::Corrupt(format!("resource image: {e}")))
}

/// The change-log image of a resource: the whole record (address, image, times), so the log alone
/// rebuilds it at any serial.
pub(in crate::state) fn resource_change_json(r: &ResourceRecord) -> Result<String, StateError> {
    serde_json::to_string(r).map_err(|e| StateError::Corrupt(format!("resource record: {e}")))
}
