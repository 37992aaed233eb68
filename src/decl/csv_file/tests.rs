//! Unit tests of the CSV reader: tokenizer spans, header and row problems.

use super::*;

fn cells(text: &str) -> Vec<Vec<String>> {
    match tokenize(text) {
        Ok(rows) => rows
            .iter()
            .map(|r| r.cells.iter().map(|c| c.value.to_string()).collect())
            .collect(),
        Err(e) => panic!("{}", e.message),
    }
}

fn run(text: &str) -> (Vec<DeclProblem>, Vec<Candidate>) {
    let src = Source::new("t.csv".into(), text.into());
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
fn tokenizes_quotes_and_line_ends() {
    assert_eq!(cells("a,b\n1,2\n"), vec![vec!["a", "b"], vec!["1", "2"]]);
    assert_eq!(cells("a,b\r\n1,2"), vec![vec!["a", "b"], vec!["1", "2"]]);
    assert_eq!(
        cells("\"x, y\",\"say \"\"hi\"\"\",\n"),
        vec![vec!["x, y", "say \"hi\"", ""]]
    );
    assert_eq!(
        cells("\"two\nlines\",b\n\nc,d\n"),
        vec![vec!["two\nlines", "b"], vec!["c", "d"]]
    );
    assert_eq!(cells("\u{feff}key\n"), vec![vec!["key"]]);
}

#[test]
fn cell_spans_point_at_the_text() {
    let text = "a,\"b\"\n\"c\nd\",e\n";
    let rows = tokenize(text).ok().unwrap();
    let c = &rows[0].cells[1];
    assert_eq!(&text[c.start..c.end], "\"b\"");
    let e = &rows[1].cells[1];
    assert_eq!((&text[e.start..e.end], e.line), ("e", 3));
    assert_eq!(rows[1].line, 2);
}

#[test]
fn syntax_errors() {
    assert_eq!(kinds("key\n\"open\n"), vec![(ProblemKind::CsvSyntax, 2, 1)]);
    assert_eq!(kinds("key\n\"a\"b\n"), vec![(ProblemKind::CsvSyntax, 2, 4)]);
}

#[test]
fn reads_cards() {
    let (p, out) = run(
        "key,external_user_id,product_code,initial_topup,status,label.team\n\
         a,u1,P,50.10,frozen,travel\n\
         b,u2,P,,,\n\
         ,,,,,\n",
    );
    assert!(p.is_empty(), "{p:?}");
    let a = out[0].card.as_ref().unwrap();
    assert_eq!(a.initial_topup.unwrap().to_string(), "50.10");
    assert_eq!(a.status, crate::decl::DesiredStatus::Frozen);
    assert_eq!(a.labels["team"], "travel");
    assert_eq!(a.origin.line, 2);
    let b = out[1].card.as_ref().unwrap();
    assert_eq!(b.initial_topup, None);
    assert!(b.labels.is_empty());
    assert_eq!(out.len(), 2);
}

#[test]
fn header_problems() {
    assert_eq!(
        kinds("key,external_user_id,prodcut_code\nk,u,P\n"),
        vec![(ProblemKind::UnknownColumn, 1, 22)]
    );
    assert_eq!(
        kinds("key,key,external_user_id,product_code,label.\n"),
        vec![
            (ProblemKind::DuplicateColumn, 1, 5),
            (ProblemKind::InvalidLabel, 1, 39)
        ]
    );
    assert_eq!(
        kinds("key,external_user_id,product_code,\nk,u,P,\n"),
        vec![(ProblemKind::UnknownColumn, 1, 35)]
    );
    let p = run("external_user_id,product_code\n").0;
    assert_eq!(p[0].message(), "missing column `key`");
}

#[test]
fn row_problems() {
    let k = kinds(
        "key,external_user_id,product_code,initial_topup\n\
         a,u,P\n\
         b c,u,P,0\n\
         d,,P,1.234\n",
    );
    assert_eq!(
        k,
        vec![
            (ProblemKind::RaggedRow, 2, 1),
            (ProblemKind::InvalidKey, 3, 1),
            (ProblemKind::NonPositiveAmount, 3, 9),
            (ProblemKind::TooManyDecimals, 4, 6),
            (ProblemKind::MissingField, 4, 1),
        ]
    );
}

fn run_topups(text: &str) -> (Vec<(ProblemKind, usize, usize)>, Vec<TopupCandidate>) {
    let src = Source::new("t.csv".into(), text.into());
    let (mut problems, mut topups) = (Vec::new(), Vec::new());
    read(
        &src,
        0,
        &mut problems,
        &mut Vec::new(),
        &mut topups,
        &mut Vec::new(),
    );
    let kinds = problems
        .iter()
        .map(|p| (p.kind(), p.line(), p.column()))
        .collect();
    (kinds, topups)
}

#[test]
fn topup_file_problems() {
    let (kinds, topups) = run_topups(
        "key,topup_id,amount,label.run,bogus\n\
         a,t1,10.00,pay,x\n\
         b,,5.00,,\n\
         c,t3,-1,,\n\
         d,t4\n",
    );
    assert_eq!(
        kinds,
        vec![
            (ProblemKind::UnknownColumn, 1, 31),
            (ProblemKind::EmptyValue, 3, 3),
            (ProblemKind::NonPositiveAmount, 4, 6),
            (ProblemKind::RaggedRow, 5, 1),
        ]
    );
    assert_eq!(topups.len(), 1);
    assert_eq!(
        (topups[0].card.as_str(), topups[0].topup.id.as_str()),
        ("a", "t1")
    );
    assert_eq!(topups[0].topup.amount.to_string(), "10.00");
    assert_eq!(
        topups[0].topup.labels.get("run").map(String::as_str),
        Some("pay")
    );
    let (kinds, topups) = run_topups("key,topup_id\na,t1\n");
    assert_eq!(kinds, vec![(ProblemKind::MissingColumn, 1, 1)]);
    assert!(topups.is_empty());
}
