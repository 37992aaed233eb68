//! The records state keeps, as plain data shared with `plan` and `exec`. No SQL here.

use compact_str::CompactString;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::model::{Address, DesiredStatus, Labels, Part, ResourceKind};

/// Where a managed card is in its life, as cardform last recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardPhase {
    /// An issue order is journaled or open; no card yet (or not yet confirmed).
    Pending,
    /// The last issue order failed; no card exists. A re-issue uses the next attempt number.
    Failed,
    Active,
    Frozen,
    /// Closed at the provider (found by refresh).
    Closed,
}

impl CardPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            CardPhase::Pending => "pending",
            CardPhase::Failed => "failed",
            CardPhase::Active => "active",
            CardPhase::Frozen => "frozen",
            CardPhase::Closed => "closed",
        }
    }
}

/// A card cardform manages: what was declared when it was last applied, and what the provider said.
/// Never holds a PAN or CVV; `last4` at most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardRecord {
    // Short strings are inline (no allocation) up to 24 bytes: a state of a million cards holds
    // a million of each, and a separate allocation apiece was about 200 MB of `plan`'s memory.
    pub key: CompactString,
    pub external_user_id: CompactString,
    pub product_code: CompactString,
    #[serde(with = "crate::wire::decimal::option", default)]
    pub initial_topup: Option<Decimal>,
    /// The status that was declared when cardform last acted on this card.
    pub desired_status: DesiredStatus,
    pub labels: Labels,
    pub card_id: Option<CompactString>,
    pub phase: CardPhase,
    /// The provider's own status string, as last seen.
    pub provider_status: Option<CompactString>,
    pub last4: Option<CompactString>,
    /// What this card and its top-ups cost: [`super::money::resource_cost`] of their orders.
    /// Derived by the store from the journal whenever the card or one of those orders is
    /// written, whatever a caller puts here, so settling an order twice changes nothing.
    #[serde(with = "crate::wire::decimal")]
    pub charged: Decimal,
    /// The card's own balance as the provider last reported it (`refresh`); `None` until a read
    /// returned one. Images written before schema 4 have none.
    #[serde(
        with = "crate::wire::decimal::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub balance: Option<Decimal>,
    /// The issue attempt the current (or last) issue order belongs to; starts at 1.
    pub attempt: u32,
    /// When the card was superseded by a replacement, the key of the new card record (if any).
    pub replaced_by: Option<CompactString>,
    /// RFC 3339.
    pub created_at: CompactString,
    pub updated_at: CompactString,
}

/// What an order does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    Issue,
    Topup,
    Freeze,
    Unfreeze,
    /// `users/create`: answered at once with the user, no order to track.
    CreateUser,
    /// `cardholders/create`: answered at once with the cardholder (KYC then runs at the
    /// provider); its personal fields are journalled as keyed digests only.
    CreateCardholder,
}

impl OrderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Issue => "issue",
            OrderKind::Topup => "topup",
            OrderKind::Freeze => "freeze",
            OrderKind::Unfreeze => "unfreeze",
            OrderKind::CreateUser => "user",
            OrderKind::CreateCardholder => "cardholder",
        }
    }
}

/// Where a journaled order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderPhase {
    /// Committed to the journal; the request may or may not have reached the provider.
    Prepared,
    /// The provider acknowledged it (we know its order id); not terminal yet.
    Open,
    Completed,
    Failed,
}

impl OrderPhase {
    /// How far along an order is: prepared, then open, then an end.
    fn rank(self) -> u8 {
        match self {
            OrderPhase::Prepared => 0,
            OrderPhase::Open => 1,
            OrderPhase::Completed | OrderPhase::Failed => 2,
        }
    }

    pub fn is_open(self) -> bool {
        matches!(self, OrderPhase::Prepared | OrderPhase::Open)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            OrderPhase::Prepared => "prepared",
            OrderPhase::Open => "open",
            OrderPhase::Completed => "completed",
            OrderPhase::Failed => "failed",
        }
    }
}

/// One entry of the order journal. Written *before* the mutation is sent (journal first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Deterministic: derived from (lineage, address, kind, attempt). Unique in the journal.
    pub idempotency_key: String,
    /// The resource the order acts on.
    pub address: Address,
    pub kind: OrderKind,
    pub attempt: u32,
    /// The request fields sent (JSON, no timestamp, no secrets), with any field its kind marks
    /// personal replaced by a keyed digest: a retry resends the rest as they are.
    pub request: String,
    pub order_id: Option<String>,
    pub phase: OrderPhase,
    /// The provider's `status` / `issue_status` strings, as last seen.
    pub provider_status: Option<String>,
    pub sub_status: Option<String>,
    pub error_slug: Option<String>,
    pub error_message: Option<String>,
    #[serde(with = "crate::wire::decimal::option", default)]
    pub estimated_charge: Option<Decimal>,
    /// What the provider took when it created the order (`balance_before − balance_after`).
    #[serde(with = "crate::wire::decimal::option", default)]
    pub charge: Option<Decimal>,
    /// What the provider gave back of `charge` when the order failed (`refunded_amount`; a
    /// partial refund is possible). `Some(0)` for a failed order that kept its charge; `None`
    /// while it is not failed, and for a failed order settled before schema 7 (unknown). What
    /// the order cost is [`super::money::order_cost`].
    #[serde(
        with = "crate::wire::decimal::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub refunded: Option<Decimal>,
    pub created_at: String,
    pub updated_at: String,
    /// The run whose journal entry sent the request: its charge belongs to that run, whichever
    /// run later saw the order finish. Assigned by the store when the entry is journaled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_serial: Option<u64>,
}

impl OrderRecord {
    /// A new journal entry, before its request is sent: no order id, no outcome yet.
    pub fn prepared(
        idempotency_key: String,
        address: Address,
        kind: OrderKind,
        attempt: u32,
        request: String,
        estimated_charge: Option<Decimal>,
        now: &str,
    ) -> Self {
        Self {
            idempotency_key,
            address,
            kind,
            attempt,
            request,
            order_id: None,
            phase: OrderPhase::Prepared,
            provider_status: None,
            sub_status: None,
            error_slug: None,
            error_message: None,
            estimated_charge,
            charge: None,
            refunded: None,
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            sent_serial: None,
        }
    }
}

/// The current record of a resource that is not a card (cards keep their own table): what was
/// declared for it and where its orders stand. Every write of one logs its after-image in the
/// change log, as a card's does, so history, diff and export see every kind per serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub address: Address,
    pub image: ResourceImage,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
}

/// What state holds of one resource, by kind. Stored as JSON tagged with its kind, so a kind added
/// later is a new variant and no new table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ResourceImage {
    Topup(TopupRecord),
    User(UserRecord),
    Cardholder(CardholderRecord),
}

/// A declared person's user at the provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub external_user_id: String,
    /// The provider's `user_id`; `None` when an existing user was adopted.
    pub user_id: Option<String>,
    #[serde(default)]
    pub labels: Labels,
    pub attempt: u32,
    pub phase: OrderPhase,
    pub error_slug: Option<String>,
}

/// A declared person's cardholder at one subprovider. Never holds a personal field: `kyc` has
/// each one's keyed digest (`hmac-sha256:…`), the country as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardholderRecord {
    pub external_user_id: String,
    pub subprovider: String,
    /// The provider's `cardholder_id`; `None` when an existing cardholder was adopted.
    pub cardholder_id: Option<String>,
    /// As last learned: at creation, then from the answers to the person's cards.
    pub registration_status: Option<String>,
    pub kyc_status: Option<String>,
    /// The KYC fields as sent, personal ones as keyed digests: what a changed declaration is
    /// compared with.
    #[serde(default)]
    pub kyc: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: Labels,
    pub attempt: u32,
    pub phase: OrderPhase,
    pub error_slug: Option<String>,
}

/// A declared top-up: what was declared (amount, labels) and its latest attempt's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopupRecord {
    /// The card it funds, by key.
    pub card: String,
    /// Its id within the card.
    pub id: String,
    #[serde(with = "crate::wire::decimal")]
    pub amount: Decimal,
    #[serde(default)]
    pub labels: Labels,
    /// The attempt its latest order belongs to; starts at 1.
    pub attempt: u32,
    /// Where that order stands.
    pub phase: OrderPhase,
    /// Its real charge (amount and fee), once known.
    #[serde(with = "crate::wire::decimal::option", default)]
    pub charge: Option<Decimal>,
    pub error_slug: Option<String>,
}

impl ResourceImage {
    pub fn kind(&self) -> ResourceKind {
        match self {
            ResourceImage::Topup(_) => ResourceKind::Topup,
            ResourceImage::User(_) => ResourceKind::User,
            ResourceImage::Cardholder(_) => ResourceKind::Cardholder,
        }
    }

    pub fn as_topup(&self) -> Option<&TopupRecord> {
        match self {
            ResourceImage::Topup(t) => Some(t),
            _ => None,
        }
    }

    pub fn labels_mut(&mut self) -> &mut Labels {
        match self {
            ResourceImage::Topup(t) => &mut t.labels,
            ResourceImage::User(u) => &mut u.labels,
            ResourceImage::Cardholder(c) => &mut c.labels,
        }
    }

    pub fn as_cardholder(&self) -> Option<&CardholderRecord> {
        match self {
            ResourceImage::Cardholder(c) => Some(c),
            _ => None,
        }
    }

    /// The attempt its latest order belongs to, and where that order stands.
    pub fn progress(&self) -> (u32, OrderPhase) {
        match self {
            ResourceImage::Topup(t) => (t.attempt, t.phase),
            ResourceImage::User(u) => (u.attempt, u.phase),
            ResourceImage::Cardholder(c) => (c.attempt, c.phase),
        }
    }

    pub fn error_slug(&self) -> Option<&str> {
        match self {
            ResourceImage::Topup(t) => t.error_slug.as_deref(),
            ResourceImage::User(u) => u.error_slug.as_deref(),
            ResourceImage::Cardholder(c) => c.error_slug.as_deref(),
        }
    }

    /// Its declared labels.
    pub fn labels(&self) -> &Labels {
        match self {
            ResourceImage::Topup(t) => &t.labels,
            ResourceImage::User(u) => &u.labels,
            ResourceImage::Cardholder(c) => &c.labels,
        }
    }

    /// Takes what `declared` (an image of the same resource, as the declarations say now) holds
    /// of the declarations, keeping where its orders stand.
    pub fn redeclare(&mut self, declared: &ResourceImage) {
        match (self, declared) {
            (ResourceImage::Topup(t), ResourceImage::Topup(d)) => t.labels = d.labels.clone(),
            (ResourceImage::User(u), ResourceImage::User(d)) => u.labels = d.labels.clone(),
            (ResourceImage::Cardholder(c), ResourceImage::Cardholder(d)) => {
                c.labels = d.labels.clone()
            }
            _ => {}
        }
    }

    /// The image an order implies on its own, for a resource state has no record of (an order
    /// journaled before schema 4, say): labels unknown. `None` when the order says too little.
    pub fn from_order(order: &OrderRecord) -> Option<ResourceImage> {
        match (order.address.kind, order.kind) {
            (ResourceKind::Topup, OrderKind::Topup) => Some(ResourceImage::Topup(TopupRecord {
                card: order.address.card_key()?.to_owned(),
                id: order.address.topup_id()?.to_owned(),
                amount: request_amount(order)?,
                labels: Labels::new(),
                attempt: order.attempt,
                phase: order.phase,
                charge: order.charge,
                error_slug: order.error_slug.clone(),
            })),
            (ResourceKind::User, OrderKind::CreateUser) => Some(ResourceImage::User(UserRecord {
                external_user_id: order.address.key.clone(),
                user_id: order.order_id.clone(),
                labels: Labels::new(),
                attempt: order.attempt,
                phase: order.phase,
                error_slug: order.error_slug.clone(),
            })),
            (ResourceKind::Cardholder, OrderKind::CreateCardholder) => {
                let request: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&order.request).ok()?;
                Some(ResourceImage::Cardholder(CardholderRecord {
                    external_user_id: order.address.person()?.to_owned(),
                    subprovider: order.address.subprovider()?.to_owned(),
                    cardholder_id: order.order_id.clone(),
                    registration_status: order.provider_status.clone(),
                    kyc_status: order.sub_status.clone(),
                    kyc: request
                        .into_iter()
                        .filter(|(k, _)| k != "external_user_id" && k != "subprovider_code")
                        .filter_map(|(k, v)| Some((k, v.as_str()?.to_owned())))
                        .collect(),
                    labels: Labels::new(),
                    attempt: order.attempt,
                    phase: order.phase,
                    error_slug: order.error_slug.clone(),
                }))
            }
            _ => None,
        }
    }

    /// Brings the image up to `order`, one of this resource's orders: a later attempt replaces
    /// the progress of an earlier one, and within one attempt the phase only moves forward (a
    /// late or repeated write of an earlier step never undoes a later one).
    pub fn follow(&mut self, order: &OrderRecord) {
        match self {
            ResourceImage::Topup(t) => {
                if order.kind != OrderKind::Topup || order.attempt < t.attempt {
                    return;
                }
                if order.attempt > t.attempt || order.phase.rank() >= t.phase.rank() {
                    if order.attempt > t.attempt {
                        t.charge = None;
                        if let Some(a) = request_amount(order) {
                            t.amount = a;
                        }
                    }
                    t.attempt = order.attempt;
                    t.phase = order.phase;
                    t.charge = order.charge.or(t.charge);
                    t.error_slug = order.error_slug.clone();
                }
            }
            ResourceImage::User(u) => {
                if order.kind != OrderKind::CreateUser || !moves_on(u.attempt, u.phase, order) {
                    return;
                }
                u.attempt = order.attempt;
                u.phase = order.phase;
                u.user_id = order.order_id.clone().or(u.user_id.take());
                u.error_slug = order.error_slug.clone();
            }
            ResourceImage::Cardholder(c) => {
                if order.kind != OrderKind::CreateCardholder || !moves_on(c.attempt, c.phase, order)
                {
                    return;
                }
                if let Some(ResourceImage::Cardholder(sent)) = ResourceImage::from_order(order)
                    && order.attempt > c.attempt
                {
                    c.kyc = sent.kyc;
                }
                c.attempt = order.attempt;
                c.phase = order.phase;
                c.cardholder_id = order.order_id.clone().or(c.cardholder_id.take());
                // Statuses learned later (a card's answer) update the same journal entry.
                c.registration_status = order
                    .provider_status
                    .clone()
                    .or(c.registration_status.take());
                c.kyc_status = order.sub_status.clone().or(c.kyc_status.take());
                c.error_slug = order.error_slug.clone();
            }
        }
    }
}

/// Whether `order` moves a record at (`attempt`, `phase`) on: a later attempt, or the same one at
/// the same step or further (a late write of an earlier step never undoes a later one).
fn moves_on(attempt: u32, phase: OrderPhase, order: &OrderRecord) -> bool {
    order.attempt > attempt || (order.attempt == attempt && order.phase.rank() >= phase.rank())
}

/// The `amount` a top-up order's journaled request sent.
fn request_amount(order: &OrderRecord) -> Option<Decimal> {
    let request: serde_json::Value = serde_json::from_str(&order.request).ok()?;
    request.get("amount")?.as_str()?.parse().ok()
}

/// Everything `plan` needs from state, loaded in one go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub lineage: String,
    pub serial: u64,
    pub cards: BTreeMap<CompactString, CardRecord>,
    /// Orders not yet terminal, by resource, each resource's in journal order. A resource may
    /// have several at once (a freeze and a top-up of one card): none may be lost track of.
    pub open_orders: BTreeMap<Address, Vec<OrderRecord>>,
    /// Real charges observed per product code for issue orders without a top-up (for estimates
    /// when the provider publishes no fees): the most recent one.
    pub observed_issue_fees: BTreeMap<String, Decimal>,
    /// Every top-up the journal has, by its address key (`CARD:ID`): its latest attempt. Read
    /// from the journal itself, not the records: whether money was sent is the journal's word.
    pub topups: BTreeMap<String, TopupState>,
    /// The record of every resource that is not a card, by address.
    pub resources: BTreeMap<Address, ResourceRecord>,
    /// Keys that left state (`state rm`, or a card moved to another key) and have no record now,
    /// each with the card orders still journaled under it, oldest first: none when the card moved
    /// (its orders went with it). A key declared again is planned from these, never blind.
    pub removed_cards: BTreeMap<CompactString, Vec<OrderRecord>>,
}

/// What the journal says of one top-up: its latest attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupState {
    pub attempt: u32,
    pub phase: OrderPhase,
    /// The amount that attempt sent (from its journaled request).
    pub amount: Option<Decimal>,
    pub charge: Option<Decimal>,
    pub error_slug: Option<String>,
}

impl Snapshot {
    /// The open orders of `address`, oldest first; empty when it has none.
    pub fn open_orders_of(&self, address: &Address) -> &[OrderRecord] {
        if self.open_orders.is_empty() {
            return &[];
        }
        self.open_orders.get(address).map_or(&[], Vec::as_slice)
    }

    /// The open orders of card `key`, oldest first.
    pub fn open_card_orders(&self, key: &str) -> &[OrderRecord] {
        if self.open_orders.is_empty() {
            return &[];
        }
        self.open_orders_of(&Address::card(key))
    }

    /// The issue orders still journaled under `key`, a key that left state (see
    /// [`Snapshot::removed_cards`]), oldest first; empty for any other key.
    pub fn removed_issues(&self, key: &str) -> impl DoubleEndedIterator<Item = &OrderRecord> {
        self.removed_cards
            .get(key)
            .into_iter()
            .flatten()
            .filter(|o| o.kind == OrderKind::Issue)
    }

    /// The issue order of attempt `attempt` journaled under `key`, a key that left state: the
    /// order a card declared again takes back (see `plan`), never sent again.
    pub fn removed_issue(&self, key: &str, attempt: u32) -> Option<&OrderRecord> {
        self.removed_issues(key)
            .rev()
            .find(|o| o.attempt == attempt)
    }

    /// What state holds of the cards of `part` (see [`Part`]): their records, orders, top-ups and
    /// removals. What is not a card's (a person's user or cardholder) goes with the first part,
    /// so each is planned once; observed fees are kept whole (they are per product). Planning
    /// each part of the declarations against its part of state gives, together, the actions of
    /// the whole plan.
    pub fn part(&self, part: Part) -> Snapshot {
        let holds = |address: &Address| match address.card_key() {
            Some(key) => part.holds(key),
            None => part.index() == 0,
        };
        let by_key = |key: &str| part.holds(key);
        Snapshot {
            lineage: self.lineage.clone(),
            serial: self.serial,
            cards: filtered(&self.cards, |k| by_key(k)),
            open_orders: filtered(&self.open_orders, holds),
            observed_issue_fees: self.observed_issue_fees.clone(),
            topups: filtered(&self.topups, |k| {
                holds(&Address::new(ResourceKind::Topup, k.as_str()))
            }),
            resources: filtered(&self.resources, holds),
            removed_cards: filtered(&self.removed_cards, |k| by_key(k)),
        }
    }

    /// Whether issue attempt `attempt` of `key` takes back an order the provider acknowledged
    /// before the key left state: nothing is asked of the provider again, and nothing is paid.
    pub fn takes_back(&self, key: &str, attempt: u32) -> bool {
        self.removed_issue(key, attempt)
            .is_some_and(|o| o.order_id.is_some())
    }
}

/// The entries of `map` whose key passes `keep`, cloned.
fn filtered<K: Ord + Clone, V: Clone>(
    map: &BTreeMap<K, V>,
    keep: impl Fn(&K) -> bool,
) -> BTreeMap<K, V> {
    map.iter()
        .filter(|(k, _)| keep(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}
