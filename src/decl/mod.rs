//! Declarations: reading YAML and CSV files into validated [`DesiredCard`]s (and the people they
//! are for, [`DesiredCardholder`]s), with a source span for every error. Must not touch the
//! network or state.
//!
//! Entry points: [`load`] (paths from `-f`) and [`load_sources`] (in-memory files). Each file is
//! read on its own (`yaml_file`, `csv_file`, sharing the field rules of `fields`); this module then
//! merges all files, finds duplicate keys across them and orders problems by file and position.
//! Directories given to `-f` are read one level deep (not recursively, so a folder of archived or
//! example declarations beneath stays out unless named), their `*.yaml`, `*.yml` and `*.csv`
//! files sorted by name.

mod csv_file;
mod fields;
mod files;
mod moves;
mod people;
mod problem;
mod sieve;
pub(crate) mod suggest;
mod yaml_file;

pub use crate::model::{DesiredStatus, Labels, Part};
pub use moves::Move;
pub use people::{DesiredCardholder, Kyc};
pub use problem::{DeclProblem, DeclReport, ProblemKind};

pub use files::{FileError, SkipReason, Skipped, skipped};

use compact_str::CompactString;
use jiff::civil::Date;
use problem::Source;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where a declaration came from, for messages that point back at it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Origin {
    /// The file's name, shared by every declaration read from it: one allocation per file, not
    /// one per card.
    pub file: std::sync::Arc<str>,
    /// 1-based line of the card's entry (its `key` in YAML, its row in CSV).
    pub line: usize,
}

/// One card as the user declared it, after defaults are applied and everything is validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredCard {
    // Inline (no allocation) up to 24 bytes, which keys and ids of a large fleet rarely exceed.
    pub key: CompactString,
    pub external_user_id: CompactString,
    pub product_code: CompactString,
    #[serde(with = "crate::wire::decimal::option", default)]
    pub initial_topup: Option<Decimal>,
    pub status: DesiredStatus,
    pub labels: Labels,
    /// Money to send to the card, each top-up once, sorted by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topups: Vec<DesiredTopup>,
    #[serde(skip)]
    pub origin: Origin,
}

/// One declared top-up of a card: `amount` sent once under `id`, whatever runs come after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredTopup {
    /// Unique within its card; with the card's key, the top-up's address (`topup.KEY:ID`).
    pub id: String,
    #[serde(with = "crate::wire::decimal")]
    pub amount: Decimal,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    #[serde(skip)]
    pub origin: Origin,
}

/// Everything declared across all input files, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Declarations {
    pub cards: Vec<DesiredCard>,
    /// Declared renames (`moved:`), sorted by the old key.
    pub moves: Vec<Move>,
    /// Declared people (`cardholders:` in YAML, or people CSVs), sorted by `external_user_id`.
    /// A card's user need not be among them (the person may exist at the provider already).
    pub cardholders: Vec<DesiredCardholder>,
    /// The input files read, in the order read.
    pub files: Vec<String>,
    /// How many valid cards the files declare: `cards.len()`, unless one part was read
    /// ([`load_part`]).
    pub declared: usize,
    /// `sha256:<hex>` over the canonical form of `cards`, `moves` and `cardholders` (independent
    /// of file layout and order). People's personal fields count by name only: a digest anyone
    /// can recompute would let a guess at a birth date be checked against it. What a plan
    /// records is [`Declarations::fingerprint_keyed`], which covers their values too.
    pub fingerprint: String,
}

impl Declarations {
    /// The fingerprint a plan records: [`Declarations::fingerprint`], with each personal field
    /// of a declared person as its digest under `key` (the journal's key, which only holders of
    /// the API secret can derive), so a changed birth date makes a saved plan stale while the
    /// plan file, and the pull request it is posted to, give nothing to check a guess against.
    /// The same as `fingerprint` when no people are declared.
    pub fn fingerprint_keyed(&self, key: &[u8]) -> String {
        if self.cardholders.is_empty() {
            return self.fingerprint.clone();
        }
        fingerprint(&self.cards, &self.moves, &self.cardholders, Some(key))
    }
}

/// How a file is read, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Yaml,
    Csv,
}

fn kind_of(name: &str) -> Option<Kind> {
    let ext = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("yaml" | "yml") => Some(Kind::Yaml),
        Some("csv") => Some(Kind::Csv),
        _ => None,
    }
}

/// One input: its text, or why it could not be had.
enum Input {
    Text { name: String, text: String },
    Failed(DeclProblem),
}

/// Expand `-f` arguments and read every declaration file: files as given; a directory gives every
/// `*.yaml`, `*.yml` and `*.csv` directly inside it, sorted by name (not recursive). A missing or
/// unreadable path is a problem naming it. A file reached twice is read once.
///
/// Birth dates are checked against [`today_utc`]; [`load_as_of`] takes "today" from the caller.
pub fn load(paths: &[PathBuf]) -> Result<Declarations, DeclReport> {
    load_as_of(paths, today_utc())
}

/// Today's date in UTC, from the system clock: the default "today" for birth-date checks. The
/// only place the declarations layer reads a clock; everything below [`load_as_of`] and
/// [`load_sources_as_of`] is given the date.
pub fn today_utc() -> Date {
    jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::now())
        .date()
}

/// The size in bytes of what `-f paths` names (the files, and the declaration files directly in
/// the directories), without reading any: what a caller weighs before choosing how to read.
pub fn input_bytes(paths: &[PathBuf]) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    paths
        .iter()
        .map(|p| match std::fs::metadata(p) {
            Ok(meta) if meta.is_dir() => dir_entries(p)
                .unwrap_or_default()
                .iter()
                .map(|f| size(f))
                .sum(),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// [`load`], keeping only the cards of `part` (and their top-ups): every file is still read and
/// checked whole, so a problem anywhere is reported, whichever part is asked for. Moves and people
/// are not split, and moves are checked against the whole declarations only: read a part only
/// of declarations a whole load found without moves.
///
/// The rows of other parts (a YAML file's one-line cards, a CSV file's plain rows) are left out as
/// each file is read (see `sieve`), so a part of a large fleet costs about a byte of text for
/// each card it does not hold.
pub fn load_part(paths: &[PathBuf], part: Part) -> Result<Declarations, DeclReport> {
    let sieve = match part.is_whole() {
        true => sieve::Sieve::All,
        false => sieve::Sieve::Part(part),
    };
    load_files(paths, today_utc(), part, sieve).0
}

/// What [`check`] found: the declarations are valid entry by entry (duplicate keys and top-ups
/// of undeclared cards are found only by reading what a key's part holds: [`load_part`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// How many valid cards are declared.
    pub cards: usize,
    pub has_moves: bool,
    pub has_people: bool,
    /// The input files read, in the order read.
    pub files: Vec<String>,
}

/// How many rows of a file (one-line YAML cards, plain CSV rows) one window of [`check`] reads.
const CHECK_WINDOW: usize = 65_536;

/// Every entry of `paths` read and checked, and the cards counted, without holding them or a
/// large fleet's whole text: its one-line YAML cards and plain CSV rows are read a window at a
/// time (every other line in each window).
pub fn check(paths: &[PathBuf]) -> Result<Checked, DeclReport> {
    check_in_windows(paths, CHECK_WINDOW)
}

fn check_in_windows(paths: &[PathBuf], size: usize) -> Result<Checked, DeclReport> {
    let today = today_utc();
    let window = |n: usize| sieve::Sieve::Window {
        from: n * size,
        to: (n + 1) * size,
    };
    let (first, rows) = load_files(paths, today, Part::NONE, window(0));
    let first = first?;
    // Each row the sieve can leave out is in one window; every other card is in all of them.
    let in_first: usize = rows.card_rows.iter().map(|&n| n.min(size)).sum();
    let others = first.declared.saturating_sub(in_first);
    for n in 1..rows.most.div_ceil(size) {
        load_files(paths, today, Part::NONE, window(n)).0?;
    }
    Ok(Checked {
        cards: others + rows.card_rows.iter().sum::<usize>(),
        has_moves: !first.moves.is_empty(),
        has_people: !first.cardholders.is_empty(),
        files: first.files,
    })
}

/// [`load`], with the date birth dates must not be after.
pub fn load_as_of(paths: &[PathBuf], today: Date) -> Result<Declarations, DeclReport> {
    load_files(paths, today, Part::WHOLE, sieve::Sieve::All).0
}

/// What [`load_files`] saw of the rows its sieve could leave out.
struct Rows {
    /// Per file whose rows are cards: how many.
    card_rows: Vec<usize>,
    /// The most rows of any one file (cards or top-ups).
    most: usize,
}

/// Reads `paths` (each file through `sieve`), keeping the cards of `part`; with what the sieve
/// saw.
fn load_files(
    paths: &[PathBuf],
    today: Date,
    part: Part,
    sieve: sieve::Sieve,
) -> (Result<Declarations, DeclReport>, Rows) {
    let mut card_rows = Vec::new();
    let mut windows = 0;
    let mut inputs = Vec::new();
    let mut seen = HashSet::new();
    let mut read = |path: &Path, inputs: &mut Vec<Input>| {
        let name = path.display().to_string();
        // Canonical paths catch `-f a.yaml -f .` naming one file twice, which would otherwise
        // report every card in it as a duplicate of itself.
        if let Ok(canonical) = std::fs::canonicalize(path)
            && !seen.insert(canonical)
        {
            return;
        }
        if !matches!(sieve, sieve::Sieve::All)
            && let Some(kind) = kind_of(&name)
            && let Some(sieved) = sieve::read(path, kind == Kind::Csv, sieve)
        {
            windows = windows.max(sieved.rows);
            if sieved.rows_are_cards {
                card_rows.push(sieved.rows);
            }
            inputs.push(Input::Text {
                name,
                text: sieved.text,
            });
            return;
        }
        inputs.push(match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Input::Text { name, text },
                Err(_) => Input::Failed(DeclProblem::about_file(
                    ProblemKind::Unreadable,
                    &name,
                    format!("`{name}` is not UTF-8 text"),
                )),
            },
            Err(e) => Input::Failed(unreadable(&name, &e)),
        });
    };
    for path in paths {
        let name = path.display().to_string();
        match files::examine(path) {
            Err(e) => inputs.push(Input::Failed(refused(e))),
            Ok(files::Found::Dir) => match files::list_dir(path) {
                Ok(listing) => {
                    for entry in listing.entries {
                        match entry {
                            Ok(f) => read(&f, &mut inputs),
                            Err(e) => inputs.push(Input::Failed(refused(e))),
                        }
                    }
                }
                Err(e) => inputs.push(Input::Failed(unreadable(&name, &e))),
            },
            Ok(files::Found::File) => read(path, &mut inputs),
        }
    }
    let rows = Rows {
        card_rows,
        most: windows,
    };
    (load_inputs(inputs, today, part), rows)
}

fn unreadable(name: &str, e: &std::io::Error) -> DeclProblem {
    refused(files::FileError::io(name.to_owned(), e))
}

/// A path not read, as the problem that names it.
fn refused(e: files::FileError) -> DeclProblem {
    let problem = DeclProblem::about_file(ProblemKind::Unreadable, e.name(), e.to_string());
    match e {
        files::FileError::Unreadable { .. } => problem,
        _ => problem.with_help(
            "remove it, or name the declaration files to read with -f; nothing was read from it",
        ),
    }
}

/// The declaration files directly inside `dir`, sorted by file name (refused entries left out:
/// only sizes are wanted here).
fn dir_entries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(files::list_dir(dir)?
        .entries
        .into_iter()
        .filter_map(Result::ok)
        .collect())
}

/// Read declarations from in-memory `(name, contents)` pairs; the kind comes from the name's
/// extension. Same rules and problems as [`load`].
pub fn load_sources(sources: Vec<(String, String)>) -> Result<Declarations, DeclReport> {
    load_sources_as_of(sources, today_utc())
}

/// [`load_sources`], with the date birth dates must not be after.
pub fn load_sources_as_of(
    sources: Vec<(String, String)>,
    today: Date,
) -> Result<Declarations, DeclReport> {
    load_sources_part(sources, today, Part::WHOLE)
}

/// [`load_sources_as_of`], keeping only the cards of `part` (see [`load_part`]).
pub fn load_sources_part(
    sources: Vec<(String, String)>,
    today: Date,
    part: Part,
) -> Result<Declarations, DeclReport> {
    load_inputs(
        sources
            .into_iter()
            .map(|(name, text)| Input::Text { name, text })
            .collect(),
        today,
        part,
    )
}

fn load_inputs(inputs: Vec<Input>, today: Date, part: Part) -> Result<Declarations, DeclReport> {
    let mut problems: Vec<(usize, DeclProblem)> = Vec::new();
    let mut candidates = Vec::new();
    let mut move_candidates = Vec::new();
    let mut topup_candidates = Vec::new();
    let mut person_candidates = Vec::new();
    let mut sources: Vec<Option<Source>> = Vec::new();
    let mut files = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        match input {
            Input::Failed(p) => {
                problems.push((i, p));
                sources.push(None);
            }
            Input::Text { name, text } => {
                let mut src = Source::new(name, text);
                src.keep = part;
                let mut local = Vec::new();
                let kind = kind_of(&src.name);
                match kind {
                    Some(Kind::Yaml) => yaml_file::read(
                        &src,
                        i,
                        &mut local,
                        &mut candidates,
                        &mut move_candidates,
                        &mut person_candidates,
                    ),
                    Some(Kind::Csv) => csv_file::read(
                        &src,
                        i,
                        &mut local,
                        &mut candidates,
                        &mut topup_candidates,
                        &mut person_candidates,
                    ),
                    None => local.push(DeclProblem::about_file(
                        ProblemKind::UnsupportedFile,
                        &*src.name,
                        format!(
                            "`{}` is neither YAML (.yaml, .yml) nor CSV (.csv)",
                            src.name
                        ),
                    )),
                }
                // A snippet of a file with people in it could show a person's data: problems
                // there keep their place but lose the snippet.
                if kind.is_some() && people::may_hold_people(kind == Some(Kind::Yaml), &src.text) {
                    local = local.into_iter().map(DeclProblem::into_personal).collect();
                }
                problems.extend(local.into_iter().map(|p| (i, p)));
                files.push(src.name.to_string());
                sources.push(Some(src));
            }
        }
    }

    // Stable: equal keys stay in file order, then in order within the file.
    candidates.sort_by(|a: &fields::Candidate, b| a.key.cmp(&b.key));
    let mut first = 0;
    for i in 0..candidates.len() {
        let (c, f) = (&candidates[i], &candidates[first]);
        if i > first && c.key == f.key {
            if let (Some(Some(here)), Some(Some(there))) =
                (sources.get(c.file), sources.get(f.file))
            {
                problems.push((
                    c.file,
                    duplicate_key(&c.key, here, c.key_loc, there, f.key_loc),
                ));
            }
            candidates[i].card = None;
        } else {
            first = i;
        }
    }
    // Moved, not cloned, and in place: the cards take over the candidates' buffer (a card is
    // smaller than its candidate), so a million cards are never held twice while gathered.
    let mut cards: Vec<DesiredCard> = candidates.into_iter().filter_map(|c| c.card).collect();
    cards.shrink_to_fit();

    // A move names two keys, which may be in different parts: checked in a whole load only.
    let moves = match part.is_whole() {
        true => moves::check(move_candidates, &cards, &sources, &mut problems),
        false => moves::unchecked(move_candidates, &sources),
    };
    attach_topups(topup_candidates, &mut cards, &sources, &mut problems);
    let cardholders = people::merge(person_candidates, today, &sources, &mut problems);

    if !problems.is_empty() {
        problems.sort_by_key(|(file, p)| (*file, p.offset()));
        return Err(DeclReport::new(
            problems.into_iter().map(|(_, p)| p).collect(),
            sources.len(),
        ));
    }
    let fingerprint = fingerprint(&cards, &moves, &cardholders, None);
    let declared = sources
        .iter()
        .flatten()
        .map(|s| s.declared.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    Ok(Declarations {
        cards,
        moves,
        cardholders,
        files,
        fingerprint,
        declared,
    })
}

/// Top-ups from top-up files join their cards (declared in any file): an unknown card, or an id
/// the card already has, is a problem at the row.
fn attach_topups(
    candidates: Vec<csv_file::TopupCandidate>,
    cards: &mut [DesiredCard],
    sources: &[Option<Source>],
    problems: &mut Vec<(usize, DeclProblem)>,
) {
    let mut touched = Vec::new();
    for t in candidates {
        let Some(Some(src)) = sources.get(t.file) else {
            continue;
        };
        let Ok(i) = cards.binary_search_by(|c| c.key.as_str().cmp(&t.card)) else {
            let help = match suggest::did_you_mean(
                &t.card,
                &cards.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
            ) {
                Some(k) => format!("did you mean `{k}`? a top-up needs its card declared"),
                None => "a top-up needs its card declared (in YAML or a card CSV)".into(),
            };
            problems.push((
                t.file,
                DeclProblem::at(
                    ProblemKind::UnknownCard,
                    src,
                    t.card_loc,
                    format!("no card `{}` is declared", t.card),
                    "unknown card",
                )
                .with_help(help),
            ));
            continue;
        };
        let card = &mut cards[i];
        if let Some(first) = card.topups.iter().find(|x| x.id == t.topup.id) {
            problems.push((
                t.file,
                DeclProblem::at(
                    ProblemKind::DuplicateKey,
                    src,
                    t.id_loc,
                    format!("card `{}` has top-up `{}` already", card.key, t.topup.id),
                    "declared again here",
                )
                .with_help(format!(
                    "first declared at {}:{}; each top-up of a card needs its own id",
                    first.origin.file, first.origin.line
                )),
            ));
            continue;
        }
        card.topups.push(t.topup);
        touched.push(i);
    }
    for i in touched {
        cards[i].topups.sort_by(|a, b| a.id.cmp(&b.id));
    }
}

/// A key declared again: the problem sits at the second place and names the first, both in its
/// help text (for plain logs) and as a related diagnostic with its own snippet.
fn duplicate_key(
    key: &str,
    here: &Source,
    here_loc: problem::Loc,
    there: &Source,
    there_loc: problem::Loc,
) -> DeclProblem {
    let first = DeclProblem::at(
        ProblemKind::FirstDeclared,
        there,
        there_loc,
        format!("`{key}` is first declared here"),
        "first declared here",
    )
    .into_advice();
    let help = format!(
        "`{key}` is first declared at {}:{}:{}; card keys must be unique across all files",
        first.file(),
        first.line(),
        first.column()
    );
    DeclProblem::at(
        ProblemKind::DuplicateKey,
        here,
        here_loc,
        format!("duplicate card key `{key}`"),
        "declared again here",
    )
    .with_help(help)
    .with_related(first)
}

/// `sha256:<hex>` over a canonical form of the cards (sorted by key, origin left out, amounts
/// normalised so `50.1` and `50.10` agree): the same declarations give the same fingerprint
/// whatever the files, their order, layout or comments. Each field is length-prefixed, so no
/// value can imitate a field boundary.
/// See [`Declarations::fingerprint`]; with `key`, [`Declarations::fingerprint_keyed`].
fn fingerprint(
    cards: &[DesiredCard],
    moves: &[Move],
    cardholders: &[DesiredCardholder],
    key: Option<&[u8]>,
) -> String {
    fn field(buf: &mut Vec<u8>, s: &str) {
        buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
    }
    let mut h = Sha256::new();
    h.update(b"cardform-declarations-v1");
    h.update((cards.len() as u64).to_le_bytes());
    // One card's bytes are gathered first: hashing many tiny slices one by one is slower.
    let mut buf = Vec::new();
    let mut amount = String::new();
    for c in cards {
        buf.clear();
        field(&mut buf, &c.key);
        field(&mut buf, &c.external_user_id);
        field(&mut buf, &c.product_code);
        match c.initial_topup {
            Some(t) => {
                buf.push(1);
                amount.clear();
                // Writing to a String cannot fail.
                let _ = write!(amount, "{}", t.normalize());
                field(&mut buf, &amount);
            }
            None => buf.push(0),
        }
        field(&mut buf, c.status.as_str());
        buf.extend_from_slice(&(c.labels.len() as u64).to_le_bytes());
        for (k, v) in &c.labels {
            field(&mut buf, k);
            field(&mut buf, v);
        }
        // Only when there are any, so cards without top-ups keep the fingerprint they had.
        if !c.topups.is_empty() {
            field(&mut buf, "topups");
            buf.extend_from_slice(&(c.topups.len() as u64).to_le_bytes());
            for t in &c.topups {
                field(&mut buf, &t.id);
                amount.clear();
                let _ = write!(amount, "{}", t.amount.normalize());
                field(&mut buf, &amount);
                buf.extend_from_slice(&(t.labels.len() as u64).to_le_bytes());
                for (k, v) in &t.labels {
                    field(&mut buf, k);
                    field(&mut buf, v);
                }
            }
        }
        h.update(&buf);
    }
    // Only when there are any, so declarations without moves keep the fingerprint they had.
    if !moves.is_empty() {
        buf.clear();
        buf.extend_from_slice(b"moved");
        buf.extend_from_slice(&(moves.len() as u64).to_le_bytes());
        for m in moves {
            field(&mut buf, &m.from);
            field(&mut buf, &m.to);
        }
        h.update(&buf);
    }
    // Only when there are any, so declarations without people keep the fingerprint they had.
    // A personal value enters only as its keyed digest, and without a key not at all.
    if !cardholders.is_empty() {
        buf.clear();
        buf.extend_from_slice(if key.is_some() {
            b"cardholders-keyed"
        } else {
            b"cardholders-unkeyed"
        });
        buf.extend_from_slice(&(cardholders.len() as u64).to_le_bytes());
        for c in cardholders {
            field(&mut buf, &c.external_user_id);
            for (name, value) in c.kyc.fields() {
                field(&mut buf, name);
                if !people::is_personal(name) {
                    field(&mut buf, value);
                } else if let Some(key) = key {
                    let message = [name.as_bytes(), b"\0", value.as_bytes()].concat();
                    buf.extend_from_slice(&crate::wire::digest::hmac_sha256(key, &message));
                }
            }
            buf.extend_from_slice(&(c.labels.len() as u64).to_le_bytes());
            for (k, v) in &c.labels {
                field(&mut buf, k);
                field(&mut buf, v);
            }
        }
        h.update(&buf);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

#[cfg(test)]
mod people_tests;
#[cfg(test)]
mod tests;
