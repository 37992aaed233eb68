//! The fast path for large generated fleets: a `cards` list written one flow mapping per line
//! (`  - {key: a, external_user_id: u, labels: {team: x}}`), tokenized here into the same
//! [`Node`]s the YAML parser would build, so the same checks (`card`, `fields::finish`) read
//! them. The general parser costs most of a large `plan`; these lines are nearly all of a
//! million-card file.
//!
//! Owns only the tokenizing, and only of a deliberately narrow form: ASCII plain scalars, one
//! level of nested mapping (labels), no quotes, comments, tabs, anchors or trailing commas.
//! Anything else is "not this form" (`None`), and the whole file is then read by the parser, so
//! what an unusual or broken file reports never depends on this module.

use saphyr_parser::ScalarStyle;
use std::borrow::Cow;

use super::node::Node;
use crate::decl::problem::Loc;

/// Where the card lines start: the file's only top-level `cards:` line, followed to the end of
/// the file by nothing but card lines and blank lines.
pub(super) struct Block {
    /// The 1-based line of `cards:`.
    pub(super) cards_line: usize,
    /// Byte offset of the line after `cards:`: the parser reads the text before it.
    pub(super) start: usize,
}

/// Finds the block, when the file has this shape; `None` sends the file to the parser alone.
/// A cheap look at the start of each line: the lines themselves are checked as they are read.
pub(super) fn block(text: &str) -> Option<Block> {
    let (cards_line, start) = {
        let at = if text.starts_with("cards:\n") {
            0
        } else {
            text.find("\ncards:\n")? + 1
        };
        (text[..at].matches('\n').count() + 1, at + "cards:\n".len())
    };
    let rest = &text[start..];
    let blank = |l: &str| l.bytes().all(|b| b == b' ');
    let first = rest.lines().find(|l| !blank(l))?;
    let indent = first.len() - first.trim_start_matches(' ').len();
    let card_lines = rest.lines().all(|l| {
        blank(l)
            || l.as_bytes().get(indent..indent + 2) == Some(b"- ")
                && l.bytes().take(indent).all(|b| b == b' ')
    });
    card_lines.then_some(Block { cards_line, start })
}

/// The card lines of `block` with their 1-based line numbers (blank ones left out).
pub(super) fn lines<'t>(text: &'t str, block: &Block) -> impl Iterator<Item = (usize, &'t str)> {
    text[block.start..]
        .split('\n')
        .enumerate()
        .map(move |(i, l)| (block.cards_line + 1 + i, l))
        .filter(|(_, l)| !l.bytes().all(|b| b == b' '))
}

/// One card line as the node the parser would give for its item; `None` if the line is not of
/// the narrow form (even where it is valid YAML).
pub(super) fn card(line_no: usize, line: &str) -> Option<Node<'_>> {
    if !line.is_ascii() {
        return None;
    }
    let mut s = Scan {
        b: line.as_bytes(),
        text: line,
        at: 0,
        line: line_no,
    };
    s.spaces();
    if !s.eat(b'-') || !s.eat(b' ') {
        return None;
    }
    s.spaces();
    let node = s.mapping(true)?;
    s.spaces();
    (s.at == s.b.len()).then_some(node)
}

struct Scan<'a> {
    b: &'a [u8],
    text: &'a str,
    at: usize,
    line: usize,
}

impl<'a> Scan<'a> {
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

    /// Columns are characters, and the line is ASCII: byte offsets.
    fn loc(&self, from: usize, to: usize) -> Loc {
        Loc::Chars {
            line: self.line,
            col: from,
            end_line: self.line,
            end_col: to,
        }
    }

    /// `{k: v, …}` starting at `{`; values may be mappings only when `nested` is allowed.
    fn mapping(&mut self, nested: bool) -> Option<Node<'a>> {
        let open = self.at;
        if !self.eat(b'{') {
            return None;
        }
        let mut entries = Vec::new();
        self.spaces();
        if !self.eat(b'}') {
            loop {
                let key = self.scalar()?;
                self.spaces();
                // `key: value` with a space: `key:value` is one scalar in some readings.
                if !self.eat(b':') || self.peek() != Some(b' ') {
                    return None;
                }
                self.spaces();
                let value = match self.peek() {
                    Some(b'{') if nested => self.mapping(false)?,
                    _ => self.scalar()?,
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
        // The parser's span of a mapping ends at the next token, past any spaces after `}`.
        if self.peek() == Some(b' ') {
            return None;
        }
        Some(Node::Map {
            entries,
            loc: self.loc(open, self.at),
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
mod tests {
    use super::super::events::Events;
    use super::*;
    use crate::decl::problem::Source;
    use saphyr_parser::Event;

    /// The items of the first `cards` list as the parser builds them.
    fn parsed(text: &str) -> Vec<String> {
        try_parsed(text).unwrap()
    }

    /// [`parsed`], `None` when the parser finds the text broken.
    fn try_parsed(text: &str) -> Option<Vec<String>> {
        let mut ev = Events::new(text);
        let mut out = Vec::new();
        while let Some((e, _)) = ev.next().ok()? {
            if matches!(e, Event::SequenceStart(..)) {
                while !matches!(ev.peek().ok()?, Some(Event::SequenceEnd) | None) {
                    out.push(format!("{:?}", ev.node().ok()?));
                }
            }
        }
        Some(out)
    }

    /// Lines made of random pieces: whatever the fast path accepts, the parser reads alike.
    #[test]
    fn agrees_with_the_parser_on_random_lines() {
        const PIECES: &[&str] = &[
            "{", "}", ",", ":", ": ", " ", "  ", "a", "k1", "-", "- ", "-x", ".", "_", "@", "/",
            "+", "x y", "{a: b}", "labels: ", "#", "'", "\"", "null", "?", "[", "]", "&", "*",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut line = String::from("  - {");
            for _ in 0..next(12) {
                line.push_str(PIECES[next(PIECES.len())]);
            }
            if next(2) == 0 {
                line.push('}');
            }
            let text = format!("version: 1\ncards:\n{line}\n");
            if let Some(fast) = fast(&text) {
                accepted += 1;
                assert_eq!(Some(fast), try_parsed(&text), "{line}");
            }
        }
        assert!(accepted > 500, "only {accepted} lines accepted");
    }

    fn fast(text: &str) -> Option<Vec<String>> {
        let block = block(text)?;
        lines(text, &block)
            .map(|(n, l)| card(n, l).map(|node| format!("{node:?}")))
            .collect()
    }

    #[test]
    fn gives_the_nodes_the_parser_gives() {
        for cards in [
            "  - {key: fleet-000001, external_user_id: fleet-user-000001, labels: {batch: fleet}}\n",
            "- {key: a, external_user_id: u}\n- {key: b, external_user_id: v}",
            "    -   {  key:   a b  ,external_user_id: u.x@y ,initial_topup: 50.10 }\n\n",
            "  - {labels: {a: b},key: c}\n  - {labels: {a: b}}\n",
            "  - {key: a, labels: {}, status: frozen, product_code: P/1+2}\n  - {}\n",
            "  - {key: -a, labels: { team : x , cc: _y }}\n",
            "  - {key: null, external_user_id: NULL, initial_topup: 1e3}\n",
        ] {
            let text = format!("version: 1\ncards:\n{cards}");
            assert_eq!(fast(&text), Some(parsed(&text)), "{text}");
            let src = Source::new("t.yaml".into(), text.clone());
            assert_eq!(src.text.len(), text.len());
        }
    }

    #[test]
    fn leaves_anything_else_to_the_parser() {
        for cards in [
            "  - {key: \"a\"}\n",
            "  - {key: a} # note\n",
            "  - {key: a, topups: [{id: x, amount: 1}]}\n",
            "  - {key: a, labels: {a: {b: c}}}\n",
            "  - {key: a,}\n",
            "  - {key: a:b}\n",
            "  - {key:a}\n",
            "  - {key: &x a}\n",
            "  - {key: é}\n",
            "  - {key: a}\r\n",
            "  - {key: a} \n",
            "  - {labels: {a: b} , key: c}\n",
            "  - {key: a\n    , b: c}\n",
            "  - {key: a}\n---\n",
            "  - {key: a}\nmoved: []\n",
            "  - key: a\n",
            "\t- {key: a}\n",
        ] {
            let text = format!("version: 1\ncards:\n{cards}");
            assert_eq!(fast(&text), None, "{text}");
        }
    }
}
