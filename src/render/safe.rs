//! Text made safe for a terminal: every string that came from declarations, state or the provider
//! passes through [`safe`] before a person (or a CI log) sees it. A card's label, a user id or a
//! provider's message could otherwise hold an escape sequence that recolours, clears or retitles
//! the reader's terminal, or a CR/LF that forges a line of output.
//!
//! Only human output is escaped: JSON already escapes control characters (exactly, so it can be
//! read back), and CSV/YAML exports are data. Must not decide what is valid: declarations refuse
//! control characters where they are checked; this only shows what got through anyway.

use std::borrow::Cow;
use std::fmt::Write as _;

/// True for a character a terminal may act on rather than show: C0 controls (TAB, LF and CR
/// included: they break a table's row or overwrite a line), DEL, C1 controls (U+0080–U+009F,
/// which some terminals take as 8-bit CSI/OSC), and the bidirectional overrides and isolates
/// that reorder what is on screen. Every other character, letters of any script included, is
/// shown as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every [`is_unsafe`] character written as Rust's `char::escape_default` writes it
/// (`\t`, `\r`, `\n`, else `\u{1b}`); borrowed when there is nothing to escape, which is almost
/// always. A backslash is not escaped: the aim is a harmless terminal, not a reversible encoding
/// (JSON output is that).
pub fn safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_safe(&mut out, c);
    }
    Cow::Owned(out)
}

/// [`safe`], cut to about `max` characters as shown: the first two thirds and the last third,
/// with `…` between. For text that quotes a value of any size (a problem's message).
pub fn clipped(text: &str, max: usize) -> Cow<'_, str> {
    let shown: usize = text.chars().map(safe_width).sum();
    if shown <= max {
        return safe(text);
    }
    let (head, tail) = (max * 2 / 3, max / 3);
    let mut out = String::with_capacity(max + 8);
    let mut n = 0;
    for c in text.chars() {
        n += safe_width(c);
        if n > head {
            break;
        }
        push_safe(&mut out, c);
    }
    out.push_str(" … ");
    // The tail's characters, found from the end so a long text is not walked twice.
    let mut n = 0;
    let start = text
        .char_indices()
        .rev()
        .take_while(|&(_, c)| {
            n += safe_width(c);
            n <= tail
        })
        .last()
        .map_or(text.len(), |(i, _)| i);
    for c in text[start..].chars() {
        push_safe(&mut out, c);
    }
    Cow::Owned(out)
}

/// Appends one character as [`safe`] shows it.
pub fn push_safe(out: &mut String, c: char) {
    if is_unsafe(c) {
        // `escape_default` names \t \r \n and writes any other of these as \u{..}.
        let _ = write!(out, "{}", c.escape_default());
    } else {
        out.push(c);
    }
}

/// How many characters [`safe`] shows for one character.
pub fn safe_width(c: char) -> usize {
    if is_unsafe(c) {
        c.escape_default().count()
    } else {
        1
    }
}

/// The control character a value holds, if any, escaped as [`safe`] shows it: what a validation
/// problem names when it refuses the value.
pub fn first_unsafe(text: &str) -> Option<String> {
    text.chars()
        .find(|&c| is_unsafe(c))
        .map(|c| c.escape_default().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_other_scripts_are_borrowed_unchanged() {
        for s in [
            "",
            "team-a",
            "Zoë Ångström",
            "東京 / Київ",
            "emoji 🎉",
            "a\\u{1b}b",
        ] {
            assert!(matches!(safe(s), Cow::Borrowed(t) if t == s), "{s:?}");
        }
    }

    #[test]
    fn terminal_sequences_are_escaped_and_hold_no_raw_control_byte() {
        let cases = [
            ("\x1b[31mred\x1b[0m", "\\u{1b}[31mred\\u{1b}[0m"),
            ("\x1b[2J", "\\u{1b}[2J"),
            ("\x1b]0;pwned\x07", "\\u{1b}]0;pwned\\u{7}"),
            ("a\rb\nc\td", "a\\rb\\nc\\td"),
            ("nul\0del\x7f", "nul\\u{0}del\\u{7f}"),
            ("c1 \u{9b}31m \u{85}", "c1 \\u{9b}31m \\u{85}"),
            ("bidi \u{202e}txt.exe", "bidi \\u{202e}txt.exe"),
        ];
        for (raw, shown) in cases {
            let got = safe(raw);
            assert_eq!(got, shown, "{raw:?}");
            assert!(!got.chars().any(is_unsafe), "{got:?}");
            let width: usize = raw.chars().map(safe_width).sum();
            assert_eq!(width, got.chars().count(), "{raw:?}");
        }
    }

    #[test]
    fn long_text_is_clipped_to_its_start_and_end() {
        let long = format!("invalid card key `{}\x1b[2J` here", "k".repeat(1_000_000));
        let got = clipped(&long, 300);
        assert!(got.chars().count() <= 303, "{}", got.len());
        assert!(got.starts_with("invalid card key `kkk"), "{got}");
        assert!(got.ends_with("kk\\u{1b}[2J` here"), "{got}");
        assert_eq!(clipped("short \x07", 300), "short \\u{7}");
    }

    #[test]
    fn the_first_control_character_is_named_escaped() {
        assert_eq!(first_unsafe("ok"), None);
        assert_eq!(first_unsafe("x\x07y\x1b").as_deref(), Some("\\u{7}"));
        assert_eq!(first_unsafe("line\r\n").as_deref(), Some("\\r"));
    }
}
