//! The pure diff: (declarations, state snapshot, provider facts) → a [`Plan`] of actions, each with
//! a reason and an estimated charge, plus the problems that stop it from being applied.
//!
//! Data in, data out: no I/O, no async, no clock. Everything it needs is passed in, which is what
//! makes "apply the plan, plan again: nothing to do" testable as a property.

mod cards;
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
mod topups;

pub use document::{DeclarationsRef, FORMAT_VERSION, InProgress, PlanDocument, StateRef};
pub use estimate::{Estimate, EstimateSource};
pub use fold::{Draft, Folding};
pub use model::*;
pub use people::Person;
pub use target::{Partial, Target};

use cards::{decide, retired, undeclared};
use topups::topups;

use std::collections::{BTreeMap, BTreeSet};

use crate::decl::{DesiredCard, Move};
use crate::model::ResourceKind;
use crate::state::Snapshot;

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
