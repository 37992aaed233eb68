//! People files: a CSV file with `external_user_id` and KYC columns but no `key`, one
//! cardholder per row. Must not check KYC values itself: `decl::people` owns those rules.

use std::borrow::Cow;

use super::{Column, LABEL_PREFIX, Row, duplicate_column, label_cell, set};
use crate::decl::people::{self, PERSON_COLUMNS, PersonCandidate, RawPerson};
use crate::decl::problem::{DeclProblem, ProblemKind, Source};
use crate::decl::{fields, suggest};

/// A people file: `external_user_id` and the KYC columns, any `label.<name>` columns, one
/// cardholder per row. Every value column is required and every cell of it too.
pub(super) fn read_people<'a>(
    src: &Source,
    file: usize,
    header: &Row<'a>,
    rows: impl Iterator<Item = Row<'a>>,
    problems: &mut Vec<DeclProblem>,
    out: &mut Vec<PersonCandidate>,
) {
    let (columns, complete) = people_header(src, header, problems);
    for row in rows {
        if row
            .cells
            .iter()
            .all(|c| c.value.is_empty() && c.end == c.start)
        {
            continue;
        }
        if row.cells.len() != header.cells.len() {
            let (n, h) = (row.cells.len(), header.cells.len());
            problems.push(
                DeclProblem::at_span(
                    ProblemKind::RaggedRow,
                    src,
                    src.rest_of_line(row.loc()),
                    format!(
                        "row has {n} cell{} but the header has {h}",
                        if n == 1 { "" } else { "s" }
                    ),
                    "wrong number of cells",
                )
                .with_help(
                    "every row needs one cell per header column; quote cells that contain a comma",
                ),
            );
            continue;
        }
        if !complete {
            continue;
        }
        let mut raw = RawPerson::default();
        for (column, cell) in columns.iter().zip(&row.cells) {
            let value = cell.value.as_ref();
            let ok = match column {
                Column::Ignored => true,
                Column::Field(field) => set(
                    src,
                    cell,
                    raw.slot(field),
                    people::check(field, Cow::Borrowed(value)),
                    problems,
                ),
                Column::Label(_) if value.is_empty() => true,
                Column::Label(name) => {
                    label_cell(src, cell, name, value, &mut raw.labels, problems)
                }
            };
            if !ok {
                raw.rejected = true;
            }
        }
        out.extend(people::finish(raw, src, file, row.loc(), problems));
    }
}

/// The meaning of each header cell of a people file, and whether every value column is there.
fn people_header(
    src: &Source,
    header: &Row<'_>,
    problems: &mut Vec<DeclProblem>,
) -> (Vec<Column>, bool) {
    let mut columns = Vec::with_capacity(header.cells.len());
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut misspelt = Vec::new();
    for (i, cell) in header.cells.iter().enumerate() {
        let name = cell.value.as_ref();
        if let Some(problem) = duplicate_column(src, cell, name, &seen) {
            problems.push(problem);
            columns.push(Column::Ignored);
            continue;
        }
        seen.push((name, i));
        let column = if let Some(field) = people::field_named(name) {
            Column::Field(field)
        } else if let Some(label) = name.strip_prefix(LABEL_PREFIX) {
            match fields::check_label_name(label) {
                Ok(l) => Column::Label(l),
                Err(e) => {
                    problems.push(e.at(src, cell.loc()));
                    Column::Ignored
                }
            }
        } else {
            misspelt.extend(suggest::did_you_mean(name, PERSON_COLUMNS));
            let mut help = suggest::help_for(name, PERSON_COLUMNS, "columns of a people file");
            if suggest::did_you_mean(name, PERSON_COLUMNS).is_none() {
                help.push_str(", and `label.<name>`");
            }
            problems.push(
                DeclProblem::at(
                    ProblemKind::UnknownColumn,
                    src,
                    cell.loc(),
                    format!("unknown column `{name}` in a people file"),
                    "unknown column",
                )
                .with_help(help),
            );
            Column::Ignored
        };
        columns.push(column);
    }
    let absent: Vec<&str> = PERSON_COLUMNS
        .iter()
        .copied()
        .filter(|c| !columns.contains(&Column::Field(c)))
        .collect();
    let missing: Vec<String> = absent
        .iter()
        .filter(|c| !misspelt.contains(*c))
        .map(|c| format!("`{c}`"))
        .collect();
    if !missing.is_empty() {
        let list = missing.join(", ");
        let plural = if missing.len() == 1 { "" } else { "s" };
        problems.push(
            DeclProblem::at_span(
                ProblemKind::MissingColumn,
                src,
                src.rest_of_line(header.loc()),
                format!("missing column{plural} {list} in a people file"),
                format!("this header has no {list}"),
            )
            .with_help(format!(
                "a people file has the columns {}",
                PERSON_COLUMNS.join(",")
            )),
        );
    }
    (columns, absent.is_empty())
}
