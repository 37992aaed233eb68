//! What the order journal's rows imply, as pure functions, once for every backend: whether a
//! write is a late one or a journal conflict, what each card cost (the schema-7 recomputation),
//! what each run charged and how many top-ups it sent, each top-up's latest attempt, the orders
//! under removed cards, the record a resource's order leaves, and the fee a settled order
//! teaches. The rules of `rules` and the reads of `reads` call these inside their transaction.
//!
//! Must hold no SQL and do no I/O: rows arrive read (`seam::Tx`), decoded by `codec`.

use compact_str::CompactString;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

use super::codec::{address, decimal, opt_decimal, order_phase, serial_u64, u32_of};
use super::model::{CardRecord, OrderKind, OrderPhase, OrderRecord, ResourceImage, ResourceRecord};
use super::{RunRecord, StateError};
use crate::wire::assumed::INITIAL_TOPUP_FIELD;

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
