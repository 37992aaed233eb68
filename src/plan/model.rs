//! The plan as data: actions, estimates, totals and problems. Serializable, so a plan can be saved
//! and rendered as JSON; the format is versioned by the renderer.

use compact_str::CompactString;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

use super::Estimate;
use crate::decl::DesiredCard;
use crate::model::{Address, DesiredStatus, Labels, ResourceKind};
use crate::state::CardRecord;
use crate::wire::Product;

/// What the provider says, fetched once per plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderFacts {
    pub products: BTreeMap<String, Product>,
    /// The master balance; `None` when it could not be read (the plan then cannot check it).
    pub balance: Option<Decimal>,
    pub currency: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Freeze cards that are in state but no longer declared.
    pub prune: bool,
    /// Fail the plan when its fees exceed this budget.
    pub max_fees: Option<Decimal>,
    /// How many cards a `--prune` may freeze before the plan refuses.
    pub max_prune: MaxPrune,
    /// `--target`: only changes of matching cards (and what they depend on); none = all.
    pub targets: Vec<super::Target>,
    /// `--replace KEY`: issued cards to replace by a new card (the old one frozen), though
    /// nothing declared about them changed. The caller checks each is declared and in state.
    pub replace: std::collections::BTreeSet<String>,
}

/// The most cards one plan may prune: a count, or a share of the cards in state. A declaration
/// set that lost most of its cards (an emptied file, a wrong `-f`) must not freeze a fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxPrune {
    Count(usize),
    /// Percent of the cards in state, 0 to 100.
    Percent(Decimal),
}

impl Default for MaxPrune {
    /// 10 % of the fleet, Terraform-style caution for the one action that stops cards working.
    fn default() -> Self {
        MaxPrune::Percent(Decimal::TEN)
    }
}

impl MaxPrune {
    /// Whether pruning `prunes` of `fleet` cards is within the limit.
    pub fn allows(self, prunes: usize, fleet: usize) -> bool {
        match self {
            MaxPrune::Count(n) => prunes <= n,
            MaxPrune::Percent(p) => {
                Decimal::from(prunes) * Decimal::ONE_HUNDRED <= p * Decimal::from(fleet)
            }
        }
    }
}

impl std::fmt::Display for MaxPrune {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxPrune::Count(n) => write!(f, "{n}"),
            MaxPrune::Percent(p) => write!(f, "{}%", p.normalize()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// `+` a declared card not in state.
    Issue,
    /// `+` a new issue attempt after a failed order or a closed card.
    Reissue,
    /// `-/+` an immutable field changed: issue a new card, then freeze the old one.
    Replace,
    /// `>` an order that is still open: poll it to completion, never re-create it.
    Resume,
    /// `~` status change.
    Freeze,
    Unfreeze,
    /// `~` labels only (state, no provider call).
    UpdateLabels,
    /// `-` in state, not declared: `--prune` freezes it.
    Prune,
    /// `-` in state, not declared, left untouched. Informational: not a change.
    Undeclared,
    /// `->` a declared rename (`moved:`): the card keeps its id, orders and history under its new
    /// key. State only: no provider call, no fee.
    Move,
    /// `$` a declared top-up not yet sent (or whose last attempt failed): money onto the card.
    Topup,
    /// `+` register a declared person's user with the provider (adopted when it exists).
    CreateUser,
    /// `+` create a declared person's cardholder (KYC) at a subprovider their cards need
    /// (adopted when it exists). Free; the provider runs KYC afterwards.
    CreateCardholder,
}

impl ActionKind {
    pub fn symbol(self) -> &'static str {
        match self {
            ActionKind::Issue
            | ActionKind::Reissue
            | ActionKind::CreateUser
            | ActionKind::CreateCardholder => "+",
            ActionKind::Replace => "-/+",
            ActionKind::Resume => ">",
            ActionKind::Freeze | ActionKind::Unfreeze | ActionKind::UpdateLabels => "~",
            ActionKind::Prune | ActionKind::Undeclared => "-",
            ActionKind::Move => "->",
            ActionKind::Topup => "$",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Issue => "issue",
            ActionKind::Reissue => "reissue",
            ActionKind::Replace => "replace",
            ActionKind::Resume => "resume",
            ActionKind::Freeze => "freeze",
            ActionKind::Unfreeze => "unfreeze",
            ActionKind::UpdateLabels => "update_labels",
            ActionKind::Prune => "prune",
            ActionKind::Undeclared => "undeclared",
            ActionKind::Move => "move",
            ActionKind::Topup => "topup",
            ActionKind::CreateUser => "create_user",
            ActionKind::CreateCardholder => "create_cardholder",
        }
    }

    /// Whether carrying it out creates a card issue order (and so charges an issue fee).
    pub fn issues_card(self) -> bool {
        matches!(
            self,
            ActionKind::Issue | ActionKind::Reissue | ActionKind::Replace
        )
    }

    /// Whether it changes anything (for `--detailed-exitcode` and "no changes").
    pub fn is_change(self) -> bool {
        !matches!(self, ActionKind::Undeclared)
    }
}

/// The declared attributes of a card, as compared by the planner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    // Inline up to 24 bytes (see `DesiredCard`).
    pub external_user_id: CompactString,
    pub product_code: CompactString,
    #[serde(
        with = "crate::wire::decimal::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_topup: Option<Decimal>,
    pub status: DesiredStatus,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

impl Attributes {
    pub fn from_desired(c: &DesiredCard) -> Self {
        Self {
            external_user_id: c.external_user_id.clone(),
            product_code: c.product_code.clone(),
            initial_topup: c.initial_topup,
            status: c.status,
            labels: c.labels.clone(),
        }
    }

    /// What state records, with the status the card really is in (not what was declared).
    pub fn from_record(r: &CardRecord) -> Self {
        Self {
            external_user_id: r.external_user_id.as_str().into(),
            product_code: r.product_code.as_str().into(),
            initial_topup: r.initial_topup,
            status: match r.phase {
                crate::state::CardPhase::Frozen => DesiredStatus::Frozen,
                _ => DesiredStatus::Active,
            },
            labels: r.labels.clone(),
        }
    }
}

/// One change of a plan: what every change has (its address's key, why, its product, the issue
/// attempt it belongs to, what it costs and what it waits for), and the change itself
/// ([`Change`]), whose kind decides the resource acted on and which fields it carries.
/// Serialized flat (`ActionRepr`), as plan files have always held it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// With the resource [`Change::resource`] says, the address acted on.
    pub key: CompactString,
    /// Borrowed when it is one of the planner's fixed texts (most are): a million actions then
    /// hold no copy of it.
    pub reason: Cow<'static, str>,
    /// The product the action is about (the new one, for a replacement; the subprovider, for a
    /// cardholder).
    pub product_code: CompactString,
    /// The issue attempt this action belongs to (idempotency keys derive from it).
    pub attempt: u32,
    pub estimate: Estimate,
    /// Changes in this plan that must complete before this one starts; when one fails, this one
    /// is blocked (never sent, never charged).
    pub depends_on: Vec<Address>,
    pub change: Change,
}

/// What a change does, with exactly the fields its kind has. Several variants may be one
/// [`ActionKind`] for different resources (a card's, a top-up's or a person's relabel).
///
/// Kept to 24 bytes: a million actions are held at once. Attributes are boxed (88 bytes each
/// inline, and a new card has one), and so is what only a few actions carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `+` a declared card not in state: what is declared.
    Issue {
        after: Box<Attributes>,
    },
    /// `+` a new issue attempt after a failed order or a closed card.
    Reissue(Edit),
    /// `-/+` a new card for one whose immutable fields changed (or `--replace`).
    Replace(Edit),
    /// `>` a card's open orders, tracked to the end. `after` is what is declared (`None` when
    /// the card no longer is); `before` what state holds (`None` when it holds nothing).
    ResumeCard {
        before: Option<Box<Attributes>>,
        after: Option<Box<Attributes>>,
    },
    /// `>` a top-up's open order, tracked to the end whatever is declared.
    ResumeTopup,
    Freeze(Edit),
    Unfreeze(Edit),
    /// `--prune`: an undeclared active card, frozen.
    Prune(Edit),
    /// `~` a card's labels (state only).
    RelabelCard(Edit),
    /// `~` a sent top-up's labels (state only): `card` is its card as declared.
    RelabelTopup(Box<TopupChange>),
    /// `~` a person's labels (state only).
    RelabelPerson {
        /// A user or a cardholder.
        resource: ResourceKind,
        person: Box<PersonChange>,
    },
    /// `-` a card in state, not declared, left untouched.
    UndeclaredCard {
        before: Box<Attributes>,
    },
    /// `-` a top-up sent and no longer declared: money sent stays sent.
    UndeclaredTopup {
        amount: Option<Decimal>,
    },
    /// `->` a declared rename: the card keeps its id, orders and history under `to`.
    Move(Box<Renamed>),
    /// `$` a declared top-up to send.
    Topup(Box<TopupChange>),
    /// `+` a declared person's user.
    CreateUser(Box<PersonChange>),
    /// `+` a declared person's cardholder at a subprovider (`product_code`).
    CreateCardholder(Box<PersonChange>),
}

/// A card as state holds it and as it will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub before: Box<Attributes>,
    pub after: Box<Attributes>,
}

/// A declared top-up (the key is `CARD:ID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopupChange {
    /// Its card as declared.
    pub card: Attributes,
    pub amount: Decimal,
    /// Its own labels (from a top-up CSV's `label.*` columns), kept in its record.
    pub labels: Labels,
}

/// A declared person's user or cardholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonChange {
    /// All that may be shown of them (`A. S., US`), never a field.
    pub shown: String,
    pub labels: Labels,
}

/// A declared move (`key` is the one the card leaves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renamed {
    pub before: Attributes,
    pub to: String,
}

impl Change {
    pub fn kind(&self) -> ActionKind {
        match self {
            Change::Issue { .. } => ActionKind::Issue,
            Change::Reissue(_) => ActionKind::Reissue,
            Change::Replace(_) => ActionKind::Replace,
            Change::ResumeCard { .. } | Change::ResumeTopup => ActionKind::Resume,
            Change::Freeze(_) => ActionKind::Freeze,
            Change::Unfreeze(_) => ActionKind::Unfreeze,
            Change::Prune(_) => ActionKind::Prune,
            Change::RelabelCard(_) | Change::RelabelTopup(_) | Change::RelabelPerson { .. } => {
                ActionKind::UpdateLabels
            }
            Change::UndeclaredCard { .. } | Change::UndeclaredTopup { .. } => {
                ActionKind::Undeclared
            }
            Change::Move(_) => ActionKind::Move,
            Change::Topup(_) => ActionKind::Topup,
            Change::CreateUser(_) => ActionKind::CreateUser,
            Change::CreateCardholder(_) => ActionKind::CreateCardholder,
        }
    }

    /// The kind of resource acted on.
    pub fn resource(&self) -> ResourceKind {
        match self {
            Change::ResumeTopup
            | Change::RelabelTopup(_)
            | Change::UndeclaredTopup { .. }
            | Change::Topup(_) => ResourceKind::Topup,
            Change::RelabelPerson { resource, .. } => *resource,
            Change::CreateUser(_) => ResourceKind::User,
            Change::CreateCardholder(_) => ResourceKind::Cardholder,
            Change::Issue { .. }
            | Change::Reissue(_)
            | Change::Replace(_)
            | Change::ResumeCard { .. }
            | Change::Freeze(_)
            | Change::Unfreeze(_)
            | Change::Prune(_)
            | Change::RelabelCard(_)
            | Change::UndeclaredCard { .. }
            | Change::Move(_) => ResourceKind::Card,
        }
    }

    /// The card as state holds it, for the changes of a card in state.
    pub fn before(&self) -> Option<&Attributes> {
        match self {
            Change::Reissue(e)
            | Change::Replace(e)
            | Change::Freeze(e)
            | Change::Unfreeze(e)
            | Change::Prune(e)
            | Change::RelabelCard(e) => Some(&e.before),
            Change::ResumeCard { before, .. } => before.as_deref(),
            Change::UndeclaredCard { before } => Some(before),
            Change::Move(m) => Some(&m.before),
            _ => None,
        }
    }

    /// The card as it will be (as declared; a top-up's card, for a top-up).
    pub fn after(&self) -> Option<&Attributes> {
        match self {
            Change::Issue { after } => Some(after),
            Change::Reissue(e)
            | Change::Replace(e)
            | Change::Freeze(e)
            | Change::Unfreeze(e)
            | Change::Prune(e)
            | Change::RelabelCard(e) => Some(&e.after),
            Change::ResumeCard { after, .. } => after.as_deref(),
            Change::RelabelTopup(t) | Change::Topup(t) => Some(&t.card),
            _ => None,
        }
    }
}

impl Action {
    /// The resource acted on.
    pub fn address(&self) -> Address {
        Address::new(self.resource(), self.key.clone())
    }

    pub fn kind(&self) -> ActionKind {
        self.change.kind()
    }

    pub fn resource(&self) -> ResourceKind {
        self.change.resource()
    }

    /// See [`Change::before`].
    pub fn before(&self) -> Option<&Attributes> {
        self.change.before()
    }

    /// See [`Change::after`].
    pub fn after(&self) -> Option<&Attributes> {
        self.change.after()
    }

    /// For a move: the key the card moves to.
    pub fn moved_to(&self) -> Option<&str> {
        match &self.change {
            Change::Move(m) => Some(&m.to),
            _ => None,
        }
    }

    /// For a top-up: the amount it sends (or sent).
    pub fn amount(&self) -> Option<Decimal> {
        match &self.change {
            Change::Topup(t) | Change::RelabelTopup(t) => Some(t.amount),
            Change::UndeclaredTopup { amount } => *amount,
            _ => None,
        }
    }

    /// For a person's action: what may be shown of them.
    pub fn person(&self) -> Option<&str> {
        match &self.change {
            Change::CreateUser(p)
            | Change::CreateCardholder(p)
            | Change::RelabelPerson { person: p, .. } => Some(&p.shown),
            _ => None,
        }
    }

    /// For a top-up or a person: their own labels (a card's are in its attributes).
    pub fn labels(&self) -> &Labels {
        static NONE: std::sync::LazyLock<Labels> = std::sync::LazyLock::new(Labels::new);
        match &self.change {
            Change::Topup(t) | Change::RelabelTopup(t) => &t.labels,
            Change::CreateUser(p)
            | Change::CreateCardholder(p)
            | Change::RelabelPerson { person: p, .. } => &p.labels,
            _ => &NONE,
        }
    }
}

/// An [`Action`] as plan files have always held it: every field at the top level.
#[derive(Serialize, Deserialize)]
struct ActionRepr<'a> {
    /// Written only when it is not a card, so plans of cards read as they always have.
    #[serde(default, skip_serializing_if = "ResourceKind::is_card")]
    resource: ResourceKind,
    key: CompactString,
    #[serde(rename = "action")]
    kind: ActionKind,
    reason: Cow<'a, str>,
    product_code: CompactString,
    before: Option<Cow<'a, Attributes>>,
    after: Option<Cow<'a, Attributes>>,
    attempt: u32,
    estimate: Cow<'a, Estimate>,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    depends_on: Cow<'a, [Address]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    moved_to: Option<Cow<'a, str>>,
    #[serde(
        default,
        with = "crate::wire::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    person: Option<Cow<'a, str>>,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    labels: Cow<'a, Labels>,
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ActionRepr {
            resource: self.resource(),
            key: self.key.clone(),
            kind: self.kind(),
            reason: Cow::Borrowed(&self.reason),
            product_code: self.product_code.clone(),
            before: self.before().map(Cow::Borrowed),
            after: self.after().map(Cow::Borrowed),
            attempt: self.attempt,
            estimate: Cow::Borrowed(&self.estimate),
            depends_on: Cow::Borrowed(&self.depends_on),
            moved_to: self.moved_to().map(Cow::Borrowed),
            amount: self.amount(),
            person: self.person().map(Cow::Borrowed),
            labels: Cow::Borrowed(self.labels()),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = ActionRepr::deserialize(d)?;
        let change = r.change().map_err(serde::de::Error::custom)?;
        Ok(Action {
            key: r.key,
            reason: Cow::Owned(r.reason.into_owned()),
            product_code: r.product_code,
            attempt: r.attempt,
            estimate: r.estimate.into_owned(),
            depends_on: r.depends_on.into_owned(),
            change,
        })
    }
}

impl ActionRepr<'_> {
    /// The change a flat action describes; an error names what a kind lacks, or a pairing of
    /// kind and resource no cardform plans. Fields a kind does not have are ignored.
    fn change(&self) -> Result<Change, String> {
        let what = || format!("a `{}` action of a {}", self.kind.as_str(), self.resource);
        let need = |field: &str| format!("{} needs `{field}`", what());
        let attrs = |a: &Option<Cow<'_, Attributes>>, field| {
            a.as_ref()
                .map(|a| Box::new(a.clone().into_owned()))
                .ok_or_else(|| need(field))
        };
        let before = || attrs(&self.before, "before");
        let after = || attrs(&self.after, "after");
        let edit = || -> Result<Edit, String> {
            Ok(Edit {
                before: before()?,
                after: after()?,
            })
        };
        let topup = || -> Result<Box<TopupChange>, String> {
            Ok(Box::new(TopupChange {
                card: *after()?,
                amount: self.amount.ok_or_else(|| need("amount"))?,
                labels: self.labels.clone().into_owned(),
            }))
        };
        let person = || -> Result<Box<PersonChange>, String> {
            Ok(Box::new(PersonChange {
                shown: self.person.as_deref().ok_or_else(|| need("person"))?.into(),
                labels: self.labels.clone().into_owned(),
            }))
        };
        use ActionKind as K;
        use ResourceKind as R;
        Ok(match (self.kind, self.resource) {
            (K::Issue, R::Card) => Change::Issue { after: after()? },
            (K::Reissue, R::Card) => Change::Reissue(edit()?),
            (K::Replace, R::Card) => Change::Replace(edit()?),
            (K::Resume, R::Card) => Change::ResumeCard {
                before: self
                    .before
                    .as_ref()
                    .map(|b| Box::new(b.clone().into_owned())),
                after: self
                    .after
                    .as_ref()
                    .map(|a| Box::new(a.clone().into_owned())),
            },
            (K::Resume, R::Topup) => Change::ResumeTopup,
            (K::Freeze, R::Card) => Change::Freeze(edit()?),
            (K::Unfreeze, R::Card) => Change::Unfreeze(edit()?),
            (K::Prune, R::Card) => Change::Prune(edit()?),
            (K::UpdateLabels, R::Card) => Change::RelabelCard(edit()?),
            (K::UpdateLabels, R::Topup) => Change::RelabelTopup(topup()?),
            (K::UpdateLabels, resource @ (R::User | R::Cardholder)) => Change::RelabelPerson {
                resource,
                person: person()?,
            },
            (K::Undeclared, R::Card) => Change::UndeclaredCard { before: before()? },
            (K::Undeclared, R::Topup) => Change::UndeclaredTopup {
                amount: self.amount,
            },
            (K::Move, R::Card) => Change::Move(Box::new(Renamed {
                before: *before()?,
                to: self
                    .moved_to
                    .as_deref()
                    .ok_or_else(|| need("moved_to"))?
                    .into(),
            })),
            (K::Topup, R::Topup) => Change::Topup(topup()?),
            (K::CreateUser, R::User) => Change::CreateUser(person()?),
            (K::CreateCardholder, R::Cardholder) => Change::CreateCardholder(person()?),
            _ => return Err(format!("{} is not a change cardform plans", what())),
        })
    }
}

#[cfg(test)]
impl Change {
    /// A change of `kind` on `resource` whose payload is as empty as the kind allows (blank
    /// attributes, a zero amount, no one shown), for tests of what reads kinds and addresses.
    pub(crate) fn sample(kind: ActionKind, resource: ResourceKind) -> Change {
        let blank = Attributes {
            external_user_id: Default::default(),
            product_code: Default::default(),
            initial_topup: None,
            status: Default::default(),
            labels: Default::default(),
        };
        ActionRepr {
            resource,
            key: Default::default(),
            kind,
            reason: Cow::Borrowed(""),
            product_code: Default::default(),
            before: Some(Cow::Owned(blank.clone())),
            after: Some(Cow::Owned(blank)),
            attempt: 0,
            estimate: Cow::Owned(Estimate::none()),
            depends_on: Cow::Borrowed(&[]),
            moved_to: Some(Cow::Borrowed("")),
            amount: Some(Decimal::ZERO),
            person: Some(Cow::Borrowed("")),
            labels: Cow::Owned(Labels::new()),
        }
        .change()
        .expect("a kind cardform plans on its resource")
    }
}

/// Why a plan cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    UnknownProduct {
        product_code: String,
        keys: Vec<String>,
        /// The provider's product the code most likely meant (case or a typo), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        did_you_mean: Option<String>,
    },
    InactiveProduct {
        product_code: String,
        keys: Vec<String>,
    },
    TopupOutOfRange {
        key: String,
        #[serde(with = "crate::wire::decimal")]
        amount: Decimal,
        #[serde(with = "crate::wire::decimal::option")]
        min: Option<Decimal>,
        #[serde(with = "crate::wire::decimal::option")]
        max: Option<Decimal>,
    },
    InsufficientBalance {
        #[serde(with = "crate::wire::decimal")]
        needed: Decimal,
        #[serde(with = "crate::wire::decimal")]
        balance: Decimal,
        #[serde(with = "crate::wire::decimal")]
        missing: Decimal,
    },
    FeesOverBudget {
        #[serde(with = "crate::wire::decimal")]
        fees: Decimal,
        #[serde(with = "crate::wire::decimal")]
        budget: Decimal,
        /// Actions whose fee is unknown: a budget cannot be guaranteed for them.
        unknown: usize,
    },
    /// `--prune` would freeze more of the fleet than `--max-prune` allows.
    PruneOverLimit {
        prunes: usize,
        fleet: usize,
        limit: String,
    },
    /// A declared move whose old and new keys are both in state.
    MoveConflict { from: String, to: String },
    /// A declared move of a card with an order still open.
    MoveWaitsForOrders { from: String, to: String },
    /// A declared move onto a key that left state with orders journaled under it: the two
    /// cards' histories would mix, and the new card's next attempt could take back the old one.
    MoveOntoUsedKey { from: String, to: String },
    /// A top-up already sent whose declared amount changed: money sent cannot be edited.
    TopupAmountChanged {
        key: String,
        #[serde(with = "crate::wire::decimal")]
        sent: Decimal,
        #[serde(with = "crate::wire::decimal")]
        declared: Decimal,
    },
    /// A top-up on a card declared frozen: a frozen card takes no money.
    TopupOnFrozenCard { key: String },
    /// A declared person's card is of a product whose subprovider the provider does not say, so
    /// the cardholder it needs cannot be created.
    NoSubprovider {
        product_code: String,
        external_user_id: String,
    },
}

impl Problem {
    pub fn message(&self) -> String {
        match self {
            Problem::UnknownProduct {
                product_code,
                keys: k,
                did_you_mean,
            } => unknown_product(product_code, k, did_you_mean.as_deref()),
            Problem::InactiveProduct {
                product_code,
                keys: k,
            } => format!(
                "product {product_code} is not active at the provider (cards: {})",
                shown_keys(k)
            ),
            Problem::TopupOutOfRange {
                key,
                amount,
                min,
                max,
            } => out_of_range(key, *amount, *min, *max),
            Problem::InsufficientBalance {
                needed,
                balance,
                missing,
            } => format!(
                "the plan charges {needed} but the master balance is {balance}: top up at least {missing}"
            ),
            Problem::FeesOverBudget {
                fees,
                budget,
                unknown,
            } if *unknown > 0 => format!(
                "--max-fees {budget}: fees are {fees} plus {unknown} unknown; cannot stay within budget for sure"
            ),
            Problem::FeesOverBudget { fees, budget, .. } => {
                format!("fees {fees} exceed --max-fees {budget}")
            }
            Problem::PruneOverLimit {
                prunes,
                fleet,
                limit,
            } => prune_over_limit(*prunes, *fleet, limit),
            Problem::MoveConflict { from, to } => format!(
                "moved {from} → {to}: both keys are in state, so the move cannot apply; remove \
                 the move if {to} is a card of its own, or take one out of state with \
                 `cardform state rm`"
            ),
            Problem::TopupAmountChanged {
                key,
                sent,
                declared,
            } => format!(
                "top-up {key}: {sent} was sent already and cannot be changed to {declared}; \
                 declare the difference as a top-up with a new id"
            ),
            Problem::TopupOnFrozenCard { key } => format!(
                "top-up {key}: its card is declared frozen, and a frozen card takes no top-up; \
                 unfreeze it or remove the top-up"
            ),
            Problem::NoSubprovider {
                product_code,
                external_user_id,
            } => format!(
                "{external_user_id}: product {product_code} names no subprovider, so the \
                 cardholder its card needs cannot be created; ask the provider, or declare the \
                 card without a declared cardholder"
            ),
            Problem::MoveOntoUsedKey { from, to } => format!(
                "moved {from} → {to}: the journal holds the orders of an earlier card under \
                 {to}, taken out of state; moving {from} there would mix the two cards' histories: \
                 choose another key"
            ),
            Problem::MoveWaitsForOrders { from, to } => format!(
                "moved {from} → {to}: {from} has an order still open; finish it first with \
                 `cardform refresh`, then plan again"
            ),
        }
    }
}

/// The first few keys of a problem, and how many more there are.
fn shown_keys(k: &[String]) -> String {
    const SHOW: usize = 5;
    let mut s = k.iter().take(SHOW).cloned().collect::<Vec<_>>().join(", ");
    if k.len() > SHOW {
        s.push_str(&format!(" and {} more", k.len() - SHOW));
    }
    s
}

fn unknown_product(product_code: &str, keys: &[String], did_you_mean: Option<&str>) -> String {
    format!(
        "product {product_code} does not exist at the provider (cards: {}){}",
        shown_keys(keys),
        match did_you_mean {
            Some(p) => format!("; did you mean {p}?"),
            None => "; `cardform products` lists them".into(),
        }
    )
}

fn out_of_range(key: &str, amount: Decimal, min: Option<Decimal>, max: Option<Decimal>) -> String {
    let range = match (min, max) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        (Some(a), None) => format!("at least {a}"),
        (None, Some(b)) => format!("at most {b}"),
        (None, None) => "any".into(),
    };
    // A declared top-up's key is `CARD:ID`; a card's own key is its initial top-up.
    let what = if key.contains(crate::model::TOPUP_SEPARATOR) {
        "top-up"
    } else {
        "initial_topup"
    };
    format!("{key}: {what} {amount} is outside the product's limits ({range})")
}

fn prune_over_limit(prunes: usize, fleet: usize, limit: &str) -> String {
    format!(
        "--prune would freeze {prunes} of the {fleet} cards in state ({}), more than \
         --max-prune {limit}: check the declarations (an emptied file, a wrong -f?), or \
         allow it with --max-prune {prunes}",
        percent(prunes, fleet)
    )
}

/// Counts and money of a whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Totals {
    pub counts: BTreeMap<ActionKind, usize>,
    pub unchanged: usize,
    /// Sum of the known fees.
    #[serde(with = "crate::wire::decimal")]
    pub fees: Decimal,
    /// How many actions have a fee nobody can estimate yet.
    pub unknown_fees: usize,
    /// Sum of the top-up amounts (money moved onto cards, not fees).
    #[serde(with = "crate::wire::decimal")]
    pub topups: Decimal,
    /// fees + topups (known parts).
    #[serde(with = "crate::wire::decimal")]
    pub charge: Decimal,
    #[serde(with = "crate::wire::decimal::option")]
    pub balance_before: Option<Decimal>,
    #[serde(with = "crate::wire::decimal::option")]
    pub balance_after: Option<Decimal>,
    /// Cards in state when the plan was made: the fleet a prune is measured against.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub in_state: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Totals {
    pub fn from_actions(actions: &[Action], unchanged: usize, balance: Option<Decimal>) -> Self {
        let mut t = Totals {
            unchanged,
            balance_before: balance,
            ..Default::default()
        };
        for a in actions {
            *t.counts.entry(a.kind()).or_default() += 1;
            match a.estimate.fee {
                Some(fee) => t.fees += fee,
                None if a.estimate.source == super::EstimateSource::Unknown => t.unknown_fees += 1,
                None => {}
            }
            t.topups += a.estimate.topup;
        }
        t.charge = t.fees + t.topups;
        t.balance_after = balance.map(|b| b - t.charge);
        t
    }

    pub fn changes(&self) -> usize {
        self.counts
            .iter()
            .filter(|(k, _)| k.is_change())
            .map(|(_, n)| n)
            .sum()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub unchanged: usize,
    pub totals: Totals,
    pub problems: Vec<Problem>,
    /// What a reviewer should look at twice; none of these stop the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// Set when `--target` restricted the plan: what it left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<super::Partial>,
}

/// Something in an applicable plan that looks like a mistake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "warning", rename_all = "snake_case")]
pub enum Warning {
    /// An amount more than [`OUTLIER_FACTOR`] times the median of its kind for the same product:
    /// a top-up of 4,500 typed among 50s.
    OutlierAmount {
        key: String,
        product_code: String,
        /// `topup` or `fee`.
        what: String,
        #[serde(with = "crate::wire::decimal")]
        amount: Decimal,
        #[serde(with = "crate::wire::decimal")]
        median: Decimal,
    },
    /// A new card for the same user and product as a card that leaves the declarations in the
    /// same plan: most likely a renamed key, which would issue (and pay for) a second card.
    PossibleRename { new_key: String, old_key: String },
    /// A cardholder that exists whose declared KYC fields differ from what was sent: the API
    /// cannot change them, so it is not an action. Names the fields, never their values.
    KycDrift {
        external_user_id: String,
        subprovider: String,
        fields: Vec<String>,
    },
    /// A cardholder whose KYC the provider rejected: its person's new cards cannot be issued.
    KycRejected {
        external_user_id: String,
        subprovider: String,
        kyc_status: String,
    },
    /// A card this plan issues anew (re-issued, replaced, or declared again after it left state)
    /// whose declared top-ups were sent to its earlier card: each is sent once, so the new card
    /// does not get them.
    TopupsKeptByEarlierCard { key: String, ids: Vec<String> },
    /// Declared people with no declared card and no cardholder yet: a cardholder (where KYC
    /// happens) belongs to the subprovider of a card's product, so theirs waits for a card.
    NoCardholderYet {
        /// The first few of them, sorted.
        external_user_ids: Vec<String>,
        count: usize,
    },
}

/// How many times the median an amount may be before the plan flags it.
pub const OUTLIER_FACTOR: u32 = 10;

impl Warning {
    pub fn message(&self) -> String {
        match self {
            Warning::OutlierAmount {
                key,
                product_code,
                what,
                amount,
                median,
            } => format!(
                "{key}: {what} {amount} is more than {OUTLIER_FACTOR}x the median {what} of \
                 {product_code} in this plan ({median}); is it meant?"
            ),
            Warning::PossibleRename { new_key, old_key } => format!(
                "{new_key} would be a new card for the same user and product as {old_key}, which \
                 leaves the declarations: renamed? declare `moved: [{{from: {old_key}, to: \
                 {new_key}}}]` to keep the card (and its fee)"
            ),
            Warning::KycDrift {
                external_user_id,
                subprovider,
                fields,
            } => format!(
                "cardholder {external_user_id} at {subprovider}: declared {} differ{} from what \
                 was sent; KYC data cannot be changed through the API: update it with the \
                 provider, then declare it as they hold it",
                fields.join(", "),
                if fields.len() == 1 { "s" } else { "" }
            ),
            Warning::KycRejected {
                external_user_id,
                subprovider,
                kyc_status,
            } => format!(
                "cardholder {external_user_id} at {subprovider}: KYC {kyc_status}; new cards for \
                 them will wait and fail until the provider approves it"
            ),
            Warning::TopupsKeptByEarlierCard { key, ids } => format!(
                "{key} is a new card in this plan; its top-up{} {} went to its earlier card and \
                 {} not sent again (each top-up is sent once): declare new ids to fund the new card",
                if ids.len() == 1 { "" } else { "s" },
                ids.join(", "),
                if ids.len() == 1 { "is" } else { "are" },
            ),
            Warning::NoCardholderYet {
                external_user_ids,
                count,
            } => {
                let more = count.saturating_sub(external_user_ids.len());
                format!(
                    "{} declared without a card: only {} user{} created, since a cardholder (and \
                     its KYC) belongs to the subprovider of a card's product; declare their cards \
                     to start KYC",
                    if more > 0 {
                        format!("{} and {more} more are", external_user_ids.join(", "))
                    } else if *count == 1 {
                        format!("{} is", external_user_ids.join(", "))
                    } else {
                        format!("{} are", external_user_ids.join(", "))
                    },
                    if *count == 1 { "its" } else { "their" },
                    if *count == 1 { " is" } else { "s are" },
                )
            }
        }
    }
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.totals.changes() > 0
    }
    pub fn is_applicable(&self) -> bool {
        self.problems.is_empty()
    }
}

/// `part` of `whole` as a percentage with one decimal, for people.
pub fn percent(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let p = Decimal::from(part * 100) / Decimal::from(whole);
    format!("{}%", p.round_dp(1).normalize())
}
