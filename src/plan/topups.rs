//! The declared top-ups of each card against the journal of top-ups sent: what to send, what
//! to relabel, and what stays as sent. Money sent is never edited nor undone here.
//!
//! Part of the pure diff (see [`super`]): no I/O, no clock.

use compact_str::CompactString;
use std::collections::BTreeSet;

use super::{Action, ActionKind, Attributes, Change, Estimate, Problem, TopupChange, Warning};
use crate::decl::{DesiredCard, DesiredStatus};
use crate::model::ResourceKind;
use crate::state::Snapshot;

/// The declared top-ups against the journal: each not yet sent (or whose last attempt failed) is a
/// `topup` action, after its card's issue when the card is new in this plan; one sent already
/// stays as it is (a changed amount is a problem: money sent cannot be edited), though its record
/// takes changed labels (`update_labels`, state only); one sent and no longer declared is listed,
/// and nothing is undone. A card this plan issues anew does not get again what its earlier card
/// was sent: a warning says so.
pub(super) fn topups(
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
