//! The CSV reader: turns one CSV declarations file (a header row, then one card per row) into card
//! candidates and problems; or, when its header has `topup_id`, a file of top-ups (one per row)
//! for cards declared anywhere; or, when its header has `external_user_id` and KYC columns but no
//! `key`, a people file (one cardholder per row).
//!
//! The tokenizer is our own (RFC 4180: commas, double quotes, `""` escapes, LF or CRLF) because
//! every cell needs its exact byte span for the caret, including quoted cells and rows that span
//! lines, which the `csv` crate does not expose. Must not detect duplicate keys across files.

use std::borrow::Cow;

use super::fields::{
    self, AMOUNT, At, Candidate, EXTERNAL_USER_ID, INITIAL_TOPUP, KEY, PRODUCT_CODE, RawCard,
    STATUS, Slot, TOPUP_ID,
};
use super::people::{self, PERSON_COLUMNS, PersonCandidate, RawPerson};
use super::problem::{DeclProblem, Loc, ProblemKind, Source};
use super::suggest;

const LABEL_PREFIX: &str = "label.";
const COLUMNS: &[&str] = &[KEY, EXTERNAL_USER_ID, PRODUCT_CODE, INITIAL_TOPUP, STATUS];
const REQUIRED: &[&str] = &[KEY, EXTERNAL_USER_ID, PRODUCT_CODE];

#[derive(Debug)]
struct Cell<'a> {
    value: Cow<'a, str>,
    start: usize,
    end: usize,
    line: usize,
}

impl Cell<'_> {
    fn loc(&self) -> Loc {
        Loc::Bytes {
            start: self.start,
            end: self.end,
            line: self.line,
        }
    }
}

#[derive(Debug)]
struct Row<'a> {
    line: usize,
    start: usize,
    cells: Vec<Cell<'a>>,
}

impl Row<'_> {
    fn loc(&self) -> Loc {
        Loc::Bytes {
            start: self.start,
            end: self.start,
            line: self.line,
        }
    }
}

/// A malformed quoted cell; the file cannot be split into cells past it.
struct SyntaxError {
    start: usize,
    end: usize,
    line: usize,
    message: &'static str,
    label: &'static str,
}

/// Splits the text into rows of cells. Blank lines are skipped.
fn tokenize(text: &str) -> Result<Vec<Row<'_>>, SyntaxError> {
    let bytes = text.as_bytes();
    let mut pos = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let mut line = 1;
    let mut rows = Vec::new();
    while pos < bytes.len() {
        if bytes[pos] == b'\n' {
            pos += 1;
            line += 1;
            continue;
        }
        if bytes[pos..].starts_with(b"\r\n") {
            pos += 2;
            line += 1;
            continue;
        }
        let mut row = Row {
            line,
            start: pos,
            cells: Vec::new(),
        };
        loop {
            let cell_line = line;
            let start = pos;
            let cell = if bytes.get(pos) == Some(&b'"') {
                // Quoted: runs to the quote that is not doubled; may contain commas and newlines.
                pos += 1;
                let mut value = String::new();
                let mut run = pos;
                loop {
                    match bytes.get(pos) {
                        None => {
                            return Err(SyntaxError {
                                start,
                                end: start + 1,
                                line: cell_line,
                                message: "unterminated quoted cell",
                                label: "this quote is never closed",
                            });
                        }
                        Some(b'"') if bytes.get(pos + 1) == Some(&b'"') => {
                            value.push_str(&text[run..=pos]);
                            pos += 2;
                            run = pos;
                        }
                        Some(b'"') => {
                            value.push_str(&text[run..pos]);
                            pos += 1;
                            break;
                        }
                        Some(b) => {
                            if *b == b'\n' {
                                line += 1;
                            }
                            pos += 1;
                        }
                    }
                }
                match bytes.get(pos) {
                    None | Some(b',' | b'\n') => {}
                    Some(b'\r') if bytes.get(pos + 1) == Some(&b'\n') => {}
                    Some(_) => {
                        return Err(SyntaxError {
                            start: pos,
                            end: pos + 1,
                            line,
                            message: "unexpected text after a closing quote",
                            label: "expected `,` or the end of the row here",
                        });
                    }
                }
                Cell {
                    value: Cow::Owned(value),
                    start,
                    end: pos,
                    line: cell_line,
                }
            } else {
                let end = bytes[pos..]
                    .iter()
                    .position(|b| matches!(b, b',' | b'\n'))
                    .map_or(bytes.len(), |i| pos + i);
                // A CR only ends the cell as part of CRLF.
                let value_end = if end > pos && bytes[end - 1] == b'\r' {
                    end - 1
                } else {
                    end
                };
                pos = end;
                Cell {
                    value: Cow::Borrowed(&text[start..value_end]),
                    start,
                    end: value_end,
                    line: cell_line,
                }
            };
            row.cells.push(cell);
            match bytes.get(pos) {
                Some(b',') => pos += 1,
                Some(b'\r') => {
                    pos += 2;
                    line += 1;
                    break;
                }
                Some(b'\n') => {
                    pos += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

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
            problems.push(
                DeclProblem::at(
                    ProblemKind::UnknownColumn,
                    src,
                    cell.loc(),
                    format!("unknown column `{name}`"),
                    "unknown column",
                )
                .with_help(help),
            );
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

/// A top-up file: `key,topup_id,amount` and any `label.<name>` columns, one top-up per row.
fn read_topups<'a>(
    src: &Source,
    file: usize,
    header: &Row<'a>,
    rows: impl Iterator<Item = Row<'a>>,
    problems: &mut Vec<DeclProblem>,
    out: &mut Vec<TopupCandidate>,
) {
    const TOPUP_COLUMNS: &[&str] = &[KEY, TOPUP_ID, AMOUNT];
    let mut columns: Vec<Option<&str>> = Vec::new();
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
        let (mut key, mut id, mut amount) = (Slot::Absent, Slot::Absent, Slot::Absent);
        let mut row_labels = super::Labels::new();
        let mut row_ok = true;
        for ((column, label), cell) in columns.iter().zip(&labels).zip(&row.cells) {
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
            out.push(TopupCandidate {
                file,
                card: key.value,
                card_loc: key.loc,
                id_loc: id.loc,
                topup: super::DesiredTopup {
                    id: id.value,
                    amount: amount.value,
                    labels: row_labels,
                    origin: super::Origin {
                        file: src.name.clone(),
                        line: row.line,
                    },
                },
            });
        }
    }
}

/// A people file: `external_user_id` and the KYC columns, any `label.<name>` columns, one
/// cardholder per row. Every value column is required and every cell of it too.
fn read_people<'a>(
    src: &Source,
    file: usize,
    header: &Row<'a>,
    rows: impl Iterator<Item = Row<'a>>,
    problems: &mut Vec<DeclProblem>,
    out: &mut Vec<PersonCandidate>,
) {
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
        if !absent.is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(text: &str) -> Vec<Vec<String>> {
        match tokenize(text) {
            Ok(rows) => rows
                .iter()
                .map(|r| r.cells.iter().map(|c| c.value.to_string()).collect())
                .collect(),
            Err(e) => panic!("{}", e.message),
        }
    }

    fn run(text: &str) -> (Vec<DeclProblem>, Vec<Candidate>) {
        let src = Source::new("t.csv".into(), text.into());
        let mut problems = Vec::new();
        let mut out = Vec::new();
        read(
            &src,
            0,
            &mut problems,
            &mut out,
            &mut Vec::new(),
            &mut Vec::new(),
        );
        (problems, out)
    }

    fn kinds(text: &str) -> Vec<(ProblemKind, usize, usize)> {
        run(text)
            .0
            .iter()
            .map(|p| (p.kind(), p.line(), p.column()))
            .collect()
    }

    #[test]
    fn tokenizes_quotes_and_line_ends() {
        assert_eq!(cells("a,b\n1,2\n"), vec![vec!["a", "b"], vec!["1", "2"]]);
        assert_eq!(cells("a,b\r\n1,2"), vec![vec!["a", "b"], vec!["1", "2"]]);
        assert_eq!(
            cells("\"x, y\",\"say \"\"hi\"\"\",\n"),
            vec![vec!["x, y", "say \"hi\"", ""]]
        );
        assert_eq!(
            cells("\"two\nlines\",b\n\nc,d\n"),
            vec![vec!["two\nlines", "b"], vec!["c", "d"]]
        );
        assert_eq!(cells("\u{feff}key\n"), vec![vec!["key"]]);
    }

    #[test]
    fn cell_spans_point_at_the_text() {
        let text = "a,\"b\"\n\"c\nd\",e\n";
        let rows = tokenize(text).ok().unwrap();
        let c = &rows[0].cells[1];
        assert_eq!(&text[c.start..c.end], "\"b\"");
        let e = &rows[1].cells[1];
        assert_eq!((&text[e.start..e.end], e.line), ("e", 3));
        assert_eq!(rows[1].line, 2);
    }

    #[test]
    fn syntax_errors() {
        assert_eq!(kinds("key\n\"open\n"), vec![(ProblemKind::CsvSyntax, 2, 1)]);
        assert_eq!(kinds("key\n\"a\"b\n"), vec![(ProblemKind::CsvSyntax, 2, 4)]);
    }

    #[test]
    fn reads_cards() {
        let (p, out) = run(
            "key,external_user_id,product_code,initial_topup,status,label.team\n\
             a,u1,P,50.10,frozen,travel\n\
             b,u2,P,,,\n\
             ,,,,,\n",
        );
        assert!(p.is_empty(), "{p:?}");
        let a = out[0].card.as_ref().unwrap();
        assert_eq!(a.initial_topup.unwrap().to_string(), "50.10");
        assert_eq!(a.status, crate::decl::DesiredStatus::Frozen);
        assert_eq!(a.labels["team"], "travel");
        assert_eq!(a.origin.line, 2);
        let b = out[1].card.as_ref().unwrap();
        assert_eq!(b.initial_topup, None);
        assert!(b.labels.is_empty());
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn header_problems() {
        assert_eq!(
            kinds("key,external_user_id,prodcut_code\nk,u,P\n"),
            vec![(ProblemKind::UnknownColumn, 1, 22)]
        );
        assert_eq!(
            kinds("key,key,external_user_id,product_code,label.\n"),
            vec![
                (ProblemKind::DuplicateColumn, 1, 5),
                (ProblemKind::InvalidLabel, 1, 39)
            ]
        );
        assert_eq!(
            kinds("key,external_user_id,product_code,\nk,u,P,\n"),
            vec![(ProblemKind::UnknownColumn, 1, 35)]
        );
        let p = run("external_user_id,product_code\n").0;
        assert_eq!(p[0].message(), "missing column `key`");
    }

    #[test]
    fn row_problems() {
        let k = kinds(
            "key,external_user_id,product_code,initial_topup\n\
             a,u,P\n\
             b c,u,P,0\n\
             d,,P,1.234\n",
        );
        assert_eq!(
            k,
            vec![
                (ProblemKind::RaggedRow, 2, 1),
                (ProblemKind::InvalidKey, 3, 1),
                (ProblemKind::NonPositiveAmount, 3, 9),
                (ProblemKind::TooManyDecimals, 4, 6),
                (ProblemKind::MissingField, 4, 1),
            ]
        );
    }
}
