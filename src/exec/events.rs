//! What the executor reports while it works. The executor never prints: the renderer draws these
//! as progress bars, plain CI lines or NDJSON.

use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::plan::ActionKind;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run starts: how many actions, which state serial records them.
    Started { total: usize, serial: u64 },
    /// An order was journaled and sent; the provider acknowledged it.
    OrderCreated {
        key: String,
        kind: &'static str,
        order_id: String,
        idempotency_key: String,
        #[serde(with = "crate::wire::decimal::option")]
        charge: Option<Decimal>,
    },
    /// An action finished successfully.
    Done {
        key: String,
        action: ActionKind,
        card_id: Option<String>,
        #[serde(with = "crate::wire::decimal")]
        charge: Decimal,
    },
    /// An action failed; the others go on (unless --fail-fast).
    Failed {
        key: String,
        action: ActionKind,
        slug: String,
        message: String,
        hint: String,
    },
    /// Not started: interrupted, --fail-fast, or the fee budget.
    Skipped {
        key: String,
        action: ActionKind,
        reason: String,
    },
    /// A card has waited this long for its cardholder's KYC (told once it has waited a few
    /// seconds, then now and then): sent again under the same key until `--kyc-wait` runs out.
    WaitingForKyc {
        key: String,
        /// The person's id, as plans show it; nothing else of the person.
        external_user_id: String,
        waited_secs: u64,
        gives_up_in_secs: u64,
    },
    /// A settled order was charged other than the plan expected (see [`ChargeWarning`]).
    ChargeDiffers(ChargeWarning),
    /// A stage of a `--canary` run begins: the canary, then (when it passed) the rest.
    Stage { stage: Stage, changes: usize },
    /// The run is over. Boxed: a summary is many times the size of any other event.
    Finished { summary: Box<Summary> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Canary,
    Rollout,
}

/// The end-of-run account: counts, failures by slug, money estimated against actual.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Summary {
    pub issued: usize,
    /// Cards declared again after they left state, given back by their issue order (checked,
    /// not sent again): no card was issued for them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub taken_back: usize,
    pub changed: usize,
    pub resumed: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub topped_up: usize,
    /// Users and cardholders created or adopted.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub people: usize,
    /// Cards still waiting for their cardholder's KYC when `--kyc-wait` ran out: not failures
    /// (nothing was charged), but not done either; the next run picks them up.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waiting_for_kyc: usize,
    /// The first few of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting_keys: Vec<String>,
    /// Of `changed`, those made in state only (labels, moves): they say nothing of how the
    /// provider is doing, so the failure-rate brake leaves them out.
    #[serde(skip)]
    pub state_only: usize,
    pub failed: usize,
    pub skipped: usize,
    /// slug → (count, hint, first few keys)
    pub failures: BTreeMap<String, FailureGroup>,
    #[serde(with = "crate::wire::decimal")]
    pub estimated: Decimal,
    /// Actions whose estimate was unknown.
    pub estimated_unknown: usize,
    /// What this run's orders were charged (the orders it sent).
    #[serde(with = "crate::wire::decimal")]
    pub charged: Decimal,
    /// What orders sent by earlier runs (killed or interrupted) were charged, by the run that
    /// sent them: this run only tracked them to their end.
    #[serde(
        serialize_with = "serialize_by_run",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub charged_earlier: BTreeMap<u64, Decimal>,
    /// The changes not started (Ctrl-C, a stop, `--max-fees`, a change they wait for that
    /// failed): left for the next run, with their estimate. Empty when none was left.
    #[serde(default, skip_serializing_if = "Share::is_empty")]
    pub left: Share,
    /// When changes were left: the changes carried out and their estimate, the one to set
    /// against `charged` (the whole plan's `estimated` is theirs plus `left`'s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_out: Option<Share>,
    pub interrupted: bool,
    /// Orders charged other than the plan expected (beyond rounding, or a credit where a cost
    /// was expected). They are recorded as charged; this says they were not what was planned.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub charge_warnings: usize,
    /// The first [`CHARGE_WARNINGS_KEPT`] of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charge_warning_orders: Vec<ChargeWarning>,
    /// Why the run stopped starting new work before the end (a failed canary, the failure-rate
    /// brake), if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

/// An order the provider charged other than the fee the plan expected for it: the charge its
/// answer implies (`balance_before − balance_after`) against the journal's estimate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargeWarning {
    pub key: String,
    pub kind: &'static str,
    pub order_id: String,
    #[serde(with = "crate::wire::decimal")]
    pub expected: Decimal,
    #[serde(with = "crate::wire::decimal")]
    pub charged: Decimal,
}

/// How many charge warnings a summary names; the rest are counted (a provider overcharging
/// every order of a large run must not make the summary as long as the run).
pub const CHARGE_WARNINGS_KEPT: usize = 20;

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct FailureGroup {
    pub count: usize,
    pub hint: String,
    pub keys: Vec<String>,
}

/// Some of a plan's changes and what the plan estimated for them.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Share {
    pub changes: usize,
    #[serde(with = "crate::wire::decimal")]
    pub estimated: Decimal,
    /// Of `changes`, those whose estimate was unknown (not in `estimated`).
    pub estimated_unknown: usize,
}

impl Share {
    pub fn is_empty(&self) -> bool {
        self.changes == 0
    }

    /// Counts one more change, estimated at `estimate` (`None`: unknown).
    pub fn add(&mut self, estimate: Option<Decimal>) {
        self.changes += 1;
        match estimate {
            Some(e) => self.estimated += e,
            None => self.estimated_unknown += 1,
        }
    }
}

impl Summary {
    /// Counts one charge warning, naming it while fewer than [`CHARGE_WARNINGS_KEPT`] are.
    pub fn warn_charge(&mut self, warning: ChargeWarning) {
        self.charge_warnings += 1;
        if self.charge_warning_orders.len() < CHARGE_WARNINGS_KEPT {
            self.charge_warning_orders.push(warning);
        }
    }

    pub fn succeeded(&self) -> bool {
        self.failed == 0 && self.skipped == 0 && self.waiting_for_kyc == 0 && !self.interrupted
    }
}

/// Where events go. Cheap to clone; sending never blocks the executor.
#[derive(Clone)]
pub struct EventSink(std::sync::Arc<dyn Fn(Event) + Send + Sync>);

impl EventSink {
    pub fn new(f: impl Fn(Event) + Send + Sync + 'static) -> Self {
        Self(std::sync::Arc::new(f))
    }
    pub fn discard() -> Self {
        Self::new(|_| {})
    }
    pub fn emit(&self, e: Event) {
        (self.0)(e)
    }
}

/// `{"3": "640.00"}`: run serial → amount, money as a string like every amount.
fn serialize_by_run<S: serde::Serializer>(
    m: &BTreeMap<u64, Decimal>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(m.len()))?;
    for (serial, amount) in m {
        map.serialize_entry(&serial.to_string(), &amount.to_string())?;
    }
    map.end()
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}
