//! The YAML reader: turns one YAML declarations file into card (and cardholder) candidates and
//! problems.
//!
//! Uses `saphyr-parser`'s event stream because it carries a span for every node (the `yaml_serde`
//! crate only reports positions for its own errors, never for values). Scalars are kept as their
//! source text, so `initial_topup: 50.10` is read as the decimal `50.10`, never through a float.
//! Must not resolve defaults across files or detect duplicate keys (the caller sees all files).
//!
//! The parts: `events` turns the parser's events into `node`s one node at a time, `reader` checks
//! a document's top level (version, defaults, the cards list) and `card` the fields of one card
//! or of the defaults; `moved` and `person` read the entries of the `moved` and `cardholders` lists.

mod card;
#[cfg(test)]
mod differential_tests;
pub(super) mod entry;
mod events;
mod moved;
pub(super) mod node;
mod person;
mod reader;
#[cfg(test)]
mod tests;

use super::fields::Candidate;
use super::moves::MoveCandidate;
use super::people::PersonCandidate;
use super::problem::{DeclProblem, Loc, ProblemKind, Source};

use reader::{Fast, Reader};

/// Reads one YAML file: problems go to `problems`, every entry with a key to `out`. After a
/// syntax error only that error is reported for the file: what was read before it may be
/// misread (a broken quote swallows lines), so its other findings are dropped.
///
/// A file whose cards are all simple entries (one-line flow mappings, or block mappings of
/// one-line fields: see `entry`) is read the fast way first; it counts only when it read every
/// card and found no problem at all, so whatever a file reports, and where, always comes from
/// the parser reading all of it.
pub(crate) fn read(
    src: &Source,
    file: usize,
    problems: &mut Vec<DeclProblem>,
    out: &mut Vec<Candidate>,
    moves: &mut Vec<MoveCandidate>,
    people: &mut Vec<PersonCandidate>,
) {
    if fast_path_on()
        && let Some(block) = entry::block(&src.text)
    {
        let mut fast = Fast { block, used: false };
        let declared = src.declared.load(std::sync::atomic::Ordering::Relaxed);
        let (mut found, mut cards, mut moved, mut persons) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut reader = Reader {
            src,
            problems: &mut found,
        };
        let read = reader.stream(file, &mut cards, &mut moved, &mut persons, Some(&mut fast));
        if read.is_ok() && fast.used && found.is_empty() {
            take_all(out, &mut cards);
            moves.append(&mut moved);
            people.append(&mut persons);
            return;
        }
        // The cards the fast read counted are counted again by the parser's.
        src.declared
            .store(declared, std::sync::atomic::Ordering::Relaxed);
    }
    read_parsed(src, file, problems, out, moves, people);
}

#[cfg(not(test))]
fn fast_path_on() -> bool {
    true
}

#[cfg(test)]
thread_local! {
    /// Off in tests that read files through the parser alone, to compare the two reads.
    pub(crate) static FAST_PATH: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

#[cfg(test)]
fn fast_path_on() -> bool {
    FAST_PATH.get()
}

/// [`read`] with the parser alone.
fn read_parsed(
    src: &Source,
    file: usize,
    problems: &mut Vec<DeclProblem>,
    out: &mut Vec<Candidate>,
    moves: &mut Vec<MoveCandidate>,
    people: &mut Vec<PersonCandidate>,
) {
    let mut found = Vec::new();
    let mut cards = Vec::new();
    let mut moved = Vec::new();
    let mut persons = Vec::new();
    let mut reader = Reader {
        src,
        problems: &mut found,
    };
    match reader.stream(file, &mut cards, &mut moved, &mut persons, None) {
        Ok(()) => {
            problems.append(&mut found);
            take_all(out, &mut cards);
            moves.append(&mut moved);
            people.append(&mut persons);
        }
        Err(e) => {
            let m = e.marker();
            let loc = Loc::Chars {
                line: m.line(),
                col: m.col(),
                end_line: m.line(),
                end_col: m.col(),
            };
            problems.push(
                DeclProblem::at(
                    ProblemKind::YamlSyntax,
                    src,
                    loc,
                    format!("YAML syntax error: {}", e.info()),
                    "here",
                )
                .with_help("the rest of this file was not checked; fix this first"),
            );
        }
    }
}

/// Moves `from`'s cards onto the end of `to`. Into an empty `to` (the first file read) it hands
/// over the buffer rather than copying it: a file of a million cards was otherwise held twice
/// while appended.
fn take_all(to: &mut Vec<Candidate>, from: &mut Vec<Candidate>) {
    if to.is_empty() {
        std::mem::swap(to, from);
    } else {
        to.append(from);
    }
}
