//! Tests of loading across files: merging, duplicate keys, problem order, fingerprints, and the
//! YAML/CSV equivalence property.

use super::*;
use proptest::prelude::*;

fn src(name: &str, text: &str) -> (String, String) {
    (name.to_owned(), text.to_owned())
}

const A: &str = "version: 1\ndefaults:\n  product_code: P\ncards:\n  - key: b\n    external_user_id: u-b\n  - key: a\n    external_user_id: u-a\n    initial_topup: 50.10\n";
const B: &str = "key,external_user_id,product_code,status,label.team\nc,u-c,Q,frozen,ops\n";

#[test]
fn merges_files_sorted_by_key_with_origins() {
    let d = load_sources(vec![src("a.yaml", A), src("b.csv", B)]).unwrap();
    let keys: Vec<_> = d.cards.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(d.files, ["a.yaml", "b.csv"]);
    assert_eq!(
        d.cards[0].origin,
        Origin {
            file: "a.yaml".into(),
            line: 7
        }
    );
    assert_eq!(
        d.cards[2].origin,
        Origin {
            file: "b.csv".into(),
            line: 2
        }
    );
    assert_eq!(d.cards[2].status, DesiredStatus::Frozen);
    assert!(d.fingerprint.starts_with("sha256:") && d.fingerprint.len() == 7 + 64);
}

#[test]
fn fingerprint_ignores_layout_and_order_but_not_content() {
    let base = load_sources(vec![src("a.yaml", A), src("b.csv", B)]).unwrap();
    let reordered = load_sources(vec![src("z.csv", B), src("y.yaml", A)]).unwrap();
    assert_eq!(base.fingerprint, reordered.fingerprint);
    let relaid = "# comment\nversion: 1\ncards:\n- {key: a, external_user_id: u-a, product_code: P, initial_topup: \"50.1\"}\n- {key: b, external_user_id: u-b, product_code: P}\n";
    let relaid = load_sources(vec![src("x.yaml", relaid), src("b.csv", B)]).unwrap();
    assert_eq!(base.fingerprint, relaid.fingerprint);
    let changed = load_sources(vec![
        src("a.yaml", &A.replace("50.10", "50.11")),
        src("b.csv", B),
    ])
    .unwrap();
    assert_ne!(base.fingerprint, changed.fingerprint);
    let empty = load_sources(vec![]).unwrap();
    assert_ne!(base.fingerprint, empty.fingerprint);
}

#[test]
fn duplicate_keys_across_files_name_both_places() {
    let dup = "key,external_user_id,product_code\nb,u-x,P\n";
    let err = load_sources(vec![src("a.yaml", A), src("d.csv", dup)]).unwrap_err();
    assert_eq!(err.len(), 1);
    let p = &err.problems()[0];
    assert_eq!(p.kind(), ProblemKind::DuplicateKey);
    assert_eq!((p.file(), p.line(), p.column()), ("d.csv", 2, 1));
    assert!(
        p.help_text().unwrap().contains("a.yaml:5:10"),
        "{:?}",
        p.help_text()
    );
    let first = &p.related_problems()[0];
    assert_eq!(
        (first.file(), first.line(), first.column()),
        ("a.yaml", 5, 10)
    );
}

#[test]
fn invalid_cards_still_count_for_duplicates() {
    let one = "version: 1\ncards:\n  - {key: k, external_user_id: u, product_code: P, status: gone}\n  - {key: k, external_user_id: u, product_code: P}\n";
    let err = load_sources(vec![src("a.yaml", one)]).unwrap_err();
    let kinds: Vec<_> = err.problems().iter().map(|p| p.kind()).collect();
    assert_eq!(
        kinds,
        [ProblemKind::UnknownStatus, ProblemKind::DuplicateKey]
    );
}

#[test]
fn problems_come_in_file_order() {
    let bad_yaml = "version: 1\ncards:\n  - {key: a, external_user_id: u, product_code: P}\n  - {key: 'x y', external_user_id: u, product_code: P}\n";
    let bad_csv = "key,external_user_id,product_code\na,u,P\nb,u,P,extra\n";
    let err = load_sources(vec![
        src("1.csv", bad_csv),
        src("2.yaml", bad_yaml),
        src("3.txt", ""),
    ])
    .unwrap_err();
    let got: Vec<_> = err
        .problems()
        .iter()
        .map(|p| (p.file(), p.line(), p.kind()))
        .collect();
    assert_eq!(
        got,
        [
            ("1.csv", 3, ProblemKind::RaggedRow),
            ("2.yaml", 3, ProblemKind::DuplicateKey),
            ("2.yaml", 4, ProblemKind::InvalidKey),
            ("3.txt", 0, ProblemKind::UnsupportedFile),
        ]
    );
    assert_eq!(err.files_with_problems(), 3);
}

#[test]
fn load_reads_directories_sorted_and_reports_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("b.yaml"), A).unwrap();
    std::fs::write(dir.path().join("a.csv"), B).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/x.yaml"), "not: [valid").unwrap();
    let d = load(&[dir.path().to_path_buf()]).unwrap();
    let names: Vec<_> = d
        .files
        .iter()
        .map(|f| {
            Path::new(f)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert_eq!(names, ["a.csv", "b.yaml"]);
    assert_eq!(d.cards.len(), 3);

    // Naming a file again (directly and through its directory) reads it once.
    let again = load(&[dir.path().join("b.yaml"), dir.path().to_path_buf()]).unwrap();
    assert_eq!(again.cards.len(), 3);

    let missing = dir.path().join("nope.yaml");
    let err = load(&[missing.clone(), dir.path().to_path_buf()]).unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(err.problems()[0].kind(), ProblemKind::Unreadable);
    assert!(err.problems()[0].message().contains("no such file"));
    assert_eq!(err.problems()[0].file(), missing.display().to_string());
}

/// A card set as a test input: valid by construction.
fn arb_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]([A-Za-z0-9 ,:#\"'{}\\[\\]-]{0,8}[A-Za-z0-9])?"
}

fn arb_card() -> impl Strategy<Value = DesiredCard> {
    (
        "[A-Za-z0-9._/-]{1,20}",
        arb_text(),
        arb_text(),
        proptest::option::of((1u64..10_000_000, 0u32..=2)),
        any::<bool>(),
        proptest::collection::btree_map("[a-z][a-z_.]{0,6}", arb_text(), 0..3)
            .prop_map(Labels::from),
    )
        .prop_map(
            |(key, external_user_id, product_code, topup, frozen, labels)| DesiredCard {
                key: key.into(),
                external_user_id: external_user_id.into(),
                product_code: product_code.into(),
                initial_topup: topup.map(|(m, s)| Decimal::new(m as i64, s)),
                status: if frozen {
                    DesiredStatus::Frozen
                } else {
                    DesiredStatus::Active
                },
                labels,
                topups: Vec::new(),
                origin: Origin::default(),
            },
        )
}

fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn csv_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn to_yaml(cards: &[DesiredCard]) -> String {
    let mut out = String::from("version: 1\ncards:\n");
    for c in cards {
        out.push_str(&format!("  - key: {}\n", yaml_quote(&c.key)));
        out.push_str(&format!(
            "    external_user_id: {}\n",
            yaml_quote(&c.external_user_id)
        ));
        out.push_str(&format!(
            "    product_code: {}\n",
            yaml_quote(&c.product_code)
        ));
        if let Some(t) = c.initial_topup {
            // Plain, so the YAML number path is exercised too.
            out.push_str(&format!("    initial_topup: {t}\n"));
        }
        out.push_str(&format!("    status: {}\n", c.status.as_str()));
        if !c.labels.is_empty() {
            out.push_str("    labels:\n");
            for (k, v) in &c.labels {
                out.push_str(&format!("      {}: {}\n", yaml_quote(k), yaml_quote(v)));
            }
        }
    }
    out
}

fn to_csv(cards: &[DesiredCard]) -> String {
    let names: std::collections::BTreeSet<&String> =
        cards.iter().flat_map(|c| c.labels.keys()).collect();
    let mut out = String::from("key,external_user_id,product_code,initial_topup,status");
    for n in &names {
        out.push_str(&format!(",label.{n}"));
    }
    out.push('\n');
    for c in cards {
        let mut row = vec![
            csv_quote(&c.key),
            csv_quote(&c.external_user_id),
            csv_quote(&c.product_code),
            c.initial_topup.map(|t| t.to_string()).unwrap_or_default(),
            c.status.as_str().to_owned(),
        ];
        row.extend(
            names
                .iter()
                .map(|n| c.labels.get(n).map(|v| csv_quote(v)).unwrap_or_default()),
        );
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

fn strip(mut cards: Vec<DesiredCard>) -> Vec<DesiredCard> {
    for c in &mut cards {
        c.origin = Origin::default();
    }
    cards
}

proptest! {
    #[test]
    fn yaml_and_csv_load_to_the_same_cards(
        cards in proptest::collection::btree_map("[A-Za-z0-9._/-]{1,20}", arb_card(), 0..12)
    ) {
        let cards: Vec<DesiredCard> = cards
            .into_iter()
            .map(|(key, mut c)| { c.key = key.into(); c })
            .collect();
        let from_yaml = load_sources(vec![("c.yaml".into(), to_yaml(&cards))]);
        let from_csv = load_sources(vec![("c.csv".into(), to_csv(&cards))]);
        let from_yaml = from_yaml.map_err(|e| format!("{:?}", e.problems())).unwrap();
        let from_csv = from_csv.map_err(|e| format!("{:?}", e.problems())).unwrap();
        prop_assert_eq!(&from_yaml.fingerprint, &from_csv.fingerprint);
        prop_assert_eq!(strip(from_yaml.cards), cards.clone());
        prop_assert_eq!(strip(from_csv.cards), cards);
    }
}

proptest! {
    /// Read a part at a time, the declarations are the same cards (top-ups attached), each in
    /// exactly one part, whatever the number of parts and the file kinds.
    #[test]
    fn the_parts_of_the_declarations_are_the_whole(
        cards in proptest::collection::btree_map("[A-Za-z0-9._/-]{1,20}", arb_card(), 0..40),
        count in 1u32..6,
    ) {
        let cards: Vec<DesiredCard> = cards
            .into_iter()
            .map(|(key, mut c)| { c.key = key.into(); c })
            .collect();
        let (first, second) = cards.split_at(cards.len() / 2);
        let mut topups = String::from("key,topup_id,amount\n");
        for c in second.iter().step_by(3) {
            topups.push_str(&format!("{},t1,5\n{},t2,7.5\n", csv_quote(&c.key), csv_quote(&c.key)));
        }
        let files = vec![
            ("a.yaml".to_owned(), to_yaml(first)),
            ("b.csv".to_owned(), to_csv(second)),
            ("t.csv".to_owned(), topups),
        ];
        let today = today_utc();
        let whole = load_sources_as_of(files.clone(), today)
            .map_err(|e| format!("{:?}", e.problems()))
            .unwrap();
        let mut joined = Vec::new();
        for part in Part::all(count) {
            let d = load_sources_part(files.clone(), today, part)
                .map_err(|e| format!("{:?}", e.problems()))
                .unwrap();
            prop_assert!(d.cards.iter().all(|c| part.holds(&c.key)));
            prop_assert!(d.cards.windows(2).all(|w| w[0].key < w[1].key));
            joined.extend(d.cards);
        }
        joined.sort_by(|a, b| a.key.cmp(&b.key));
        prop_assert_eq!(joined, whole.cards);
    }
}

/// `cards` as one-line flow entries (what large fleets are), with every third card written as a
/// block entry instead, which a read of a part keeps whole.
fn to_flow_yaml(cards: &[DesiredCard]) -> String {
    let mut out = String::from("version: 1\ndefaults:\n  product_code: P\ncards:\n");
    for (i, c) in cards.iter().enumerate() {
        let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let labels = match labels.is_empty() {
            true => String::new(),
            false => format!(", labels: {{{}}}", labels.join(", ")),
        };
        if i % 3 == 2 {
            out.push_str(&format!(
                "  - key: {}\n    external_user_id: {}\n",
                c.key, c.external_user_id
            ));
        } else {
            out.push_str(&format!(
                "  - {{key: {}, external_user_id: {}{labels}}}\n",
                c.key, c.external_user_id
            ));
        }
    }
    out
}

/// `cards` as a card CSV without a quote: what a generated fleet is, and what the sieve reads.
fn to_plain_csv(cards: &[DesiredCard]) -> String {
    let mut out = String::from("key,external_user_id,product_code,status,label.team\n");
    for c in cards {
        let team = c.labels.get("team").map(String::as_str).unwrap_or("");
        out.push_str(&format!(
            "{},{},{},{},{team}\n",
            c.key,
            c.external_user_id,
            c.product_code,
            c.status.as_str()
        ));
    }
    out
}

fn fleet(n: usize) -> Vec<DesiredCard> {
    (0..n)
        .map(|i| DesiredCard {
            key: format!("k-{i:03}").into(),
            external_user_id: format!("u{}", i % 7).into(),
            product_code: "P".into(),
            initial_topup: None,
            status: DesiredStatus::Active,
            labels: Labels::from([("team".to_owned(), format!("t{}", i % 3))]),
            topups: Vec::new(),
            origin: Origin::default(),
        })
        .collect()
}

/// Files read a part at a time through the sieve give each part exactly its cards (top-ups
/// attached), at the lines the whole read gives, and a windowed check counts every card and finds
/// a problem in any window: for a YAML fleet and for a card CSV with a top-up CSV.
#[test]
fn a_fleet_file_read_in_parts_and_checked_in_windows_is_the_whole_file() {
    let cards = fleet(40);
    let mut topups = String::from("key,topup_id,amount\n");
    for c in cards.iter().step_by(4) {
        topups.push_str(&format!("{},t1,5\n", c.key));
    }
    let mut yaml = to_flow_yaml(&cards);
    yaml.push_str("moved: []\n");
    let fleets = [
        vec![("fleet.yaml", yaml.clone()), ("topups.csv", topups.clone())],
        vec![("fleet.csv", to_plain_csv(&cards)), ("topups.csv", topups)],
    ];
    for files in fleets {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, text)| {
                let path = dir.path().join(name);
                std::fs::write(&path, text).unwrap();
                path
            })
            .collect();
        let whole = load(&paths).unwrap();
        assert_eq!(whole.cards.len(), 40);
        let mut joined = Vec::new();
        for part in Part::all(3) {
            let d = load_part(&paths, part).unwrap();
            assert!(d.cards.iter().all(|c| part.holds(&c.key)));
            joined.extend(d.cards);
        }
        joined.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(
            joined, whole.cards,
            "{}: origins (lines) and top-ups included",
            files[0].0
        );
        for size in [1, 4, 7, 100] {
            let checked = check_in_windows(&paths, size).unwrap();
            assert_eq!(checked.cards, 40, "{}: window of {size}", files[0].0);
            assert!(!checked.has_moves && !checked.has_people);
        }
        // A bad card in the last window is still found.
        let (name, text) = &files[0];
        let bad = text
            .replace(
                "{key: k-037, external_user_id: u2",
                "{key: k-037, external_user_id: u2, status: melted",
            )
            .replace("k-037,u2,P,active,", "k-037,u2,P,melted,");
        assert_ne!(&bad, text, "{name}");
        std::fs::write(dir.path().join(name), &bad).unwrap();
        let report = check_in_windows(&paths, 4).unwrap_err();
        assert!(
            report
                .problems()
                .iter()
                .any(|p| p.message().contains("melted")),
            "{name}: {:?}",
            report.problems()
        );
    }
}

/// A problem anywhere stops every part: each reads and checks every entry, keeping only its own.
/// A duplicate key is found by the part holding the key.
#[test]
fn every_part_reports_problems_wherever_they_are() {
    let text = "version: 1\ndefaults: {product_code: P}\ncards:\n  - {key: a, external_user_id: u}\n  - {key: b, external_user_id: u, status: melted}\n  - {key: c, external_user_id: u}\n  - {key: c, external_user_id: v}\n";
    let today = today_utc();
    for part in Part::all(3) {
        let report = load_sources_part(vec![src("a.yaml", text)], today, part).unwrap_err();
        let messages: Vec<String> = report
            .problems()
            .iter()
            .map(|p| p.message().to_owned())
            .collect();
        assert!(
            messages.iter().any(|m| m.contains("melted")),
            "{part:?}: {messages:?}"
        );
        assert_eq!(
            messages
                .iter()
                .any(|m| m.contains("duplicate card key `c`")),
            part.holds("c"),
            "{part:?}: {messages:?}"
        );
    }
}

const PEOPLE: &str = "version: 1\ndefaults: {product_code: P}\ncards:\n  - {key: bob-operations, external_user_id: u-b}\n  - {key: carol, external_user_id: u-c}\n";

#[test]
fn moves_are_read_and_change_the_fingerprint() {
    let plain = load_sources(vec![src("a.yaml", PEOPLE)]).unwrap();
    assert!(plain.moves.is_empty());
    let text = format!("{PEOPLE}moved:\n  - {{from: bob-ops, to: bob-operations}}\n");
    let d = load_sources(vec![src("a.yaml", &text)]).unwrap();
    assert_eq!(
        d.moves,
        vec![Move {
            from: "bob-ops".into(),
            to: "bob-operations".into(),
            origin: Origin {
                file: "a.yaml".into(),
                line: 7
            },
        }]
    );
    assert_eq!(d.cards, plain.cards);
    assert_ne!(d.fingerprint, plain.fingerprint, "a move changes the plan");
}

#[test]
fn a_move_that_cannot_apply_is_pointed_at() {
    let cases = [
        ("{from: x, to: x}", 7, "`x` moves to itself"),
        (
            "{from: a, to: nobody}",
            7,
            "`nobody` is not a declared card",
        ),
        (
            "{from: carol, to: bob-operations}",
            7,
            "`carol` is still declared",
        ),
        (
            "{from: bob ops, to: carol}",
            7,
            "invalid card key `bob ops`",
        ),
        ("{from: a}", 7, "a move without `to`"),
        ("{form: a, to: carol}", 7, "unknown field `form` in a move"),
    ];
    for (entry, line, message) in cases {
        let text = format!("{PEOPLE}moved:\n  - {entry}\n");
        let err = load_sources(vec![src("a.yaml", &text)]).unwrap_err();
        let p = &err.problems()[0];
        assert!(p.message().contains(message), "{entry}: {}", p.message());
        assert_eq!((p.file(), p.line()), ("a.yaml", line), "{entry}");
    }
    let unknown = load_sources(vec![src(
        "a.yaml",
        &format!("{PEOPLE}moved:\n  - {{form: a, to: carol}}\n"),
    )])
    .unwrap_err();
    assert_eq!(
        unknown.problems()[0].help_text(),
        Some("did you mean `from`?")
    );
    // Across files: a key moved twice, a chain.
    let other = "version: 1\nmoved:\n  - {from: a, to: carol}\n";
    let text = format!("{PEOPLE}moved:\n  - {{from: a, to: bob-operations}}\n");
    let err = load_sources(vec![src("a.yaml", &text), src("b.yaml", other)]).unwrap_err();
    assert!(err.problems()[0].message().contains("`a` is moved twice"));
    assert_eq!(err.problems()[0].file(), "b.yaml");
    let text = format!("{PEOPLE}moved:\n  - {{from: a, to: b}}\n  - {{from: b, to: carol}}\n");
    let err = load_sources(vec![src("a.yaml", &text)]).unwrap_err();
    assert!(
        err.problems()
            .iter()
            .any(|p| p.message().contains("chained moves")),
        "{:?}",
        err.problems()
            .iter()
            .map(|p| p.message())
            .collect::<Vec<_>>()
    );
}
