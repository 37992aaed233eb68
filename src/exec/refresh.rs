//! `refresh`: re-read every managed card (`cards/get`) and every open order (`orders/check`) from
//! the provider, concurrently (the client's shared rate limit paces the requests), and record
//! what changed outside cardform: drift. [`observe`] only reads (what `plan --refresh` plans
//! against); [`refresh`] also records what it found. Returns the drift as data and reports
//! progress as [`RefreshEvent`]s; never prints.
//!
//! It sends no mutation: an order that was journaled but never acknowledged cannot be looked up
//! without re-sending it, so it is left for `apply` to resume. Of a card's details it keeps the
//! status, `last4` and the card's balance only: the [`crate::wire::Card`] it reads is dropped
//! here, never serialized.

use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

use super::ExecError;
use crate::client::{Client, ClientError};
use crate::state::{CardPhase, CardRecord, OrderKind, OrderRecord, Snapshot, Store};
use crate::wire::{CardStatus, Clock, timestamp::now_rfc3339};

pub use crate::plan::drift::{Drift, RefundLearned, StateUpdate};

/// A card or order that could not be read this time; state keeps what it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unread {
    pub key: String,
    /// The card id or order id that was asked about.
    pub id: String,
    pub slug: String,
    pub message: String,
}

/// What a refresh found.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct RefreshReport {
    pub cards_checked: usize,
    pub orders_checked: usize,
    pub drift: Vec<Drift>,
    pub unread: Vec<Unread>,
    /// Cards of which something could not be read (the card, or an open order of it): state
    /// keeps what it had for them, so nothing can be said of their drift.
    pub cards_unread: usize,
    /// Those cards per error slug; a card that met two slugs counts under each.
    pub cards_unread_by_slug: BTreeMap<String, usize>,
    /// Open orders never acknowledged by the provider: only `apply` can resume them.
    pub unacknowledged: Vec<String>,
    /// Charges of orders found finished during this refresh.
    #[serde(with = "crate::wire::decimal")]
    pub charged: Decimal,
    /// Failed orders settled before schema 7 whose refund was unknown, read again: what the
    /// provider gave back for each (zero when it kept the charge).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refunds_learned: Vec<RefundLearned>,
    /// The currency state records its money in, when a run has learned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// Progress of a refresh, for whoever draws it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RefreshEvent {
    /// `total` cards will be read: `cards` of them by card id, `orders` with an open order.
    Started {
        total: usize,
        cards: usize,
        orders: usize,
    },
    Drift {
        drift: Drift,
    },
    Unread {
        unread: Unread,
    },
    /// One card (and its open order, if any) was read.
    Checked {
        key: String,
    },
}

/// What a look at the provider found: the report people read, and the records that say it.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub report: RefreshReport,
    /// One per card with news, in key order.
    pub updates: Vec<StateUpdate>,
}

/// What state holds that a look at the provider starts from.
pub struct Known {
    pub snapshot: Snapshot,
    /// Failed orders settled before schema 7, whose refund is unknown.
    pub refunds_unknown: Vec<OrderRecord>,
    pub currency: Option<String>,
}

impl Known {
    pub async fn read(store: &Store) -> Result<Self, crate::state::StateError> {
        Ok(Known {
            snapshot: store.snapshot().await?,
            refunds_unknown: store.refunds_unknown().await?,
            currency: store.currency().await?,
        })
    }
}

/// Re-read everything state manages and record what changed under `serial`.
pub async fn refresh(
    store: &Store,
    client: &Client,
    clock: Arc<dyn Clock>,
    serial: u64,
    parallelism: usize,
    events: Arc<dyn Fn(RefreshEvent) + Send + Sync>,
) -> Result<RefreshReport, ExecError> {
    let known = Known::read(store).await?;
    let (observed, fatal) = read_all(
        &known,
        client,
        clock,
        parallelism,
        events,
        Some((store, serial)),
    )
    .await;
    match fatal {
        Some(e) => Err(e.into()),
        None => Ok(observed.report),
    }
}

/// Writes `updates` under `serial`: each card with its orders in one transaction, as they were
/// found.
pub async fn record(
    store: &Store,
    serial: u64,
    updates: &[StateUpdate],
) -> Result<(), crate::state::StateError> {
    for update in updates {
        store.record_batch(serial, &update.records()).await?;
    }
    Ok(())
}

/// Re-read everything `known` manages from the provider and say what changed, writing nothing:
/// what `plan --refresh` plans against and `--refresh-only` plans to record.
pub async fn observe(
    known: &Known,
    client: &Client,
    clock: Arc<dyn Clock>,
    parallelism: usize,
    events: Arc<dyn Fn(RefreshEvent) + Send + Sync>,
) -> Observed {
    // Nothing to write, so no write can fail.
    read_all(known, client, clock, parallelism, events, None)
        .await
        .0
}

/// [`observe`]; with `record_to`, each card's update is written there as soon as it is read (a
/// refresh of a large fleet keeps what it read if stopped, and never holds every update at once)
/// and none is returned. The first write that failed, after which nothing more is written.
async fn read_all(
    known: &Known,
    client: &Client,
    clock: Arc<dyn Clock>,
    parallelism: usize,
    events: Arc<dyn Fn(RefreshEvent) + Send + Sync>,
    record_to: Option<(&Store, u64)>,
) -> (Observed, Option<crate::state::StateError>) {
    let snapshot = &known.snapshot;
    let mut report = RefreshReport {
        currency: known.currency.clone(),
        ..RefreshReport::default()
    };
    let work = work_of(snapshot, &mut report);
    events(RefreshEvent::Started {
        total: work.len(),
        cards: work.iter().filter(|(c, _)| c.card_id.is_some()).count(),
        orders: work.iter().map(|(_, o)| o.len()).sum(),
    });

    // A card id an order names is bound to one card only, as in apply: against state and
    // against what this refresh binds, whichever card's task gets there first.
    let bound = Arc::new(super::perform::Bindings::of(snapshot.cards.values()));
    let slots = Arc::new(Semaphore::new(parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (card, orders) in work {
        let slots = slots.clone();
        let client = client.clone();
        let clock = clock.clone();
        let bound = bound.clone();
        tasks.spawn(async move {
            let _permit = slots.acquire_owned().await.expect("never closed");
            refresh_one(&client, clock.as_ref(), &bound, card, orders).await
        });
    }
    let mut updates = Vec::new();
    let mut fatal = None;
    while let Some(joined) = tasks.join_next().await {
        let one = match joined {
            Ok(one) => one,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => continue,
        };
        events(RefreshEvent::Checked {
            key: one.key.clone(),
        });
        report.cards_checked += usize::from(one.card_checked);
        report.orders_checked += one.orders_checked;
        report.charged += one.charged;
        for d in &one.drift {
            events(RefreshEvent::Drift { drift: d.clone() });
            report.drift.push(d.clone());
        }
        for u in one.unread {
            events(RefreshEvent::Unread { unread: u.clone() });
            report.unread.push(u);
        }
        if one.card.is_some() || !one.orders.is_empty() {
            updates.push(StateUpdate {
                key: one.key.as_str().into(),
                drift: one.drift,
                refund: None,
                card: one.card,
                orders: one.orders,
            });
        }
        if let Some((store, serial)) = record_to
            && fatal.is_none()
            && let Some(update) = updates.pop()
            && let Err(e) = store.record_batch(serial, &update.records()).await
        {
            // Read on, so the report is whole; nothing more is written.
            fatal = Some(e);
        }
    }
    updates.extend(learn_refunds(known, client, clock.as_ref(), &mut report).await);
    if let Some((store, serial)) = record_to {
        let refunds = std::mem::take(&mut updates);
        if fatal.is_none()
            && let Err(e) = record(store, serial, &refunds).await
        {
            fatal = Some(e);
        }
    }
    // Tasks finish in any order; the report must not.
    updates.sort_by(|a, b| a.key.cmp(&b.key));
    sort_and_count(&mut report);
    (Observed { report, updates }, fatal)
}

/// The cards a refresh reads, each with its acknowledged open orders: those with a provider id
/// or an order to check. Cards with an order never acknowledged are listed in `report`.
fn work_of(
    snapshot: &crate::state::Snapshot,
    report: &mut RefreshReport,
) -> Vec<(CardRecord, Vec<OrderRecord>)> {
    let mut work = Vec::new();
    for (key, card) in &snapshot.cards {
        let (acknowledged, unacknowledged): (Vec<_>, Vec<_>) = snapshot
            .open_card_orders(key)
            .iter()
            .cloned()
            .partition(|o| o.order_id.is_some());
        if !unacknowledged.is_empty() {
            report.unacknowledged.push(key.to_string());
        }
        if card.card_id.is_some() || !acknowledged.is_empty() {
            work.push((card.clone(), acknowledged));
        }
    }
    work
}

/// Puts the report's drift and unread cards in key order, and counts the unread cards (once
/// each, and once per slug).
fn sort_and_count(report: &mut RefreshReport) {
    report.drift.sort_by(|a, b| a.key().cmp(b.key()));
    report.unread.sort_by(|a, b| a.key.cmp(&b.key));
    let mut seen = std::collections::BTreeSet::new();
    for u in &report.unread {
        if seen.insert((u.slug.as_str(), u.key.as_str())) {
            *report
                .cards_unread_by_slug
                .entry(u.slug.clone())
                .or_default() += 1;
        }
    }
    report.cards_unread = seen
        .iter()
        .map(|(_, key)| *key)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
}

/// Reads again the failed orders whose refund state does not know (settled before schema 7,
/// which kept no `refunded_amount`) and says what the provider gave back, so what their cards
/// cost becomes the provider's figure. An order that cannot be read is unread, as a card is.
async fn learn_refunds(
    known: &Known,
    client: &Client,
    clock: &dyn Clock,
    report: &mut RefreshReport,
) -> Vec<StateUpdate> {
    let mut updates = Vec::new();
    for order in &known.refunds_unknown {
        let mut order = order.clone();
        let order_id = order.order_id.clone().unwrap_or_default();
        let key = order
            .address
            .card_key()
            .unwrap_or(&order.address.key)
            .to_owned();
        report.orders_checked += 1;
        match client.check_order(&order_id).await {
            Ok(o) if o.order_id == order_id && o.status == crate::wire::OrderStatus::Failed => {
                order.refunded = o.refunded();
                order.updated_at = now_rfc3339(clock);
                let learned = RefundLearned {
                    key: key.clone(),
                    order_id,
                    refunded: order.refunded.unwrap_or_default(),
                };
                report.refunds_learned.push(learned.clone());
                updates.push(StateUpdate {
                    key: key.as_str().into(),
                    drift: Vec::new(),
                    refund: Some(learned),
                    card: None,
                    orders: vec![order],
                });
            }
            Ok(o) => report.unread.push(Unread {
                key,
                id: order_id,
                slug: super::slugs::ORDER_MISMATCH.into(),
                message: format!(
                    "the journal says this order failed, the provider says {}; nothing was recorded for it",
                    o.status
                ),
            }),
            Err(e) => report.unread.push(unread(&key, &order_id, &e)),
        }
    }
    updates
}

#[derive(Default)]
struct One {
    key: String,
    card_checked: bool,
    orders_checked: usize,
    charged: Decimal,
    drift: Vec<Drift>,
    unread: Vec<Unread>,
    /// The card as state should now record it, when it changed.
    card: Option<CardRecord>,
    /// Orders found finished, settled.
    orders: Vec<OrderRecord>,
}

fn unread(key: &str, id: &str, e: &ClientError) -> Unread {
    Unread {
        key: key.to_owned(),
        id: id.to_owned(),
        slug: super::slugs::of(e),
        message: e.to_string(),
    }
}

/// One card: first its open orders, oldest first (an issue order may give it a card id), then the
/// card itself.
async fn refresh_one(
    client: &Client,
    clock: &dyn Clock,
    bound: &super::perform::Bindings,
    original: CardRecord,
    orders: Vec<OrderRecord>,
) -> One {
    let mut one = One {
        key: original.key.to_string(),
        ..One::default()
    };
    let mut card = original.clone();
    let mut finished_orders = Vec::new();
    // The phase a still-open status order is moving the card to: reaching it is not drift.
    let mut expected = None;

    for mut order in orders {
        let order_id = order.order_id.clone().unwrap_or_default();
        one.orders_checked += 1;
        let answer = client.check_order(&order_id).await;
        // The same trust as apply's: an answer that contradicts the journal is not bound.
        if let Ok(o) = &answer
            && let Some(why) =
                super::mutation::CardMutation::from_journal(order.kind, &order.request)
                    .ok()
                    .and_then(|m| m.mismatch(&order, o))
        {
            one.unread.push(Unread {
                key: card.key.to_string(),
                id: order_id,
                slug: super::slugs::ORDER_MISMATCH.into(),
                message: format!("{why}; nothing was recorded for it"),
            });
            continue;
        }
        match answer {
            Ok(o)
                if o.status.is_terminal()
                    && let Some(why) = bound.refuse(&order, &card, &o) =>
            {
                // Left open: the next apply or refresh looks at it again.
                one.unread.push(Unread {
                    key: card.key.to_string(),
                    id: order_id,
                    slug: super::slugs::ORDER_MISMATCH.into(),
                    message: format!("{why}; nothing was recorded for it"),
                });
            }
            Ok(o) if o.status.is_terminal() => {
                super::settle(&mut order, &mut card, &o, &now_rfc3339(clock));
                // What it cost (its refund counted), as every other figure reads it.
                one.charged += crate::state::money::order_cost(&order).unwrap_or_default();
                one.drift.push(Drift::OrderFinished {
                    key: card.key.to_string(),
                    kind: order.kind,
                    order_id,
                    phase: order.phase,
                    error_slug: order.error_slug.clone(),
                    charge: order.charge,
                });
                finished_orders.push(order);
            }
            Ok(_) => {
                expected = match order.kind {
                    OrderKind::Freeze => Some(CardPhase::Frozen),
                    OrderKind::Unfreeze => Some(CardPhase::Active),
                    OrderKind::Issue
                    | OrderKind::Topup
                    | OrderKind::CreateUser
                    | OrderKind::CreateCardholder => None,
                };
            }
            Err(e) => one.unread.push(unread(&card.key, &order_id, &e)),
        }
    }

    read_card(client, &mut card, expected, &mut one).await;

    if card != original {
        card.updated_at = now_rfc3339(clock).into();
        one.card = Some(card);
    }
    one.orders = finished_orders;
    one
}

/// Reads `card` at the provider (when it has an id) into its record: its status, last four
/// digits and balance; a phase it moved to other than `expected` (where an open order is moving
/// it) is drift. The card's number and CVV are dropped as soon as they are read.
async fn read_card(
    client: &Client,
    card: &mut CardRecord,
    expected: Option<CardPhase>,
    one: &mut One,
) {
    let Some(card_id) = card.card_id.clone() else {
        return;
    };
    one.card_checked = true;
    match client.get_card(&card_id).await {
        Ok(seen)
            if seen
                .external_user_id
                .as_deref()
                .is_some_and(|u| u != card.external_user_id) =>
        {
            // Not this card's: a provider reset, or an id bound to the wrong key.
            one.unread.push(Unread {
                key: card.key.to_string(),
                id: card_id.to_string(),
                slug: super::slugs::ORDER_MISMATCH.into(),
                message: format!(
                    "card {card_id} belongs to user {}, not {}; nothing was recorded for it",
                    seen.external_user_id.as_deref().unwrap_or_default(),
                    card.external_user_id
                ),
            });
        }
        Ok(seen) => {
            // Only these survive the read: the Card (with its PAN and CVV) is dropped here.
            let status = seen.status.to_string();
            let last4 = seen.last4();
            let balance = seen.balance;
            drop(seen);
            let was = card.phase;
            if let Some(now) = phase_of(&status) {
                card.phase = now;
            }
            card.provider_status = Some(status.as_str().into());
            if last4.is_some() {
                card.last4 = last4.map(Into::into);
            }
            // A provider that says nothing of the balance leaves the last one recorded.
            if balance.is_some() {
                card.balance = balance;
            }
            // A phase an order just moved (or is moving) the card to is not drift.
            if card.phase != was && expected != Some(card.phase) {
                one.drift.push(Drift::Status {
                    key: card.key.to_string(),
                    card_id: card_id.to_string(),
                    was,
                    now: card.phase,
                    provider_status: status,
                });
            }
        }
        Err(e) => one.unread.push(unread(&card.key, &card_id, &e)),
    }
}

/// The card phase a provider status means; `None` for statuses on the way to active (the
/// recorded phase stays).
pub fn phase_of(provider_status: &str) -> Option<CardPhase> {
    let status: CardStatus =
        serde_json::from_value(serde_json::Value::String(provider_status.to_owned())).ok()?;
    match status {
        CardStatus::Active | CardStatus::WaitForTopupActivationByUser => Some(CardPhase::Active),
        CardStatus::Frozen => Some(CardPhase::Frozen),
        CardStatus::Closed => Some(CardPhase::Closed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_statuses_map_to_phases() {
        assert_eq!(phase_of("active"), Some(CardPhase::Active));
        assert_eq!(
            phase_of("wait_for_topup_activation_by_user"),
            Some(CardPhase::Active)
        );
        assert_eq!(phase_of("frozen"), Some(CardPhase::Frozen));
        assert_eq!(phase_of("closed"), Some(CardPhase::Closed));
        assert_eq!(phase_of("pending_activation"), None);
        assert_eq!(phase_of("something_new"), None);
    }
}
