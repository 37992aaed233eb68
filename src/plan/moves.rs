//! Declared moves against state: which renames still have something to do, and the snapshot as it
//! will be once they are done, so the rest of the plan diffs the new keys against the old cards.
//!
//! A move whose old key is not in state (done already, or never there) does nothing: it may stay
//! in the declarations, as in Terraform. Pure, like the rest of the planner.

use std::borrow::Cow;

use super::{Action, Attributes, Change, Estimate, Problem, Renamed};
use crate::decl::Move;
use crate::model::{Address, ResourceKind};
use crate::state::Snapshot;

pub(super) struct Moved<'s> {
    /// State with every applicable move done; borrowed as is when there is none.
    pub state: Cow<'s, Snapshot>,
    pub actions: Vec<Action>,
    pub problems: Vec<Problem>,
}

pub(super) fn apply<'s>(moves: &[Move], state: &'s Snapshot) -> Moved<'s> {
    let mut moved = Moved {
        state: Cow::Borrowed(state),
        actions: Vec::new(),
        problems: Vec::new(),
    };
    for m in moves {
        let Some(card) = state.cards.get(m.from.as_str()) else {
            continue;
        };
        if state.cards.contains_key(m.to.as_str()) {
            moved.problems.push(Problem::MoveConflict {
                from: m.from.clone(),
                to: m.to.clone(),
            });
            continue;
        }
        if state
            .removed_cards
            .get(m.to.as_str())
            .is_some_and(|orders| !orders.is_empty())
        {
            moved.problems.push(Problem::MoveOntoUsedKey {
                from: m.from.clone(),
                to: m.to.clone(),
            });
            continue;
        }
        let open_topups = state
            .open_orders
            .keys()
            .any(|a| a.kind == ResourceKind::Topup && a.card_key() == Some(m.from.as_str()));
        if !state.open_card_orders(&m.from).is_empty() || open_topups {
            // Its journal entries would follow it mid-flight; finishing them first keeps a
            // resumed order and its card under one key.
            moved.problems.push(Problem::MoveWaitsForOrders {
                from: m.from.clone(),
                to: m.to.clone(),
            });
            continue;
        }
        let state = moved.state.to_mut();
        if let Some(mut record) = state.cards.remove(m.from.as_str()) {
            record.key = m.to.as_str().into();
            state.cards.insert(m.to.as_str().into(), record);
        }
        move_topups(state, &m.from, &m.to);
        moved.actions.push(Action {
            key: m.from.as_str().into(),
            reason: "renamed in the declarations (`moved:`): keeps its card, orders and history"
                .into(),
            product_code: card.product_code.as_str().into(),
            attempt: card.attempt,
            estimate: Estimate::none(),
            depends_on: Vec::new(),
            change: Change::Move(Box::new(Renamed {
                before: Attributes::from_record(card),
                to: m.to.clone(),
            })),
        });
    }
    moved
}

/// Card `from`'s top-ups as they will be once it is `to` (the store re-keys them with the card):
/// sent under the new key, so none is planned again.
fn move_topups(state: &mut Snapshot, from: &str, to: &str) {
    let prefix = Address::topup(from, "").key;
    let sent: Vec<String> = state
        .topups
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .map(|(k, _)| k.clone())
        .collect();
    for key in sent {
        if let Some(t) = state.topups.remove(&key) {
            let id = &key[prefix.len()..];
            state.topups.insert(Address::topup(to, id).key, t);
        }
    }
    let records: Vec<Address> = state
        .resources
        .keys()
        .filter(|a| a.kind == ResourceKind::Topup && a.card_key() == Some(from))
        .cloned()
        .collect();
    for address in records {
        if let (Some(mut r), Some(id)) = (
            state.resources.remove(&address),
            address.topup_id().map(str::to_owned),
        ) {
            r.address = Address::topup(to, &id);
            if let crate::state::ResourceImage::Topup(t) = &mut r.image {
                t.card = to.to_owned();
            }
            state.resources.insert(r.address.clone(), r);
        }
    }
}
