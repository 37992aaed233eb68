//! Reading a large fleet without its whole text: the rows a read does not want (a YAML file's
//! simple card entries, a CSV file's unquoted card or top-up rows) are blanked as the file
//! streams in, so what the reader then parses is about one byte a line it skips. Every other
//! line (headers, `defaults`, `moved`, cardholders, any card not of the simple form, any CSV line
//! a quote touches) is kept as written, and line numbers stay what they are in the file: both
//! readers skip blank lines.
//!
//! Blanking a card is safe only for a card whose whole entry is simple, by the one grammar the
//! YAML fast path reads (`yaml_file::entry`: a one-line flow mapping, or a block mapping of
//! one-line fields), at the indentation of the list's first item, and ended cleanly by the
//! next item or the end of the list. Such an entry stands alone in a YAML block list, so the
//! file without it reads as the file minus that card. A card the sieve is unsure of is kept,
//! and the part filter (`fields::finish`) decides. A CSV row without a quote is one line and one
//! record, so the same holds for it. Owns only the text; what a card means is the readers'.

use std::io::BufRead;
use std::path::Path;

use super::yaml_file::entry;
use super::yaml_file::node::Node;

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

/// What [`read`] gives: the text, with the rows it did not keep blanked.
pub(crate) struct Sieved {
    pub text: String,
    /// How many rows the sieve could have left out (kept or not).
    pub rows: usize,
    /// Whether those rows are cards (a YAML fleet, a card CSV), not top-ups (a top-up CSV).
    pub rows_are_cards: bool,
}

/// A file's text with the rows `sieve` does not keep blanked: a YAML file's simple card entries,
/// a CSV file's unquoted rows (cards, or top-ups by their card's key). `None` when the file
/// cannot be read this way (not UTF-8, say): read it whole, and let that read report why.
pub(crate) fn read(path: &Path, csv: bool, sieve: Sieve) -> Option<Sieved> {
    let file = std::fs::File::open(path).ok()?;
    let reader = std::io::BufReader::with_capacity(1 << 16, file);
    match csv {
        true => read_csv(reader, sieve),
        false => read_yaml(reader, sieve),
    }
}

impl Sieve {
    /// Whether the row numbered `n` (0-based, in file order), of card `key`, is kept.
    fn keeps(self, key: &str, n: usize) -> bool {
        match self {
            Sieve::All => true,
            Sieve::Part(part) => part.holds(key),
            Sieve::Window { from, to } => (from..to).contains(&n),
        }
    }
}

fn read_csv(mut reader: impl BufRead, sieve: Sieve) -> Option<Sieved> {
    let mut rows = Rows::new();
    let mut text = String::new();
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            break;
        }
        let l = std::str::from_utf8(&line).ok()?;
        if let Some(key) = rows.csv_key(l.strip_suffix('\n').unwrap_or(l)) {
            let keep = sieve.keeps(key, n);
            n += 1;
            if !keep {
                text.push('\n');
                continue;
            }
        }
        text.push_str(l);
    }
    Some(Sieved {
        text,
        rows: n,
        rows_are_cards: !rows.topups,
    })
}

/// The entries of the top-level `cards` list, each held until the line after it shows that it
/// ended cleanly (at the next item, or at the end of the list), then kept or blanked whole.
struct Entry {
    lines: String,
    count: usize,
}

fn read_yaml(mut reader: impl BufRead, sieve: Sieve) -> Option<Sieved> {
    let mut text = String::new();
    let mut line = Vec::new();
    let mut n = 0;
    let (mut in_cards, mut indent) = (false, None);
    let mut entry = Entry {
        lines: String::new(),
        count: 0,
    };
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            break;
        }
        let l = std::str::from_utf8(&line).ok()?;
        let bare = l.strip_suffix('\n').unwrap_or(l);
        if !in_cards {
            in_cards = bare == "cards:";
            text.push_str(l);
            continue;
        }
        if entry.count > 0 && indent.is_some_and(|i| entry::continues(bare, i)) {
            entry.lines.push_str(l);
            entry.count += 1;
            continue;
        }
        let item = entry::item_indent(bare);
        if item.is_some() && indent.is_none() {
            indent = item;
        }
        let next_item = item.is_some() && item == indent;
        entry.end(next_item || ends_block(bare), sieve, &mut n, &mut text);
        if next_item {
            entry.lines.push_str(l);
            entry.count = 1;
            continue;
        }
        in_cards = !ends_block(bare);
        text.push_str(l);
    }
    entry.end(true, sieve, &mut n, &mut text);
    Some(Sieved {
        text,
        rows: n,
        rows_are_cards: true,
    })
}

impl Entry {
    /// The entry read so far ends: onto `text` as written, or as blank lines when it is a
    /// simple entry that `clean` ended and `sieve` does not keep.
    fn end(&mut self, clean: bool, sieve: Sieve, n: &mut usize, text: &mut String) {
        if self.count == 0 {
            return;
        }
        let key = clean.then(|| simple_key(&self.lines)).flatten();
        let keep = key.is_none_or(|key| {
            let keep = sieve.keeps(key, *n);
            *n += 1;
            keep
        });
        match keep {
            true => text.push_str(&self.lines),
            false => text.extend(std::iter::repeat_n('\n', self.count)),
        }
        self.lines.clear();
        self.count = 0;
    }
}

/// The key of the one entry `lines` hold, when it is a simple entry (see `yaml_file::entry`)
/// with a valid key.
fn simple_key(lines: &str) -> Option<&str> {
    let numbered = lines.split('\n').enumerate().map(|(i, l)| (i + 1, l));
    let mut entries = entry::Entries::new(numbered);
    let Some(Some(Node::Map {
        entries: fields, ..
    })) = entries.next()
    else {
        return None;
    };
    if entries.next().is_some() {
        return None;
    }
    let key = fields.into_iter().find_map(|(k, v)| match (k, v) {
        (Node::Scalar { value: k, .. }, Node::Scalar { value, .. }) if k == "key" => Some(value),
        _ => None,
    })?;
    // Borrowed from `lines`, as every scalar of a simple entry is.
    let key = match key {
        std::borrow::Cow::Borrowed(k) => k,
        std::borrow::Cow::Owned(_) => return None,
    };
    valid_key(key).then_some(key)
}

/// Which lines of a CSV file are rows a sieve may leave out, as the file streams by.
struct Rows {
    /// The key column, once the header is read (`None` before it, or when it has none or
    /// anything unusual: then no row is left out); whether a quoted cell is still open.
    key_column: Option<usize>,
    header_read: bool,
    in_quotes: bool,
    topups: bool,
}

impl Rows {
    fn new() -> Self {
        Rows {
            key_column: None,
            header_read: false,
            in_quotes: false,
            topups: false,
        }
    }

    fn csv_key<'l>(&mut self, line: &'l str) -> Option<&'l str> {
        // A quote anywhere may open a cell that runs on over lines: such a line and those it
        // spans are kept, and the state follows every quote.
        let quotes = line.bytes().filter(|&b| b == b'"').count();
        let was_in_quotes = self.in_quotes;
        self.in_quotes ^= quotes % 2 == 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if was_in_quotes || quotes > 0 || line.is_empty() {
            if !self.header_read && !line.is_empty() {
                self.header_read = true;
            }
            return None;
        }
        if !self.header_read {
            self.header_read = true;
            let header: Vec<&str> = line.trim_start_matches('\u{feff}').split(',').collect();
            self.key_column = header.iter().position(|c| *c == super::fields::KEY);
            self.topups = header.contains(&super::fields::TOPUP_ID);
            return None;
        }
        let key = line.split(',').nth(self.key_column?)?;
        valid_key(key).then_some(key)
    }
}

fn valid_key(key: &str) -> bool {
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-');
    !key.is_empty() && key.bytes().all(valid)
}

/// A line at the top level ends the `cards` block (`moved:`, `cardholders:`, a new document).
fn ends_block(line: &str) -> bool {
    match line.as_bytes().first() {
        None | Some(b' ' | b'#') => false,
        Some(b'-') => line.starts_with("---"),
        Some(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sieved_as(name: &str, text: &str, sieve: Sieve) -> (String, usize) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let s = read(&path, name.ends_with(".csv"), sieve).unwrap();
        (s.text, s.rows)
    }

    fn sieved(text: &str, sieve: Sieve) -> (String, usize) {
        sieved_as("f.yaml", text, sieve)
    }

    const FLEET: &str = "version: 1\ndefaults: {product_code: P}\ncards:\n  - {key: a, external_user_id: u}\n  - {key: b, external_user_id: u, labels: {t: x}}\n  - key: c\n    external_user_id: u\n  - {key: \"d\", external_user_id: u}\n  - {key: e, external_user_id: u} # note\nmoved:\n  - {from: x, to: a}\n";

    #[test]
    fn blanks_only_the_simple_entries_not_kept_and_keeps_the_lines_where_they_were() {
        let (all, cards) = sieved(FLEET, Sieve::All);
        assert_eq!((all.as_str(), cards), (FLEET, 4));
        let (window, _) = sieved(FLEET, Sieve::Window { from: 1, to: 3 });
        assert_eq!(window.lines().count(), FLEET.lines().count());
        for left_out in ["key: a,", "{key: \"d\""] {
            assert!(!window.contains(left_out), "{left_out}: {window}");
        }
        // In the window, not of the simple form, or after the block: kept.
        for kept in [
            "{key: b,",
            "  - key: c\n    external_user_id: u\n",
            "{key: e, external_user_id: u} # note",
            "{from: x, to: a}",
        ] {
            assert!(window.contains(kept), "{kept}: {window}");
        }
    }

    #[test]
    fn an_entry_not_ended_cleanly_is_never_blanked() {
        for text in [
            "version: 1\ncards:\n  - {key: a, external_user_id: u}\n    - {key: b, external_user_id: u}\n",
            "version: 1\ncards:\n  - key: a\n    external_user_id: u\n   odd: line\n",
            "version: 1\ncards:\n  - key: a\n    external_user_id: u\n - key: b\n",
        ] {
            let (none, cards) = sieved(text, Sieve::Window { from: 0, to: 0 });
            assert_eq!((none.as_str(), cards), (text, 0));
        }
    }

    #[test]
    fn a_csv_row_is_left_out_only_when_no_quote_touches_it() {
        let text = "\u{feff}external_user_id,key,product_code\r\nu,a,P\r\nu,\"b\",P\r\nu,c,\"two\nlines\"\nu,d,P\n\nu,e,P\n";
        let (none, rows) = sieved_as("f.csv", text, Sieve::Window { from: 0, to: 0 });
        assert_eq!(rows, 3, "a, d and e");
        assert_eq!(none.lines().count(), text.lines().count());
        for kept in ["external_user_id,key", "\"b\"", "u,c,\"two", "lines\""] {
            assert!(none.contains(kept), "{kept}: {none:?}");
        }
        for left_out in ["u,a,P", "u,d,P", "u,e,P"] {
            assert!(!none.contains(left_out), "{left_out}: {none:?}");
        }
        // A file without a key column (people) is kept whole.
        let people = "external_user_id,first_name\nu1,Ann\n";
        assert_eq!(
            sieved_as("p.csv", people, Sieve::Window { from: 0, to: 0 }).0,
            people
        );
    }
}
