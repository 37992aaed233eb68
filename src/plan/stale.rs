//! When a saved plan has gone stale. A plan is made against state at one serial; by the time it is
//! applied (a pull request merged hours later) other runs may have moved the serial on. The plan
//! is stale only when one of those runs changed something the plan touches: any action's
//! resource, both sides of a move, a top-up's card, a person its cards or actions name. A refresh
//! that found no drift, or another pull request's apply of other cards, leaves it valid.
//!
//! Pure: the plan, the change log since its serial and the run history in, a verdict out. It
//! must not read state or declarations itself (`cli` does), and it never weakens the hard
//! refusals of [`super::PlanDocument::staleness`] (another lineage, a format it cannot read).
//! When the log cannot answer (serials without a run, state older than the plan), it refuses.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Plan, StateRef};
use crate::decl::DesiredCard;
use crate::model::Address;
use crate::state::{Changed, RunRecord, Snapshot};

/// What a plan touches: the cards (by key, a card's top-ups and retired records included) and
/// the people (by external user id, their user and every cardholder of theirs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Footprint {
    cards: BTreeSet<String>,
    people: BTreeSet<String>,
}

/// What one address is about, as the footprint counts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Subject<'a> {
    Card(&'a str),
    Person(&'a str),
}

fn subject(address: &Address) -> Option<Subject<'_>> {
    if let Some(card) = address.card_key() {
        // A replaced card's old record lives on as `KEY~ATTEMPT`; `~` is never part of a key.
        return Some(Subject::Card(card.split_once('~').map_or(card, |(k, _)| k)));
    }
    address.person().map(Subject::Person)
}

impl Footprint {
    pub fn of(plan: &Plan) -> Self {
        let mut f = Footprint::default();
        for action in plan.actions.iter().filter(|a| a.kind().is_change()) {
            f.add(action);
        }
        f
    }

    /// [`Footprint::of`] a saved plan: its changes, and the cards its look at the provider
    /// (`--refresh`, `--refresh-only`) found news of, whose records `apply` writes.
    pub fn of_document(doc: &super::PlanDocument) -> Self {
        let mut f = Self::of(&doc.plan);
        for u in doc.refresh.iter().flat_map(|r| &r.updates) {
            if let Some(Subject::Card(k)) = subject(&Address::card(u.key.as_str())) {
                f.cards.insert(k.to_owned());
            }
        }
        f
    }

    fn add(&mut self, action: &Action) {
        let mut addresses = vec![action.address()];
        addresses.extend(action.depends_on.iter().cloned());
        if let Some(to) = action.moved_to() {
            addresses.push(Address::card(to));
        }
        for a in &addresses {
            match subject(a) {
                Some(Subject::Card(k)) => self.cards.insert(k.to_owned()),
                Some(Subject::Person(p)) => self.people.insert(p.to_owned()),
                None => false,
            };
        }
        // A card's person, declared or not: what state says of them decides how it is planned.
        for attrs in [action.before(), action.after()].into_iter().flatten() {
            self.people.insert(attrs.external_user_id.to_string());
        }
    }

    pub fn touches(&self, address: &Address) -> bool {
        match subject(address) {
            Some(Subject::Card(k)) => self.cards.contains(k),
            Some(Subject::Person(p)) => self.people.contains(p),
            None => true,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.cards.is_empty() && self.people.is_empty()
    }
}

/// Whether a saved plan may still be applied, after its lineage and format were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// State is at the plan's serial.
    Current,
    /// Runs came since, and none changed anything the plan touches.
    MovedOn { runs: usize, changes: usize },
    /// Why not: what changed, in which run, or why the log cannot tell.
    Stale(String),
}

/// How many runs, and resources in each, a refusal names before it counts the rest.
const SHOW: usize = 10;

/// Judges a plan made at `planned` against state now at `serial_now`, given every change logged
/// after the plan's serial and the run history.
pub fn judge(
    planned: &StateRef,
    serial_now: u64,
    footprint: &Footprint,
    changes: &[Changed],
    runs: &[RunRecord],
) -> Verdict {
    let then = planned.serial;
    if serial_now == then {
        return Verdict::Current;
    }
    let moved =
        format!("state changed since the plan was made (serial {then} then, {serial_now} now)");
    if serial_now < then {
        return Verdict::Stale(format!(
            "{moved}: the state is older than the plan (restored from a backup?), so what \
             changed cannot be told: run `cardform plan` again"
        ));
    }
    let by_serial: BTreeMap<u64, &RunRecord> = runs
        .iter()
        .filter(|r| r.serial > then && r.serial <= serial_now)
        .map(|r| (r.serial, r))
        .collect();
    if let Some(gap) = (then + 1..=serial_now).find(|s| !by_serial.contains_key(s)) {
        return Verdict::Stale(format!(
            "{moved}, and the history has no run for serial {gap}, so what changed cannot be \
             told: run `cardform plan` again"
        ));
    }
    if let Some(c) = changes
        .iter()
        .find(|c| c.serial <= then || c.serial > serial_now)
    {
        return Verdict::Stale(format!(
            "{moved}, and the change log holds a change of serial {} outside that range, so \
             what changed cannot be told: run `cardform plan` again",
            c.serial
        ));
    }
    let mut hits: BTreeMap<u64, BTreeSet<&Address>> = BTreeMap::new();
    for c in changes.iter().filter(|c| footprint.touches(&c.address)) {
        hits.entry(c.serial).or_default().insert(&c.address);
    }
    if hits.is_empty() {
        return Verdict::MovedOn {
            runs: by_serial.len(),
            changes: changes.len(),
        };
    }
    let mut msg =
        format!("{moved} for what it touches: run `cardform plan` again and review that plan");
    for (serial, addresses) in hits.iter().take(SHOW) {
        let run = by_serial[serial];
        msg.push_str(&format!(
            "\n  serial {serial}: `{}` by {}@{} at {} changed {}",
            run.command,
            run.user,
            run.host,
            run.at,
            named(addresses)
        ));
    }
    if hits.len() > SHOW {
        msg.push_str(&format!("\n  and {} more runs", hits.len() - SHOW));
    }
    Verdict::Stale(msg)
}

/// `card alice, topup alice:2026-11 and 3 more`.
fn named(addresses: &BTreeSet<&Address>) -> String {
    let mut list: Vec<String> = addresses
        .iter()
        .take(SHOW)
        .map(|a| format!("{} {}", a.kind, a.key))
        .collect();
    if addresses.len() > SHOW {
        list.push(format!("and {} more", addresses.len() - SHOW));
    }
    list.join(", ")
}

/// An action as two plans must agree on it to be the same change: what it does and to what, not
/// how it is worded or what it was estimated at.
fn change_of(a: &Action) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        a.address(),
        a.kind(),
        a.after(),
        a.attempt,
        (a.moved_to(), a.amount(), a.person(), a.labels()),
        &a.depends_on,
    )
}

/// The resources whose changes differ between a reviewed plan and the plan the declarations ask
/// for now (one missing from either counts), in address order; empty when they ask for exactly
/// the reviewed changes.
pub fn differing_changes(reviewed: &Plan, now: &Plan) -> Vec<Address> {
    let index = |p: &Plan| -> BTreeMap<(Address, super::ActionKind), usize> {
        p.actions
            .iter()
            .enumerate()
            .filter(|(_, a)| a.kind().is_change())
            .map(|(i, a)| ((a.address(), a.kind()), i))
            .collect()
    };
    let (was, is) = (index(reviewed), index(now));
    let mut differ: BTreeSet<Address> = BTreeSet::new();
    for (k, &i) in &was {
        match is.get(k) {
            Some(&j) if change_of(&reviewed.actions[i]) == change_of(&now.actions[j]) => {}
            _ => {
                differ.insert(k.0.clone());
            }
        }
    }
    differ.extend(
        is.keys()
            .filter(|k| !was.contains_key(k))
            .map(|k| k.0.clone()),
    );
    differ.into_iter().collect()
}

/// A declared card that differs from the reviewed plan or (not planned) from state, or a planned
/// one no longer declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardChange {
    pub key: String,
    pub what: &'static str,
    /// Where it is declared now.
    pub file: Option<String>,
}

pub fn cards_changed(reviewed: &Plan, snapshot: &Snapshot, now: &[DesiredCard]) -> Vec<CardChange> {
    let planned: BTreeMap<&str, &Action> = reviewed
        .actions
        .iter()
        .filter(|a| a.after().is_some())
        .map(|a| (a.key.as_str(), a))
        .collect();
    let mut changed = Vec::new();
    for card in now {
        let attrs = super::Attributes::from_desired(card);
        let what = match (
            planned.get(card.key.as_str()),
            snapshot.cards.get(card.key.as_str()),
        ) {
            (Some(a), _) if a.after() != Some(&attrs) => "changed",
            (Some(_), _) => continue,
            (None, None) => "newly declared",
            (None, Some(r)) if super::Attributes::from_record(r) != attrs => "changed",
            (None, Some(_)) => continue,
        };
        changed.push(CardChange {
            key: card.key.to_string(),
            what,
            file: Some(card.origin.file.to_string()),
        });
    }
    let declared: BTreeSet<&str> = now.iter().map(|c| c.key.as_str()).collect();
    for key in planned.keys().filter(|k| !declared.contains(**k)) {
        changed.push(CardChange {
            key: (*key).to_owned(),
            what: "no longer declared",
            file: None,
        });
    }
    changed
}

#[cfg(test)]
#[path = "stale_tests.rs"]
mod tests;
