//! How records cross a backend boundary as text, the same for every backend: enum spellings,
//! exact decimals, labels, card images as positional JSON arrays (objects before schema 5, still
//! read), resource images as canonical JSON, serials and timestamps as integers, a call's time
//! stored once, and the packed JSON tuples a backend hands over in bulk (one value per chunk of
//! rows instead of one per column); and the rule a resource's record follows its orders by. Must
//! not run queries or know any SQL dialect.

use compact_str::CompactString;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::str::FromStr;

use super::model::{
    CardPhase, CardRecord, OrderKind, OrderPhase, OrderRecord, ResourceImage, ResourceRecord,
};
use super::{CallRecord, RunRecord, StateError};
use crate::model::{Address, DesiredStatus, Labels, ResourceKind};
use crate::wire::assumed::INITIAL_TOPUP_FIELD;

pub(super) fn corrupt(what: &str, value: &str) -> StateError {
    StateError::Corrupt(format!("unreadable {what}: {value:?}"))
}

pub(super) fn decimal(what: &str, s: &str) -> Result<Decimal, StateError> {
    Decimal::from_str(s).map_err(|_| corrupt(what, s))
}

pub(super) fn opt_decimal(what: &str, s: Option<String>) -> Result<Option<Decimal>, StateError> {
    s.map(|s| decimal(what, &s)).transpose()
}

pub(super) fn u32_of(what: &str, v: i64) -> Result<u32, StateError> {
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
        "user" => OrderKind::CreateUser,
        "cardholder" => OrderKind::CreateCardholder,
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

/// The first element of a card image written since schema 5 (a JSON array), where the images
/// before it are JSON objects: the reader tells the two apart by shape, and a later layout can
/// tell itself apart by this number.
const CARD_IMAGE_FORMAT: u8 = 5;

/// The change-log image of a card, the whole record but its key, positional:
/// `[5, external_user_id, product_code, initial_topup, desired_status, labels, card_id, phase,
/// provider_status, last4, charged, attempt, replaced_by, created_at, updated_at, balance]`.
///
/// Every card written leaves one in the log per run, so its bytes are most of what a card costs
/// in state: no field names (the object form spent 180 bytes on them), no key (the row's
/// `resource_key` holds it), and timestamps as microseconds where that gives back the very text
/// (see [`Stamp`]).
pub(super) fn card_image(c: &CardRecord) -> Result<String, StateError> {
    let money = |d: Decimal| d.to_string();
    serde_json::to_string(&(
        CARD_IMAGE_FORMAT,
        &c.external_user_id,
        &c.product_code,
        c.initial_topup.map(money),
        c.desired_status,
        &c.labels,
        &c.card_id,
        c.phase,
        &c.provider_status,
        &c.last4,
        money(c.charged),
        c.attempt,
        &c.replaced_by,
        StampOut::of(&c.created_at),
        StampOut::of(&c.updated_at),
        c.balance.map(money),
    ))
    .map_err(|e| StateError::Corrupt(format!("card image: {e}")))
}

/// Cards by key from `json_group_object(key, json(image))` over the change log, images of either
/// form: objects (schema 4 and before, never rewritten) and arrays ([`card_image`]).
pub(super) fn cards_from_images(
    packed: &str,
) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
    let images: BTreeMap<CompactString, CardImage> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("change log: {e}")))?;
    images
        .into_iter()
        .map(|(key, image)| Ok((key.clone(), image.into_record(key)?)))
        .collect()
}

/// A card image as read: either form.
enum CardImage {
    /// Schema 4 and before: the record as a JSON object, key included.
    Record(CardRecord),
    Compact(CompactCard),
}

/// [`card_image`]'s array, in its order.
type CompactCard = (
    u8,
    CompactString,
    CompactString,
    Option<String>,
    DesiredStatus,
    Labels,
    Option<CompactString>,
    CardPhase,
    Option<CompactString>,
    Option<CompactString>,
    String,
    u32,
    Option<CompactString>,
    Stamp,
    Stamp,
    Option<String>,
);

impl<'de> Deserialize<'de> for CardImage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = CardImage;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a card image (an object, or an array since schema 5)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CardImage, A::Error> {
                CardRecord::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(CardImage::Record)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<CardImage, A::Error> {
                CompactCard::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(CardImage::Compact)
            }
        }
        d.deserialize_any(Shape)
    }
}

impl CardImage {
    fn into_record(self, key: CompactString) -> Result<CardRecord, StateError> {
        let c = match self {
            CardImage::Record(record) if record.key == key => return Ok(record),
            CardImage::Record(_) => return Err(corrupt("card image of", &key)),
            CardImage::Compact(c) => c,
        };
        if c.0 != CARD_IMAGE_FORMAT {
            return Err(corrupt("card image format", &c.0.to_string()));
        }
        Ok(CardRecord {
            key,
            external_user_id: c.1,
            product_code: c.2,
            initial_topup: opt_decimal("initial top-up", c.3)?,
            desired_status: c.4,
            labels: c.5,
            card_id: c.6,
            phase: c.7,
            provider_status: c.8,
            last4: c.9,
            charged: decimal("charged amount", &c.10)?,
            attempt: c.11,
            replaced_by: c.12,
            created_at: c.13.0.into(),
            updated_at: c.14.0.into(),
            balance: opt_decimal("balance", c.15)?,
        })
    }
}

/// A timestamp in a card image: microseconds since the epoch when formatting them gives back the
/// very text recorded (true of every timestamp cardform writes), else the text itself, so an
/// image always reads back exactly as written.
struct Stamp(String);

/// A timestamp as [`card_image`] writes it (see [`Stamp`]).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum StampOut<'a> {
    Micros(i64),
    Text(&'a str),
}

impl<'a> StampOut<'a> {
    fn of(text: &'a str) -> Self {
        match text.parse::<jiff::Timestamp>() {
            Ok(t) if t.to_string() == text => StampOut::Micros(t.as_microsecond()),
            _ => StampOut::Text(text),
        }
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl serde::de::Visitor<'_> for Either {
            type Value = Stamp;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("microseconds since the epoch, or an RFC 3339 timestamp")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Stamp, E> {
                jiff::Timestamp::from_microsecond(v)
                    .map(|t| Stamp(t.to_string()))
                    .map_err(|_| E::custom(format!("timestamp out of range: {v}")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Stamp, E> {
                let v = i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))?;
                self.visit_i64(v)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Stamp, E> {
                Ok(Stamp(v.to_owned()))
            }
        }
        d.deserialize_any(Either)
    }
}

/// One card row's columns as read, in `card_columns!` order, before decoding: every card read
/// (a packed chunk, a SQLite row, the raw SQLite snapshot) goes through [`card_from_columns`].
/// Enum and decimal columns are borrowed from the input (they never contain JSON escapes) to
/// save allocations that dominate a 100,000-card snapshot.
pub(super) type CardColumns<'a> = (
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
pub(super) fn cards_from_packed(
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
pub(super) fn card_from_columns(p: CardColumns<'_>) -> Result<CardRecord, StateError> {
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

/// An address from its two columns.
pub(super) fn address(kind: String, key: String) -> Result<Address, StateError> {
    let kind: ResourceKind = kind.parse().map_err(|_| corrupt("resource kind", &kind))?;
    Ok(Address::new(kind, key))
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
pub(super) fn orders_from_packed(packed: &str) -> Result<Vec<OrderRecord>, StateError> {
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
pub(super) type RunRow = (i64, String, Option<String>, String, String, String, String);

/// A run from its row, `charged` and `topups_sent` not yet attached.
pub(super) fn run_record(row: RunRow) -> Result<RunRecord, StateError> {
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

/// Runs from a JSON array of packed runs, in the array's order.
pub(super) fn runs_from_packed(packed: &str) -> Result<Vec<RunRecord>, StateError> {
    let all: Vec<RunRow> =
        serde_json::from_str(packed).map_err(|e| StateError::Corrupt(format!("run rows: {e}")))?;
    all.into_iter().map(run_record).collect()
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
pub(super) fn calls_from_packed(packed: &str) -> Result<Vec<CallRecord>, StateError> {
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

/// A call's `at` as stored beside its `at_us` since schema 5: nothing when formatting `at_us`
/// gives back the very text (every call cardform records), else the text itself.
pub(super) fn stored_call_at(at: &str, at_us: i64) -> Option<&str> {
    let formatted = jiff::Timestamp::from_microsecond(at_us).map(|t| t.to_string());
    match formatted {
        Ok(formatted) if formatted == at => None,
        _ => Some(at),
    }
}

/// A call's `at` back from its stored form (see [`stored_call_at`]).
pub(super) fn call_at(stored: Option<String>, at_us: i64) -> Result<String, StateError> {
    match stored {
        Some(at) => Ok(at),
        None => jiff::Timestamp::from_microsecond(at_us)
            .map(|t| t.to_string())
            .map_err(|_| corrupt("call time", &at_us.to_string())),
    }
}

pub(super) fn serial_i64(serial: u64) -> Result<i64, StateError> {
    i64::try_from(serial).map_err(|_| StateError::UnknownSerial(serial))
}

pub(super) fn serial_u64(serial: i64) -> Result<u64, StateError> {
    u64::try_from(serial).map_err(|_| StateError::Corrupt(format!("negative serial {serial}")))
}

/// Microseconds since the epoch of an RFC 3339 timestamp or a bare date (its start, in UTC), so
/// the audit orders and filters calls by instant whatever offset they were written with.
pub(super) fn timestamp_micros(value: &str) -> Result<i64, StateError> {
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

/// What a settled order teaches about a product's issue fee: a completed issue order without a
/// top-up charged exactly that product's fee, the estimate of last resort for products that
/// publish none. Product and top-up come from the request as sent when it says, else from the card.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum FeeLesson {
    Nothing,
    /// Neither the request nor the records at hand say: look up this card in the store.
    NeedsStoredCard(String),
    Fee {
        product: String,
        charge: Decimal,
    },
}

impl FeeLesson {
    /// The lesson of `o`, with the card written in the same batch (if it is this order's).
    pub(super) fn of(o: &OrderRecord, card: Option<&CardRecord>) -> FeeLesson {
        let Some(key) = o.address.card_key() else {
            return FeeLesson::Nothing;
        };
        match card.filter(|c| c.key == key) {
            Some(c) => Self::with_stored(o, Some(c)),
            None if request_field(o, "product_code").is_none() && Self::settled_issue(o) => {
                FeeLesson::NeedsStoredCard(key.to_owned())
            }
            None => Self::with_stored(o, None),
        }
    }

    /// The lesson of `o` once the card (if any) is known.
    pub(super) fn with_stored(o: &OrderRecord, card: Option<&CardRecord>) -> FeeLesson {
        let (Some(charge), true) = (o.charge, Self::settled_issue(o)) else {
            return FeeLesson::Nothing;
        };
        let req_topup = request_field(o, INITIAL_TOPUP_FIELD).is_some_and(|v| !v.is_null());
        let (product, topup) = match (request_field(o, "product_code"), card) {
            (Some(serde_json::Value::String(p)), _) => (p, req_topup),
            (_, Some(c)) => (
                c.product_code.to_string(),
                req_topup || c.initial_topup.is_some(),
            ),
            _ => return FeeLesson::Nothing,
        };
        if topup {
            return FeeLesson::Nothing;
        }
        FeeLesson::Fee { product, charge }
    }

    fn settled_issue(o: &OrderRecord) -> bool {
        o.kind == OrderKind::Issue && o.phase == OrderPhase::Completed && o.charge.is_some()
    }
}

fn request_field(o: &OrderRecord, name: &str) -> Option<serde_json::Value> {
    let mut request: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&o.request).ok()?;
    request.remove(name)
}

/// `text` with the password of `url` (if it has one) hidden: a driver's error may quote what it
/// was given, and no message may carry a credential.
pub(super) fn scrub(text: &str, url: &str) -> String {
    let password = super::location::password_span(url)
        .map(|span| &url[span])
        .filter(|p| !p.is_empty());
    match password {
        Some(p) => text.replace(p, "***"),
        None => text.to_owned(),
    }
}

/// Cards with the serial they were last written under, from a JSON array of `[packed, serial]`.
pub(super) fn cards_with_serial_from_packed(
    packed: &str,
) -> Result<Vec<(CardRecord, u64)>, StateError> {
    let all: Vec<(CardColumns<'_>, i64)> =
        serde_json::from_str(packed).map_err(|e| StateError::Corrupt(format!("card rows: {e}")))?;
    all.into_iter()
        .map(|(p, s)| Ok((card_from_columns(p)?, serial_u64(s)?)))
        .collect()
}

/// Orders with their serial, from a JSON array of `[packed, serial]`, in the array's order.
pub(super) fn orders_with_serial_from_packed(
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
pub(super) fn changes_from_packed(
    packed: &str,
) -> Result<Vec<(Address, u64, Option<String>)>, StateError> {
    let all: Vec<(String, String, i64, Option<String>)> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("change rows: {e}")))?;
    all.into_iter()
        .map(|(kind, key, s, image)| Ok((address(kind, key)?, serial_u64(s)?, image)))
        .collect()
}

/// Observed fees from a JSON array of `[product, charge, observed_at, idempotency_key]`.
pub(super) fn observed_fees_from_packed(
    packed: &str,
) -> Result<Vec<super::ObservedFee>, StateError> {
    let all: Vec<(String, String, String, String)> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("observed fee rows: {e}")))?;
    all.into_iter()
        .map(|(product_code, charge, observed_at, idempotency_key)| {
            Ok(super::ObservedFee {
                charge: decimal("observed fee", &charge)?,
                product_code,
                observed_at,
                idempotency_key,
            })
        })
        .collect()
}

/// The journal's charged orders as `(resource_kind, resource_key, charge, refunded)` rows: what
/// each card cost with its top-ups (see [`super::money`]), by card key. For the upgrade that
/// recomputes the figures of a state from its journal.
pub(super) fn card_costs(
    rows: Vec<(String, String, String, Option<String>)>,
) -> Result<BTreeMap<String, Decimal>, StateError> {
    let mut costs: BTreeMap<String, Decimal> = BTreeMap::new();
    for (kind, key, charge, refunded) in rows {
        let address = address(kind, key)?;
        let Some(card) = address.card_key() else {
            continue;
        };
        let cost = super::money::cost(
            decimal("charge", &charge)?,
            opt_decimal("refunded", refunded)?,
        );
        *costs.entry(card.to_owned()).or_default() += cost;
    }
    Ok(costs)
}

/// The cards whose stored `charged` (`(key, charged)` rows) differs from what `costs` says their
/// orders cost, with the right figure.
pub(super) fn misstated(
    stored: Vec<(String, String)>,
    costs: &BTreeMap<String, Decimal>,
) -> Result<Vec<(String, Decimal)>, StateError> {
    let mut wrong = Vec::new();
    for (key, charged) in stored {
        let right = costs.get(&key).copied().unwrap_or_default();
        if decimal("charged amount", &charged)? != right {
            wrong.push((key, right));
        }
    }
    Ok(wrong)
}

/// Whether writing `o` over `before` (the same journal entry as stored) is a late write of an
/// earlier step: an order seen open after it was seen settled. The journal keeps the settled
/// entry, so what the order cost is never unlearned. `Err` when `o` is not the same request.
pub(super) fn is_late_write(
    before: Option<&OrderRecord>,
    o: &OrderRecord,
) -> Result<bool, StateError> {
    let Some(b) = before else {
        return Ok(false);
    };
    if b.phase.is_open() || !o.phase.is_open() {
        return Ok(false);
    }
    let same = b.address == o.address
        && b.kind == o.kind
        && b.attempt == o.attempt
        && b.request == o.request;
    if !same {
        return Err(StateError::JournalConflict {
            key: o.idempotency_key.clone(),
        });
    }
    Ok(true)
}

/// Sets each run's `charged` from `(sent_serial, "charge -refund charge …")` rows: what the
/// orders each run sent cost, summed exactly (the databases would sum text as floating point).
pub(super) fn attach_charges(
    runs: &mut [RunRecord],
    by_run: Vec<(i64, String)>,
) -> Result<(), StateError> {
    let mut sums = BTreeMap::new();
    for (serial, charges) in by_run {
        let mut sum = Decimal::ZERO;
        for c in charges.split_whitespace() {
            sum += decimal("charge", c)?;
        }
        sums.insert(serial_u64(serial)?, sum);
    }
    for run in runs {
        run.charged = sums.get(&run.serial).copied();
    }
    Ok(())
}

/// Sets each run's `topups_sent` from `(sent_serial, count)` rows.
pub(super) fn attach_topups_sent(
    runs: &mut [RunRecord],
    by_run: Vec<(i64, i64)>,
) -> Result<(), StateError> {
    let mut counts = BTreeMap::new();
    for (serial, n) in by_run {
        counts.insert(serial_u64(serial)?, serial_u64(n)?);
    }
    for run in runs {
        run.topups_sent = counts.get(&run.serial).copied();
    }
    Ok(())
}

/// The top-up rows of the journal (`resource_key, attempt, phase, request, charge, error_slug,
/// refunded`, in journal order) as each top-up's latest attempt.
pub(super) type TopupRow = (
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

pub(super) fn topups_from_rows(
    rows: Vec<TopupRow>,
) -> Result<BTreeMap<String, super::model::TopupState>, StateError> {
    let mut topups = BTreeMap::new();
    for (key, attempt, phase, request, charge, error_slug, refunded) in rows {
        let amount = serde_json::from_str::<serde_json::Value>(&request)
            .ok()
            .and_then(|r| r.get("amount").and_then(|a| a.as_str()).map(str::to_owned))
            .map(|a| decimal("top-up amount", &a))
            .transpose()?;
        let state = super::model::TopupState {
            attempt: u32_of("attempt", attempt)?,
            phase: order_phase(&phase)?,
            amount,
            // What the attempt cost: the one money rule, refunds counted.
            charge: opt_decimal("charge", charge)?
                .map(|c| {
                    Ok::<_, StateError>(c - opt_decimal("refunded", refunded)?.unwrap_or_default())
                })
                .transpose()?,
            error_slug,
        };
        keep_latest(&mut topups, key, state, |s| s.attempt);
    }
    Ok(topups)
}

/// Keeps `state` as `key`'s unless an entry of a later attempt is there. Rows come in journal
/// order, so of one attempt the later entry (a status learned later) wins.
fn keep_latest<K: Ord, S>(
    into: &mut BTreeMap<K, S>,
    key: K,
    state: S,
    attempt: impl Fn(&S) -> u32,
) {
    match into.entry(key) {
        std::collections::btree_map::Entry::Vacant(v) => {
            v.insert(state);
        }
        std::collections::btree_map::Entry::Occupied(mut o) => {
            if attempt(&state) >= attempt(o.get()) {
                o.insert(state);
            }
        }
    }
}

/// [`Snapshot::removed_cards`](super::Snapshot::removed_cards) from the keys that left state and
/// the card orders under them (in journal order).
pub(super) fn removed_cards_from(
    keys: Vec<String>,
    orders: Vec<OrderRecord>,
) -> BTreeMap<CompactString, Vec<OrderRecord>> {
    let mut removed: BTreeMap<CompactString, Vec<OrderRecord>> = keys
        .into_iter()
        .map(|key| (CompactString::from(key), Vec::new()))
        .collect();
    for order in orders {
        if let Some(list) = removed.get_mut(order.address.key.as_str()) {
            list.push(order);
        }
    }
    removed
}

/// The keys of card `card`'s top-ups, as a half-open range `[CARD:, CARD;)`: `;` follows the
/// separator `:` byte for byte, and neither may appear in a key.
pub(super) fn topup_key_range(card: &str) -> (String, String) {
    let sep = crate::model::TOPUP_SEPARATOR;
    let next = char::from_u32(sep as u32 + 1).expect("`;` follows `:`");
    (format!("{card}{sep}"), format!("{card}{next}"))
}

/// A resource's image as the `resources` table holds it: JSON tagged with its kind.
pub(super) fn resource_image_json(image: &ResourceImage) -> Result<String, StateError> {
    serde_json::to_string(image).map_err(|e| StateError::Corrupt(format!("resource image: {e}")))
}

/// The change-log image of a resource: the whole record (address, image, times), so the log alone
/// rebuilds it at any serial.
pub(super) fn resource_change_json(r: &ResourceRecord) -> Result<String, StateError> {
    serde_json::to_string(r).map_err(|e| StateError::Corrupt(format!("resource record: {e}")))
}

/// One packed resource row: kind, key, image (embedded JSON), created_at, updated_at, serial.
type PackedResource = (String, String, ResourceImage, String, String, i64);

/// Resources with the serial they were last written under, from a JSON array of packed rows.
pub(super) fn resources_from_packed(
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
pub(super) fn resources_from_changes(
    packed: &str,
) -> Result<BTreeMap<Address, ResourceRecord>, StateError> {
    let all: Vec<ResourceRecord> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("change log: {e}")))?;
    Ok(all.into_iter().map(|r| (r.address.clone(), r)).collect())
}

/// The record to write once `order` (of a resource that is not a card) is written: the stored
/// record, or the one `declared` with the journal entry, or failing both what the order implies,
/// brought up to the order. `None` when nothing changes (or there is nothing to record).
///
/// `orders` are every order of the resource as the journal holds them now, this one written:
/// what the record says it cost is theirs (see [`super::money`]).
pub(super) fn record_after_order(
    stored: Option<ResourceRecord>,
    declared: Option<&ResourceRecord>,
    order: &OrderRecord,
    orders: &[OrderRecord],
) -> Option<ResourceRecord> {
    if order.address.kind.is_card() {
        return None;
    }
    let declared = declared.filter(|d| d.address == order.address);
    let before = stored.as_ref().map(|r| r.image.clone());
    let mut record = match (stored, declared) {
        (Some(mut r), Some(d)) => {
            r.image.redeclare(&d.image);
            r
        }
        (Some(r), None) => r,
        (None, Some(d)) => d.clone(),
        (None, None) => ResourceRecord {
            address: order.address.clone(),
            image: ResourceImage::from_order(order)?,
            created_at: order.created_at.clone(),
            updated_at: order.updated_at.clone(),
        },
    };
    record.image.follow(order);
    super::money::cost_into(&mut record.image, orders);
    if before.as_ref() == Some(&record.image) {
        return None;
    }
    record.updated_at = order.updated_at.clone().max(record.updated_at);
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(key: &str) -> CardRecord {
        CardRecord {
            key: key.into(),
            external_user_id: "u-1".into(),
            product_code: "VISA_USD_STD".into(),
            initial_topup: Some(Decimal::new(2500, 2)),
            desired_status: DesiredStatus::Frozen,
            labels: Labels::from_iter([("team".to_string(), "ops \"x\"".to_string())]),
            card_id: Some("card_1".into()),
            phase: CardPhase::Frozen,
            provider_status: Some("wait_for_topup_activation_by_user".into()),
            last4: Some("4242".into()),
            charged: Decimal::new(3000, 2),
            balance: Some(Decimal::new(2500, 2)),
            attempt: 2,
            replaced_by: None,
            created_at: "2026-11-30T15:40:15.164228Z".into(),
            updated_at: "2026-11-30T15:40:16Z".into(),
        }
    }

    fn packed(images: &[(&str, String)]) -> String {
        let entries: Vec<String> = images
            .iter()
            .map(|(k, image)| format!("{}:{image}", serde_json::to_string(k).unwrap()))
            .collect();
        format!("{{{}}}", entries.join(","))
    }

    #[test]
    fn a_card_image_reads_back_exactly_and_is_compact() {
        let mut plain = card("a");
        plain.initial_topup = None;
        plain.balance = None;
        plain.labels = Labels::default();
        for c in [card("a"), plain] {
            let image = card_image(&c).unwrap();
            assert!(image.starts_with("[5,"), "{image}");
            assert!(
                !image.contains("\"external_user_id\""),
                "no field names: {image}"
            );
            assert!(
                !image.contains("2026-11-30T15:40"),
                "timestamps as microseconds: {image}"
            );
            let back = cards_from_images(&packed(&[("a", image.clone())])).unwrap();
            assert_eq!(back["a"], c, "{image}");
            let object = serde_json::to_string(&c).unwrap();
            assert!(image.len() * 2 < object.len(), "{image} vs {object}");
        }
    }

    #[test]
    fn a_timestamp_that_microseconds_would_not_give_back_is_kept_as_text() {
        let mut c = card("a");
        c.created_at = "2026-11-30T16:40:15+01:00".into();
        c.updated_at = "2026-11-30T15:40:15.100000Z".into();
        let image = card_image(&c).unwrap();
        assert!(image.contains("\"2026-11-30T16:40:15+01:00\""), "{image}");
        let back = cards_from_images(&packed(&[("a", image)])).unwrap();
        assert_eq!(back["a"], c);
    }

    #[test]
    fn images_of_both_forms_read_side_by_side() {
        let (old, new) = (card("old"), card("new"));
        let both = packed(&[
            ("old", serde_json::to_string(&old).unwrap()),
            ("new", card_image(&new).unwrap()),
        ]);
        let back = cards_from_images(&both).unwrap();
        assert_eq!((&back["old"], &back["new"]), (&old, &new));
    }

    #[test]
    fn an_image_of_another_card_or_an_unknown_format_is_corrupt() {
        let other = packed(&[("b", serde_json::to_string(&card("a")).unwrap())]);
        assert!(matches!(
            cards_from_images(&other),
            Err(StateError::Corrupt(_))
        ));
        let future = card_image(&card("a")).unwrap().replacen("[5,", "[6,", 1);
        let future = packed(&[("a", future)]);
        assert!(matches!(
            cards_from_images(&future),
            Err(StateError::Corrupt(_))
        ));
    }
}
