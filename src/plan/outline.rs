//! [`Outline`]: what the human view of a plan shows of its actions, kind by kind: every action
//! of a kind with few of them, and per product a count, money and the first keys of a kind with
//! many. Built from a plan's actions, or one action at a time as a plan made a part at a time
//! comes in (see `parts`), so a plan of a million actions can be shown without holding them.
//! Pure data: the text is `render::plan`'s.

use compact_str::CompactString;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

use super::{Action, ActionKind, EstimateSource};

/// Above this many actions of one kind, the view lists products with counts instead of every
/// action.
pub const GROUP_THRESHOLD: usize = 30;
/// How many keys a product's line names before "and N more".
pub const GROUP_SAMPLE: usize = 5;

/// The actions of a plan, as the human view shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outline {
    pub kinds: BTreeMap<ActionKind, Section>,
    /// Keep every action, however many (`plan --detail`).
    every: bool,
}

/// The actions of one kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    pub count: usize,
    /// Every action of the kind, in plan order, while there are at most [`GROUP_THRESHOLD`] (or
    /// always, for an outline of every action); empty past it.
    pub listed: Vec<Action>,
    /// By product code (empty for actions without one).
    pub groups: BTreeMap<CompactString, Group>,
}

/// The actions of one kind and product.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    pub count: usize,
    /// The known fees.
    pub fees: Decimal,
    pub topups: Decimal,
    /// How many have a fee nobody can estimate yet.
    pub unknown: usize,
    /// The first [`GROUP_SAMPLE`] keys in plan order.
    pub sample: Vec<CompactString>,
}

/// Plan order: people first (what cards wait for), then by key.
pub fn plan_order(a: &Action, b: &Action) -> std::cmp::Ordering {
    (!a.resource().is_person(), &a.key).cmp(&(!b.resource().is_person(), &b.key))
}

impl Outline {
    /// The outline of `actions` (in plan order); `every` keeps every action listed.
    pub fn of(actions: &[Action], every: bool) -> Self {
        let mut outline = Outline {
            every,
            ..Default::default()
        };
        for a in actions {
            outline.add(a);
        }
        outline
    }

    /// Adds one action, in any order: [`Outline::finish`] puts what is kept in plan order.
    pub fn add(&mut self, a: &Action) {
        let section = self.kinds.entry(a.kind()).or_default();
        section.count += 1;
        if self.every || section.count <= GROUP_THRESHOLD {
            section.listed.push(a.clone());
        } else if !section.listed.is_empty() {
            section.listed = Vec::new();
        }
        let group = section.groups.entry(a.product_code.clone()).or_default();
        group.count += 1;
        if let Some(fee) = a.estimate.fee {
            group.fees += fee;
        }
        group.topups += a.estimate.topup;
        if a.estimate.source == EstimateSource::Unknown {
            group.unknown += 1;
        }
        // The first keys in plan order, whatever order the actions come in.
        let at = group.sample.partition_point(|k| *k < a.key);
        if at < GROUP_SAMPLE {
            group.sample.insert(at, a.key.clone());
            group.sample.truncate(GROUP_SAMPLE);
        }
    }

    /// Puts what is kept in plan order.
    pub fn finish(&mut self) {
        for section in self.kinds.values_mut() {
            section.listed.sort_by(plan_order);
        }
    }

    /// How many actions.
    pub fn len(&self) -> usize {
        self.kinds.values().map(|s| s.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
