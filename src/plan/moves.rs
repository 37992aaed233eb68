//! Declared moves against state: which renames still have something to do, and the snapshot as it
//! will be once they are done, so the rest of the plan diffs the new keys against the old cards.
//!
//! A move whose old key is not in state (done already, or never there) does nothing: it may stay
//! in the declarations, as in Terraform. Pure, like the rest of the planner.

use std::borrow::Cow;

use super::{Action, ActionKind, Attributes, Estimate, Problem};
use crate::decl::Move;
use crate::model::ResourceKind;
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
        let Some(card) = state.cards.get(&m.from) else {
            continue;
        };
        if state.cards.contains_key(&m.to) {
            moved.problems.push(Problem::MoveConflict {
                from: m.from.clone(),
                to: m.to.clone(),
            });
            continue;
        }
        if !state.open_card_orders(&m.from).is_empty() {
            // Its journal entries would follow it mid-flight; finishing them first keeps a
            // resumed order and its card under one key.
            moved.problems.push(Problem::MoveWaitsForOrders {
                from: m.from.clone(),
                to: m.to.clone(),
            });
            continue;
        }
        let state = moved.state.to_mut();
        if let Some(mut record) = state.cards.remove(&m.from) {
            record.key = m.to.clone();
            state.cards.insert(m.to.clone(), record);
        }
        moved.actions.push(Action {
            resource: ResourceKind::Card,
            key: m.from.clone(),
            kind: ActionKind::Move,
            reason: "renamed in the declarations (`moved:`): keeps its card, orders and history"
                .into(),
            product_code: card.product_code.clone(),
            before: Some(Attributes::from_record(card)),
            after: None,
            attempt: card.attempt,
            estimate: Estimate::none(),
            depends_on: Vec::new(),
            moved_to: Some(m.to.clone()),
            amount: None,
            labels: Default::default(),
        });
    }
    moved
}
