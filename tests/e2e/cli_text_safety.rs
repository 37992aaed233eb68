//! Text from declarations, state or the provider reaches no terminal raw: control characters in
//! a user id or a label are refused when declared (named escaped), a key holding an OSC sequence
//! is shown escaped in its error and snippet, text already in state is escaped in every table
//! while `state export --format json` keeps it exact, and a 10 MB single-line file gets a short
//! error.

use cardform::decl::{DesiredStatus, Labels};
use cardform::state::{CardPhase, CardRecord, RunInfo, Store};
use rust_decimal::Decimal;
use std::time::{Duration, Instant};

use crate::harness::*;

/// No raw ESC, BEL, CR or C1 CSI byte in what a command wrote (stdout and stderr).
fn assert_no_raw_controls(out: &std::process::Output, what: &str) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        for bad in ['\x1b', '\x07', '\r', '\u{9b}'] {
            assert!(
                !text.contains(bad),
                "{what}: raw {bad:?} in {name}:\n{}",
                text.escape_debug()
            );
        }
    }
}

fn run(env: &Env, args: &[&str]) -> std::process::Output {
    env.cardform(args).output().unwrap()
}

#[test]
fn control_characters_in_a_user_id_or_a_label_are_refused_and_named_escaped() {
    let env = Env::new();
    // YAML double-quoted escapes: `\e` is ESC, `\a` BEL.
    let cases = [
        (r#"\e[31mred"#, r"\u{1b}"),
        (r#"\e[2J"#, r"\u{1b}"),
        (r#"ding\a"#, r"\u{7}"),
        (r#"a\r\nb"#, r"\r"),
        (r#"a\nb"#, r"\n"),
        (r#"c1\u009b31m"#, r"\u{9b}"),
    ];
    for (raw, shown) in cases {
        for (field, line) in [
            (
                "external_user_id",
                format!(
                    r#"  - {{key: k1, external_user_id: "{raw}", product_code: VISA_USD_STD}}"#
                ),
            ),
            (
                "labels.team",
                format!(
                    r#"  - {{key: k1, external_user_id: u1, product_code: VISA_USD_STD, labels: {{team: "{raw}"}}}}"#
                ),
            ),
        ] {
            env.write("cards.yaml", &format!("version: 1\ncards:\n{line}\n"));
            for cmd in ["validate", "plan"] {
                let out = run(&env, &[cmd, "-f", "cards.yaml"]);
                let what = format!("{cmd} {field} {raw}");
                assert!(!out.status.success(), "{what}: {}", stdout(&out));
                let err = stderr(&out);
                assert!(err.contains("control_character"), "{what}: {err}");
                assert!(
                    err.contains(&format!("`{field}` holds a control character `{shown}`")),
                    "{what}: {err}"
                );
                assert!(err.contains("cards.yaml:3:"), "{what}: {err}");
                assert_no_raw_controls(&out, &what);
            }
        }
    }
}

#[test]
fn control_characters_in_a_csv_cell_are_refused() {
    let env = Env::new();
    env.write(
        "cards.csv",
        "key,external_user_id,product_code,label.team\nk1,u1,VISA_USD_STD,\x1b]0;pwned\x07\n",
    );
    let out = run(&env, &["validate", "-f", "cards.csv"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(r"`label.team` holds a control character `\u{1b}`"),
        "{err}"
    );
    assert!(err.contains(r"\u{1b}]0;pwned\u{7}"), "{err}");
    assert!(err.contains("cards.csv:2:"), "{err}");
    assert_no_raw_controls(&out, "csv");
    // The JSON result is data: it keeps the message exact (serde escapes the character).
    let out = run(&env, &["validate", "-f", "cards.csv", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["problems"][0]["code"], "cardform::spec::control_character",
        "{doc}"
    );
}

#[test]
fn a_key_holding_an_osc_sequence_is_shown_escaped_in_its_error_and_snippet() {
    let env = Env::new();
    // Written as YAML escapes (the file is printable; the key is not) and as raw bytes in the file
    // (YAML forbids them; CSV does not), in a key and in a file's snippet.
    let files = [
        (
            "escaped.yaml",
            "version: 1\ncards:\n  - {key: \"a\\e]0;pwned\\a\", external_user_id: u1, product_code: VISA_USD_STD}\n",
        ),
        (
            "raw.yaml",
            "version: 1\ncards:\n  - {key: \"a\x1b]0;pwned\x07\", external_user_id: u1, product_code: VISA_USD_STD}\n",
        ),
        (
            "raw.csv",
            "key,external_user_id,product_code\na\x1b]0;pwned\x07,u1,VISA_USD_STD\n",
        ),
    ];
    for (name, text) in files {
        env.write(name, text);
        for cmd in ["validate", "plan"] {
            let out = run(&env, &[cmd, "-f", name]);
            let what = format!("{cmd} {name}");
            assert!(!out.status.success(), "{what}");
            let err = stderr(&out);
            assert!(err.contains(&format!("{name}:")), "{what}: {err}");
            assert_no_raw_controls(&out, &what);
            if name == "escaped.yaml" {
                assert!(err.contains("invalid_key"), "{what}: {err}");
                assert!(
                    err.contains(r"invalid card key `a\u{1b}]0;pwned\u{7}`"),
                    "{what}: {err}"
                );
            } else {
                // The snippet shows the line with its bytes escaped.
                assert!(err.contains(r"a\u{1b}]0;pwned\u{7}"), "{what}: {err}");
            }
        }
    }
}

fn hostile_card() -> CardRecord {
    CardRecord {
        key: "k1".into(),
        external_user_id: "u\x1b[31m1".into(),
        product_code: "VISA_USD_STD".into(),
        initial_topup: None,
        desired_status: DesiredStatus::Active,
        labels: Labels::from([("team".to_owned(), "\x1b[2Jops\x07\r\nforged".to_owned())]),
        card_id: Some("card_\x1b]0;t\x07".into()),
        phase: CardPhase::Active,
        provider_status: Some("active\u{9b}2J".into()),
        last4: Some("1234".into()),
        charged: Decimal::ZERO,
        attempt: 1,
        replaced_by: None,
        balance: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[test]
fn text_already_in_state_is_shown_escaped_and_exported_exact() {
    let env = Env::new();
    env.rt.block_on(async {
        let store = Store::open(&env.location()).await.unwrap();
        let serial = store
            .begin_run(RunInfo {
                command: "apply \x1b]0;title\x07".into(),
                user: "eve\r".into(),
                host: "host".into(),
                at: "2026-01-01T00:00:00Z".into(),
            })
            .await
            .unwrap();
        store.put_card(serial, &hostile_card()).await.unwrap();
        store
            .finish_run(serial, &serde_json::json!({"error": "boom\x1b[2J"}))
            .await
            .unwrap();
        store.close().await;
    });
    for args in [
        &["state", "list"][..],
        &["show"],
        &["show", "k1"],
        &["state", "history"],
        &["state", "diff"],
    ] {
        let out = run(&env, args);
        let what = args.join(" ");
        assert_no_raw_controls(&out, &what);
        if args != ["state", "diff"] {
            assert_success(&out);
        }
    }
    let list = stdout(&run(&env, &["state", "list"]));
    assert!(list.contains(r"u\u{1b}[31m1"), "{list}");
    let show = stdout(&run(&env, &["show", "k1"]));
    assert!(show.contains(r"team=\u{1b}[2Jops\u{7}\r\nforged"), "{show}");
    let history = stdout(&run(&env, &["state", "history"]));
    assert!(history.contains(r"apply \u{1b}]0;title\u{7}"), "{history}");
    assert!(history.contains(r"error: boom\u{1b}[2J"), "{history}");

    // A plan lists the card as undeclared by what it was (its user): escaped on a terminal and
    // in markdown, which is posted to PRs and read in CI logs.
    env.write(
        "other.yaml",
        "version: 1\ncards:\n  - {key: k2, external_user_id: u2, product_code: VISA_USD_STD}\n",
    );
    for args in [
        &["plan", "-f", "other.yaml"][..],
        &["plan", "-f", "other.yaml", "--detail"],
        &["plan", "-f", "other.yaml", "--format", "markdown"],
    ] {
        let out = run(&env, args);
        assert_no_raw_controls(&out, &args.join(" "));
    }
    let plan = stdout(&run(&env, &["plan", "-f", "other.yaml"]));
    assert!(plan.contains(r"user u\u{1b}[31m1"), "{plan}");

    // Machine-readable output is data: exact.
    let out = run(&env, &["state", "export", "--format", "json"]);
    assert_success(&out);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = doc.to_string();
    assert!(text.contains(r#""\u001b[2Jops\u0007\r\nforged""#), "{text}");
    let mut found = false;
    visit(&doc, &mut |v| {
        found |= v.as_str() == Some("\x1b[2Jops\x07\r\nforged");
    });
    assert!(found, "{text}");
    let out = run(&env, &["state", "list", "--json"]);
    let text = stdout(&out);
    assert!(text.contains(r"u\u001b[31m1"), "{text}");
}

fn visit(v: &serde_json::Value, f: &mut impl FnMut(&serde_json::Value)) {
    f(v);
    match v {
        serde_json::Value::Array(a) => a.iter().for_each(|x| visit(x, f)),
        serde_json::Value::Object(o) => o.values().for_each(|x| visit(x, f)),
        _ => {}
    }
}

#[test]
fn a_ten_megabyte_single_line_file_gets_a_short_error_quickly() {
    let env = Env::new();
    let huge = "a".repeat(10 * 1024 * 1024);
    for (name, text) in [
        // One long key: too long, and its snippet is a window of the line.
        (
            "key.yaml",
            format!(
                "{{version: 1, cards: [{{key: \"{huge}\", external_user_id: u1, product_code: VISA_USD_STD}}]}}"
            ),
        ),
        // The same with an escape sequence in the key, quoted in the message.
        (
            "esc.yaml",
            format!(
                "{{version: 1, cards: [{{key: \"{huge}\\e[2J{huge}\", external_user_id: u1, product_code: VISA_USD_STD}}]}}"
            ),
        ),
        // A value the YAML reader cannot parse at the end of the line.
        ("syntax.yaml", format!("{{version: 1, cards: [{huge}: [}}")),
    ] {
        env.write(name, &text);
        let started = Instant::now();
        let out = run(&env, &["validate", "-f", name]);
        let took = started.elapsed();
        assert!(!out.status.success(), "{name}");
        assert!(
            out.stderr.len() < 10 * 1024,
            "{name}: {} bytes on stderr:\n{}",
            out.stderr.len(),
            String::from_utf8_lossy(&out.stderr[..out.stderr.len().min(3000)])
        );
        assert!(out.stdout.len() < 10 * 1024, "{name}");
        assert!(
            stderr(&out).contains(&format!("{name}:1:")),
            "{}",
            stderr(&out)
        );
        assert!(took < Duration::from_secs(20), "{name}: {took:?}");
        assert_no_raw_controls(&out, name);
    }
}
