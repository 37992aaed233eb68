//! Reading a large YAML fleet without its whole text: the one-line cards a read does not want
//! are blanked as the file streams in, so what the reader then parses is about one byte a card
//! it skips. Every other line (the header, `defaults`, `moved`, cardholders, any card not of the
//! simple one-line form) is kept as written, and line numbers stay what they are in the file.
//!
//! Blanking a card is safe only for a card whose whole entry is its one line: `- {key: K, ...}`
//! at the indentation of the list's first item, ending in `}`, with no quote, comment, tab or
//! carriage return that could make it mean more. Such an entry stands alone in a YAML block
//! list, so the file without it reads as the file minus that card. A card the sieve is unsure of
//! is kept, and the part filter (`fields::finish`) decides. Owns only the text; what a card means
//! is the readers'.

use std::io::BufRead;
use std::path::Path;

/// Which one-line cards a read keeps.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sieve {
    /// Every line: the file as written.
    All,
    /// The cards of one part (see [`crate::model::Part`]).
    Part(crate::model::Part),
    /// The one-line cards numbered `from..to` in the file (0-based, in file order), for checking
    /// a large file a window at a time.
    Window { from: usize, to: usize },
}

/// A file's text with the one-line cards `sieve` does not keep blanked, and how many one-line
/// cards the file has. `None` when the file cannot be read this way (not UTF-8, say): read it
/// whole, and let that read report why.
pub(crate) fn read(path: &Path, sieve: Sieve) -> Option<(String, usize)> {
    let file = std::fs::File::open(path).ok()?;
    let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
    let mut text = String::new();
    let mut line = Vec::new();
    let mut in_cards = false;
    let mut indent = None;
    let mut cards = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            break;
        }
        let l = std::str::from_utf8(&line).ok()?;
        let body = l.strip_suffix('\n').unwrap_or(l);
        if !in_cards {
            in_cards = body == "cards:";
        } else if let Some(key) = one_line_card(body, &mut indent) {
            let n = cards;
            cards += 1;
            let keep = match sieve {
                Sieve::All => true,
                Sieve::Part(part) => part.holds(key),
                Sieve::Window { from, to } => (from..to).contains(&n),
            };
            if !keep {
                text.push('\n');
                continue;
            }
        } else if ends_block(body) {
            in_cards = false;
        }
        text.push_str(l);
    }
    Some((text, cards))
}

/// A line at the top level ends the `cards` block (`moved:`, `cardholders:`, a new document).
fn ends_block(line: &str) -> bool {
    match line.as_bytes().first() {
        None | Some(b' ') => false,
        Some(b'-') => line.starts_with("---"),
        Some(_) => true,
    }
}

/// The key of a card written whole on this one line, at the list's indentation (`indent`, set by
/// the first item seen); `None` for any other line.
fn one_line_card<'l>(line: &'l str, indent: &mut Option<usize>) -> Option<&'l str> {
    let item = line.trim_start_matches(' ');
    if !item.starts_with("- ") {
        return None;
    }
    let at = line.len() - item.len();
    if *indent.get_or_insert(at) != at {
        return None;
    }
    let rest = item.strip_prefix("- {key: ")?;
    if !line.ends_with('}') || line.contains(['#', '"', '\'', '\t', '\r', '&', '*', '!', '|', '>'])
    {
        return None;
    }
    let key = &rest[..rest.find([',', '}'])?];
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-');
    (!key.is_empty() && key.bytes().all(valid)).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sieved(text: &str, sieve: Sieve) -> (String, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.yaml");
        std::fs::write(&path, text).unwrap();
        read(&path, sieve).unwrap()
    }

    const FLEET: &str = "version: 1\ndefaults: {product_code: P}\ncards:\n  - {key: a, external_user_id: u}\n  - {key: b, external_user_id: u, labels: {t: x}}\n  - key: c\n    external_user_id: u\n  - {key: \"d\", external_user_id: u}\n  - {key: e, external_user_id: u} # note\nmoved:\n  - {from: x, to: a}\n";

    #[test]
    fn blanks_only_the_one_line_cards_not_kept_and_keeps_the_lines_where_they_were() {
        let (all, cards) = sieved(FLEET, Sieve::All);
        assert_eq!((all.as_str(), cards), (FLEET, 2));
        let (window, _) = sieved(FLEET, Sieve::Window { from: 1, to: 2 });
        assert_eq!(window.lines().count(), FLEET.lines().count());
        assert!(!window.contains("key: a,"), "{window}");
        assert!(window.contains("{key: b,"), "{window}");
        // Not of the one-line form, or after the block: always kept.
        for kept in [
            "  - key: c\n",
            "{key: \"d\"",
            "{key: e, external_user_id: u} # note",
            "{from: x, to: a}",
        ] {
            assert!(window.contains(kept), "{kept}: {window}");
        }
    }

    #[test]
    fn a_card_at_another_indentation_is_never_blanked() {
        let text = "version: 1\ncards:\n  - {key: a, external_user_id: u}\n    - {key: b, external_user_id: u}\n";
        let (none, cards) = sieved(text, Sieve::Window { from: 0, to: 0 });
        assert_eq!(cards, 1);
        assert!(none.contains("key: b"), "{none}");
    }
}
