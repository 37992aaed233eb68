//! Declared renames (`moved: [{from: OLD, to: NEW}]`): a key renamed in the declarations keeps its
//! card, charges and history instead of planning a new card and a new fee. Checks the moves of all
//! files against each other and against the declared cards; must not look at state (whether a
//! move still has anything to do is the planner's question).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use super::problem::{DeclProblem, Loc, ProblemKind, Source};
use super::{DesiredCard, Origin};

/// One declared rename, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub from: String,
    pub to: String,
    #[serde(skip)]
    pub origin: Origin,
}

/// A move as one file declared it, with where each key was written.
#[derive(Debug)]
pub(crate) struct MoveCandidate {
    pub file: usize,
    pub from: String,
    pub from_loc: Loc,
    pub to: String,
    pub to_loc: Loc,
}

/// The moves of every file, checked together: each key moves once, no chains (`a → b`, `b → c`:
/// write `a → c`), `to` is a declared card and `from` no longer is. Problems carry the file index
/// they belong to.
pub(crate) fn check(
    candidates: Vec<MoveCandidate>,
    cards: &[DesiredCard],
    sources: &[Option<Source>],
    problems: &mut Vec<(usize, DeclProblem)>,
) -> Vec<Move> {
    let declared = |key: &str| cards.binary_search_by(|c| c.key.as_str().cmp(key)).is_ok();
    let froms: BTreeSet<&str> = candidates.iter().map(|m| m.from.as_str()).collect();
    let mut seen_from: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen_to: BTreeMap<&str, usize> = BTreeMap::new();
    let mut moves = Vec::new();
    for m in &candidates {
        let Some(Some(src)) = sources.get(m.file) else {
            continue;
        };
        let problem = |loc: Loc, message: String, label: &str, help: String| {
            DeclProblem::at(ProblemKind::InvalidMove, src, loc, message, label).with_help(help)
        };
        let mut fine = true;
        let mut report = |p: DeclProblem| {
            problems.push((m.file, p));
            fine = false;
        };
        if m.from == m.to {
            report(problem(
                m.to_loc,
                format!("`{}` moves to itself", m.from),
                "the same key",
                "remove this move".into(),
            ));
        } else if seen_from.insert(&m.from, m.from_loc.line()).is_some() {
            report(problem(
                m.from_loc,
                format!("`{}` is moved twice", m.from),
                "moved again here",
                "a key moves to one new key: keep one of these moves".into(),
            ));
        } else if seen_to.insert(&m.to, m.to_loc.line()).is_some() {
            report(problem(
                m.to_loc,
                format!("two keys move to `{}`", m.to),
                "a second move to it",
                "one card in state can become this key: keep one of these moves".into(),
            ));
        } else if froms.contains(m.to.as_str()) {
            report(problem(
                m.to_loc,
                format!("`{}` is moved on again: chained moves", m.to),
                "moved again by another entry",
                format!(
                    "move `{}` straight to the final key, and drop the move of `{}`",
                    m.from, m.to
                ),
            ));
        } else if !declared(&m.to) {
            report(problem(
                m.to_loc,
                format!("`{}` is not a declared card", m.to),
                "not declared",
                format!(
                    "a move renames a card in state to a declared key: declare `{}` (the card \
                     `{}` was), or remove this move",
                    m.to, m.from
                ),
            ));
        } else if declared(&m.from) {
            report(problem(
                m.from_loc,
                format!("`{}` is still declared", m.from),
                "still declared",
                format!(
                    "a moved key leaves the declarations: rename the card `{}` to `{}` there",
                    m.from, m.to
                ),
            ));
        }
        if fine {
            moves.push(Move {
                from: m.from.clone(),
                to: m.to.clone(),
                origin: Origin {
                    file: src.name.clone(),
                    line: m.from_loc.line(),
                },
            });
        }
    }
    moves.sort_by(|a, b| a.from.cmp(&b.from));
    moves
}

/// The moves as declared, unchecked: for a load of one part of the declarations, where a move's
/// two keys may lie in different parts. Whoever reads parts has checked the whole first.
pub(crate) fn unchecked(candidates: Vec<MoveCandidate>, sources: &[Option<Source>]) -> Vec<Move> {
    let mut moves: Vec<Move> = candidates
        .into_iter()
        .filter_map(|m| {
            let Some(Some(src)) = sources.get(m.file) else {
                return None;
            };
            Some(Move {
                origin: Origin {
                    file: src.name.clone(),
                    line: m.from_loc.line(),
                },
                from: m.from,
                to: m.to,
            })
        })
        .collect();
    moves.sort_by(|a, b| a.from.cmp(&b.from));
    moves
}
