//! The CSV reader: turns one CSV declarations file (a header row, then one card per row) into card
//! candidates and problems; or, when its header has `topup_id`, a file of top-ups (one per row)
//! for cards declared anywhere; or, when its header has `external_user_id` and KYC columns but no
//! `key`, a people file (one cardholder per row).
//!
//! The tokenizer is our own (RFC 4180: commas, double quotes, `""` escapes, LF or CRLF) because
//! every cell needs its exact byte span for the caret, including quoted cells and rows that span
//! lines, which the `csv` crate does not expose. Must not detect duplicate keys across files.

mod people_rows;
#[cfg(test)]
mod tests;
mod tokenize;
mod topups;

use std::borrow::Cow;

use super::fields::{
    self, At, Candidate, EXTERNAL_USER_ID, INITIAL_TOPUP, KEY, PRODUCT_CODE, RawCard, STATUS, Slot,
    TOPUP_ID,
};
use super::people::{self, PersonCandidate};
use super::problem::{DeclProblem, Loc, ProblemKind, Source};
use super::suggest;
use people_rows::read_people;
use tokenize::{Cell, Row, tokenize};
use topups::read_topups;

const LABEL_PREFIX: &str = "label.";
const COLUMNS: &[&str] = &[KEY, EXTERNAL_USER_ID, PRODUCT_CODE, INITIAL_TOPUP, STATUS];
const REQUIRED: &[&str] = &[KEY, EXTERNAL_USER_ID, PRODUCT_CODE];
/// What a header cell means.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    Field(&'static str),
    Label(String),
    /// Unknown or malformed (already reported): its cells are not read.
    Ignored,
}

/// Reads one CSV file: problems go to `problems`, every row with a key to `out`.
pub(crate) fn read(
    src: &Source,
    file: usize,
    problems: &mut Vec<DeclProblem>,
    out: &mut Vec<Candidate>,
    topups: &mut Vec<TopupCandidate>,
    persons: &mut Vec<PersonCandidate>,
) {
    let rows = match tokenize(&src.text) {
        Ok(rows) => rows,
        Err(e) => {
            let loc = Loc::Bytes {
                start: e.start,
                end: e.end,
                line: e.line,
            };
            problems.push(
                DeclProblem::at(
                    ProblemKind::CsvSyntax,
                    src,
                    loc,
                    format!("CSV syntax error: {}", e.message),
                    e.label,
                )
                .with_help("the rest of this file was not checked; fix this first"),
            );
            return;
        }
    };
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        return;
    };
    if header.cells.iter().any(|c| c.value == TOPUP_ID) {
        read_topups(src, file, &header, rows, problems, topups);
        return;
    }
    let has = |name: &str| header.cells.iter().any(|c| c.value == name);
    if has(EXTERNAL_USER_ID) && !has(KEY) && people::KYC_FIELDS.iter().any(|f| has(f)) {
        read_people(src, file, &header, rows, problems, persons);
        return;
    }
    let Some(columns) = read_header(src, &header, problems) else {
        // Without the required columns every row would repeat the same complaint; the cells
        // are still checked so that all other problems show in this run.
        for row in rows {
            read_row(src, &header, &[], &row, problems);
        }
        return;
    };
    for row in rows {
        if let Some(card) = read_row(src, &header, &columns, &row, problems)
            && let Some(c) = fields::finish(card, None, src, file, row.loc(), problems)
        {
            out.push(c);
        }
    }
}

/// The meaning of each header cell; `None` if a required column is missing.
fn read_header(
    src: &Source,
    header: &Row<'_>,
    problems: &mut Vec<DeclProblem>,
) -> Option<Vec<Column>> {
    let mut columns = Vec::with_capacity(header.cells.len());
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut misspelt = Vec::new();
    for (i, cell) in header.cells.iter().enumerate() {
        let name = cell.value.as_ref();
        if name.trim().is_empty() {
            problems.push(
                DeclProblem::at(
                    ProblemKind::UnknownColumn,
                    src,
                    cell.loc(),
                    format!("column {} has no name", i + 1),
                    "empty column name",
                )
                .with_help("name the column, or remove the extra comma"),
            );
            columns.push(Column::Ignored);
            continue;
        }
        if let Some(problem) = duplicate_column(src, cell, name, &seen) {
            problems.push(problem);
            columns.push(Column::Ignored);
            continue;
        }
        seen.push((name, i));
        let column = if let Some(&known) = COLUMNS.iter().find(|c| **c == name) {
            Column::Field(known)
        } else if let Some(label) = name.strip_prefix(LABEL_PREFIX) {
            match fields::check_label_name(label) {
                Ok(l) => Column::Label(l),
                Err(e) => {
                    problems.push(e.at(src, cell.loc()));
                    Column::Ignored
                }
            }
        } else {
            if let Some(meant) = fields::misspelling_of(name, COLUMNS) {
                misspelt.push(meant);
            }
            problems.push(unknown_column(src, header, cell, name));
            Column::Ignored
        };
        columns.push(column);
    }
    // A misspelt required column was reported with its did-you-mean; saying it is missing too
    // would be noise, but the rows still cannot be read without it.
    let mut missing = Vec::new();
    let mut any_absent = false;
    for &r in REQUIRED {
        if !columns.contains(&Column::Field(r)) {
            any_absent = true;
            if !misspelt.contains(&r) {
                missing.push(r);
            }
        }
    }
    if missing.is_empty() {
        return (!any_absent).then_some(columns);
    }
    let list = missing
        .iter()
        .map(|m| format!("`{m}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let plural = if missing.len() == 1 { "" } else { "s" };
    problems.push(
        DeclProblem::at_span(
            ProblemKind::MissingColumn,
            src,
            src.rest_of_line(header.loc()),
            format!("missing column{plural} {list}"),
            format!("this header has no {list}"),
        )
        .with_help("a CSV file needs the columns `key`, `external_user_id` and `product_code` (CSV has no defaults)"),
    );
    None
}

/// The problem for a header cell that names no column, with the likeliest fix as its help.
fn unknown_column(src: &Source, header: &Row<'_>, cell: &Cell<'_>, name: &str) -> DeclProblem {
    let help = if header.cells.len() == 1 && name.contains(';') {
        // The whole header is one cell: the file is separated by semicolons, as
        // spreadsheets in many locales export "CSV".
        "this file is separated by `;`: cardform reads comma-separated CSV; export it \
         with commas (or replace `;` with `,`)"
            .to_owned()
    } else if name.starts_with("label") {
        "write one `label.<name>` column per label, e.g. `label.team`".to_owned()
    } else {
        let mut h = suggest::help_for(name, COLUMNS, "columns");
        if suggest::did_you_mean(name, COLUMNS).is_none() {
            h.push_str(", and `label.<name>`");
        }
        h
    };
    DeclProblem::at(
        ProblemKind::UnknownColumn,
        src,
        cell.loc(),
        format!("unknown column `{name}`"),
        "unknown column",
    )
    .with_help(help)
}

/// A `label.<name>` cell into `labels`; `false` (with the problem pushed) when it is not a label
/// value.
fn label_cell(
    src: &Source,
    cell: &Cell<'_>,
    name: &str,
    value: &str,
    labels: &mut crate::model::Labels,
    problems: &mut Vec<DeclProblem>,
) -> bool {
    match fields::check_text(format_args!("label.{name}"), Cow::Borrowed(value)) {
        Ok(v) => {
            labels.insert(name.to_owned(), v);
            true
        }
        Err(e) => {
            problems.push(e.at(src, cell.loc()));
            false
        }
    }
}

/// A header cell naming a column `seen` already has (name, index), as a problem.
fn duplicate_column(
    src: &Source,
    cell: &Cell<'_>,
    name: &str,
    seen: &[(&str, usize)],
) -> Option<DeclProblem> {
    let (_, first) = seen.iter().find(|(n, _)| *n == name)?;
    Some(
        DeclProblem::at(
            ProblemKind::DuplicateColumn,
            src,
            cell.loc(),
            format!("duplicate column `{name}`"),
            "column repeated here",
        )
        .with_help(format!(
            "column {} already is `{name}`; remove one",
            first + 1
        )),
    )
}

/// Checks one row's cells; the card's fields when the row has the header's shape. With no
/// `columns` (bad header) only the shape and nothing else is checked.
fn read_row(
    src: &Source,
    header: &Row<'_>,
    columns: &[Column],
    row: &Row<'_>,
    problems: &mut Vec<DeclProblem>,
) -> Option<RawCard> {
    // Spreadsheets export trailing rows of empty cells: those are not cards.
    if row
        .cells
        .iter()
        .all(|c| c.value.is_empty() && c.end == c.start)
    {
        return None;
    }
    if row.cells.len() != header.cells.len() {
        let (n, h) = (row.cells.len(), header.cells.len());
        problems.push(
            DeclProblem::at_span(
                ProblemKind::RaggedRow,
                src,
                src.rest_of_line(row.loc()),
                format!("row has {n} cell{} but the header has {h}", if n == 1 { "" } else { "s" }),
                format!("{n} cell{}", if n == 1 { "" } else { "s" }),
            )
            .with_help("every row needs one cell per header column (leave optional ones empty); quote cells that contain a comma"),
        );
        return None;
    }
    if columns.is_empty() {
        return None;
    }
    let mut card = RawCard::default();
    for (column, cell) in columns.iter().zip(&row.cells) {
        let raw = cell.value.as_ref();
        // An empty cell is "not set"; a required one is then reported as missing by `finish`.
        if raw.is_empty() {
            continue;
        }
        let ok = match column {
            Column::Ignored => true,
            Column::Field(KEY) => set(
                src,
                cell,
                &mut card.key,
                fields::check_key(Cow::Borrowed(raw)),
                problems,
            ),
            Column::Field(EXTERNAL_USER_ID) => set(
                src,
                cell,
                &mut card.external_user_id,
                fields::check_text(EXTERNAL_USER_ID, Cow::Borrowed(raw)),
                problems,
            ),
            Column::Field(PRODUCT_CODE) => set(
                src,
                cell,
                &mut card.product_code,
                fields::check_text(PRODUCT_CODE, Cow::Borrowed(raw)),
                problems,
            ),
            Column::Field(INITIAL_TOPUP) => set(
                src,
                cell,
                &mut card.initial_topup,
                fields::check_amount(INITIAL_TOPUP, raw),
                problems,
            ),
            Column::Field(_) => set(
                src,
                cell,
                &mut card.status,
                fields::check_status(raw),
                problems,
            ),
            Column::Label(name) => label_cell(src, cell, name, raw, &mut card.labels, problems),
        };
        if !ok {
            card.rejected = true;
        }
    }
    Some(card)
}

/// A top-up read from a top-up file, for the card `card` declared in any file.
#[derive(Debug)]
pub(crate) struct TopupCandidate {
    pub file: usize,
    pub card: String,
    pub card_loc: Loc,
    pub id_loc: Loc,
    pub topup: super::DesiredTopup,
}

fn set<T>(
    src: &Source,
    cell: &Cell<'_>,
    slot: &mut Slot<T>,
    checked: Result<T, fields::Invalid>,
    problems: &mut Vec<DeclProblem>,
) -> bool {
    match checked {
        Ok(v) => {
            *slot = Slot::Set(At {
                value: v,
                loc: cell.loc(),
            });
            true
        }
        Err(e) => {
            problems.push(e.at(src, cell.loc()));
            *slot = Slot::Invalid;
            false
        }
    }
}
