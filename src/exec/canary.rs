//! `--canary n`: which changes of a run go first, alone, so that a misconfigured product costs a
//! handful of orders. Chooses only; the run (`mod.rs`) carries the canary out and decides whether
//! the rest follows.

use crate::plan::{Action, ActionKind};

/// The canary of `--canary n`: up to `n` changes that send an order, taken round-robin across
/// products (a misconfigured product shows in the canary whatever the plan's order), together
/// with the free, order-less changes they wait for (a new person's user and cardholder, a move),
/// and the rest. A change that waits for another order is never a canary: its outcome would say
/// more about that order than about itself.
pub(super) fn split_canary(work: Vec<Action>, n: usize) -> (Vec<Action>, Vec<Action>) {
    // Changes that send no order and cost nothing.
    let free = |k: ActionKind| {
        matches!(
            k,
            ActionKind::UpdateLabels
                | ActionKind::Move
                | ActionKind::Undeclared
                | ActionKind::CreateUser
                | ActionKind::CreateCardholder
        )
    };
    let mut at: std::collections::HashMap<crate::model::Address, Vec<usize>> = Default::default();
    for (i, a) in work.iter().enumerate() {
        at.entry(a.address()).or_default().push(i);
    }
    let deps = |a: &Action| -> Vec<usize> {
        a.depends_on
            .iter()
            .flat_map(|d| at.get(d).into_iter().flatten().copied())
            .collect()
    };
    let mut by_product: std::collections::BTreeMap<&str, std::collections::VecDeque<usize>> =
        Default::default();
    for (i, a) in work.iter().enumerate() {
        if !free(a.kind()) && deps(a).iter().all(|&d| free(work[d].kind())) {
            by_product
                .entry(a.product_code.as_str())
                .or_default()
                .push_back(i);
        }
    }
    let mut chosen = std::collections::BTreeSet::new();
    let mut taken = 0;
    while taken < n && by_product.values().any(|q| !q.is_empty()) {
        for q in by_product.values_mut() {
            if taken < n
                && let Some(i) = q.pop_front()
            {
                taken += 1;
                chosen.insert(i);
                // What it waits for goes first, in the canary too (free changes need no more).
                let mut stack = deps(&work[i]);
                while let Some(d) = stack.pop() {
                    if chosen.insert(d) {
                        stack.extend(deps(&work[d]));
                    }
                }
            }
        }
    }
    let (mut canary, mut rest) = (Vec::new(), Vec::new());
    for (i, a) in work.into_iter().enumerate() {
        if chosen.contains(&i) {
            canary.push(a);
        } else {
            rest.push(a);
        }
    }
    (canary, rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ResourceKind;
    use crate::plan::{Change, Estimate};

    fn change(key: &str, product: &str, kind: ActionKind) -> Action {
        let resource = match kind {
            ActionKind::CreateUser => ResourceKind::User,
            ActionKind::Topup => ResourceKind::Topup,
            _ => ResourceKind::Card,
        };
        Action {
            key: key.into(),
            reason: Default::default(),
            product_code: product.into(),
            attempt: 1,
            estimate: Estimate::none(),
            depends_on: Vec::new(),
            change: Change::sample(kind, resource),
        }
    }

    #[test]
    fn a_canary_takes_the_people_its_cards_wait_for() {
        let mut work = Vec::new();
        for i in 0..4 {
            let user = change(&format!("u{i}"), "", ActionKind::CreateUser);
            let mut card = change(&format!("c{i}"), "A", ActionKind::Issue);
            card.depends_on = vec![user.address()];
            let mut topup = change(&format!("c{i}:t"), "A", ActionKind::Topup);
            topup.depends_on = vec![card.address()];
            work.extend([user, card, topup]);
        }
        let (canary, rest) = split_canary(work, 2);
        let keys: Vec<&str> = canary.iter().map(|a| a.key.as_str()).collect();
        // Two cards, each with its user; never a top-up that waits for an issue order.
        assert_eq!(keys, ["u0", "c0", "u1", "c1"]);
        assert_eq!(rest.len(), 8);
    }

    #[test]
    fn a_canary_takes_changes_from_every_product_in_turn() {
        let mut work: Vec<Action> = (0..6)
            .map(|i| change(&format!("a{i}"), "A", ActionKind::Issue))
            .collect();
        work.push(change("b0", "B", ActionKind::Issue));
        work.push(change("b1", "B", ActionKind::Issue));
        work.push(change("l0", "B", ActionKind::UpdateLabels));
        let (canary, rest) = split_canary(work, 3);
        let keys: Vec<&str> = canary.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(keys, ["a0", "a1", "b0"], "plan order, both products");
        assert_eq!(rest.len(), 6);
        assert!(rest.iter().any(|a| a.key == "l0"), "no order, no canary");
    }
}
