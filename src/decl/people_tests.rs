//! Tests of declared people across the loader: YAML and CSV, every rule with its place, "today",
//! duplicates across files, fingerprints, and that no personal value reaches a message or a
//! rendered diagnostic.

use super::*;

fn src(name: &str, text: &str) -> (String, String) {
    (name.to_owned(), text.to_owned())
}

fn today() -> Date {
    Date::new(2026, 11, 30).unwrap()
}

fn load(files: &[(&str, &str)]) -> Result<Declarations, DeclReport> {
    load_sources_as_of(files.iter().map(|(n, t)| src(n, t)).collect(), today())
}

fn problems(files: &[(&str, &str)]) -> Vec<(String, usize, usize, ProblemKind)> {
    match load(files) {
        Ok(_) => panic!("{files:?} should be invalid"),
        Err(r) => r
            .problems()
            .iter()
            .map(|p| (p.file().to_owned(), p.line(), p.column(), p.kind()))
            .collect(),
    }
}

const PEOPLE_YAML: &str = "version: 1
cardholders:
  - external_user_id: u-2
    first_name: Bob
    last_name: Jones
    birth_date: 1985-12-01
    email: bob@example.org
    phone_number_full: \"+44 20 7946 0000\"
    country_iso: gb
  - external_user_id: u-1
    first_name: Alice
    last_name: Smith
    birth_date: \"1990-04-27\"
    email: alice.smith@example.com
    phone_number_full: \"+1 (555) 010-0200\"
    country_iso: US
    labels: {team: travel}
";

const PEOPLE_CSV: &str = "external_user_id,first_name,last_name,birth_date,email,phone_number_full,country_iso,label.team
u-1,Alice,Smith,1990-04-27,alice.smith@example.com,+1 (555) 010-0200,US,travel
u-2,Bob,Jones,1985-12-01,bob@example.org,+44 20 7946 0000,gb,
";

const CARDS: &str = "version: 1
cards:
  - {key: alice, external_user_id: u-1, product_code: P}
  - {key: carol, external_user_id: u-3, product_code: P}
";

#[test]
fn yaml_cardholders_are_read_checked_and_sorted() {
    let d = load(&[("p.yaml", PEOPLE_YAML)]).unwrap();
    let ids: Vec<_> = d
        .cardholders
        .iter()
        .map(|c| c.external_user_id.as_str())
        .collect();
    assert_eq!(ids, ["u-1", "u-2"]);
    let alice = &d.cardholders[0];
    assert_eq!(alice.kyc.first_name, "Alice");
    assert_eq!(alice.kyc.birth_date, "1990-04-27");
    assert_eq!(alice.kyc.phone_number_full, "+15550100200");
    assert_eq!(alice.kyc.country_iso, "US");
    assert_eq!(alice.kyc.initials(), "A. S., US");
    assert_eq!(alice.labels["team"], "travel");
    assert_eq!(
        alice.origin,
        Origin {
            file: "p.yaml".into(),
            line: 10
        }
    );
    assert_eq!(d.cardholders[1].kyc.country_iso, "GB");
    assert_eq!(d.cardholders[1].kyc.phone_number_full, "+442079460000");
    assert!(d.cards.is_empty());
}

#[test]
fn csv_people_files_read_the_same_as_yaml() {
    let csv = load(&[("p.csv", PEOPLE_CSV)]).unwrap();
    let yaml = load(&[("p.yaml", PEOPLE_YAML)]).unwrap();
    assert_eq!(csv.cardholders.len(), 2);
    assert_eq!(
        csv.cardholders[0].origin,
        Origin {
            file: "p.csv".into(),
            line: 2
        }
    );
    for (c, y) in csv.cardholders.iter().zip(&yaml.cardholders) {
        assert_eq!(c.external_user_id, y.external_user_id);
        assert!(c.kyc == y.kyc, "{c:?} vs {y:?}");
        assert_eq!(c.labels, y.labels);
    }
    assert_eq!(csv.fingerprint, yaml.fingerprint);
}

#[test]
fn cardholders_sit_beside_cards_and_a_card_needs_no_declared_cardholder() {
    let d = load(&[("p.csv", PEOPLE_CSV), ("c.yaml", CARDS)]).unwrap();
    assert_eq!(d.cards.len(), 2);
    assert_eq!(d.cardholders.len(), 2);
    // `carol` is for u-3, declared nowhere: fine, the person may exist at the provider.
    assert_eq!(d.cards[1].external_user_id, "u-3");
    // Both in one YAML file, too.
    let both = format!(
        "{PEOPLE_YAML}cards:\n  - {{key: alice, external_user_id: u-1, product_code: P}}\n"
    );
    let d = load(&[("both.yaml", &both)]).unwrap();
    assert_eq!((d.cards.len(), d.cardholders.len()), (1, 2));
}

#[test]
fn every_yaml_problem_at_once_with_its_place() {
    let text = "version: 1
cardholders:
  - external_user_id: u-1
    first_name: Alice
    last_nmae: Smith
    birth_date: 1990-02-30
    email: alice@@example.com
    phone_number_full: 555-0100
    country_iso: XX
  - external_user_id: u-2
    first_name: \"\"
    birth_date: 27.04.1990
  - {first_name: Carol}
  - [u-4]
";
    let got = problems(&[("p.yaml", text)]);
    let f = |l, c, k| ("p.yaml".to_owned(), l, c, k);
    assert_eq!(
        got,
        [
            f(5, 5, ProblemKind::UnknownField),
            f(6, 17, ProblemKind::InvalidDate),
            f(7, 12, ProblemKind::InvalidEmail),
            f(8, 24, ProblemKind::InvalidPhone),
            f(9, 18, ProblemKind::UnknownCountry),
            f(10, 5, ProblemKind::MissingField),
            f(11, 17, ProblemKind::EmptyValue),
            f(12, 17, ProblemKind::InvalidDate),
            f(13, 5, ProblemKind::MissingField),
            f(14, 5, ProblemKind::WrongType),
        ]
    );
    let r = load(&[("p.yaml", text)]).unwrap_err();
    let p = &r.problems();
    // The misspelt `last_name` is reported once, with its did-you-mean, not as missing too.
    assert_eq!(p[0].help_text(), Some("did you mean `last_name`?"));
    assert_eq!(
        p[5].message(),
        "cardholder `u-2` is missing `last_name`, `email`, `phone_number_full`, `country_iso`"
    );
    assert_eq!(
        p[8].message(),
        "cardholder is missing `external_user_id`, `last_name`, `birth_date`, `email`, `phone_number_full`, `country_iso`"
    );
}

#[test]
fn every_csv_problem_at_once_with_its_place() {
    let text =
        "external_user_id,first_name,last_name,birth_date,email,phone_number_full,country_iso
u-1,Alice,,2026-02-29,alice.example.com,+1 555 0100 200 300 400,usa
u-2,Bob,Jones,1985-12-01,bob@example.org,+442079460000
u-3, Carol,Doe,1985-12-01,carol@example.org,+442079460000,DE
";
    let got = problems(&[("p.csv", text)]);
    let f = |l, c, k| ("p.csv".to_owned(), l, c, k);
    assert_eq!(
        got,
        [
            f(2, 11, ProblemKind::EmptyValue),
            f(2, 12, ProblemKind::InvalidDate),
            f(2, 23, ProblemKind::InvalidEmail),
            f(2, 41, ProblemKind::InvalidPhone),
            f(2, 65, ProblemKind::UnknownCountry),
            f(3, 1, ProblemKind::RaggedRow),
            f(4, 5, ProblemKind::Whitespace),
        ]
    );
}

#[test]
fn csv_people_headers() {
    let got = problems(&[(
        "p.csv",
        "external_user_id,first_name,lastname,email,phone_number_full,country_iso,notes\nu-1,A,S,a@b.co,+12345678,US,x\n",
    )]);
    assert_eq!(
        got,
        [
            ("p.csv".to_owned(), 1, 1, ProblemKind::MissingColumn),
            ("p.csv".to_owned(), 1, 29, ProblemKind::UnknownColumn),
            ("p.csv".to_owned(), 1, 74, ProblemKind::UnknownColumn),
        ]
    );
    let r = load(&[(
        "p.csv",
        "external_user_id,first_name,lastname,email,phone_number_full,country_iso,notes\n",
    )])
    .unwrap_err();
    let m: Vec<_> = r
        .problems()
        .iter()
        .map(|p| p.message().to_owned())
        .collect();
    // `lastname` is taken for `last_name`: only `birth_date` is missing.
    assert_eq!(m[0], "missing column `birth_date` in a people file");
    assert_eq!(
        r.problems()[1].help_text(),
        Some("did you mean `last_name`?")
    );
    // A card CSV is still a card CSV: with `key`, it is read as cards.
    let d = load(&[("c.csv", "key,external_user_id,product_code\nk,u-1,P\n")]).unwrap();
    assert_eq!((d.cards.len(), d.cardholders.len()), (1, 0));
}

#[test]
fn birth_dates_after_today_are_refused_and_today_is_fine() {
    let person = |date: &str| {
        format!(
            "external_user_id,first_name,last_name,birth_date,email,phone_number_full,country_iso\nu-1,A,S,{date},a@b.co,+12345678,US\n"
        )
    };
    assert!(load(&[("p.csv", &person("2026-11-30"))]).is_ok());
    assert_eq!(
        problems(&[("p.csv", &person("2026-12-01"))]),
        [("p.csv".to_owned(), 2, 9, ProblemKind::FutureDate)]
    );
    // "today" is what the caller says it is.
    let later = Date::new(2026, 12, 1).unwrap();
    assert!(load_sources_as_of(vec![src("p.csv", &person("2026-12-01"))], later).is_ok());
}

#[test]
fn duplicate_people_across_files_name_both_places() {
    let again = "version: 1\ncardholders:\n  - {external_user_id: u-2, first_name: B, last_name: J, birth_date: 1985-12-01, email: b@x.org, phone_number_full: \"+12345678\", country_iso: GB}\n";
    let r = load(&[("p.csv", PEOPLE_CSV), ("q.yaml", again)]).unwrap_err();
    assert_eq!(r.len(), 1);
    let p = &r.problems()[0];
    assert_eq!(p.kind(), ProblemKind::DuplicateKey);
    assert_eq!((p.file(), p.line(), p.column()), ("q.yaml", 3, 24));
    assert_eq!(p.message(), "duplicate cardholder `u-2`");
    assert!(
        p.help_text().unwrap().contains("p.csv:3:1"),
        "{:?}",
        p.help_text()
    );
    let first = &p.related_problems()[0];
    assert_eq!(
        (first.file(), first.line(), first.column()),
        ("p.csv", 3, 1)
    );
    assert!(p.is_personal() && first.is_personal());
    // Within one file, too.
    let twice = format!(
        "{PEOPLE_CSV}u-1,Alice,Smith,1990-04-27,alice.smith@example.com,+15550100200,US,\n"
    );
    assert_eq!(
        problems(&[("p.csv", &twice)]),
        [("p.csv".to_owned(), 4, 1, ProblemKind::DuplicateKey)]
    );
}

#[test]
fn fingerprints_without_people_are_unchanged_and_with_people_follow_every_field() {
    // The fingerprint of these cards before cardholders existed (main at d4ffa49; checked
    // against an independent reimplementation of that algorithm).
    let cards = load(&[("c.yaml", CARDS)]).unwrap();
    assert_eq!(cards.fingerprint, CARDS_FINGERPRINT);
    let base = load(&[("p.csv", PEOPLE_CSV), ("c.yaml", CARDS)]).unwrap();
    assert_ne!(base.fingerprint, cards.fingerprint);
    assert_eq!(
        cards.fingerprint_keyed(KEY),
        cards.fingerprint,
        "no people, no key"
    );
    let keyed = base.fingerprint_keyed(KEY);
    assert_ne!(keyed, base.fingerprint);
    assert_ne!(keyed, base.fingerprint_keyed(b"another key"));
    // Personal values count only under the key; the rest counts either way.
    for (from, to, personal) in [
        ("Alice", "Alicia", true),
        ("Smith", "Smyth", true),
        ("1990-04-27", "1990-04-28", true),
        ("alice.smith@", "alice.smyth@", true),
        ("010-0200", "010-0201", true),
        (",US,", ",CA,", false),
        ("travel", "ops", false),
        ("label.team", "label.group", false),
        ("u-1,", "u-9,", false),
    ] {
        let changed = PEOPLE_CSV.replace(from, to);
        let d = load(&[("p.csv", &changed), ("c.yaml", CARDS)]).unwrap();
        assert_ne!(d.fingerprint_keyed(KEY), keyed, "{from} -> {to}");
        assert_eq!(
            d.fingerprint == base.fingerprint,
            personal,
            "{from} -> {to}: unkeyed"
        );
    }
    // Layout is not content: the same people written differently agree.
    let relaid = PEOPLE_CSV
        .replace("+1 (555) 010-0200", "+1-555-010-0200")
        .replace(",gb,", ",GB,");
    let d = load(&[("c.yaml", CARDS), ("z.csv", &relaid)]).unwrap();
    assert_eq!(d.fingerprint, base.fingerprint);
    assert_eq!(d.fingerprint_keyed(KEY), keyed);
}

const KEY: &[u8] = b"a journal key";

const CARDS_FINGERPRINT: &str =
    "sha256:7c32570e10a4d243f0c33cf095b5339ae88c4491d338f10a7db66b0a88f3acb8";

const SECRETS: &[&str] = &[
    "Alice",
    "Smith",
    "1990-04-27",
    "alice.smith",
    "example.com",
    "555",
    "0200",
];

#[test]
fn no_personal_value_in_messages_renderings_or_debug() {
    let bad = PEOPLE_CSV
        .replace("alice.smith@example.com", "alice.smith@example")
        .replace("Smith,1990-04-27", "Smith,1990-04-27,extra");
    let r = load(&[("people.csv", &bad)]).unwrap_err();
    let rendered = crate::render::diagnostics::render_report(&r, false, 100);
    let json = crate::render::diagnostics::result_json(&Err(r));
    let bad_email = PEOPLE_CSV.replace("alice.smith@example.com", "alice.smith@example");
    let r = load(&[("people.csv", &bad_email)]).unwrap_err();
    let one = crate::render::diagnostics::render_report(&r, false, 100);
    assert!(one.contains("[people.csv:2:28]"), "{one}");
    assert!(one.contains("invalid_email"), "{one}");
    assert!(one.contains("line not shown"), "{one}");
    let debug = format!("{r:?}");
    let ok = load(&[("people.csv", PEOPLE_CSV)]).unwrap();
    let debug_ok = format!("{ok:?}");
    assert!(debug_ok.contains("u-1 (A. S., US)"), "{debug_ok}");
    for text in [&rendered, &json, &one, &debug, &debug_ok] {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in:\n{text}");
        }
    }
}

#[test]
fn problems_in_a_yaml_file_with_people_show_no_snippet() {
    let text = PEOPLE_YAML.replace("email: bob@example.org", "email: bob.jones");
    let r = load(&[("p.yaml", &text)]).unwrap_err();
    let out = crate::render::diagnostics::render_report(&r, false, 100);
    assert!(out.contains("[p.yaml:7:12]"), "{out}");
    for secret in ["Bob", "Jones", "bob.jones", "1985", "7946"] {
        assert!(!out.contains(secret), "{secret} in:\n{out}");
    }
    // A card problem in a file without people keeps its snippet.
    let r = load(&[(
        "c.yaml",
        "version: 1\ncards:\n  - {key: a, product_code: P}\n",
    )])
    .unwrap_err();
    let out = crate::render::diagnostics::render_report(&r, false, 100);
    assert!(out.contains("{key: a, product_code: P}"), "{out}");
    assert!(!r.problems()[0].is_personal());
}

#[test]
fn the_personal_fields_are_the_ones_the_journal_keeps_as_digests() {
    let kyc = load(&[("p.csv", PEOPLE_CSV)]).unwrap().cardholders[0]
        .kyc
        .clone();
    // Every declared field but the country is personal, and every personal field is declared:
    // a field renamed on one side only would leave its value undigested.
    let personal: Vec<&str> = kyc
        .fields()
        .into_iter()
        .map(|(name, _)| name)
        .filter(|name| super::people::is_personal(name))
        .collect();
    assert_eq!(personal, crate::model::PERSONAL_FIELDS);
    assert_eq!(
        crate::exec::mutation::CARDHOLDER_PERSONAL_FIELDS,
        crate::model::PERSONAL_FIELDS
    );
    assert!(kyc.fields().iter().any(|(name, _)| *name == "country_iso"));
}
