//! The source text a problem's snippet is drawn from: the span's lines and one line either side,
//! each cut to a window of about [`WINDOW`] characters around the span, control characters
//! escaped as [`crate::render::safe`] shows them. miette is handed this, not the whole file: a
//! 10 MB single-line file would otherwise be written to stderr whole, and a key holding an
//! escape sequence would reach the terminal raw from its snippet.
//!
//! The window keeps the file's own line numbers and the span's own column in the header
//! (`[file:line:col]`), so the place named is the place in the file.

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::render::safe::{is_unsafe, push_safe, safe, safe_width};

/// About how many characters of a line a snippet shows.
pub(crate) const WINDOW: usize = 200;
/// How many of those come before the span's start, so its context stays in view.
const LEAD: usize = 60;
/// Lines of context either side of the span (miette's default, which the handler keeps).
const CONTEXT: usize = 1;
/// A span longer than this many lines is cut to them: a snippet points, it does not reprint.
const MAX_SPAN_LINES: usize = 8;
/// Marks a line cut at its start or end.
const CUT: &str = "…";

/// A problem's snippet: its text, and where that text sits in the file.
#[derive(Debug, Clone)]
pub(crate) struct Snippet {
    name: String,
    lang: &'static str,
    text: String,
    /// 0-based line in the file of the snippet's first line.
    first_line: usize,
    /// The span in the snippet's text, and its 0-based column (in characters) in the file.
    span: SourceSpan,
    column: usize,
}

/// One line of the file as the snippet shows it.
struct Cut {
    /// Where the line starts in the file.
    start: usize,
    /// The window of it shown, as a byte range in the file.
    from: usize,
    to: usize,
    /// Where the window starts in the snippet's text (after a cut marker).
    at: usize,
}

impl Snippet {
    /// The snippet for `span` of `text`, which starts on 0-based `line` at 0-based `column` (in
    /// characters). Only the lines shown are looked for, so this costs the same in a 10 MB file.
    pub(crate) fn new(
        name: &str,
        text: &str,
        span: SourceSpan,
        line: usize,
        column: usize,
    ) -> Self {
        let start = span.offset().min(text.len());
        let mut end = (start + span.len()).min(text.len());
        let line_start = |off: usize| text[..off].rfind('\n').map_or(0, |i| i + 1);
        let next = |s: usize| text[s..].find('\n').map(|i| s + i + 1);
        // The byte offset of each line shown: CONTEXT before the span's, the span's (at most
        // 1 + MAX_SPAN_LINES), CONTEXT after.
        let mut starts = vec![line_start(start)];
        while starts.len() <= CONTEXT && starts[0] > 0 {
            starts.insert(0, line_start(starts[0] - 1));
        }
        let before = starts.len() - 1;
        let last_off = end.saturating_sub(1).max(start);
        let mut span_lines = 1;
        while let Some(n) = starts.last().and_then(|&l| next(l)) {
            if n > last_off {
                break;
            }
            if span_lines > MAX_SPAN_LINES {
                end = n - 1;
                break;
            }
            starts.push(n);
            span_lines += 1;
        }
        for _ in 0..CONTEXT {
            match starts.last().and_then(|&l| next(l)) {
                Some(n) => starts.push(n),
                None => break,
            }
        }
        let limit = starts
            .last()
            .and_then(|&l| next(l))
            .map_or(text.len(), |n| n - 1);
        let span = SourceSpan::new(start.into(), end - start);
        let mut snippet = Self::build(name, text, &starts, limit, span, column);
        snippet.first_line += line.saturating_sub(before);
        snippet
    }

    /// The snippet of the lines starting at `starts` (the last ending at `limit`).
    fn build(
        name: &str,
        text: &str,
        starts: &[usize],
        limit: usize,
        span: SourceSpan,
        column: usize,
    ) -> Self {
        let lang = if name.ends_with(".csv") {
            "CSV"
        } else {
            "YAML"
        };
        let line_of = |off: usize| match starts.binary_search(&off) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let line_end = |i: usize| {
            let end = starts.get(i + 1).map_or(limit, |&s| s - 1);
            // A CRLF file's CR is part of the line break, not of the line.
            if end > starts[i] && text.as_bytes()[end - 1] == b'\r' && end < text.len() {
                end - 1
            } else {
                end
            }
        };
        let start = span.offset().min(text.len());
        let first_span_line = line_of(start);
        let mut end = (start + span.len()).min(text.len());
        let mut last_span_line = line_of(end.saturating_sub(1).max(start));
        if last_span_line > first_span_line + MAX_SPAN_LINES {
            last_span_line = first_span_line + MAX_SPAN_LINES;
            end = line_end(last_span_line);
        }
        let first = first_span_line.saturating_sub(CONTEXT);
        let last = (last_span_line + CONTEXT).min(starts.len() - 1);

        let mut out = String::new();
        let mut cuts = Vec::new();
        for (i, &ls) in starts.iter().enumerate().take(last + 1).skip(first) {
            let le = line_end(i);
            // The window is placed around what this line is shown for: the span's start, its
            // end, or (a context line) the line's start.
            let anchor = if i == first_span_line {
                start
            } else if i == last_span_line {
                end
            } else {
                ls
            }
            .clamp(ls, le);
            let (from, to) = window(&text[ls..le], anchor - ls);
            let (from, to) = (ls + from, ls + to);
            if from > ls {
                out.push_str(CUT);
            }
            let at = out.len();
            for c in text[from..to].chars() {
                push_safe(&mut out, c);
            }
            if to < le {
                out.push_str(CUT);
            }
            if i < last {
                out.push('\n');
            }
            cuts.push(Cut {
                start: ls,
                from,
                to,
                at,
            });
        }
        // An offset of the file as an offset of the snippet: clamped into its line's window.
        let map = |off: usize| {
            let cut = cuts
                .iter()
                .rev()
                .find(|c| c.start <= off)
                .unwrap_or(&cuts[0]);
            let off = off.clamp(cut.from, cut.to.max(cut.from));
            // In bytes: an escape is ASCII, any other character keeps its UTF-8 length.
            let shown_len = |c: char| match is_unsafe(c) {
                true => safe_width(c),
                false => c.len_utf8(),
            };
            cut.at + text[cut.from..off].chars().map(shown_len).sum::<usize>()
        };
        let (s, e) = (map(start), map(end));
        Snippet {
            name: safe(name).into_owned(),
            lang,
            text: out,
            first_line: first,
            span: SourceSpan::new(s.into(), e.saturating_sub(s)),
            column,
        }
    }

    /// The span to label, in the snippet's offsets.
    pub(crate) fn span(&self) -> SourceSpan {
        self.span
    }
}

/// The byte range of `line` to show around byte `anchor`: up to [`LEAD`] characters before it,
/// [`WINDOW`] in all, counted as shown (an escaped character counts its escape).
fn window(line: &str, anchor: usize) -> (usize, usize) {
    // A line that fits is shown whole (the usual case: a YAML line is short).
    if line.len() <= WINDOW && line.chars().map(safe_width).sum::<usize>() <= WINDOW {
        return (0, line.len());
    }
    let mut from = anchor;
    let mut shown = 0;
    for (i, c) in line[..anchor].char_indices().rev() {
        if shown + safe_width(c) > LEAD {
            break;
        }
        shown += safe_width(c);
        from = i;
    }
    let mut to = from;
    for (i, c) in line[from..].char_indices() {
        if shown + safe_width(c) > WINDOW && to > anchor {
            break;
        }
        shown += safe_width(c);
        to = from + i + c.len_utf8();
    }
    (from, to)
}

impl SourceCode for Snippet {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.as_str().read_span(span, before, after)?;
        let (s, line, line_count) = (*inner.span(), inner.line(), inner.line_count());
        // The header's column is the file's, not the window's (miette reads it from the primary
        // span with no context lines).
        let column = if *span == self.span && before == 0 && after == 0 {
            self.column
        } else {
            inner.column()
        };
        let data = &self.text.as_bytes()[s.offset()..s.offset() + s.len()];
        Ok(Box::new(
            MietteSpanContents::new_named(
                self.name.clone(),
                data,
                s,
                line + self.first_line,
                column,
                line_count,
            )
            .with_language(self.lang),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snip(text: &str, start: usize, len: usize) -> Snippet {
        let col = text[..start].rfind('\n').map_or(start, |n| start - n - 1);
        let line = text[..start].matches('\n').count();
        Snippet::new(
            "t.yaml",
            text,
            SourceSpan::new(start.into(), len),
            line,
            col,
        )
    }

    fn spanned(s: &Snippet) -> &str {
        &s.text[s.span.offset()..s.span.offset() + s.span.len()]
    }

    #[test]
    fn a_short_file_is_shown_as_it_is() {
        let text = "version: 1\ncards:\n  - key: a b\n  - key: c\n  - key: d\n";
        let s = snip(text, 27, 3);
        assert_eq!(s.text, "cards:\n  - key: a b\n  - key: c");
        assert_eq!(spanned(&s), "a b");
        assert_eq!(s.first_line, 1);
    }

    #[test]
    fn a_huge_line_is_cut_to_a_window_around_the_span() {
        let mut text = "x".repeat(5_000_000);
        text.push_str("BAD");
        text.push_str(&"y".repeat(5_000_000));
        let s = snip(&text, 5_000_000, 3);
        assert!(s.text.chars().count() <= WINDOW + 2, "{}", s.text.len());
        assert!(s.text.starts_with(CUT) && s.text.ends_with(CUT));
        assert_eq!(spanned(&s), "BAD");
        // A span longer than the window is cut too.
        let s = snip(&text, 10, 9_000_000);
        assert!(s.text.chars().count() <= WINDOW + 2);
        assert!(spanned(&s).starts_with('x'));
    }

    #[test]
    fn control_characters_are_escaped_and_the_span_follows_them() {
        let text = "cards:\n  - key: \"\x1b]0;pwned\x07\"\n";
        let start = text.find('"').unwrap();
        let s = snip(text, start, text.len() - 1 - start);
        let unsafe_char = |c: char| c != '\n' && crate::render::safe::is_unsafe(c);
        assert!(!s.text.chars().any(unsafe_char), "{:?}", s.text);
        assert_eq!(spanned(&s), "\"\\u{1b}]0;pwned\\u{7}\"");
    }

    #[test]
    fn a_long_span_is_cut_to_its_first_lines_and_keeps_line_numbers() {
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let start = text.find("line 20").unwrap();
        let s = snip(&text, start, text.len() - start);
        assert_eq!(s.first_line, 18);
        assert!(s.text.starts_with("line 19\nline 20\n"), "{}", s.text);
        assert!(s.text.ends_with("line 28\nline 29"), "{}", s.text);
        assert!(spanned(&s).starts_with("line 20") && spanned(&s).ends_with("line 28"));
        let s = snip(&text, 0, 3);
        assert_eq!((s.first_line, s.text.as_str()), (0, "line 1\nline 2"));
    }

    #[test]
    fn crlf_lines_and_a_span_at_the_very_end() {
        let text = "a: 1\r\nb: 2\r\nc";
        let s = snip(text, text.len(), 0);
        assert_eq!(s.text, "b: 2\nc");
        assert_eq!(s.span.offset(), s.text.len());
    }
}
