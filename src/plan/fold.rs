//! The plan-level rules, written once: every plan is one or more [`Draft`]s (what the planner
//! makes of one part of the declarations against its part of state, see [`crate::model::Part`])
//! folded into a [`Folding`], which keeps what the whole plan checks (its totals, the amounts for
//! the outlier rule, the cards leaving and arriving for the rename rule, the products of every
//! part) but not its actions. [`Folding::finish`] makes the checks of the whole plan: the prune
//! limit, the fee budget, the balance, outliers and possible renames.
//!
//! A plan made at once is a single draft folded the same way ([`super::plan_all`]); a very large
//! fleet applied a part at a time folds one draft per part and never holds all the actions. A
//! property test holds the two together. Pure data, like the rest of the planner.

use compact_str::CompactString;
use rust_decimal::Decimal;
use std::collections::{BTreeMap, BTreeSet};

use super::{
    Action, ActionKind, OUTLIER_FACTOR, Partial, Plan, PlanOptions, Problem, ProviderFacts, Totals,
    Warning,
};
use crate::state::Snapshot;

/// What the planner makes of one part: its actions, with the problems and warnings of its own
/// cards. The checks of the whole plan are not made here but by [`Folding::finish`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub actions: Vec<Action>,
    pub unchanged: usize,
    pub totals: Totals,
    pub problems: Vec<Problem>,
    pub warnings: Vec<Warning>,
    /// Set when `--target` restricted the plan: what it left out.
    pub partial: Option<Partial>,
}

/// How many keys an outlier warning can name per amount: an amount shared by more cards than
/// this is the fleet's, not a typo, and naming each would bury the plan.
pub const OUTLIER_NAMES: usize = 1_000;

/// Per (product, `topup` or `fee`), per amount: how many cards, and the first of them.
type Amounts = BTreeMap<(CompactString, &'static str), BTreeMap<Decimal, (usize, Vec<String>)>>;

/// The whole plan so far, folded from the drafts of its parts.
#[derive(Debug)]
pub struct Folding<'s> {
    /// All of state (every part's).
    state: &'s Snapshot,
    totals: Totals,
    /// A top-up's problems (amount changed, on a frozen card), per (card key, top-up id).
    topup_problems: Vec<((String, String), Problem)>,
    /// An initial top-up out of its product's range, by card key.
    issue_ranges: Vec<Problem>,
    /// A declared top-up out of its product's range, by top-up address.
    topup_ranges: Vec<Problem>,
    unknown: BTreeMap<String, (Vec<String>, Option<String>)>,
    inactive: BTreeMap<String, Vec<String>>,
    /// What no part can fold (nothing, without moves or people), kept in order.
    other_problems: Vec<Problem>,
    /// Per (product, `topup` or `fee`): how many cards of each amount, and (up to
    /// [`OUTLIER_NAMES`]) which.
    amounts: Amounts,
    /// Cards leaving the declarations, by (user, product): the last key in plan order.
    leaving: BTreeMap<(CompactString, CompactString), String>,
    /// New cards of a (user, product) some card in state has: each may be a renamed key.
    renamed: Vec<(String, (CompactString, CompactString))>,
    /// The (user, product) of every card in state: made when the first new card arrives, as a
    /// plan that issues nothing (a million cards relabelled) need not hold a copy of them all.
    pairs_in_state: Option<BTreeSet<(CompactString, CompactString)>>,
    card_warnings: Vec<Warning>,
    partial: Option<Partial>,
}

impl<'s> Folding<'s> {
    /// An empty fold, for a plan against `state` (all of it).
    pub fn new(state: &'s Snapshot) -> Self {
        Folding {
            state,
            totals: Totals::default(),
            topup_problems: Vec::new(),
            issue_ranges: Vec::new(),
            topup_ranges: Vec::new(),
            unknown: BTreeMap::new(),
            inactive: BTreeMap::new(),
            other_problems: Vec::new(),
            amounts: Amounts::new(),
            leaving: BTreeMap::new(),
            renamed: Vec::new(),
            pairs_in_state: None,
            card_warnings: Vec::new(),
            partial: None,
        }
    }

    /// Folds in one part's draft and hands its actions back.
    pub fn add(&mut self, part: Draft) -> Vec<Action> {
        for a in &part.actions {
            self.note(a);
        }
        let t = &mut self.totals;
        for (kind, n) in &part.totals.counts {
            *t.counts.entry(*kind).or_default() += n;
        }
        t.unchanged += part.unchanged;
        if part.partial.is_some() {
            self.partial = part.partial;
        }
        t.fees += part.totals.fees;
        t.unknown_fees += part.totals.unknown_fees;
        t.topups += part.totals.topups;
        for p in part.problems {
            self.file_problem(p);
        }
        self.card_warnings.extend(part.warnings);
        part.actions
    }

    /// What the checks of the whole plan need from one action: the amounts of an issue (for the
    /// outlier rule), and the (user, product) pairs leaving and arriving (for possible renames).
    fn note(&mut self, a: &Action) {
        if a.kind().issues_card() {
            let product = &a.product_code;
            if !a.estimate.topup.is_zero() {
                self.amount(product.clone(), "topup", a.estimate.topup, &a.key);
            }
            if let Some(fee) = a.estimate.fee {
                self.amount(product.clone(), "fee", fee, &a.key);
            }
        }
        if matches!(a.kind(), ActionKind::Undeclared | ActionKind::Prune)
            && let Some(b) = a.before()
        {
            let pair = (b.external_user_id.clone(), b.product_code.clone());
            let key = self.leaving.entry(pair).or_default();
            if key.as_str() < a.key.as_str() {
                *key = a.key.to_string();
            }
        }
        if a.kind() == ActionKind::Issue
            && let Some(after) = a.after()
        {
            let pair = (after.external_user_id.clone(), after.product_code.clone());
            let state = self.state;
            let in_state = self.pairs_in_state.get_or_insert_with(|| {
                state
                    .cards
                    .values()
                    .map(|r| (r.external_user_id.clone(), r.product_code.clone()))
                    .collect()
            });
            if in_state.contains(&pair) {
                self.renamed.push((a.key.to_string(), pair));
            }
        }
    }

    /// Files a part's problem where the whole plan's order will want it (and merges the problems
    /// of one product found in several parts).
    fn file_problem(&mut self, p: Problem) {
        match p {
            Problem::TopupAmountChanged { ref key, .. }
            | Problem::TopupOnFrozenCard { ref key } => {
                let (card, id) = key
                    .split_once(crate::model::TOPUP_SEPARATOR)
                    .unwrap_or((key, ""));
                self.topup_problems
                    .push(((card.to_owned(), id.to_owned()), p));
            }
            Problem::TopupOutOfRange { ref key, .. }
                if key.contains(crate::model::TOPUP_SEPARATOR) =>
            {
                self.topup_ranges.push(p)
            }
            Problem::TopupOutOfRange { .. } => self.issue_ranges.push(p),
            Problem::UnknownProduct {
                product_code,
                keys,
                did_you_mean,
            } => {
                let entry = self.unknown.entry(product_code).or_default();
                entry.0.extend(keys);
                entry.1 = did_you_mean;
            }
            Problem::InactiveProduct { product_code, keys } => {
                self.inactive.entry(product_code).or_default().extend(keys)
            }
            other => self.other_problems.push(other),
        }
    }

    fn amount(&mut self, product: CompactString, what: &'static str, amount: Decimal, key: &str) {
        let (count, keys) = self
            .amounts
            .entry((product, what))
            .or_default()
            .entry(amount)
            .or_default();
        *count += 1;
        if keys.len() < OUTLIER_NAMES {
            keys.push(key.to_owned());
        }
    }

    /// The whole plan, without its actions, checked as a whole: `facts` and `options` are those
    /// every part was planned with.
    pub fn finish(mut self, facts: &ProviderFacts, options: &PlanOptions) -> Plan {
        let state = self.state;
        let mut totals = std::mem::take(&mut self.totals);
        totals.charge = totals.fees + totals.topups;
        totals.balance_before = facts.balance;
        totals.balance_after = facts.balance.map(|b| b - totals.charge);
        totals.in_state = state.cards.len();
        let unchanged = totals.unchanged;

        let mut problems = self.filed_problems();
        problems.extend(plan_checks(&totals, state, facts, options));

        let mut warnings = outliers(self.amounts);
        self.renamed.sort();
        warnings.extend(self.renamed.into_iter().filter_map(|(new_key, pair)| {
            Some(Warning::PossibleRename {
                old_key: self.leaving.get(&pair)?.clone(),
                new_key,
            })
        }));
        self.card_warnings
            .sort_by(|a, b| warning_key(a).cmp(warning_key(b)));
        warnings.extend(self.card_warnings);
        Plan {
            actions: Vec::new(),
            unchanged,
            totals,
            problems,
            warnings,
            partial: self.partial,
        }
    }

    /// The parts' problems in the order the whole plan has them: a top-up's own problems by
    /// card, then by id; the range checks by key; unknown and inactive products by code, their
    /// keys sorted.
    fn filed_problems(&mut self) -> Vec<Problem> {
        self.topup_problems.sort_by(|a, b| a.0.cmp(&b.0));
        let key_of = |p: &Problem| match p {
            Problem::TopupOutOfRange { key, .. } => key.clone(),
            _ => String::new(),
        };
        self.issue_ranges.sort_by_key(key_of);
        self.topup_ranges.sort_by_key(key_of);
        let mut problems: Vec<Problem> = std::mem::take(&mut self.other_problems);
        problems.extend(
            std::mem::take(&mut self.topup_problems)
                .into_iter()
                .map(|(_, p)| p),
        );
        problems.append(&mut self.issue_ranges);
        problems.append(&mut self.topup_ranges);
        for (product_code, (mut keys, did_you_mean)) in std::mem::take(&mut self.unknown) {
            keys.sort();
            problems.push(Problem::UnknownProduct {
                product_code,
                keys,
                did_you_mean,
            });
        }
        for (product_code, mut keys) in std::mem::take(&mut self.inactive) {
            keys.sort();
            problems.push(Problem::InactiveProduct { product_code, keys });
        }
        problems
    }
}

/// The checks only the whole plan can make: how much it prunes, what its fees come to, and
/// whether the balance covers its charge.
fn plan_checks(
    totals: &Totals,
    state: &Snapshot,
    facts: &ProviderFacts,
    options: &PlanOptions,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let prunes = totals.counts.get(&ActionKind::Prune).copied().unwrap_or(0);
    if prunes > 0 && !options.max_prune.allows(prunes, state.cards.len()) {
        problems.push(Problem::PruneOverLimit {
            prunes,
            fleet: state.cards.len(),
            limit: options.max_prune.to_string(),
        });
    }
    if let Some(budget) = options.max_fees
        && (totals.fees > budget || totals.unknown_fees > 0)
    {
        problems.push(Problem::FeesOverBudget {
            fees: totals.fees,
            budget,
            unknown: totals.unknown_fees,
        });
    }
    if let Some(balance) = facts.balance
        && totals.charge > balance
    {
        problems.push(Problem::InsufficientBalance {
            needed: totals.charge,
            balance,
            missing: totals.charge - balance,
        });
    }
    problems
}

/// The card a warning of one card is about, for plan order.
fn warning_key(w: &Warning) -> &str {
    match w {
        Warning::TopupsKeptByEarlierCard { key, .. } => key,
        _ => "",
    }
}

/// Each amount far above its product's median (as `plan`'s own check finds them), from the
/// counts of each amount.
fn outliers(amounts: Amounts) -> Vec<Warning> {
    let factor = Decimal::from(OUTLIER_FACTOR);
    // By product, top-ups before fees, as the whole plan's check goes.
    let mut groups: Vec<_> = amounts.into_iter().collect();
    groups.sort_by(|((p1, w1), _), ((p2, w2), _)| (p1, *w1 != "topup").cmp(&(p2, *w2 != "topup")));
    let mut warnings = Vec::new();
    for ((product, what), by_amount) in groups {
        let n: usize = by_amount.values().map(|(c, _)| c).sum();
        if n < 3 {
            continue;
        }
        let mut seen = 0;
        let Some(median) = by_amount.iter().find_map(|(amount, (c, _))| {
            seen += c;
            (seen > n / 2).then_some(*amount)
        }) else {
            continue;
        };
        if median.is_zero() {
            continue;
        }
        let mut named: Vec<(String, Decimal)> = by_amount
            .into_iter()
            .filter(|(amount, _)| *amount > median * factor)
            .flat_map(|(amount, (_, keys))| keys.into_iter().map(move |k| (k, amount)))
            .collect();
        named.sort();
        warnings.extend(
            named
                .into_iter()
                .map(|(key, amount)| Warning::OutlierAmount {
                    key,
                    product_code: product.to_string(),
                    what: what.to_owned(),
                    amount,
                    median,
                }),
        );
    }
    warnings
}
