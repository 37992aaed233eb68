//! Tests of the YAML reader end to end, through [`read`]: values, positions of problems,
//! versions, syntax errors.

use super::*;
use crate::decl::DesiredStatus;

fn run(text: &str) -> (Vec<DeclProblem>, Vec<Candidate>) {
    let src = Source::new("t.yaml".into(), text.into());
    let mut problems = Vec::new();
    let mut out = Vec::new();
    read(
        &src,
        0,
        &mut problems,
        &mut out,
        &mut Vec::new(),
        &mut Vec::new(),
    );
    (problems, out)
}

fn kinds(text: &str) -> Vec<(ProblemKind, usize, usize)> {
    run(text)
        .0
        .iter()
        .map(|p| (p.kind(), p.line(), p.column()))
        .collect()
}

#[test]
fn reads_a_card_with_defaults() {
    let (problems, out) = run("version: 1\n\
         defaults:\n  product_code: P1\n  labels: {team: a, cc: x}\n  status: frozen\n\
         cards:\n  - key: k1\n    external_user_id: 1001\n    initial_topup: 50.10\n    labels: {team: b}\n");
    assert!(problems.is_empty(), "{problems:?}");
    let card = out[0].card.as_ref().unwrap();
    assert_eq!(card.key, "k1");
    assert_eq!(card.external_user_id, "1001");
    assert_eq!(card.product_code, "P1");
    assert_eq!(card.initial_topup.unwrap().to_string(), "50.10");
    assert_eq!(card.status, DesiredStatus::Frozen);
    assert_eq!(card.labels["team"], "b");
    assert_eq!(card.labels["cc"], "x");
    assert_eq!(card.origin.line, 7);
}

#[test]
fn decimals_keep_their_text() {
    for (yaml, want) in [("0.10", "0.10"), ("\"7.5\"", "7.5"), ("'12'", "12")] {
        let (p, out) = run(&format!(
            "version: 1\ncards:\n  - {{key: a, external_user_id: u, product_code: p, initial_topup: {yaml}}}\n"
        ));
        assert!(p.is_empty(), "{p:?}");
        let got = out[0].card.as_ref().unwrap().initial_topup.unwrap();
        assert_eq!(got.to_string(), want);
    }
}

#[test]
fn empty_files_and_lists_are_fine() {
    for text in [
        "",
        "# nothing\n",
        "version: 1\n",
        "version: 1\ncards: []\n",
        "version: 1\ncards:\n",
    ] {
        let (p, out) = run(text);
        assert!(p.is_empty() && out.is_empty(), "{text:?}: {p:?}");
    }
}

#[test]
fn positions_of_problems() {
    let text = "version: 1\ncards:\n  - key: a\n    prodcut_code: x\n    external_user_id: u\n";
    let (problems, _) = run(text);
    let k: Vec<_> = problems
        .iter()
        .map(|p| (p.kind(), p.line(), p.column()))
        .collect();
    // The misspelling is reported once, not again as a missing `product_code`.
    assert_eq!(k, vec![(ProblemKind::UnknownField, 4, 5)]);
    let (others, _) = run(&text.replace("prodcut_code", "colour"));
    let k: Vec<_> = others.iter().map(|p| (p.kind(), p.line())).collect();
    assert_eq!(
        k,
        // In the order found; `load_sources` sorts by position.
        vec![
            (ProblemKind::UnknownField, 4),
            (ProblemKind::MissingField, 3)
        ]
    );
    assert_eq!(
        problems[0].help_text(),
        Some("did you mean `product_code`?")
    );
}

#[test]
fn columns_count_characters() {
    let (problems, _) =
        run("version: 1\ncards:\n  - {key: \"é x\", external_user_id: u, product_code: p}\n");
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].kind(), ProblemKind::InvalidKey);
    assert_eq!((problems[0].line(), problems[0].column()), (3, 11));
}

#[test]
fn wrong_types() {
    let text = "version: 1\ndefaults: [a]\ncards:\n  - key: [a]\n    external_user_id: u\n    product_code: p\n    labels: [x]\n  - 5\n";
    let k = kinds(text);
    assert_eq!(
        k.iter().map(|x| x.0).collect::<Vec<_>>(),
        vec![
            ProblemKind::WrongType,
            ProblemKind::WrongType,
            ProblemKind::WrongType,
            ProblemKind::WrongType
        ]
    );
    assert_eq!(
        kinds("version: 1\ncards: {a: 1}\n")[0].0,
        ProblemKind::WrongType
    );
    assert_eq!(kinds("- 1\n")[0].0, ProblemKind::WrongType);
}

#[test]
fn top_level_fields_in_any_order() {
    let (p, out) =
        run("cards:\n  - {key: a, external_user_id: u}\ndefaults: {product_code: P}\nversion: 1\n");
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(out[0].card.as_ref().unwrap().product_code, "P");
    // An unsupported version found after the cards still silences their problems.
    let k = kinds("cards:\n  - {colour: red}\nversion: 3\n");
    assert_eq!(k, vec![(ProblemKind::UnsupportedVersion, 3, 10)]);
}

#[test]
fn second_documents_and_aliases_are_reported() {
    let k = kinds("version: 1\ncards: []\n---\nversion: 1\n");
    assert_eq!(k, vec![(ProblemKind::YamlSyntax, 3, 1)]);
    let k = kinds(
        "version: 1\ndefaults: &d {product_code: P}\ncards:\n  - {key: a, external_user_id: u, product_code: *d}\n",
    );
    assert_eq!(k, vec![(ProblemKind::WrongType, 4, 49)]);
}

#[test]
fn versions() {
    assert_eq!(
        kinds("cards: []\n"),
        vec![(ProblemKind::MissingVersion, 1, 1)]
    );
    assert_eq!(
        kinds("version: 2\ncards: [{x: 1}]\n"),
        vec![(ProblemKind::UnsupportedVersion, 1, 10)]
    );
    assert!(kinds("version: '1'\n").is_empty());
}

#[test]
fn syntax_errors_stop_the_file() {
    let k = kinds("version: 1\ncards:\n  - key: a\n    labels: {team: x\n  - key: b\n");
    assert_eq!(k.len(), 1);
    assert_eq!(k[0].0, ProblemKind::YamlSyntax);
}

#[test]
fn empty_and_duplicate_fields() {
    let k = kinds(
        "version: 1\ncards:\n  - key: a\n    key: b\n    external_user_id:\n    product_code: \"  \"\n",
    );
    assert_eq!(
        k,
        vec![
            (ProblemKind::DuplicateField, 4, 5),
            (ProblemKind::EmptyValue, 5, 5),
            (ProblemKind::EmptyValue, 6, 19),
        ]
    );
}

#[test]
fn key_not_allowed_in_defaults() {
    let k = kinds("version: 1\ndefaults: {key: x}\n");
    assert_eq!(k, vec![(ProblemKind::UnknownField, 2, 12)]);
}

#[test]
fn a_topup_may_carry_labels_checked_like_a_cards() {
    let (problems, out) = run(
        "version: 1\ncards:\n  - key: k1\n    external_user_id: u\n    \
         product_code: P\n    topups:\n      - {id: b, amount: \"5.00\", labels: {run: payroll}}\n      \
         - {id: a, amount: \"1.00\"}\n",
    );
    assert!(problems.is_empty(), "{problems:?}");
    let topups = &out[0].card.as_ref().unwrap().topups;
    assert_eq!(topups[0].id, "a");
    assert!(topups[0].labels.is_empty());
    assert_eq!(topups[1].labels["run"], "payroll");
    assert_eq!(
        kinds(
            "version: 1\ncards:\n  - key: k1\n    external_user_id: u\n    product_code: P\n    \
               topups:\n      - {id: b, amount: \"5.00\", labels: {run: }}\n"
        ),
        [(ProblemKind::InvalidLabel, 7, 42)]
    );
}

/// The fast path for one-line cards reads what the parser reads, and reports what it reports.
#[test]
fn one_line_cards_read_as_the_parser_reads_them() {
    for text in [
        "version: 1\ndefaults:\n  product_code: P\n  labels: {a: b}\ncards:\n  - {key: k1, external_user_id: u1, labels: {c: d}}\n  - {key: k2, external_user_id: u2, initial_topup: 5.10, status: frozen}\n",
        "# fleet\nversion: 1\ncards:\n- {key: k1, external_user_id: u1, product_code: P}\n\n- {key: k2, external_user_id: u2, product_code: P}",
        "version: 1\ncards:\n  - {key: k1, external_user_id: u1}\n",
        "version: 1\ncards:\n  - {key: Bad Key, external_user_id: u1, product_code: P}\n",
        "version: 1\ncards:\n  - {key: k1, key: k2, external_user_id: u1, product_code: P}\n",
        "version: 1\ncards:\n  - {key: k1, prodcut_code: P, external_user_id: u1}\n",
        "version: 2\ncards:\n  - {key: k1, external_user_id: u1, product_code: P}\n",
        "cards:\n  - {key: k1, external_user_id: u1, product_code: P}\n",
        "version: 1\ncards: []\ncards:\n  - {key: k1, external_user_id: u1, product_code: P}\n",
        "version: 1\ndefaults: {product_code: P, initial_topup: x}\ncards:\n  - {key: k1, external_user_id: u1}\n",
        "version: 1\ncards:\n  - {key: k1, external_user_id: u1, product_code: P, labels: {Bad: x}}\n",
        "version: 1\ncards:\n  - {key: k1, external_user_id: u1, product_code: P}\n  - {key: k2, external_user_id: u1, product_code: P, status: gone}\n",
    ] {
        let src = Source::new("t.yaml".into(), text.into());
        let both = [true, false].map(|fast| {
            let (mut problems, mut out) = (Vec::new(), Vec::new());
            let (mut moves, mut people) = (Vec::new(), Vec::new());
            if fast {
                read(&src, 0, &mut problems, &mut out, &mut moves, &mut people);
            } else {
                read_parsed(&src, 0, &mut problems, &mut out, &mut moves, &mut people);
            }
            let problems: Vec<_> = problems
                .iter()
                .map(|p| (p.kind(), p.line(), p.column(), p.to_string()))
                .collect();
            format!("{problems:?}\n{out:?}")
        });
        assert_eq!(both[0], both[1], "{text}");
    }
}

/// A generated fleet really takes the fast path (else the test above would prove nothing).
#[test]
fn a_generated_fleet_takes_the_fast_path() {
    let mut text = String::from("version: 1\ndefaults:\n  product_code: P\ncards:\n");
    for i in 0..100 {
        text.push_str(&format!(
            "  - {{key: fleet-{i:06}, external_user_id: user-{i:06}, labels: {{batch: fleet}}}}\n"
        ));
    }
    let src = Source::new("t.yaml".into(), text.clone());
    let block = entry::block(&src.text).expect("the block");
    let mut fast = reader::Fast { block, used: false };
    let (mut problems, mut out) = (Vec::new(), Vec::new());
    let mut r = Reader {
        src: &src,
        problems: &mut problems,
    };
    r.stream(
        0,
        &mut out,
        &mut Vec::new(),
        &mut Vec::new(),
        Some(&mut fast),
    )
    .unwrap();
    assert!(fast.used && problems.is_empty());
    assert_eq!(out.len(), 100);
    assert_eq!(out[7].card.as_ref().unwrap().origin.line, 12);
}
