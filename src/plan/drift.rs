//! Drift as data: what a look at the provider found that state does not say yet, as the records
//! that would say it. `exec::refresh` finds it; `refresh` writes it at once; `plan --refresh`
//! plans against it in memory; `plan --refresh-only` carries it in a plan that `apply` records.
//!
//! Pure: no I/O. It must not decide what counts as drift (that is `exec::refresh`), nor what
//! drift means for the declarations (that is the planner's, from the snapshot it is given).

use compact_str::CompactString;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::state::{CardPhase, CardRecord, OrderKind, OrderPhase, OrderRecord, Snapshot};

/// What changed outside cardform (or finished since the last run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "drift", rename_all = "snake_case")]
pub enum Drift {
    /// The provider reports a different status than state recorded.
    Status {
        key: String,
        card_id: String,
        /// The recorded phase before.
        was: CardPhase,
        now: CardPhase,
        provider_status: String,
    },
    /// An order state still had open reached a terminal status.
    OrderFinished {
        key: String,
        kind: OrderKind,
        order_id: String,
        phase: OrderPhase,
        error_slug: Option<String>,
        #[serde(with = "crate::wire::decimal::option", default)]
        charge: Option<Decimal>,
    },
}

impl Drift {
    pub fn key(&self) -> &str {
        match self {
            Drift::Status { key, .. } | Drift::OrderFinished { key, .. } => key,
        }
    }
}

/// A refund learned of an order settled before refunds were recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundLearned {
    pub key: String,
    pub order_id: String,
    #[serde(with = "crate::wire::decimal")]
    pub refunded: Decimal,
}

/// Everything a look at the provider found for one card: why (the drift, a refund learned), and
/// the records state would hold after it. A card whose only news is its balance or last four
/// digits has no drift line but still a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateUpdate {
    pub key: CompactString,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<Drift>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundLearned>,
    /// The card as state would record it (absent when only an order changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRecord>,
    /// The orders as state would record them, settled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<OrderRecord>,
}

impl StateUpdate {
    /// The writes that record it, as [`crate::state::Store::record_batch`] takes them: the orders
    /// first, then the card, in one transaction.
    pub fn records(&self) -> Vec<(Option<OrderRecord>, Option<CardRecord>)> {
        let mut items: Vec<_> = self
            .orders
            .iter()
            .map(|o| (Some(o.clone()), None))
            .collect();
        if let Some(card) = &self.card {
            items.push((None, Some(card.clone())));
        }
        items
    }
}

/// A plan made against the provider's view (`plan --refresh`, `plan --refresh-only`): the updates
/// it found, which `apply` of the plan records in its own run before anything else.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Refreshed {
    /// `plan --refresh-only`: the plan's only changes are these updates.
    #[serde(default)]
    pub refresh_only: bool,
    #[serde(default)]
    pub updates: Vec<StateUpdate>,
    #[serde(default)]
    pub cards_checked: usize,
    #[serde(default)]
    pub orders_checked: usize,
    /// Cards the look could not read: state keeps what it had for them.
    #[serde(default)]
    pub cards_unread: usize,
}

impl Refreshed {
    /// The drift lines of every update, in key order.
    pub fn drift(&self) -> impl Iterator<Item = &Drift> {
        self.updates.iter().flat_map(|u| u.drift.iter())
    }
}

/// `snapshot` as it would be once `updates` are recorded: what `plan --refresh` plans against,
/// without writing anything. A card's `charged` is the store's to derive and is left as it was.
pub fn apply_in_memory(snapshot: &mut Snapshot, updates: &[StateUpdate]) {
    for update in updates {
        if let Some(card) = &update.card {
            let charged = snapshot.cards.get(&card.key).map(|c| c.charged);
            let mut card = card.clone();
            card.charged = charged.unwrap_or(card.charged);
            snapshot.cards.insert(card.key.clone(), card);
        }
        for order in update.orders.iter().filter(|o| !o.phase.is_open()) {
            if let Some(open) = snapshot.open_orders.get_mut(&order.address) {
                open.retain(|o| o.idempotency_key != order.idempotency_key);
                if open.is_empty() {
                    snapshot.open_orders.remove(&order.address);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Address;

    fn order(key: &str, idem: &str, phase: OrderPhase) -> OrderRecord {
        OrderRecord {
            idempotency_key: idem.into(),
            address: Address::card(key),
            kind: OrderKind::Issue,
            attempt: 1,
            request: "{}".into(),
            order_id: Some(format!("ord-{idem}")),
            phase,
            provider_status: None,
            sub_status: None,
            error_slug: None,
            error_message: None,
            estimated_charge: None,
            charge: None,
            refunded: None,
            created_at: String::new(),
            updated_at: String::new(),
            sent_serial: None,
        }
    }

    #[test]
    fn a_finished_order_leaves_the_open_ones() {
        let mut snapshot = Snapshot::default();
        snapshot.open_orders.insert(
            Address::card("a"),
            vec![
                order("a", "k1", OrderPhase::Open),
                order("a", "k2", OrderPhase::Open),
            ],
        );
        let mut snapshot_b = snapshot.clone();
        apply_in_memory(
            &mut snapshot,
            &[StateUpdate {
                key: "a".into(),
                drift: Vec::new(),
                refund: None,
                card: None,
                orders: vec![order("a", "k1", OrderPhase::Completed)],
            }],
        );
        let left: Vec<_> = snapshot.open_orders[&Address::card("a")]
            .iter()
            .map(|o| o.idempotency_key.as_str())
            .collect();
        assert_eq!(left, ["k2"]);
        // Still open at the provider: still open here.
        apply_in_memory(
            &mut snapshot_b,
            &[StateUpdate {
                key: "a".into(),
                drift: Vec::new(),
                refund: None,
                card: None,
                orders: vec![order("a", "k1", OrderPhase::Open)],
            }],
        );
        assert_eq!(snapshot_b.open_orders[&Address::card("a")].len(), 2);
    }
}
