//! The records state keeps, as plain data shared with `plan` and `exec`. No SQL here.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::model::{Address, DesiredStatus, Labels};

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
    pub key: String,
    pub external_user_id: String,
    pub product_code: String,
    #[serde(with = "crate::wire::decimal::option", default)]
    pub initial_topup: Option<Decimal>,
    /// The status that was declared when cardform last acted on this card.
    pub desired_status: DesiredStatus,
    pub labels: Labels,
    pub card_id: Option<String>,
    pub phase: CardPhase,
    /// The provider's own status string, as last seen.
    pub provider_status: Option<String>,
    pub last4: Option<String>,
    /// Sum of the real charges of this card's orders (`balance_before − balance_after`).
    #[serde(with = "crate::wire::decimal")]
    pub charged: Decimal,
    /// The issue attempt the current (or last) issue order belongs to; starts at 1.
    pub attempt: u32,
    /// When the card was superseded by a replacement, the key of the new card record (if any).
    pub replaced_by: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    pub updated_at: String,
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
    #[serde(with = "crate::wire::decimal::option", default)]
    pub charge: Option<Decimal>,
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
            created_at: now.to_owned(),
            updated_at: now.to_owned(),
            sent_serial: None,
        }
    }
}

/// Everything `plan` needs from state, loaded in one go.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    pub lineage: String,
    pub serial: u64,
    pub cards: BTreeMap<String, CardRecord>,
    /// Orders not yet terminal, by resource, each resource's in journal order. A resource may
    /// have several at once (a freeze and a top-up of one card): none may be lost track of.
    pub open_orders: BTreeMap<Address, Vec<OrderRecord>>,
    /// Real charges observed per product code for issue orders without a top-up (for estimates
    /// when the provider publishes no fees): the most recent one.
    pub observed_issue_fees: BTreeMap<String, Decimal>,
    /// Every top-up the journal has, by its address key (`CARD:ID`): its latest attempt.
    pub topups: BTreeMap<String, TopupState>,
    /// Every user and cardholder the journal has: its latest attempt.
    pub people: BTreeMap<Address, PersonState>,
}

/// What the journal says of one user or cardholder: its latest creation attempt, and what the
/// provider said of it since. Holds no personal data: `sent` has keyed digests in their place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonState {
    pub attempt: u32,
    pub phase: OrderPhase,
    /// The provider's `user_id` / `cardholder_id`; `None` when an existing one was adopted
    /// (the provider answered "exists" and named none).
    pub id: Option<String>,
    /// A cardholder's `registration_status` and `kyc_status`, as last learned.
    pub registration_status: Option<String>,
    pub kyc_status: Option<String>,
    /// The request fields as journaled (personal ones as `hmac-sha256:` digests).
    pub sent: BTreeMap<String, String>,
    pub error_slug: Option<String>,
}

impl PersonState {
    /// Whether the person exists at the provider (created or adopted).
    pub fn exists(&self) -> bool {
        self.phase == OrderPhase::Completed
    }
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
}
