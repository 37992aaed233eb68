//! The pure diff: (declarations, state snapshot, provider facts) → a [`Plan`] of actions, each with
//! a reason and an estimated charge, plus the problems that stop it from being applied.
//!
//! Data in, data out: no I/O, no async, no clock. Everything it needs is passed in, which is what
//! makes "apply the plan, plan again: nothing to do" testable as a property.

pub mod document;
pub mod drift;
mod estimate;
pub mod file;
pub mod fold;
mod model;
mod moves;
pub mod outline;
mod people;
pub mod stale;
mod target;

pub use document::{DeclarationsRef, FORMAT_VERSION, InProgress, PlanDocument, StateRef};
pub use estimate::{Estimate, EstimateSource};
pub use fold::{Draft, Folding};
pub use model::*;
pub use people::Person;
pub use target::{Partial, Target};

use compact_str::CompactString;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::decl::{DesiredCard, DesiredStatus, Move};
use crate::model::ResourceKind;
use crate::state::{CardPhase, CardRecord, OrderPhase, Snapshot};

/// Diff what is declared against what state holds.
pub fn plan(
    desired: &[DesiredCard],
    state: &Snapshot,
    facts: &ProviderFacts,
    options: &PlanOptions,
) -> Plan {
    plan_with_moves(desired, &[], state, facts, options)
}

/// [`plan`], with declared moves: each applicable one is a state-only `move` action, and the
/// rest of the plan is made against state as it will be after them (a renamed card whose labels
/// also changed is moved, then relabelled; never re-issued).
pub fn plan_with_moves(
    desired: &[DesiredCard],
    moves: &[Move],
    state: &Snapshot,
    facts: &ProviderFacts,
    options: &PlanOptions,
) -> Plan {
    plan_all(desired, moves, &[], state, facts, options)
}

/// [`plan_with_moves`], with declared people (sorted by `external_user_id`): the users and
/// cardholders missing for them, ahead of the cards that need them. The plan made at once: one
/// [`draft`], checked as a whole by the same fold a plan made a part at a time goes through.
pub fn plan_all(
    desired: &[DesiredCard],
    moves: &[Move],
    people: &[Person],
    state: &Snapshot,
    facts: &ProviderFacts,
    options: &PlanOptions,
) -> Plan {
    let mut whole = Folding::new(state);
    let actions = whole.add(draft(desired, moves, people, state, facts, options));
    let mut plan = whole.finish(facts, options);
    plan.actions = actions;
    plan
}

/// The planner itself: the actions for `desired` against `state` (all of it, or one part's
/// declarations against that part of state), with the problems and warnings of their own cards.
/// The checks of a whole plan are [`Folding`]'s.
pub fn draft(
    desired: &[DesiredCard],
    moves: &[Move],
    people: &[Person],
    state: &Snapshot,
    facts: &ProviderFacts,
    options: &PlanOptions,
) -> Draft {
    let moved = moves::apply(moves, state);
    let state: &Snapshot = &moved.state;
    let mut actions = moved.actions;
    // Room for the most the two walks below can push (one action per declared card, one per card
    // in state), reserved once: a vector of a million actions grown by doubling held its old
    // buffers too until the allocator got round to returning them (docs/design/measurements.md).
    // Capacity never written costs address space, not memory.
    actions.reserve(desired.len() + state.cards.len());
    let declared = DeclaredKeys::new(desired);
    let unchanged = diff_declared(desired, &declared, state, options, &mut actions);
    diff_undeclared(desired, &declared, state, options, &mut actions);
    let mut topup_problems = Vec::new();
    let mut people_warnings = Vec::new();
    topups(
        desired,
        state,
        &mut actions,
        &mut topup_problems,
        &mut people_warnings,
    );
    people::plan_people(
        people,
        desired,
        state,
        facts,
        &mut actions,
        &mut topup_problems,
        &mut people_warnings,
    );
    resume_open_orders(&declared, state, &mut actions);
    sort_people_first(&mut actions);
    for action in &mut actions {
        action.estimate = estimate::for_action(action, state, facts);
    }

    let partial = restrict(&mut actions, desired, state, options);

    let mut problems = moved.problems;
    problems.extend(topup_problems);
    problems.extend(card_checks(&actions, state, facts));
    let totals = Totals::from_actions(&actions, unchanged, facts.balance);
    Draft {
        actions,
        unchanged,
        totals,
        problems,
        warnings: people_warnings,
        partial,
    }
}

/// Which card keys are declared. Declarations come sorted by key, as the state's cards do: one
/// walk along both finds each card's record, where a lookup per card (a million of them) cost most
/// of the diff. Callers that pass cards in another order get the lookups.
struct DeclaredKeys<'a> {
    desired: &'a [DesiredCard],
    sorted: bool,
    /// A sorted list searched by halves rather than a tree: a million tree inserts cost more than
    /// the diff. Sorted declarations are that list already, so a copy of their keys is made only
    /// for declarations in another order.
    keys: Vec<&'a str>,
}

impl<'a> DeclaredKeys<'a> {
    fn new(desired: &'a [DesiredCard]) -> Self {
        let sorted = desired.windows(2).all(|w| w[0].key < w[1].key);
        let mut keys: Vec<&str> = Vec::new();
        if !sorted {
            keys = desired.iter().map(|c| c.key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
        }
        DeclaredKeys {
            desired,
            sorted,
            keys,
        }
    }

    fn contains(&self, key: &str) -> bool {
        if self.sorted {
            self.desired
                .binary_search_by(|c| c.key.as_str().cmp(key))
                .is_ok()
        } else {
            self.keys.binary_search(&key).is_ok()
        }
    }
}

/// One action per declared card that differs from its record (after the move that renamed it, if
/// any); returns how many are unchanged.
fn diff_declared(
    desired: &[DesiredCard],
    declared: &DeclaredKeys,
    state: &Snapshot,
    options: &PlanOptions,
    actions: &mut Vec<Action>,
) -> usize {
    // Only the move actions can be a card's `moved_to`; searching every action pushed so far
    // instead made a large plan quadratic.
    let moves_end = actions.len();
    let mut unchanged = 0usize;
    let mut records = state.cards.iter().peekable();
    for card in desired {
        let record = if declared.sorted {
            while records
                .next_if(|(key, _)| key.as_str() < card.key.as_str())
                .is_some()
            {}
            records
                .next_if(|(key, _)| **key == card.key)
                .map(|(_, record)| record)
        } else {
            state.cards.get(card.key.as_str())
        };
        let replace = options.replace.contains(card.key.as_str());
        match decide(card, record, state, replace) {
            Some(mut action) => {
                if let Some(m) = actions[..moves_end]
                    .iter()
                    .find(|m| m.moved_to() == Some(card.key.as_str()))
                {
                    action.depends_on.push(m.address());
                }
                actions.push(action)
            }
            None => unchanged += 1,
        }
    }
    unchanged
}

/// The state's cards no card is declared for: retired after a replacement, or undeclared. The
/// same walk as [`diff_declared`], the other way.
fn diff_undeclared(
    desired: &[DesiredCard],
    declared: &DeclaredKeys,
    state: &Snapshot,
    options: &PlanOptions,
    actions: &mut Vec<Action>,
) {
    let mut declared_keys = desired.iter().map(|c| c.key.as_str()).peekable();
    for (key, record) in &state.cards {
        let is_declared = if declared.sorted {
            while declared_keys.next_if(|k| *k < key.as_str()).is_some() {}
            declared_keys.peek() == Some(&key.as_str())
        } else {
            declared.contains(key)
        };
        if is_declared {
            continue;
        }
        match &record.replaced_by {
            Some(new_key) => actions.extend(retired(record, new_key, state)),
            None => actions.push(undeclared(record, state, options)),
        }
    }
}

/// Open orders are tracked to completion: an order is never lost track of, whatever the
/// declarations say now.
fn resume_open_orders(declared: &DeclaredKeys, state: &Snapshot, actions: &mut Vec<Action>) {
    for (address, orders) in &state.open_orders {
        let Some(order) = orders.first() else {
            continue;
        };
        let resume = |change, product_code: String| Action {
            key: address.key.as_str().into(),
            reason: format!("{} order is still open", order.kind.as_str()).into(),
            product_code: product_code.into(),
            attempt: order.attempt,
            estimate: Estimate::none(),
            depends_on: Vec::new(),
            change,
        };
        let Some(card) = address.card_key() else {
            continue;
        };
        if address.kind == ResourceKind::Topup {
            // Tracked to the end whatever the declarations say: its money may be sent already.
            let product = state.cards.get(card).map(|c| c.product_code.clone());
            actions.push(resume(
                Change::ResumeTopup,
                product.map(String::from).unwrap_or_default(),
            ));
        } else if !declared.contains(card) && !state.cards.contains_key(card) {
            let change = Change::ResumeCard {
                before: None,
                after: None,
            };
            actions.push(resume(change, String::new()));
        }
    }
}

/// People first (what cards wait for), then by key. Usually in that order already (the cards were
/// walked in key order): a stable sort would still take a buffer of half the actions first,
/// hundreds of megabytes for a million new cards.
fn sort_people_first(actions: &mut [Action]) {
    let order = |a: &Action, b: &Action| {
        (!a.resource().is_person(), &a.key).cmp(&(!b.resource().is_person(), &b.key))
    };
    if !actions.is_sorted_by(|a, b| order(a, b).is_le()) {
        actions.sort_by(order);
    }
}

/// The declared top-ups against the journal: each not yet sent (or whose last attempt failed) is a
/// `topup` action, after its card's issue when the card is new in this plan; one sent already
/// stays as it is (a changed amount is a problem: money sent cannot be edited), though its record
/// takes changed labels (`update_labels`, state only); one sent and no longer declared is listed,
/// and nothing is undone. A card this plan issues anew does not get again what its earlier card
/// was sent: a warning says so.
fn topups(
    desired: &[DesiredCard],
    state: &Snapshot,
    actions: &mut Vec<Action>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Warning>,
) {
    let mut declared = BTreeSet::new();
    let mut new = Vec::new();
    let card_changes = card_changes(desired, actions, state);
    for card in desired.iter().filter(|c| !c.topups.is_empty()) {
        let (card_change, new_card) = match card_changes.get(card.key.as_str()) {
            Some((address, new_card)) => (Some(address), *new_card),
            None => (None, false),
        };
        let topups = CardTopups { card, card_change };
        let mut kept_by_earlier_card = Vec::new();
        for t in &card.topups {
            let address = crate::model::Address::topup(&card.key, &t.id);
            declared.insert(address.key.clone());
            let sent = state.topups.get(&address.key);
            let attempt = match sent {
                Some(s) if s.phase != crate::state::OrderPhase::Failed => {
                    if s.amount.is_some_and(|a| a != t.amount) {
                        problems.push(Problem::TopupAmountChanged {
                            key: address.key.clone(),
                            sent: s.amount.unwrap_or_default(),
                            declared: t.amount,
                        });
                    } else if new_card {
                        kept_by_earlier_card.push(t.id.clone());
                    } else {
                        new.extend(topups.relabel(t, &address, state));
                    }
                    continue;
                }
                Some(s) => s.attempt + 1,
                None => 1,
            };
            if card.status == DesiredStatus::Frozen {
                problems.push(Problem::TopupOnFrozenCard {
                    key: address.key.clone(),
                });
            }
            new.push(topups.send(t, address, sent, attempt));
        }
        if !kept_by_earlier_card.is_empty() {
            warnings.push(Warning::TopupsKeptByEarlierCard {
                key: card.key.to_string(),
                ids: kept_by_earlier_card,
            });
        }
    }
    new.extend(undeclared_topups(state, &declared));
    actions.extend(new);
}

/// Per card key, the change that makes the card exist (or renames it), and whether it is a new
/// card: its top-ups come after. Only wanted when some card declares top-ups: for a million new
/// cards it was a table of a million addresses built for nothing.
fn card_changes<'a>(
    desired: &[DesiredCard],
    actions: &'a [Action],
    state: &Snapshot,
) -> std::collections::HashMap<&'a str, (crate::model::Address, bool)> {
    if !desired.iter().any(|c| !c.topups.is_empty()) {
        return Default::default();
    }
    actions
        .iter()
        .filter(|a| {
            a.resource() == ResourceKind::Card
                && matches!(
                    a.kind(),
                    ActionKind::Issue
                        | ActionKind::Reissue
                        | ActionKind::Replace
                        | ActionKind::Resume
                        | ActionKind::Move
                )
        })
        .map(|a| {
            // A card whose earlier one got money: taken back, it is that same card.
            let new_card = matches!(
                a.kind(),
                ActionKind::Issue | ActionKind::Reissue | ActionKind::Replace
            ) && !state.takes_back(&a.key, a.attempt);
            (a.moved_to().unwrap_or(&a.key), (a.address(), new_card))
        })
        .collect()
}

/// One declared card's top-ups, and the change in this plan they wait for.
struct CardTopups<'a> {
    card: &'a DesiredCard,
    card_change: Option<&'a crate::model::Address>,
}

impl CardTopups<'_> {
    /// A top-up sent already whose labels changed: money sent stays as sent; what state says of
    /// it follows the labels.
    fn relabel(
        &self,
        t: &crate::decl::DesiredTopup,
        address: &crate::model::Address,
        state: &Snapshot,
    ) -> Option<Action> {
        let record = state
            .resources
            .get(address)
            .and_then(|r| r.image.as_topup())
            .filter(|r| r.labels != t.labels)?;
        Some(Action {
            key: address.key.as_str().into(),
            reason: "labels changed (state only, no provider call)".into(),
            product_code: self.card.product_code.clone(),
            attempt: record.attempt,
            estimate: Estimate::none(),
            depends_on: self.card_change.into_iter().cloned().collect(),
            change: Change::RelabelTopup(Box::new(self.change(t))),
        })
    }

    /// A top-up not sent yet, or sent again under a new key after its last attempt failed.
    fn send(
        &self,
        t: &crate::decl::DesiredTopup,
        address: crate::model::Address,
        sent: Option<&crate::state::TopupState>,
        attempt: u32,
    ) -> Action {
        let reason = match sent {
            Some(s) => format!(
                "attempt {} failed ({}): sent again under a new key",
                s.attempt,
                s.error_slug.as_deref().unwrap_or("order_failed")
            )
            .into(),
            None => "declared, not sent yet".into(),
        };
        Action {
            key: address.key.into(),
            reason,
            product_code: self.card.product_code.clone(),
            attempt,
            estimate: Estimate::none(),
            depends_on: self.card_change.into_iter().cloned().collect(),
            change: Change::Topup(Box::new(self.change(t))),
        }
    }

    fn change(&self, t: &crate::decl::DesiredTopup) -> TopupChange {
        TopupChange {
            card: Attributes::from_desired(self.card),
            amount: t.amount,
            labels: t.labels.clone(),
        }
    }
}

/// Top-ups sent and no longer declared: listed, never undone (money sent stays sent).
fn undeclared_topups<'a>(
    state: &'a Snapshot,
    declared: &'a BTreeSet<String>,
) -> impl Iterator<Item = Action> + 'a {
    state
        .topups
        .iter()
        .filter(|(key, s)| {
            s.phase == crate::state::OrderPhase::Completed && !declared.contains(*key)
        })
        .map(|(key, s)| Action {
            key: key.as_str().into(),
            reason: "sent, no longer declared: money sent stays sent".into(),
            product_code: CompactString::default(),
            attempt: s.attempt,
            estimate: Estimate::none(),
            depends_on: Vec::new(),
            change: Change::UndeclaredTopup { amount: s.amount },
        })
}

/// Keeps the actions `--target` asks for, and the changes they depend on (a targeted relabel of
/// a moved card needs its move): everything after (problems, totals, money) is about those only.
fn restrict(
    actions: &mut Vec<Action>,
    desired: &[DesiredCard],
    state: &Snapshot,
    options: &PlanOptions,
) -> Option<Partial> {
    if options.targets.is_empty() {
        return None;
    }
    let changes_before = actions.iter().filter(|a| a.kind().is_change()).count();
    let mut keep: Vec<bool> = actions
        .iter()
        .map(|a| options.targets.iter().any(|t| t.matches_action(a)))
        .collect();
    let needed: BTreeSet<crate::model::Address> = actions
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .flat_map(|(a, _)| a.depends_on.iter().cloned())
        .collect();
    for (a, k) in actions.iter().zip(keep.iter_mut()) {
        *k |= needed.contains(&a.address());
    }
    let mut i = 0;
    actions.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    let changes_after = actions.iter().filter(|a| a.kind().is_change()).count();
    Some(Partial {
        targets: options.targets.iter().map(|t| t.given.clone()).collect(),
        left_out: changes_before - changes_after,
        unmatched: options
            .targets
            .iter()
            .filter(|t| {
                !desired.iter().any(|c| t.matches_card(c))
                    && !state.cards.values().any(|r| t.matches_record(r))
            })
            .map(|t| t.given.clone())
            .collect(),
    })
}

/// The issue attempt, and why, of a declared card state has no record of. A key that left state
/// (`state rm`, a move) may have issue orders journaled under it: its latest one is taken back
/// when it asked for what is declared now (the order is checked, not sent again, so the same card
/// returns at no charge); otherwise the card is new under the next attempt, whose idempotency key
/// was never sent. Re-sending an old key with another request could only fail, and past the
/// provider's key retention would issue and charge for a card nobody tracks.
fn comeback(card: &DesiredCard, state: &Snapshot) -> (u32, Cow<'static, str>) {
    let Some(last) = state.removed_issues(&card.key).max_by_key(|o| o.attempt) else {
        return (
            1,
            if state.removed_cards.contains_key(card.key.as_str()) {
                "declared, not in state: the card this key had left with no issue order of its \
                 own (it moved to another key, or was imported), so this is a new card"
            } else {
                "declared, not in state"
            }
            .into(),
        );
    };
    let asked_the_same = serde_json::from_str::<crate::wire::CreateCardRequest>(&last.request)
        .is_ok_and(|r| {
            r.product_code.as_deref() == Some(card.product_code.as_str())
                && r.external_user_id == card.external_user_id.as_str()
                && r.initial_topup_amount == card.initial_topup
        });
    let order = last.order_id.as_deref().unwrap_or("(not yet acknowledged)");
    match last.phase {
        OrderPhase::Failed => (
            last.attempt + 1,
            format!(
                "declared again after it left state; its last issue order (attempt {}) failed",
                last.attempt
            )
            .into(),
        ),
        _ if asked_the_same => (
            last.attempt,
            format!(
                "taken out of state earlier: its issue order {order} is checked, not sent again{}",
                if last.order_id.is_some() {
                    " (no new charge)"
                } else {
                    ""
                }
            )
            .into(),
        ),
        _ => (
            last.attempt + 1,
            format!(
                "declared again with another product, user or top-up than the card that left \
                 state (issue order {order}): a new card; `cardform import {} CARD_ID` takes the \
                 old one back instead",
                card.key
            )
            .into(),
        ),
    }
}

/// What to do for one declared card, whose record in state is `record`; `None` when state
/// already matches.
///
/// `replace`: `--replace` named this card, so an issued one (active or frozen) is replaced even
/// though nothing declared changed. A card with an open order is resumed first, and a closed or
/// failed one is re-issued anyway: either way no second new card is planned.
fn decide(
    card: &DesiredCard,
    record: Option<&CardRecord>,
    state: &Snapshot,
    replace: bool,
) -> Option<Action> {
    // Built only for cards that get an action: most cards of a large fleet are unchanged, and
    // copying their attributes (labels included) just to drop them would cost 100,000 copies.
    let after = || Box::new(Attributes::from_desired(card));
    let action = |change, reason: Cow<'static, str>, attempt| Action {
        key: card.key.clone(),
        reason,
        product_code: card.product_code.clone(),
        attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change,
    };

    if let Some(order) = state.open_card_orders(&card.key).first() {
        let change = Change::ResumeCard {
            before: record.map(|r| Box::new(Attributes::from_record(r))),
            after: Some(after()),
        };
        return Some(action(change, still_open(order), order.attempt));
    }

    let Some(record) = record else {
        let (attempt, reason) = comeback(card, state);
        return Some(action(Change::Issue { after: after() }, reason, attempt));
    };
    let (variant, reason, attempt) = card_edit(card, record, replace)?;
    let change = variant(Edit {
        before: Box::new(Attributes::from_record(record)),
        after: after(),
    });
    Some(action(change, reason, attempt))
}

/// Why a card with an open order is resumed rather than planned afresh.
fn still_open(order: &crate::state::OrderRecord) -> Cow<'static, str> {
    format!(
        "{} order {} is still {}",
        order.kind.as_str(),
        order
            .order_id
            .as_deref()
            .unwrap_or("(not yet acknowledged)"),
        order.phase.as_str()
    )
    .into()
}

/// The edit a recorded card needs, why, and under which attempt; `None` when it matches.
fn card_edit(
    card: &DesiredCard,
    record: &CardRecord,
    replace: bool,
) -> Option<(EditKind, Cow<'static, str>, u32)> {
    match record.phase {
        CardPhase::Failed | CardPhase::Pending => {
            return Some((
                Change::Reissue,
                "the last issue order failed".into(),
                record.attempt + 1,
            ));
        }
        CardPhase::Closed => {
            return Some((
                Change::Reissue,
                "the card was closed at the provider".into(),
                record.attempt + 1,
            ));
        }
        CardPhase::Active | CardPhase::Frozen => {}
    }
    if let Some(reason) = replacement(card, record, replace) {
        return Some((Change::Replace, reason, record.attempt + 1));
    }
    let (variant, reason) = in_place(card, record)?;
    Some((variant, reason, record.attempt))
}

/// Why an issued card is replaced by a new one: what cannot change in place changed, or
/// `--replace` asked for it.
fn replacement(
    card: &DesiredCard,
    record: &CardRecord,
    replace: bool,
) -> Option<Cow<'static, str>> {
    let mut immutable = Vec::new();
    if record.product_code != card.product_code {
        immutable.push(format!(
            "product_code {} → {}",
            record.product_code, card.product_code
        ));
    }
    if record.external_user_id != card.external_user_id {
        immutable.push(format!(
            "external_user_id {} → {}",
            record.external_user_id, card.external_user_id
        ));
    }
    if replace && immutable.is_empty() {
        return Some(
            "replacement asked for (--replace): a new card under a new key, the old one frozen"
                .into(),
        );
    }
    if !immutable.is_empty() {
        return Some(format!("{} (cannot change in place)", immutable.join(", ")).into());
    }
    None
}

/// What changes in place on an issued card: its status (freeze, unfreeze), its labels (state
/// only), or both.
fn in_place(card: &DesiredCard, record: &CardRecord) -> Option<(EditKind, Cow<'static, str>)> {
    let actual = phase_status(record.phase);
    let labels_differ = record.labels != card.labels;
    let kind_reason: Option<(EditKind, _)> = match (actual, card.status) {
        (DesiredStatus::Active, DesiredStatus::Frozen) => {
            Some((Change::Freeze, "declared frozen, card is active"))
        }
        (DesiredStatus::Frozen, DesiredStatus::Active) => {
            Some((Change::Unfreeze, "declared active, card is frozen"))
        }
        _ => None,
    };
    match (kind_reason, labels_differ) {
        (Some((kind, reason)), labels) => {
            let reason = if labels {
                format!("{reason}; labels changed").into()
            } else {
                reason.into()
            };
            Some((kind, reason))
        }
        (None, true) => Some((
            Change::RelabelCard,
            "labels changed (state only, no provider call)".into(),
        )),
        (None, false) => None,
    }
}

fn undeclared(record: &CardRecord, state: &Snapshot, options: &PlanOptions) -> Action {
    let before = || Box::new(Attributes::from_record(record));
    let base = |change, reason: Cow<'static, str>| Action {
        key: record.key.as_str().into(),
        reason,
        product_code: record.product_code.as_str().into(),
        attempt: record.attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change,
    };
    if let Some(order) = state.open_card_orders(&record.key).first() {
        let change = Change::ResumeCard {
            before: Some(before()),
            after: None,
        };
        return base(
            change,
            format!(
                "no longer declared, but its {} order is still open",
                order.kind.as_str()
            )
            .into(),
        );
    }
    match (options.prune, record.phase) {
        (true, CardPhase::Active) => {
            let mut after = before();
            after.status = DesiredStatus::Frozen;
            let change = Change::Prune(Edit {
                before: before(),
                after,
            });
            base(change, "no longer declared; --prune freezes it".into())
        }
        (true, _) => base(
            Change::UndeclaredCard { before: before() },
            "no longer declared; nothing to freeze".into(),
        ),
        (false, _) => base(
            Change::UndeclaredCard { before: before() },
            "no longer declared; left untouched (use --prune to freeze it)".into(),
        ),
    }
}

/// A card superseded by a replacement is frozen once the new card exists. A run killed between the
/// two steps leaves it active; this finishes the job (and never before the new card is issued).
fn retired(record: &CardRecord, new_key: &str, state: &Snapshot) -> Option<Action> {
    let replacement_issued = state
        .cards
        .get(new_key)
        .is_some_and(|n| matches!(n.phase, CardPhase::Active | CardPhase::Frozen));
    if record.phase != CardPhase::Active || !replacement_issued {
        return None;
    }
    let before = Box::new(Attributes::from_record(record));
    let mut after = before.clone();
    after.status = DesiredStatus::Frozen;
    Some(Action {
        key: record.key.as_str().into(),
        reason: format!("replaced by {new_key}; the old card is frozen").into(),
        product_code: record.product_code.as_str().into(),
        attempt: record.attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change: Change::Freeze(Edit { before, after }),
    })
}

/// Which change of a card in state an [`Edit`] is (`Change::Freeze`, ...).
type EditKind = fn(Edit) -> Change;

/// The status a recorded card is in, in declaration terms.
fn phase_status(phase: CardPhase) -> DesiredStatus {
    match phase {
        CardPhase::Frozen => DesiredStatus::Frozen,
        _ => DesiredStatus::Active,
    }
}

/// The problems of each card against the provider's products: anything here makes the plan fail
/// instead of being applied.
fn card_checks(actions: &[Action], state: &Snapshot, facts: &ProviderFacts) -> Vec<Problem> {
    let mut unknown: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut inactive: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    // A card taken back asks nothing of its product: the order that issued it is only checked.
    for a in actions
        .iter()
        .filter(|a| a.kind().issues_card() && !state.takes_back(&a.key, a.attempt))
    {
        let Some(after) = a.after() else { continue };
        match facts.products.get(after.product_code.as_str()) {
            None => unknown
                .entry(after.product_code.to_string())
                .or_default()
                .push(a.key.to_string()),
            Some(p) if !p.is_active => inactive
                .entry(after.product_code.to_string())
                .or_default()
                .push(a.key.to_string()),
            Some(p) => {
                if let Some(amount) = after.initial_topup {
                    let below = p.min_topup.is_some_and(|min| amount < min);
                    let above = p.max_topup.is_some_and(|max| amount > max);
                    if below || above {
                        problems.push(Problem::TopupOutOfRange {
                            key: a.key.to_string(),
                            amount,
                            min: p.min_topup,
                            max: p.max_topup,
                        });
                    }
                }
            }
        }
    }
    for a in actions.iter().filter(|a| a.kind() == ActionKind::Topup) {
        let (Some(p), Some(amount)) = (facts.products.get(a.product_code.as_str()), a.amount())
        else {
            continue;
        };
        if p.min_topup.is_some_and(|min| amount < min)
            || p.max_topup.is_some_and(|max| amount > max)
        {
            problems.push(Problem::TopupOutOfRange {
                key: a.key.to_string(),
                amount,
                min: p.min_topup,
                max: p.max_topup,
            });
        }
    }
    let known: Vec<&str> = facts.products.keys().map(String::as_str).collect();
    for (product_code, keys) in unknown {
        let did_you_mean =
            crate::decl::suggest::did_you_mean(&product_code, &known).map(str::to_owned);
        problems.push(Problem::UnknownProduct {
            product_code,
            keys,
            did_you_mean,
        });
    }
    for (product_code, keys) in inactive {
        problems.push(Problem::InactiveProduct { product_code, keys });
    }
    problems
}

#[cfg(test)]
mod tests;
