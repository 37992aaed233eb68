//! The grammar against the parser, node by node: whatever it accepts, the parser reads alike.

use super::super::events::Events;
use super::*;
use saphyr_parser::Event;

/// The items of the first `cards` list as the parser builds them.
fn parsed(text: &str) -> Vec<String> {
    try_parsed(text, false).unwrap()
}

/// [`parsed`], `None` when the parser finds the text broken; with `shape`, mappings without
/// their spans (see [`shape`]).
fn try_parsed(text: &str, shape_only: bool) -> Option<Vec<String>> {
    let mut ev = Events::new(text);
    let mut out = Vec::new();
    while let Some((e, _)) = ev.next().ok()? {
        if matches!(e, Event::SequenceStart(..)) {
            while !matches!(ev.peek().ok()?, Some(Event::SequenceEnd) | None) {
                let node = ev.node().ok()?;
                out.push(match shape_only {
                    true => shape(&node),
                    false => format!("{node:?}"),
                });
            }
            // Whatever follows must parse too.
            while ev.next().ok()?.is_some() {}
            break;
        }
    }
    Some(out)
}

/// A node with its scalars' positions but not its mappings' (see `span_of`).
fn shape(node: &Node<'_>) -> String {
    match node {
        Node::Scalar { value, style, loc } => format!("{value:?} {style:?} {loc:?}"),
        Node::Map { entries, .. } => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", shape(k), shape(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Node::Seq { items, .. } => {
            let inner: Vec<String> = items.iter().map(shape).collect();
            format!("[{}]", inner.join(", "))
        }
        Node::Alias { loc } => format!("*{loc:?}"),
    }
}

fn fast_with(text: &str, show: impl Fn(&Node<'_>) -> String) -> Option<Vec<String>> {
    let block = block(text)?;
    Entries::new(lines(text, &block))
        .map(|node| node.map(|n| show(&n)))
        .collect()
}

fn fast(text: &str) -> Option<Vec<String>> {
    fast_with(text, |n| format!("{n:?}"))
}

fn fast_shape(text: &str) -> Option<Vec<String>> {
    fast_with(text, shape)
}

/// Lines made of random pieces: whatever the fast path accepts, the parser reads alike.
#[test]
fn agrees_with_the_parser_on_random_lines() {
    const PIECES: &[&str] = &[
        "{", "}", ",", ":", ": ", " ", "  ", "a", "k1", "-", "- ", "-x", ".", "_", "@", "/", "+",
        "x y", "{a: b}", "labels: ", "#", " #", "'", "\"", "null", "?", "[", "]", "&", "*", "\n",
        "\n    ", "\n      ", "\n  - ", "key: ", "'q'", "\"q\"",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let (mut flow, mut blocky) = (0, 0);
    for _ in 0..40_000 {
        let block_style = next(2) == 0;
        let mut line = String::from(if block_style { "  - key: " } else { "  - {" });
        for _ in 0..next(12) {
            line.push_str(PIECES[next(PIECES.len())]);
        }
        if !block_style && next(2) == 0 {
            line.push('}');
        }
        let text = format!("version: 1\ncards:\n{line}\n");
        if block_style {
            if let Some(fast) = fast_shape(&text) {
                blocky += 1;
                assert_eq!(Some(fast), try_parsed(&text, true), "{line}");
            }
        } else if let Some(fast) = fast(&text) {
            flow += 1;
            assert_eq!(Some(fast), try_parsed(&text, false), "{line}");
        }
    }
    assert!(flow > 500, "only {flow} flow lines accepted");
    assert!(blocky > 500, "only {blocky} block entries accepted");
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
        "  - {key: a, initial_topup: \"5.00\", status: 'frozen'}\n",
        "  - {key: a}\n  # a comment\n\n  - {key: b}\n",
    ] {
        let text = format!("version: 1\ncards:\n{cards}");
        assert_eq!(fast(&text), Some(parsed(&text)), "{text}");
    }
}

#[test]
fn gives_the_block_nodes_the_parser_gives() {
    for cards in [
        "  - key: a\n    external_user_id: u\n    labels: {team: x}\n",
        "  - key: a        # the key\n    external_user_id: u  # who\n    initial_topup: \"50.00\"\n",
        "- key: a\n  labels:\n    team: x\n    cc: 'y z'\n  status: frozen\n- key: b\n",
        "  -   key: a\n      labels:\n\n      # note\n          team: x\n      product_code:\n",
        "  - labels:\n      team: x\n    key: a\n  - key : b\n    initial_topup: 1e3\n",
        "  - key: a\n    labels: {}\n    status: null\n  - {key: b}\n",
        "  - key: a\n    labels:   # later\n      t: x\n# between\n  - key: b\n",
    ] {
        let text = format!("version: 1\ncards:\n{cards}");
        assert_eq!(fast_shape(&text), try_parsed(&text, true), "{text}");
        assert!(fast_shape(&text).is_some(), "{text}");
    }
}

#[test]
fn leaves_anything_else_to_the_parser() {
    for cards in [
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
        "\t- {key: a}\n",
        "  - {key: \"a\\\"\"}\n",
        "  - key: a\n     external_user_id: u\n",
        "  - key: a\n    external_user_id: u\n      more\n",
        "  - key: a\n    labels:\n      t: x\n     u: y\n",
        "  - key: a\n    labels:\n      t: x\n        u: y\n",
        "  - key: a\n    labels: null\n      t: x\n",
        "  - key: a\n    topups:\n      - {id: x, amount: 1}\n",
        "  - key: a\n    topups:\n    - {id: x, amount: 1}\n",
        "  - key: a\n    note: |\n      text\n",
        "  - key: a\n    note: 'it''s'\n",
        "  - key: a\n    note: \"two\n      lines\"\n",
        "  - key: a\n    'quoted': b\n",
        "  - key: a\n    x: !tag b\n",
        "  - key: a\n    x: *alias\n",
        "  - key: a\n    x: b#c\n",
        "  - key: a\n    x: {t: x}, y\n",
        "  - key: a\n  b\n",
        "  - key: a\n    labels:\n      - x\n",
        "  - {key: a}\n    external_user_id: u\n",
        "  - key: a\n   - key: b\n",
        "  - key: a\n\tlabels: {}\n",
    ] {
        let text = format!("version: 1\ncards:\n{cards}");
        assert_eq!(fast(&text), None, "{text}");
    }
}
