//! The one grammar of "a simple card entry": an item of the top-level `cards` block list written
//! in a deliberately narrow part of YAML, tokenized here into the very [`Node`]s the parser
//! builds, so the same checks (`card`, `fields::finish`) read them. Two shapes:
//!
//! - a flow mapping on one line: `  - {key: a, external_user_id: u, labels: {team: x}}`;
//! - a block mapping whose every field is one line (`- key: a`, then `    product_code: P` at
//!   the column of the first field), a field with nothing after its colon taking either nothing
//!   or one deeper level of `name: value` lines (`labels:` then `      team: x`), and a field's
//!   value possibly a one-line flow mapping (`labels: {team: x}`).
//!
//! Values are plain scalars of safe ASCII characters (inner spaces kept), or quoted ones without
//! escapes; names are plain. Comments are allowed where they cannot change meaning: on a line of
//! their own, and after a block field's value. No tabs, carriage returns, non-ASCII text,
//! anchors, aliases, tags, lists, block scalars or multi-line scalars: anything else is "not
//! this form" (`None`), and the caller then leaves the whole file to the parser, so what an
//! unusual or broken file reports never depends on this module.
//!
//! Used by the YAML fast path (`reader`) and by the sieve (`decl::sieve`, which blanks the
//! entries of other parts). Owns only the tokenizing: what a field means is `card`'s.

use saphyr_parser::ScalarStyle;
use std::borrow::Cow;
use std::iter::Peekable;

use super::node::Node;
use crate::decl::problem::Loc;

/// Where the cards list starts: the file's only top-level `cards:` line, followed to the end of
/// the file by the list's lines alone.
pub(in crate::decl) struct Block {
    /// The 1-based line of `cards:`.
    pub(in crate::decl) cards_line: usize,
    /// Byte offset of the line after `cards:`: the parser reads the text before it.
    pub(in crate::decl) start: usize,
}

/// Finds the block, when the file may have this shape; `None` sends the file to the parser
/// alone. A cheap look at the first byte of each line: [`Entries`] checks the lines themselves.
pub(in crate::decl) fn block(text: &str) -> Option<Block> {
    let at = if text.starts_with("cards:\n") {
        0
    } else {
        text.find("\ncards:\n")? + 1
    };
    let start = at + "cards:\n".len();
    let cards_line = text[..at].matches('\n').count() + 1;
    let rest = &text[start..];
    // The first item sets the list's indentation; a line less indented than the list (a
    // top-level `moved:`, a `---`) means more than cards follow.
    let first = rest.split('\n').find(|l| !skipped(l))?;
    let indent = item_indent(first)?;
    let within = |l: &str| {
        skipped(l)
            || l.as_bytes()
                .get(..indent)
                .is_some_and(|b| b.iter().all(|&c| c == b' '))
    };
    let list_only = rest.split('\n').all(|l| {
        within(l) && (indent > 0 || !l.starts_with(|c: char| c != ' ' && c != '-' && c != '#'))
    });
    list_only.then_some(Block { cards_line, start })
}

/// The lines of `block`, numbered from 1 as in the file.
pub(in crate::decl) fn lines<'t>(
    text: &'t str,
    block: &Block,
) -> impl Iterator<Item = (usize, &'t str)> + 't {
    let first = block.cards_line + 1;
    text[block.start..]
        .split('\n')
        .enumerate()
        .map(move |(i, l)| (first + i, l))
}

/// A line that means nothing to the list: blank, or a comment alone.
pub(in crate::decl) fn skipped(line: &str) -> bool {
    let rest = line.trim_start_matches(' ');
    rest.is_empty() || rest.starts_with('#')
}

/// The indentation of `line` when it starts a list item (`- ` after spaces).
pub(in crate::decl) fn item_indent(line: &str) -> Option<usize> {
    let rest = line.trim_start_matches(' ');
    rest.starts_with("- ").then_some(line.len() - rest.len())
}

/// Whether `line` still belongs to the entry of an item at `indent`: nothing at or left of the
/// item's dash starts on it.
pub(in crate::decl) fn continues(line: &str, indent: usize) -> bool {
    skipped(line) || line.len() - line.trim_start_matches(' ').len() > indent
}

/// The entries of a list, one item at a time: `Some(None)` for the first line that does not
/// make a simple entry (or an item at another indentation), after which the list is the
/// parser's to read.
pub(in crate::decl) struct Entries<'a, I: Iterator<Item = (usize, &'a str)>> {
    lines: Peekable<I>,
    indent: Option<usize>,
}

impl<'a, I: Iterator<Item = (usize, &'a str)>> Entries<'a, I> {
    pub(in crate::decl) fn new(lines: I) -> Self {
        Entries {
            lines: lines.peekable(),
            indent: None,
        }
    }
}

impl<'a, I: Iterator<Item = (usize, &'a str)>> Iterator for Entries<'a, I> {
    type Item = Option<Node<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        while self.lines.next_if(|(_, l)| skipped(l)).is_some() {}
        let (_, line) = self.lines.peek()?;
        let at = item_indent(line);
        let indent = *self.indent.get_or_insert(at.unwrap_or(usize::MAX));
        if at != Some(indent) {
            return Some(None);
        }
        Some(entry(&mut self.lines, indent))
    }
}

/// One entry, its item at `indent` on the next line of `lines`, as the node the parser gives
/// for it. Takes the entry's lines, and on `None` perhaps some of the next.
fn entry<'a>(
    lines: &mut Peekable<impl Iterator<Item = (usize, &'a str)>>,
    indent: usize,
) -> Option<Node<'a>> {
    let (no, line) = lines.next()?;
    let mut s = Scan::new(no, line)?;
    s.at = indent + 1;
    s.spaces();
    if s.peek() == Some(b'{') {
        let node = s.mapping(true, true)?;
        if s.at != s.b.len() {
            return None;
        }
        // A flow card is all of its entry: only blank lines and comments may follow it.
        while let Some((_, l)) = lines.next_if(|(_, l)| continues(l, indent)) {
            if !skipped(l) {
                return None;
            }
        }
        return Some(node);
    }
    let column = s.at;
    let mut block = Fields {
        column,
        entries: Vec::new(),
        nested: None,
        open: (no, column),
    };
    block.field(&mut s)?;
    while let Some((no, line)) = lines.next_if(|(_, l)| continues(l, indent)) {
        if skipped(line) {
            continue;
        }
        block.line(no, line)?;
    }
    Some(block.finish())
}

/// A block mapping being read, a field at a time.
struct Fields<'a> {
    column: usize,
    entries: Vec<(Node<'a>, Node<'a>)>,
    /// The column and entries of the nested lines under the last field, once one is read.
    nested: Option<(usize, Vec<(Node<'a>, Node<'a>)>)>,
    /// Where the mapping starts (line, column).
    open: (usize, usize),
}

impl<'a> Fields<'a> {
    /// A line of the entry after its first: a field at the mapping's column, or a nested line
    /// under a field with nothing after its colon.
    fn line(&mut self, no: usize, line: &'a str) -> Option<()> {
        let mut s = Scan::new(no, line)?;
        s.spaces();
        if s.at == self.column {
            self.close_nested();
            return self.field(&mut s);
        }
        let column = s.at;
        let (_, last) = self.entries.last()?;
        let open = match &self.nested {
            None => column > self.column && is_empty_value(last),
            Some((at, _)) => *at == column,
        };
        if !open {
            return None;
        }
        let key = s.scalar()?;
        s.colon()?;
        let value = match s.value_start() {
            true => s.quoted_or_plain()?,
            false => s.null(),
        };
        s.trailing()?;
        let (_, entries) = self.nested.get_or_insert_with(|| (column, Vec::new()));
        entries.push((key, value));
        Some(())
    }

    /// `name: value` from the scan's position to the end of its line.
    fn field(&mut self, s: &mut Scan<'a>) -> Option<()> {
        let key = s.scalar()?;
        s.colon()?;
        let value = if !s.value_start() {
            s.null()
        } else if s.peek() == Some(b'{') {
            s.mapping(false, false)?
        } else {
            s.quoted_or_plain()?
        };
        s.trailing()?;
        self.entries.push((key, value));
        Some(())
    }

    /// Puts the nested lines read under the last field in place of its empty value.
    fn close_nested(&mut self) {
        let Some((_, entries)) = self.nested.take() else {
            return;
        };
        let loc = span_of(&entries);
        if let Some((_, value)) = self.entries.last_mut() {
            *value = Node::Map { entries, loc };
        }
    }

    fn finish(mut self) -> Node<'a> {
        self.close_nested();
        let (line, col) = self.open;
        let loc = match span_of(&self.entries) {
            Loc::Chars {
                end_line, end_col, ..
            } => Loc::Chars {
                line,
                col,
                end_line,
                end_col,
            },
            other => other,
        };
        Node::Map {
            entries: self.entries,
            loc,
        }
    }
}

/// A value with nothing on its line: what nested lines may replace.
fn is_empty_value(node: &Node<'_>) -> bool {
    matches!(node, Node::Scalar { value, style: ScalarStyle::Plain, .. } if value.is_empty())
}

/// From the first key to the end of the last value. The parser's span of a block mapping ends
/// where the next token starts, which a line cannot tell; only problems show a mapping's span,
/// and a file with any is read again by the parser.
fn span_of(entries: &[(Node<'_>, Node<'_>)]) -> Loc {
    let (Some((first, _)), Some((_, last))) = (entries.first(), entries.last()) else {
        return Loc::Chars {
            line: 0,
            col: 0,
            end_line: 0,
            end_col: 0,
        };
    };
    match (first.loc(), last.loc()) {
        (
            Loc::Chars { line, col, .. },
            Loc::Chars {
                end_line, end_col, ..
            },
        ) => Loc::Chars {
            line,
            col,
            end_line,
            end_col,
        },
        (loc, _) => loc,
    }
}

struct Scan<'a> {
    b: &'a [u8],
    text: &'a str,
    at: usize,
    line: usize,
    /// Where the last `:` was: the parser puts an empty value there.
    colon: usize,
}

impl<'a> Scan<'a> {
    /// `None` for a line this grammar never reads: columns are characters, and the line must be
    /// ASCII for them to be its bytes; a tab or carriage return may mean something else.
    fn new(line: usize, text: &'a str) -> Option<Self> {
        let plain = text.bytes().all(|b| (b' '..=b'~').contains(&b));
        plain.then_some(Scan {
            b: text.as_bytes(),
            text,
            at: 0,
            line,
            colon: 0,
        })
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        self.at += usize::from(hit);
        hit
    }

    fn spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    fn loc(&self, from: usize, to: usize) -> Loc {
        Loc::Chars {
            line: self.line,
            col: from,
            end_line: self.line,
            end_col: to,
        }
    }

    /// `:` after a name, then a space or the end of the line (`key:value` is one scalar in
    /// some readings).
    fn colon(&mut self) -> Option<()> {
        self.spaces();
        self.colon = self.at;
        let ok = self.eat(b':') && matches!(self.peek(), Some(b' ') | None);
        ok.then_some(())
    }

    /// After a block field's colon: whether a value is on the line (not a comment or nothing).
    fn value_start(&mut self) -> bool {
        self.spaces();
        !matches!(self.peek(), None | Some(b'#'))
    }

    /// What may end a block line after its value: spaces, then nothing or a comment.
    fn trailing(&mut self) -> Option<()> {
        self.spaces();
        let after_space = self.at > 0 && self.b[self.at - 1] == b' ';
        let ok = self.peek().is_none() || self.peek() == Some(b'#') && after_space;
        ok.then_some(())
    }

    /// The empty value of a field with nothing after its colon, where the parser puts it.
    fn null(&self) -> Node<'a> {
        Node::Scalar {
            value: Cow::Borrowed(""),
            style: ScalarStyle::Plain,
            loc: self.loc(self.colon, self.colon),
        }
    }

    /// `{k: v, …}` starting at `{`; values may be mappings only when `nested` is allowed. In a
    /// `tight` context (a flow card) nothing may follow `}` but `,` or `}`: the parser's span of
    /// a mapping runs on over spaces after it.
    fn mapping(&mut self, nested: bool, tight: bool) -> Option<Node<'a>> {
        let open = self.at;
        if !self.eat(b'{') {
            return None;
        }
        let mut entries = Vec::new();
        self.spaces();
        if !self.eat(b'}') {
            loop {
                let key = self.scalar()?;
                self.colon()?;
                self.spaces();
                let value = match self.peek() {
                    Some(b'{') if nested => self.mapping(false, tight)?,
                    _ => self.quoted_or_plain()?,
                };
                entries.push((key, value));
                self.spaces();
                if self.eat(b'}') {
                    break;
                }
                if !self.eat(b',') {
                    return None;
                }
                self.spaces();
            }
        }
        if tight && self.peek() == Some(b' ') {
            return None;
        }
        Some(Node::Map {
            entries,
            loc: self.loc(open, self.at),
        })
    }

    /// A quoted scalar without escapes, or a plain one.
    fn quoted_or_plain(&mut self) -> Option<Node<'a>> {
        let (quote, style) = match self.peek()? {
            b'"' => (b'"', ScalarStyle::DoubleQuoted),
            b'\'' => (b'\'', ScalarStyle::SingleQuoted),
            _ => return self.scalar(),
        };
        let open = self.at;
        let len = self.b[open + 1..].iter().position(|&c| c == quote)?;
        let close = open + 1 + len;
        let inner = &self.b[open + 1..close];
        // `\` escapes in double quotes, `''` is a quote in single ones.
        if inner.contains(&b'\\') || self.b.get(close + 1) == Some(&quote) {
            return None;
        }
        self.at = close + 1;
        // The parser's span of a quoted scalar runs on over the spaces after it, and over a
        // comment after those.
        self.spaces();
        let end = match self.peek() {
            Some(b'#') if self.b[self.at - 1] == b' ' => self.b.len(),
            _ => self.at,
        };
        Some(Node::Scalar {
            value: Cow::Borrowed(&self.text[open + 1..close]),
            style,
            loc: self.loc(open, end),
        })
    }

    /// A plain scalar of safe characters, inner spaces kept and trailing ones not part of it.
    fn scalar(&mut self) -> Option<Node<'a>> {
        let start = self.at;
        let first = self.peek()?;
        let second = self.b.get(start + 1).copied();
        // Not an indicator: `-` only starts a scalar when a safe character follows it.
        let starts = first.is_ascii_alphanumeric()
            || matches!(first, b'_' | b'.' | b'/' | b'+')
            || first == b'-' && second.is_some_and(|c| c.is_ascii_alphanumeric());
        if !starts {
            return None;
        }
        let mut end = start;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'/' | b'+' | b'-' | b'@') {
                self.at += 1;
                end = self.at;
            } else if c == b' ' {
                self.at += 1;
            } else {
                break;
            }
        }
        self.at = end;
        Some(Node::Scalar {
            value: Cow::Borrowed(&self.text[start..end]),
            style: ScalarStyle::Plain,
            loc: self.loc(start, end),
        })
    }
}

#[cfg(test)]
#[path = "entry_tests.rs"]
mod tests;
