//! The fast path against the parser, through files on disk: random small fleets in block and
//! flow style with random quirks (comments, quotes, multi-line and block scalars, anchors, odd
//! indentation, tabs, lists, problems of every kind) read with the fast path and with the parser
//! alone give the same declarations or the same problems, at the same places; and read a part
//! at a time through the sieve, the same cards.

use proptest::prelude::*;
use std::fmt::Write as _;

use super::FAST_PATH;
use crate::decl::{self, Part};

const FIELDS: [&str; 8] = [
    "key",
    "external_user_id",
    "product_code",
    "initial_topup",
    "status",
    "labels",
    "colour",
    "topups",
];

/// Values per field; a `\n` starts nested lines (block style only: flow style takes the next).
fn values(field: usize) -> &'static [&'static str] {
    match field {
        // `K` is the card's own key, `k<n>`.
        0 => &["K", "a", "Bad Key", "'q'", "\"d\"", "null", ""],
        1 => &["u1", "u 2", "'x'", "", "\"u3\""],
        2 => &["P", "VISA_USD_STD", "", "'P'"],
        3 => &["\"50.00\"", "5.10", "x", "'7'", "1e3"],
        4 => &["frozen", "active", "gone", "'frozen'"],
        5 => &[
            "\nteam: x\ncc: 'y z'",
            "{team: x}",
            "{}",
            "{Bad: x}",
            "\nteam:",
        ],
        6 => &["red"],
        _ => &["[{id: a, amount: 1}]", "\n- {id: a, amount: 1}"],
    }
}

/// One field of a card: which, which value, which quirk.
type Field = (usize, usize, u8);

/// The value `v` of field `f` (the first, clean one unless `v` picks another), `K` made `key`.
fn value_of(f: usize, v: usize, key: &str) -> String {
    let vals = values(f);
    vals.get(v).unwrap_or(&vals[0]).replace('K', key)
}

fn quirked(value: &str, quirk: u8, deeper: &str) -> String {
    match quirk {
        1 => format!("{value} # note"),
        4 => format!("  {value}"),
        5 => format!("{value}\n{deeper}  more"),
        6 => format!("|\n{deeper}  {value}"),
        7 => format!("&x {value}"),
        8 => format!("{value} "),
        9 => format!("\t{value}"),
        10 => "*x".to_owned(),
        11 => format!("{value}\r"),
        12 => format!("{value}#x"),
        _ => value.to_owned(),
    }
}

fn block_card(out: &mut String, indent: usize, key: &str, fields: &[Field]) {
    let column = " ".repeat(indent + 2);
    for (i, &(f, v, quirk)) in fields.iter().enumerate() {
        let lead = if i == 0 {
            format!("{}- ", " ".repeat(indent))
        } else {
            column.clone()
        };
        match quirk {
            2 => writeln!(out, "{column}# a comment").unwrap(),
            3 => out.push('\n'),
            13 if i > 0 => out.push(' '),
            _ => {}
        }
        let value = value_of(f, v, key);
        let deeper = format!("{column}  ");
        let value = match value.strip_prefix('\n') {
            // Nested lines, under a field with nothing after its colon.
            Some(nested) => nested
                .split('\n')
                .map(|l| format!("\n{deeper}{l}"))
                .collect::<String>(),
            None => format!(" {}", quirked(&value, quirk, &deeper)),
        };
        writeln!(out, "{lead}{}:{value}", FIELDS[f]).unwrap();
    }
}

fn flow_card(out: &mut String, indent: usize, key: &str, fields: &[Field]) {
    let mut parts = Vec::new();
    let mut quirks = 0;
    for &(f, v, quirk) in fields {
        let mut value = value_of(f, v, key);
        if value.starts_with('\n') {
            value = value_of(f, v + 1, key);
        }
        quirks |= 1 << (quirk % 16);
        let value = match quirk {
            4 | 7 | 9 | 12 => quirked(&value, quirk, ""),
            _ => value,
        };
        parts.push(format!("{}: {value}", FIELDS[f]));
    }
    let sep = if quirks & (1 << 5) != 0 {
        ",\n    "
    } else {
        ", "
    };
    let tail = if quirks & (1 << 1) != 0 {
        " # note"
    } else {
        ""
    };
    let space = if quirks & (1 << 8) != 0 { " " } else { "" };
    writeln!(
        out,
        "{}- {{{}}}{space}{tail}",
        " ".repeat(indent),
        parts.join(sep)
    )
    .unwrap();
}

fn fleet(header: u8, indent: usize, cards: &[(bool, Vec<Field>)], moved_after: bool) -> String {
    let mut text = String::new();
    match header {
        0 => text.push_str("version: 1\n"),
        1..=3 => text.push_str("version: 1\ndefaults:\n  product_code: P\n  labels: {d: y}\n"),
        4..=6 => text.push_str("# fleet\nversion: 1\ndefaults: {product_code: P}\n"),
        _ => text.push_str("version: 2\n"),
    }
    text.push_str("cards:\n");
    for (i, (flow, fields)) in cards.iter().enumerate() {
        let key = format!("k{i}");
        match flow {
            true => flow_card(&mut text, indent, &key, fields),
            false => block_card(&mut text, indent, &key, fields),
        }
    }
    if moved_after {
        text.push_str("moved:\n  - {from: old, to: a}\n");
    }
    text
}

/// What a read gives, as text: the cards with their origins, or every problem with its place.
fn outcome(read: Result<decl::Declarations, decl::DeclReport>) -> String {
    match read {
        Ok(d) => format!("{:?}\n{:?}\n{}", d.cards, d.moves, d.fingerprint),
        Err(report) => report
            .problems()
            .iter()
            .map(|p| {
                let help = p.help_text().unwrap_or_default();
                format!("{:?} {}:{} {p} ({help})\n", p.kind(), p.line(), p.column())
            })
            .collect(),
    }
}

fn read(path: &std::path::Path, fast: bool) -> String {
    FAST_PATH.set(fast);
    let got = outcome(decl::load(&[path.to_path_buf()]));
    FAST_PATH.set(true);
    got
}

fn card() -> impl Strategy<Value = (bool, Vec<Field>)> {
    // Mostly clean values and fields, so that many fleets are valid and take the fast path.
    let quirk = (0..200u8).prop_map(|q| q.saturating_sub(186));
    let value = 0..24usize;
    let field = (2..FIELDS.len() + 4, value.clone(), quirk.clone());
    // The unknown field and lists are rarer than the fields a card has.
    let field = field.prop_map(|(f, v, q)| (if f >= FIELDS.len() { f - 6 } else { f }, v, q));
    let key = (Just(0), value.clone(), quirk.clone());
    let user = (Just(1), value, quirk);
    let extra = proptest::collection::vec(field, 0..3);
    (any::<bool>(), key, user, extra, 0..8u8).prop_map(|(flow, key, user, extra, shape)| {
        let mut fields = vec![key, user];
        fields.extend(extra);
        // Now and then the key later, or without one.
        match shape {
            0 => fields.rotate_left(1),
            1 => drop(fields.remove(0)),
            _ => {}
        }
        (flow, fields)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn the_fast_path_reads_what_the_parser_reads(
        header in 0u8..8,
        indent in prop_oneof![Just(0usize), Just(2), Just(4)],
        cards in proptest::collection::vec(card(), 0..7),
        moved_after in proptest::bool::weighted(0.1),
        parts in 2u32..4,
    ) {
        let text = fleet(header, indent, &cards, moved_after);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.yaml");
        std::fs::write(&path, &text).unwrap();
        let fast = read(&path, true);
        prop_assert_eq!(&fast, &read(&path, false), "{}", text);

        // Read a part at a time (the sieve blanks other parts' entries): the same cards.
        if let Ok(whole) = decl::load(std::slice::from_ref(&path)) {
            let mut seen = Vec::new();
            for part in Part::all(parts) {
                let got = decl::load_part(std::slice::from_ref(&path), part).map_err(|e| outcome(Err(e)));
                let got = got.unwrap_or_else(|e| panic!("part {part:?} of\n{text}\n{e}"));
                prop_assert!(got.cards.iter().all(|c| part.holds(&c.key)), "{}", text);
                seen.extend(got.cards);
            }
            seen.sort_by(|a, b| a.key.cmp(&b.key));
            prop_assert_eq!(seen, whole.cards, "{}", text);
            let checked = decl::check_in_windows(std::slice::from_ref(&path), 2).unwrap();
            prop_assert_eq!(checked.cards, whole.declared, "{}", text);
        }
    }
}

/// The generator makes fleets the fast path takes, in both styles (else the test above would
/// prove little).
#[test]
fn generated_fleets_take_the_fast_path() {
    let clean = |flow: bool| {
        (
            flow,
            vec![(0, 0, 0), (1, 0, 0), (5, 0, 0), (3, 0, u8::from(!flow))],
        )
    };
    for flow in [true, false] {
        let text = fleet(1, 2, &[clean(flow), clean(flow)], false);
        assert!(super::entry::block(&text).is_some(), "{text}");
        let block = super::entry::block(&text).unwrap();
        let entries: Option<Vec<_>> =
            super::entry::Entries::new(super::entry::lines(&text, &block)).collect();
        assert_eq!(entries.map(|e| e.len()), Some(2), "{text}");
    }
}
