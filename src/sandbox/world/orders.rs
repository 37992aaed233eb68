//! Orders and their state machine: the order record, the timed side effects each kind of order
//! has (card created, top-up credited, status changed, refund), the event queue that applies them
//! in due order, and the order as `orders/check` shows it at any moment.
//!
//! An order's progress is a function of its creation time and `now`; nothing here may read the
//! clock or decide whether an order is accepted (the endpoint handlers do that before
//! [`World::new_order`]).

use std::cmp::Reverse;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::catalog::ProductDef;
use super::{ApiError, CompletedAt, Settings, World, err, iso, to_value};
use crate::wire::assumed;
use crate::wire::error::slug;
use crate::wire::{CardStatus, IssueStatus, Order, OrderStatus, OrderType, TopupStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    Issue,
    Topup,
    Freeze,
    Unfreeze,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Failure {
    pub(super) slug: String,
    pub(super) message: String,
    /// What the failed order gives back to the master balance (see [`RefundPolicy`]). `None` in
    /// a world file written before refund policies, when every failed order gave back all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) refund: Option<Decimal>,
}

impl OrderRec {
    /// What this order gives back when it fails.
    fn refund(&self) -> Decimal {
        self.fail
            .as_ref()
            .map_or(Decimal::ZERO, |f| f.refund.unwrap_or(self.charge))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct OrderRec {
    pub(super) id: String,
    pub(super) kind: Kind,
    pub(super) created: u64,
    latency: u64,
    /// For an issue order: the id the card will get once created (hidden until then).
    pub(super) card_id: String,
    pub(super) external_user_id: String,
    pub(super) product_code: String,
    amount: Option<Decimal>,
    charge: Decimal,
    balance_before: Decimal,
    balance_after: Decimal,
    /// Decided at creation (seeded RNG), revealed when the card would have been created.
    pub(super) fail: Option<Failure>,
    /// How many of the order's timed side effects have been applied.
    pub(super) stage: u8,
    /// When a read first saw the order ended: what `--completed-at on-read` stamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read_ended: Option<u64>,
}

impl OrderRec {
    /// When the next side effect is due, if any is left.
    pub(super) fn next_event(&self) -> Option<u64> {
        match (self.kind, self.stage) {
            (Kind::Issue, 0) => Some(self.created + self.latency / 3),
            (Kind::Issue, 1) if self.fail.is_none() => Some(self.created + self.latency),
            (Kind::Topup | Kind::Freeze | Kind::Unfreeze, 0) => Some(self.created + self.latency),
            _ => None,
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.next_event().is_some()
    }
}

impl World {
    /// Apply every side effect due by `now` (cards created, statuses changed, refunds), in the
    /// order they fall due. Orders are otherwise computed lazily from their creation time.
    pub fn advance(&mut self, now: u64) {
        while let Some(Reverse((t, _))) = self.events.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, id))) = self.events.pop() else {
                break;
            };
            self.apply_next_stage(&id);
            match self.orders.get(&id).and_then(OrderRec::next_event) {
                Some(next) => self.events.push(Reverse((next, id))),
                None => self.order_ended(id),
            }
        }
    }

    fn apply_next_stage(&mut self, id: &str) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        let (kind, stage) = (o.kind, o.stage);
        o.stage += 1;
        let o = o.clone();
        self.dirty = true;
        match (kind, stage) {
            (Kind::Issue, 0) => match &o.fail {
                Some(_) => {
                    self.balance += o.refund();
                    self.total_refunded += o.refund();
                }
                None => {
                    let card = self.new_card(&o);
                    self.cards.insert(card.card_id.clone(), card);
                }
            },
            (Kind::Issue, _) => {
                if let Some(c) = self.cards.get_mut(&o.card_id) {
                    c.issue_completed = true;
                    c.balance += o.amount.unwrap_or_default();
                    // Closing is final, even when the issue order finishes after it.
                    if c.status != CardStatus::Closed {
                        c.status = match o.amount {
                            Some(_) => CardStatus::Active,
                            None => CardStatus::WaitForTopupActivationByUser,
                        };
                    }
                }
            }
            (Kind::Topup, _) if o.fail.is_some() => {
                // A failed top-up gives its money back, as a failed issue order does.
                self.balance += o.refund();
                self.total_refunded += o.refund();
            }
            (Kind::Topup, _) => {
                if let Some(c) = self.cards.get_mut(&o.card_id) {
                    c.balance += o.amount.unwrap_or_default();
                    if c.status == CardStatus::WaitForTopupActivationByUser {
                        c.status = CardStatus::Active;
                    }
                }
            }
            (Kind::Freeze, _) => {
                if let Some(c) = self.cards.get_mut(&o.card_id) {
                    c.pending_change = None;
                    // A freeze accepted before the card was closed must not reopen it.
                    if c.status != CardStatus::Closed {
                        c.status_before_freeze = Some(c.status.clone());
                        c.status = CardStatus::Frozen;
                    }
                }
            }
            (Kind::Unfreeze, _) => {
                if let Some(c) = self.cards.get_mut(&o.card_id) {
                    c.pending_change = None;
                    if c.status != CardStatus::Closed {
                        c.status = c.status_before_freeze.take().unwrap_or(CardStatus::Active);
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn new_order(
        &mut self,
        s: &Settings,
        now: u64,
        kind: Kind,
        card_id: String,
        external_user_id: String,
        product: &ProductDef,
        amount: Option<Decimal>,
        charge: Decimal,
        fail: Option<Failure>,
    ) -> String {
        let id = self.new_id("ord");
        let before = self.balance;
        self.balance -= charge;
        self.total_charged += charge;
        let rec = OrderRec {
            id: id.clone(),
            kind,
            created: now,
            latency: s.latency_at(now),
            card_id,
            external_user_id,
            product_code: product.code.to_owned(),
            amount,
            charge,
            balance_before: before,
            balance_after: self.balance,
            fail,
            stage: 0,
            read_ended: None,
        };
        if let Some(t) = rec.next_event() {
            self.events.push(Reverse((t, id.clone())));
        }
        self.orders.insert(id.clone(), rec);
        self.dirty = true;
        id
    }

    /// The order as the creating call answers it, after applying whatever is already due
    /// (everything, with a zero latency).
    pub(super) fn order_response(
        &mut self,
        s: &Settings,
        id: String,
        now: u64,
    ) -> Result<Value, ApiError> {
        self.advance(now);
        if !self.orders.contains_key(&id) {
            return Err(err(slug::PROVIDER_ERROR, "order vanished"));
        }
        self.read_order(s, &id, now)
    }

    /// An order as a read shows it at `now` (`orders/check`, or the creating call's answer),
    /// noting when a read first saw it ended, for `--completed-at on-read`.
    pub(super) fn read_order(
        &mut self,
        s: &Settings,
        id: &str,
        now: u64,
    ) -> Result<Value, ApiError> {
        let o = self
            .orders
            .get(id)
            .ok_or_else(|| err(slug::ORDER_NOT_FOUND, format!("no order {id}")))?;
        if s.completed_at == CompletedAt::OnRead
            && o.read_ended.is_none()
            && self.order_view(s, o, now).status.is_terminal()
        {
            if let Some(o) = self.orders.get_mut(id) {
                o.read_ended = Some(now);
            }
            self.dirty = true;
        }
        let o = &self.orders[id];
        to_value(&self.order_view(s, o, now))
    }

    /// An order as `orders/check` shows it at `now`.
    pub(super) fn order_view(&self, s: &Settings, o: &OrderRec, now: u64) -> Order {
        let elapsed = now.saturating_sub(o.created);
        let l = o.latency;
        let done = elapsed >= l;
        let card = self.cards.get(&o.card_id);
        let mut data = Map::new();
        let mut v = Order {
            order_id: o.id.clone(),
            order_type: match o.kind {
                Kind::Issue => OrderType::CardIssue,
                Kind::Topup => OrderType::CardTopup,
                Kind::Freeze => OrderType::CardFreeze,
                Kind::Unfreeze => OrderType::CardUnfreeze,
            },
            status: OrderStatus::New,
            card_id: None,
            balance_before: Some(o.balance_before),
            balance_after: Some(o.balance_after),
            last_error: None,
            last_error_slug: None,
            data: Value::Null,
            created_at: iso(o.created),
            completed_at: done.then(|| iso(o.created + l)),
            failed_at: None,
            issue_status: None,
            is_issued: None,
            provider_card_status: None,
            topup_status: None,
        };
        match o.kind {
            Kind::Issue => {
                data.insert("product_code".into(), json!(o.product_code));
                data.insert("external_user_id".into(), json!(o.external_user_id));
                if let Some(a) = o.amount {
                    data.insert(assumed::INITIAL_TOPUP_FIELD.into(), json!(a.to_string()));
                }
                let created = elapsed >= l / 3;
                let (status, issue) = match (&o.fail, o.amount) {
                    _ if !created => (OrderStatus::New, IssueStatus::CardCreatePending),
                    (Some(f), _) => {
                        v.completed_at = None;
                        v.failed_at = Some(iso(o.created + l / 3));
                        v.last_error = Some(f.message.clone());
                        v.last_error_slug = Some(f.slug.clone());
                        refunded(&mut data, o);
                        (OrderStatus::Failed, IssueStatus::CardCreateError)
                    }
                    (None, _) if done => (
                        OrderStatus::Completed,
                        if o.amount.is_some() {
                            IssueStatus::Completed
                        } else {
                            IssueStatus::InitialTopupSkipped
                        },
                    ),
                    (None, None) => (OrderStatus::Processing, IssueStatus::CardCreateDone),
                    (None, Some(_)) => (
                        OrderStatus::Processing,
                        if elapsed < l / 2 {
                            IssueStatus::CardCreateDone
                        } else if elapsed < l / 6 * 5 {
                            IssueStatus::InitialTopupInProgress
                        } else {
                            IssueStatus::InitialTopupDone
                        },
                    ),
                };
                let issued = created && o.fail.is_none();
                v.status = status;
                v.issue_status = Some(issue);
                v.is_issued = Some(issued);
                if issued && !s.completed_without_card_id {
                    // The hostile switch names the first card ever issued, whoever's it is.
                    let named = match &self.first_card {
                        Some(first) if s.same_card_for_every_order => first,
                        _ => &o.card_id,
                    };
                    v.card_id = Some(named.clone());
                    v.provider_card_status = card.map(|c| c.status.to_string());
                }
            }
            Kind::Topup => {
                data.insert("card_id".into(), json!(o.card_id));
                data.insert(
                    "amount".into(),
                    json!(o.amount.unwrap_or_default().to_string()),
                );
                v.card_id = Some(o.card_id.clone());
                let (status, topup) = if let (true, Some(f)) = (done, &o.fail) {
                    v.completed_at = None;
                    v.failed_at = Some(iso(o.created + l));
                    v.last_error = Some(f.message.clone());
                    v.last_error_slug = Some(f.slug.clone());
                    refunded(&mut data, o);
                    (OrderStatus::Failed, TopupStatus::Failed)
                } else if done {
                    (OrderStatus::Completed, TopupStatus::Completed)
                } else if elapsed < l / 3 {
                    (OrderStatus::New, TopupStatus::New)
                } else if elapsed < l / 3 * 2 {
                    (OrderStatus::Processing, TopupStatus::ProviderInProgress)
                } else {
                    (OrderStatus::Processing, TopupStatus::ProviderVerification)
                };
                v.status = status;
                v.topup_status = Some(topup);
            }
            Kind::Freeze | Kind::Unfreeze => {
                data.insert("card_id".into(), json!(o.card_id));
                data.insert("external_user_id".into(), json!(o.external_user_id));
                v.card_id = Some(o.card_id.clone());
                v.provider_card_status = card.map(|c| c.status.to_string());
                v.status = if done {
                    OrderStatus::Completed
                } else if elapsed < l / 2 {
                    OrderStatus::New
                } else {
                    OrderStatus::Processing
                };
            }
        }
        v.data = Value::Object(data);
        // What the provider says of when the order ended (REFERENCE.md §3: optional, maybe
        // stamped when next read): the real time, unless told otherwise.
        let stamp = |at: Option<String>| match s.completed_at {
            CompletedAt::Precise => at,
            CompletedAt::Omitted => None,
            CompletedAt::OnRead => at.and(o.read_ended.map(iso)),
            CompletedAt::Seconds => at
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .and_then(|t| jiff::Timestamp::from_second(t.as_second()).ok())
                .map(|t| t.to_string()),
        };
        v.completed_at = stamp(v.completed_at.take());
        v.failed_at = stamp(v.failed_at.take());
        v
    }
}

/// A failed order's `data` says what it gave back, when it gave anything: an order failed
/// without `refunded_amount` kept its charge (REFERENCE.md §3).
fn refunded(data: &mut Map<String, Value>, o: &OrderRec) {
    let refund = o.refund();
    if !refund.is_zero() {
        data.insert(
            assumed::REFUNDED_AMOUNT_FIELD.into(),
            json!(refund.to_string()),
        );
    }
}
