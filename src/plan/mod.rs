//! The pure diff: (declarations, state snapshot, provider facts) → a [`Plan`] of actions, each with
//! a reason and an estimated charge, plus the problems that stop it from being applied.
//!
//! Data in, data out: no I/O, no async, no clock. Everything it needs is passed in, which is what
//! makes "apply the plan, plan again: nothing to do" testable as a property.

pub mod document;
mod estimate;
mod model;
mod moves;

pub use document::{DeclarationsRef, InProgress, PlanDocument, StateRef};
pub use estimate::{Estimate, EstimateSource};
pub use model::*;

use rust_decimal::Decimal;
use std::collections::BTreeMap;

use crate::decl::{DesiredCard, DesiredStatus, Move};
use crate::model::ResourceKind;
use crate::state::{CardPhase, CardRecord, Snapshot};

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
    let moved = moves::apply(moves, state);
    let state: &Snapshot = &moved.state;
    let mut actions = moved.actions;
    // Only the move actions can be a card's `moved_to`; searching every action pushed so far
    // instead made a large plan quadratic.
    let moves_end = actions.len();
    let mut unchanged = 0usize;
    // A sorted list searched by halves rather than a tree: declarations arrive sorted by key, so
    // sorting it is one linear pass, where a million tree inserts cost more than the diff.
    let mut declared: Vec<&str> = desired.iter().map(|c| c.key.as_str()).collect();
    declared.sort_unstable();
    declared.dedup();
    let declared = |key: &str| declared.binary_search(&key).is_ok();

    for card in desired {
        match decide(card, state) {
            Some(mut action) => {
                if let Some(m) = actions[..moves_end]
                    .iter()
                    .find(|m| m.moved_to.as_deref() == Some(card.key.as_str()))
                {
                    action.depends_on.push(m.address());
                }
                actions.push(action)
            }
            None => unchanged += 1,
        }
    }

    // Open orders of cards that are no longer declared are still tracked to completion: an order
    // is never lost track of, whatever the declarations say now.
    for (key, record) in &state.cards {
        if declared(key) {
            continue;
        }
        match &record.replaced_by {
            Some(new_key) => actions.extend(retired(record, new_key, state)),
            None => actions.push(undeclared(record, state, options)),
        }
    }
    for (address, orders) in &state.open_orders {
        let (Some(key), Some(order)) = (address.card_key(), orders.first()) else {
            continue;
        };
        if !declared(key) && !state.cards.contains_key(key) {
            actions.push(Action {
                resource: ResourceKind::Card,
                key: key.to_owned(),
                kind: ActionKind::Resume,
                reason: format!("{} order is still open", order.kind.as_str()),
                product_code: String::new(),
                before: None,
                after: None,
                attempt: order.attempt,
                estimate: Estimate::none(),
                depends_on: Vec::new(),
                moved_to: None,
            });
        }
    }

    actions.sort_by(|a, b| a.key.cmp(&b.key));
    for action in &mut actions {
        action.estimate = estimate::for_action(action, state, facts);
    }

    let mut problems = moved.problems;
    problems.extend(check(&actions, facts, options));
    let prunes = actions
        .iter()
        .filter(|a| a.kind == ActionKind::Prune)
        .count();
    if prunes > 0 && !options.max_prune.allows(prunes, state.cards.len()) {
        problems.push(Problem::PruneOverLimit {
            prunes,
            fleet: state.cards.len(),
            limit: options.max_prune.to_string(),
        });
    }
    let mut totals = Totals::from_actions(&actions, unchanged, facts.balance);
    totals.in_state = state.cards.len();
    let mut warnings = outliers(&actions);
    warnings.extend(renames(&actions));
    let mut plan = Plan {
        actions,
        unchanged,
        totals,
        problems,
        warnings,
    };
    if let Some(budget) = options.max_fees {
        let fees = plan.totals.fees;
        if fees > budget || plan.totals.unknown_fees > 0 {
            plan.problems.push(Problem::FeesOverBudget {
                fees,
                budget,
                unknown: plan.totals.unknown_fees,
            });
        }
    }
    if let Some(balance) = facts.balance {
        let needed = plan.totals.charge;
        if needed > balance {
            plan.problems.push(Problem::InsufficientBalance {
                needed,
                balance,
                missing: needed - balance,
            });
        }
    }
    plan
}

/// What to do for one declared card; `None` when state already matches.
fn decide(card: &DesiredCard, state: &Snapshot) -> Option<Action> {
    // Built only for cards that get an action: most cards of a large fleet are unchanged, and
    // copying their attributes (labels included) just to drop them would cost 100,000 copies.
    let action = |kind, reason: String, before: Option<Attributes>, attempt| Action {
        resource: ResourceKind::Card,
        key: card.key.clone(),
        kind,
        reason,
        product_code: card.product_code.clone(),
        before,
        after: Some(Attributes::from_desired(card)),
        attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        moved_to: None,
    };

    if let Some(order) = state.open_card_orders(&card.key).first() {
        let before = state.cards.get(&card.key).map(Attributes::from_record);
        return Some(action(
            ActionKind::Resume,
            format!(
                "{} order {} is still {}",
                order.kind.as_str(),
                order
                    .order_id
                    .as_deref()
                    .unwrap_or("(not yet acknowledged)"),
                order.phase.as_str()
            ),
            before,
            order.attempt,
        ));
    }

    let Some(record) = state.cards.get(&card.key) else {
        return Some(action(
            ActionKind::Issue,
            "declared, not in state".into(),
            None,
            1,
        ));
    };
    let before = Some(Attributes::from_record(record));

    match record.phase {
        CardPhase::Failed | CardPhase::Pending => {
            return Some(action(
                ActionKind::Reissue,
                "the last issue order failed".into(),
                before,
                record.attempt + 1,
            ));
        }
        CardPhase::Closed => {
            return Some(action(
                ActionKind::Reissue,
                "the card was closed at the provider".into(),
                before,
                record.attempt + 1,
            ));
        }
        CardPhase::Active | CardPhase::Frozen => {}
    }

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
    if !immutable.is_empty() {
        return Some(action(
            ActionKind::Replace,
            format!("{} (cannot change in place)", immutable.join(", ")),
            before,
            record.attempt + 1,
        ));
    }

    let actual = phase_status(record.phase);
    let labels_differ = record.labels != card.labels;
    let kind_reason = match (actual, card.status) {
        (DesiredStatus::Active, DesiredStatus::Frozen) => {
            Some((ActionKind::Freeze, "declared frozen, card is active"))
        }
        (DesiredStatus::Frozen, DesiredStatus::Active) => {
            Some((ActionKind::Unfreeze, "declared active, card is frozen"))
        }
        _ => None,
    };
    match (kind_reason, labels_differ) {
        (Some((kind, reason)), labels) => {
            let reason = if labels {
                format!("{reason}; labels changed")
            } else {
                reason.to_owned()
            };
            Some(action(kind, reason, before, record.attempt))
        }
        (None, true) => Some(action(
            ActionKind::UpdateLabels,
            "labels changed (state only, no provider call)".into(),
            before,
            record.attempt,
        )),
        (None, false) => None,
    }
}

fn undeclared(record: &CardRecord, state: &Snapshot, options: &PlanOptions) -> Action {
    let before = Some(Attributes::from_record(record));
    let base = |kind, reason: &str| Action {
        resource: ResourceKind::Card,
        key: record.key.clone(),
        kind,
        reason: reason.to_owned(),
        product_code: record.product_code.clone(),
        before: before.clone(),
        after: None,
        attempt: record.attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        moved_to: None,
    };
    if let Some(order) = state.open_card_orders(&record.key).first() {
        return base(
            ActionKind::Resume,
            &format!(
                "no longer declared, but its {} order is still open",
                order.kind.as_str()
            ),
        );
    }
    match (options.prune, record.phase) {
        (true, CardPhase::Active) => {
            let mut a = base(ActionKind::Prune, "no longer declared; --prune freezes it");
            a.after = before.clone().map(|mut b| {
                b.status = DesiredStatus::Frozen;
                b
            });
            a
        }
        (true, _) => base(
            ActionKind::Undeclared,
            "no longer declared; nothing to freeze",
        ),
        (false, _) => base(
            ActionKind::Undeclared,
            "no longer declared; left untouched (use --prune to freeze it)",
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
    let before = Attributes::from_record(record);
    let mut after = before.clone();
    after.status = DesiredStatus::Frozen;
    Some(Action {
        resource: ResourceKind::Card,
        key: record.key.clone(),
        kind: ActionKind::Freeze,
        reason: format!("replaced by {new_key}; the old card is frozen"),
        product_code: record.product_code.clone(),
        before: Some(before),
        after: Some(after),
        attempt: record.attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        moved_to: None,
    })
}

/// The status a recorded card is in, in declaration terms.
fn phase_status(phase: CardPhase) -> DesiredStatus {
    match phase {
        CardPhase::Frozen => DesiredStatus::Frozen,
        _ => DesiredStatus::Active,
    }
}

/// Plan-level problems: anything here makes the plan fail instead of being applied.
fn check(actions: &[Action], facts: &ProviderFacts, _options: &PlanOptions) -> Vec<Problem> {
    let mut unknown: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut inactive: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for a in actions.iter().filter(|a| a.kind.issues_card()) {
        let Some(after) = &a.after else { continue };
        match facts.products.get(&after.product_code) {
            None => unknown
                .entry(after.product_code.clone())
                .or_default()
                .push(a.key.clone()),
            Some(p) if !p.is_active => inactive
                .entry(after.product_code.clone())
                .or_default()
                .push(a.key.clone()),
            Some(p) => {
                if let Some(amount) = after.initial_topup {
                    let below = p.min_topup.is_some_and(|min| amount < min);
                    let above = p.max_topup.is_some_and(|max| amount > max);
                    if below || above {
                        problems.push(Problem::TopupOutOfRange {
                            key: a.key.clone(),
                            amount,
                            min: p.min_topup,
                            max: p.max_topup,
                        });
                    }
                }
            }
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

/// New cards that look like a key renamed in the declarations: the same user and product as a
/// card this plan leaves undeclared or prunes.
fn renames(actions: &[Action]) -> Vec<Warning> {
    let leaving: BTreeMap<(&str, &str), &str> = actions
        .iter()
        .filter(|a| matches!(a.kind, ActionKind::Undeclared | ActionKind::Prune))
        .filter_map(|a| {
            let b = a.before.as_ref()?;
            Some((
                (b.external_user_id.as_str(), b.product_code.as_str()),
                a.key.as_str(),
            ))
        })
        .collect();
    if leaving.is_empty() {
        return Vec::new();
    }
    actions
        .iter()
        .filter(|a| a.kind == ActionKind::Issue)
        .filter_map(|a| {
            let after = a.after.as_ref()?;
            let old =
                leaving.get(&(after.external_user_id.as_str(), after.product_code.as_str()))?;
            Some(Warning::PossibleRename {
                new_key: a.key.clone(),
                old_key: (*old).to_owned(),
            })
        })
        .collect()
}

/// Amounts far above the rest of their product's in this plan: per product, each top-up and
/// each known fee against the median of its kind, among at least three of them.
fn outliers(actions: &[Action]) -> Vec<Warning> {
    let mut warnings = Vec::new();
    let mut by_product: BTreeMap<&str, Vec<&Action>> = BTreeMap::new();
    for a in actions.iter().filter(|a| a.kind.issues_card()) {
        by_product
            .entry(a.product_code.as_str())
            .or_default()
            .push(a);
    }
    fn topup(a: &Action) -> Option<Decimal> {
        Some(a.estimate.topup).filter(|t| !t.is_zero())
    }
    fn fee(a: &Action) -> Option<Decimal> {
        a.estimate.fee
    }
    let factor = Decimal::from(OUTLIER_FACTOR);
    for (product, group) in by_product {
        for (what, amount) in [
            ("topup", topup as fn(&Action) -> Option<Decimal>),
            ("fee", fee),
        ] {
            let mut amounts: Vec<_> = group.iter().filter_map(|a| amount(a)).collect();
            if amounts.len() < 3 {
                continue;
            }
            amounts.sort();
            let median = amounts[amounts.len() / 2];
            if median.is_zero() {
                continue;
            }
            for a in &group {
                if let Some(x) = amount(a).filter(|x| *x > median * factor) {
                    warnings.push(Warning::OutlierAmount {
                        key: a.key.clone(),
                        product_code: product.to_owned(),
                        what: what.to_owned(),
                        amount: x,
                        median,
                    });
                }
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests;
