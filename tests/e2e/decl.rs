//! Declarations end to end: fixture files under `tests/fixtures/decl/` loaded through
//! `cardform::decl::load`, their diagnostics rendered colourless and snapshotted. Paths are given
//! relative to the package root (where `cargo test` runs), so snapshots are the same anywhere.

use cardform::decl::{self, ProblemKind};
use cardform::render::diagnostics::render_report;
use std::path::PathBuf;

const DIR: &str = "tests/fixtures/decl";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!("{DIR}/{name}"))
}

/// Loads the given fixtures, which must be invalid, and renders the report as CI would see it.
fn rendered(names: &[&str]) -> String {
    let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    match decl::load(&paths) {
        Ok(d) => panic!(
            "{names:?} should be invalid, loaded {} cards",
            d.cards.len()
        ),
        Err(report) => render_report(&report, false, 100),
    }
}

fn kinds(names: &[&str]) -> Vec<ProblemKind> {
    let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    match decl::load(&paths) {
        Ok(_) => Vec::new(),
        Err(report) => report.problems().iter().map(|p| p.kind()).collect(),
    }
}

macro_rules! bad_input {
    ($name:ident, $($file:expr),+) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(stringify!($name), rendered(&[$($file),+]));
        }
    };
}

bad_input!(syntax_error, "syntax_error.yaml");
bad_input!(unknown_field, "unknown_field.yaml");
bad_input!(missing_fields, "missing_fields.yaml");
bad_input!(duplicate_key, "duplicate_key.yaml");
bad_input!(invalid_key, "invalid_key.yaml");
bad_input!(bad_decimals, "bad_decimals.yaml");
bad_input!(unknown_status, "unknown_status.yaml");
bad_input!(wrong_types, "wrong_types.yaml");
bad_input!(cards_not_a_list, "cards_not_a_list.yaml");
bad_input!(empty_values, "empty_values.yaml");
bad_input!(missing_version, "missing_version.yaml");
bad_input!(unsupported_version, "unsupported_version.yaml");
bad_input!(defaults_key, "defaults_key.yaml");
bad_input!(bad_header, "bad_header.csv");
bad_input!(missing_key_column, "missing_key_column.csv");
bad_input!(ragged_rows, "ragged_rows.csv");
bad_input!(bad_cells, "bad_cells.csv");
bad_input!(csv_syntax, "csv_syntax.csv");
bad_input!(missing_path, "does-not-exist.yaml", "valid.yaml");
bad_input!(multi_file, "multi");

#[test]
fn valid_fixtures_load() {
    let d = decl::load(&[fixture("valid.yaml"), fixture("valid.csv")]).unwrap();
    let keys: Vec<_> = d.cards.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["alice-travel", "bob-ops", "carol/1", "dave.2"]);
    let alice = &d.cards[0];
    assert_eq!(
        alice.initial_topup.map(|t| t.to_string()).as_deref(),
        Some("50.10")
    );
    assert_eq!(
        alice.labels.get("cost_center").map(String::as_str),
        Some("cc-100")
    );
    assert_eq!(&*alice.origin.file, "tests/fixtures/decl/valid.yaml");
    assert_eq!(alice.origin.line, 6);
    assert_eq!(
        d.files,
        [
            "tests/fixtures/decl/valid.yaml",
            "tests/fixtures/decl/valid.csv"
        ]
    );
}

#[test]
fn multi_file_reports_both_files_and_the_duplicate() {
    let k = kinds(&["multi"]);
    assert_eq!(
        k,
        [
            ProblemKind::UnknownStatus,
            ProblemKind::DuplicateKey,
            ProblemKind::TooManyDecimals
        ]
    );
    let text = rendered(&["multi"]);
    // Both places of the duplicate are named.
    assert!(
        text.contains("tests/fixtures/decl/multi/a.yaml:5:10"),
        "{text}"
    );
    assert!(
        text.contains("[tests/fixtures/decl/multi/b.csv:3:1]"),
        "{text}"
    );
}

#[test]
fn colour_only_when_asked() {
    let paths = [fixture("unknown_field.yaml")];
    let Err(report) = decl::load(&paths) else {
        panic!("should be invalid")
    };
    assert!(render_report(&report, true, 100).contains('\u{1b}'));
    assert!(!render_report(&report, false, 100).contains('\u{1b}'));
}

/// 100,000 cards in one YAML file and in one CSV file. Kept as the speed check: run it with
/// `cargo test --release --test e2e decl::large -- --ignored --nocapture`, where each load must
/// take well under a second (a debug build only checks that it works).
#[test]
#[ignore = "speed check; run in release"]
fn large_declarations_load_fast() {
    const N: usize = 100_000;
    let mut yaml = String::from("version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n");
    let mut csv =
        String::from("key,external_user_id,product_code,initial_topup,status,label.team\n");
    for i in 0..N {
        yaml.push_str(&format!(
            "  - key: card-{i:06}\n    external_user_id: u-{i}\n    initial_topup: 50.10\n    status: active\n    labels: {{team: t{}, cost_center: cc-{}}}\n",
            i % 7,
            i % 50
        ));
        csv.push_str(&format!(
            "card-{i:06},u-{i},VISA_USD_STD,50.10,active,t{}\n",
            i % 7
        ));
    }
    for (name, text) in [("big.yaml", yaml), ("big.csv", csv)] {
        let bytes = text.len();
        let start = std::time::Instant::now();
        let d = match decl::load_sources(vec![(name.to_owned(), text)]) {
            Ok(d) => d,
            Err(r) => panic!("{}", render_report(&r, false, 100)),
        };
        let took = start.elapsed();
        println!(
            "{name}: {N} cards, {} MB, loaded in {took:?}",
            bytes / 1_000_000
        );
        assert_eq!(d.cards.len(), N);
        if !cfg!(debug_assertions) {
            assert!(took.as_millis() < 1000, "{name} took {took:?}");
        }
    }
}

/// `cardform validate` (the real binary) over a people CSV and a cards YAML, in a scratch folder.
fn validate(files: &[(&str, &str)], extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["validate"];
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
        args.extend(["-f", name]);
    }
    args.extend(extra);
    assert_cmd::Command::cargo_bin("cardform")
        .unwrap()
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .args(&args)
        .output()
        .unwrap()
}

const PEOPLE_HEADER: &str = "external_user_id,first_name,last_name,birth_date,email,phone_number_full,country_iso,label.team\n";
const ONBOARDING_CARDS: &str = "version: 1
cards:
  - {key: ada-travel, external_user_id: u-1001, product_code: VISA_USD_STD}
  - {key: old-hand, external_user_id: u-0001, product_code: VISA_USD_STD}
";

#[test]
fn validate_takes_people_beside_cards() {
    let people = format!(
        "{PEOPLE_HEADER}u-1001,Ada,Lovelace,1990-04-27,ada@example.com,+44 20 7946 0000,gb,eng\n"
    );
    let out = validate(
        &[("people.csv", &people), ("cards.yaml", ONBOARDING_CARDS)],
        &[],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("2 cards and 1 cardholder declared in 2 files"),
        "{text}"
    );
}

#[test]
fn validate_names_the_place_of_each_bad_kyc_field_and_never_its_value() {
    // Row 2: every field wrong in its own way; row 3: a person born after today (any today).
    let people = format!(
        "{PEOPLE_HEADER}\
         u-1001,Augusta,Byron-King,1815-12-32,augusta.byron@@example.com,020 7946 0000,ZZ,eng\n\
         u-1002,Charles,Babbage,2999-01-01,charles@example.com,+44 20 7946 0001,GB,\n\
         u-1003,,Menabrea,1909-09-04,luigi@example.it,+39 011 000 0000,it,\n"
    );
    let files = [
        ("people.csv", people.as_str()),
        ("cards.yaml", ONBOARDING_CARDS),
    ];
    let out = validate(&files, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    for (place, code) in [
        ("[people.csv:2:27]", "invalid_date"),
        ("[people.csv:2:38]", "invalid_email"),
        ("[people.csv:2:65]", "invalid_phone"),
        ("[people.csv:2:79]", "unknown_country"),
        ("[people.csv:3:24]", "future_date"),
        ("[people.csv:4:8]", "empty_value"),
    ] {
        assert!(err.contains(place), "{place} missing:\n{err}");
        assert!(
            err.contains(&format!("cardform::spec::{code}")),
            "{code}:\n{err}"
        );
    }
    assert!(err.contains("unknown country code `ZZ`"), "{err}");
    assert!(
        // Two files were read: "(1 file)" would read as if only one was (issue 29).
        err.contains("6 problems in the declarations (1 of 2 files)"),
        "{err}"
    );
    let json = validate(&files, &["--json"]);
    let json = String::from_utf8_lossy(&json.stdout).into_owned();
    assert!(
        json.contains("\"line\": 3") && json.contains("\"column\": 24"),
        "{json}"
    );
    for secret in [
        "Augusta",
        "Byron",
        "1815",
        "augusta.byron",
        "7946",
        "Charles",
        "Babbage",
        "2999",
        "charles@",
        "Menabrea",
        "1809",
        "luigi",
        "011 000",
    ] {
        assert!(!err.contains(secret), "{secret} shown:\n{err}");
        assert!(!json.contains(secret), "{secret} in --json:\n{json}");
    }
}

#[test]
fn validate_finds_a_person_declared_twice_across_files() {
    let people = format!(
        "{PEOPLE_HEADER}u-1001,Ada,Lovelace,1990-04-27,ada@example.com,+442079460000,GB,\n"
    );
    let yaml = "version: 1
cardholders:
  - external_user_id: u-1001
    first_name: Ada
    last_name: King
    birth_date: 1990-04-27
    email: ada.king@example.com
    phone_number_full: \"+44 20 7946 0000\"
    country_iso: GB
";
    let out = validate(
        &[
            ("people.csv", &people),
            ("more-people.yaml", yaml),
            ("cards.yaml", ONBOARDING_CARDS),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("duplicate cardholder `u-1001`"), "{err}");
    assert!(err.contains("[more-people.yaml:3:23]"), "{err}");
    assert!(err.contains("[people.csv:2:1]"), "{err}");
    for secret in ["Ada", "Lovelace", "King", "1990", "example.com", "7946"] {
        assert!(!err.contains(secret), "{secret} shown:\n{err}");
    }
}
