//! The CSV tokenizer: splits the text into rows of cells, each with its exact byte span and line
//! (RFC 4180: commas, double quotes, `""` escapes, LF or CRLF). Must not give cells any meaning:
//! headers and fields are read by the parent module.

use std::borrow::Cow;

use crate::decl::problem::Loc;

#[derive(Debug)]
pub(super) struct Cell<'a> {
    pub(super) value: Cow<'a, str>,
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) line: usize,
}

impl Cell<'_> {
    pub(super) fn loc(&self) -> Loc {
        Loc::Bytes {
            start: self.start,
            end: self.end,
            line: self.line,
        }
    }
}

#[derive(Debug)]
pub(super) struct Row<'a> {
    pub(super) line: usize,
    pub(super) start: usize,
    pub(super) cells: Vec<Cell<'a>>,
}

impl Row<'_> {
    pub(super) fn loc(&self) -> Loc {
        Loc::Bytes {
            start: self.start,
            end: self.start,
            line: self.line,
        }
    }
}

/// A malformed quoted cell; the file cannot be split into cells past it.
pub(super) struct SyntaxError {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) line: usize,
    pub(super) message: &'static str,
    pub(super) label: &'static str,
}

/// Splits the text into rows of cells. Blank lines are skipped.
pub(super) fn tokenize(text: &str) -> Result<Vec<Row<'_>>, SyntaxError> {
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
            let cell = if bytes.get(pos) == Some(&b'"') {
                quoted_cell(text, &mut pos, &mut line)?
            } else {
                plain_cell(text, &mut pos, line)
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

/// The quoted cell at `pos` (its opening quote): runs to the quote that is not doubled, and may
/// contain commas and newlines (counted into `line`). Leaves `pos` after the closing quote.
fn quoted_cell<'a>(
    text: &'a str,
    pos: &mut usize,
    line: &mut usize,
) -> Result<Cell<'a>, SyntaxError> {
    let bytes = text.as_bytes();
    let (start, cell_line) = (*pos, *line);
    *pos += 1;
    let mut value = String::new();
    let mut run = *pos;
    loop {
        match bytes.get(*pos) {
            None => {
                return Err(SyntaxError {
                    start,
                    end: start + 1,
                    line: cell_line,
                    message: "unterminated quoted cell",
                    label: "this quote is never closed",
                });
            }
            Some(b'"') if bytes.get(*pos + 1) == Some(&b'"') => {
                value.push_str(&text[run..=*pos]);
                *pos += 2;
                run = *pos;
            }
            Some(b'"') => {
                value.push_str(&text[run..*pos]);
                *pos += 1;
                break;
            }
            Some(b) => {
                if *b == b'\n' {
                    *line += 1;
                }
                *pos += 1;
            }
        }
    }
    match bytes.get(*pos) {
        None | Some(b',' | b'\n') => {}
        Some(b'\r') if bytes.get(*pos + 1) == Some(&b'\n') => {}
        Some(_) => {
            return Err(SyntaxError {
                start: *pos,
                end: *pos + 1,
                line: *line,
                message: "unexpected text after a closing quote",
                label: "expected `,` or the end of the row here",
            });
        }
    }
    Ok(Cell {
        value: Cow::Owned(value),
        start,
        end: *pos,
        line: cell_line,
    })
}

/// The unquoted cell at `pos`: runs to the next comma or line end. Leaves `pos` there.
fn plain_cell<'a>(text: &'a str, pos: &mut usize, line: usize) -> Cell<'a> {
    let bytes = text.as_bytes();
    let start = *pos;
    let end = bytes[start..]
        .iter()
        .position(|b| matches!(b, b',' | b'\n'))
        .map_or(bytes.len(), |i| start + i);
    // A CR only ends the cell as part of CRLF.
    let value_end = if end > start && bytes[end - 1] == b'\r' {
        end - 1
    } else {
        end
    };
    *pos = end;
    Cell {
        value: Cow::Borrowed(&text[start..value_end]),
        start,
        end: value_end,
        line,
    }
}
