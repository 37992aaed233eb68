//! Top-up files: a CSV file whose header has `topup_id`, one top-up per row for a card declared
//! in any file. Must not check that the card exists (that needs every file).

use std::borrow::Cow;

use super::{LABEL_PREFIX, Row, TopupCandidate, label_cell, set};
use crate::decl::fields::{self, AMOUNT, KEY, Slot, TOPUP_ID};
use crate::decl::problem::{DeclProblem, ProblemKind, Source};
use crate::decl::suggest;

/// A top-up file: `key,topup_id,amount` and any `label.<name>` columns, one top-up per row.
pub(super) fn read_topups<'a>(
    src: &Source,
    file: usize,
    header: &Row<'a>,
    rows: impl Iterator<Item = Row<'a>>,
    problems: &mut Vec<DeclProblem>,
    out: &mut Vec<TopupCandidate>,
) {
    let (columns, labels, ok) = topup_header(src, header, problems);
    for row in rows {
        if row
            .cells
            .iter()
            .all(|c| c.value.is_empty() && c.end == c.start)
        {
            continue;
        }
        if row.cells.len() != header.cells.len() {
            problems.push(
                DeclProblem::at_span(
                    ProblemKind::RaggedRow,
                    src,
                    src.rest_of_line(row.loc()),
                    format!(
                        "row has {} cells but the header has {}",
                        row.cells.len(),
                        header.cells.len()
                    ),
                    "wrong number of cells",
                )
                .with_help("every row needs one cell per header column"),
            );
            continue;
        }
        if !ok {
            continue;
        }
        out.extend(topup_row(src, file, &columns, &labels, &row, problems));
    }
}

/// The meaning of each header cell of a top-up file, its label names, and whether no required
/// column is missing.
fn topup_header(
    src: &Source,
    header: &Row<'_>,
    problems: &mut Vec<DeclProblem>,
) -> (Vec<Option<&'static str>>, Vec<Option<String>>, bool) {
    const TOPUP_COLUMNS: &[&str] = &[KEY, TOPUP_ID, AMOUNT];
    let mut columns: Vec<Option<&'static str>> = Vec::new();
    let mut labels: Vec<Option<String>> = Vec::new();
    let mut ok = true;
    for cell in &header.cells {
        let name = cell.value.as_ref();
        let (column, label) = if let Some(&c) = TOPUP_COLUMNS.iter().find(|c| **c == name) {
            (Some(c), None)
        } else if let Some(l) = name.strip_prefix(LABEL_PREFIX) {
            match fields::check_label_name(l) {
                Ok(l) => (None, Some(l)),
                Err(e) => {
                    problems.push(e.at(src, cell.loc()));
                    (None, None)
                }
            }
        } else {
            problems.push(
                DeclProblem::at(
                    ProblemKind::UnknownColumn,
                    src,
                    cell.loc(),
                    format!("unknown column `{name}` in a top-up file"),
                    "unknown column",
                )
                .with_help(format!(
                    "{}; a top-up file has `key,topup_id,amount` and `label.<name>` columns",
                    suggest::help_for(name, TOPUP_COLUMNS, "columns")
                )),
            );
            (None, None)
        };
        columns.push(column);
        labels.push(label);
    }
    for required in TOPUP_COLUMNS {
        if !columns.contains(&Some(required)) {
            ok = false;
            problems.push(
                DeclProblem::at_span(
                    ProblemKind::MissingColumn,
                    src,
                    src.rest_of_line(header.loc()),
                    format!("missing column `{required}` in a top-up file"),
                    format!("this header has no `{required}`"),
                )
                .with_help("a top-up file has the columns `key,topup_id,amount`"),
            );
        }
    }
    (columns, labels, ok)
}

/// One top-up row of a well-formed top-up file; `None` if any of its cells is wrong.
fn topup_row(
    src: &Source,
    file: usize,
    columns: &[Option<&'static str>],
    labels: &[Option<String>],
    row: &Row<'_>,
    problems: &mut Vec<DeclProblem>,
) -> Option<TopupCandidate> {
    let (mut key, mut id, mut amount) = (Slot::Absent, Slot::Absent, Slot::Absent);
    let mut row_labels = crate::decl::Labels::new();
    let mut row_ok = true;
    for ((column, label), cell) in columns.iter().zip(labels).zip(&row.cells) {
        let raw = cell.value.as_ref();
        row_ok &= match (column, label) {
            (Some(c), _) if raw.is_empty() => {
                problems.push(
                    DeclProblem::at(
                        ProblemKind::EmptyValue,
                        src,
                        cell.loc(),
                        format!("`{c}` is empty"),
                        "no value",
                    )
                    .with_help(format!("every top-up needs a `{c}`")),
                );
                false
            }
            (Some(c), _) if *c == KEY => set(
                src,
                cell,
                &mut key,
                fields::check_key(Cow::Borrowed(raw)),
                problems,
            ),
            (Some(c), _) if *c == TOPUP_ID => set(
                src,
                cell,
                &mut id,
                fields::check_topup_id(Cow::Borrowed(raw)),
                problems,
            ),
            (Some(_), _) => set(
                src,
                cell,
                &mut amount,
                fields::check_amount(AMOUNT, raw),
                problems,
            ),
            (None, Some(name)) if !raw.is_empty() => {
                label_cell(src, cell, name, raw, &mut row_labels, problems)
            }
            (None, _) => true,
        };
    }
    if let (true, Slot::Set(key), Slot::Set(id), Slot::Set(amount)) = (row_ok, key, id, amount)
        && src.keep.holds(&key.value)
    {
        return Some(TopupCandidate {
            file,
            card: key.value,
            card_loc: key.loc,
            id_loc: id.loc,
            topup: crate::decl::DesiredTopup {
                id: id.value,
                amount: amount.value,
                labels: row_labels,
                origin: crate::decl::Origin {
                    file: src.name.clone(),
                    line: row.line,
                },
            },
        });
    }
    None
}
