//! `apply --replace KEY` (and `plan --replace KEY` to preview it): a lost or compromised card is
//! re-issued on purpose under the next attempt's idempotency key, the old card frozen after the
//! new one exists and kept in state and history.

use crate::harness::*;
use rust_decimal::Decimal;
use serde_json::Value;
use std::str::FromStr;

const CARDS: &str = "version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n  - {key: alpha, external_user_id: u-1}\n  - {key: bravo, external_user_id: u-2}\n";

const PRODUCT: &str = "VISA_USD_STD";

fn run(env: &Env, args: &[&str]) -> std::process::Output {
    env.cardform(args).output().expect("cardform runs")
}

fn json_of(env: &Env, args: &[&str]) -> Value {
    let out = run(env, args);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).expect("prints JSON")
}

fn decimal(v: &Value) -> Decimal {
    Decimal::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("a decimal string: {v}")),
    )
    .unwrap()
}

fn two_cards(env: &Env) -> String {
    env.write("cards.yaml", CARDS);
    assert_success(&run(env, &["apply", "-f", "cards.yaml", "--auto-approve"]));
    json_of(env, &["show", "bravo", "--json"])["card"]["card_id"]
        .as_str()
        .expect("bravo has a card id")
        .to_owned()
}

fn replace_issues_one_new_card_and_freezes_the_old(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    let old_id = two_cards(&env);

    // The preview: one replace, its fee in the plan and in the estimate.
    let out = run(
        &env,
        &[
            "plan",
            "-f",
            "cards.yaml",
            "--replace",
            "bravo",
            "--detailed-exitcode",
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}\n{}", stderr(&out));
    assert!(text.contains("1 to replace; 1 unchanged"), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("-/+ bravo"))
        .unwrap_or_else(|| panic!("bravo is replaced:\n{text}"));
    assert!(line.contains("fee 5.00"), "{line}");
    assert!(!text.contains("-/+ alpha"), "{text}");
    let plan = json_of(
        &env,
        &["plan", "-f", "cards.yaml", "--replace", "bravo", "--json"],
    );
    let estimated = decimal(&plan["totals"]["charge"]);
    assert_eq!(estimated, Decimal::new(500, 2), "{plan}");

    let before = env.inspect();
    let out = run(
        &env,
        &[
            "apply",
            "-f",
            "cards.yaml",
            "--replace",
            "bravo",
            "--auto-approve",
        ],
    );
    assert_success(&out);
    let after = env.inspect();
    assert_eq!(after.issue_count("u-2", PRODUCT), 2, "exactly one new card");
    assert_eq!(after.issue_count("u-1", PRODUCT), 1);
    assert_eq!(after.cards, before.cards + 1);
    assert_eq!(
        after.total_charged - before.total_charged,
        estimated,
        "the ledger took exactly the planned issue fee"
    );
    assert_eq!(
        after.idempotent_replays, 0,
        "a new idempotency key, not a replay"
    );

    // The new card under attempt 2; the old one frozen, kept, and shown with it.
    let shown = json_of(&env, &["show", "bravo", "--json"]);
    let card = &shown["card"];
    assert_eq!(card["attempt"], 2, "{shown}");
    assert_eq!(card["status"], "active", "{shown}");
    assert_ne!(card["card_id"], Value::from(old_id.clone()), "{shown}");
    let issues: Vec<&Value> = shown["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["kind"] == "issue")
        .collect();
    assert_eq!(issues.len(), 2, "{shown}");
    assert_ne!(issues[0]["idempotency_key"], issues[1]["idempotency_key"]);
    let replaced = shown["replaced"].as_array().expect("the replaced card");
    assert_eq!(replaced.len(), 1, "{shown}");
    assert_eq!(replaced[0]["card_id"], Value::from(old_id.clone()));
    assert_eq!(replaced[0]["phase"], "frozen", "{shown}");
    let text = stdout(&run(&env, &["show", "bravo"]));
    assert!(text.contains(&old_id) && text.contains("frozen"), "{text}");
    // And in history: the change it made, old card id included.
    let diff = stdout(&run(&env, &["state", "diff"]));
    assert!(diff.contains(&old_id), "{diff}");
    let history = stdout(&run(&env, &["state", "history"]));
    assert!(
        history.lines().last().unwrap().contains("--replace bravo"),
        "{history}"
    );

    // Done: applying again sends nothing.
    let out = run(&env, &["apply", "-f", "cards.yaml", "--auto-approve"]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    let again = env.inspect();
    assert_eq!(again.orders, after.orders);
    assert_eq!(again.total_charged, after.total_charged);
}

fn an_unknown_key_is_refused_naming_it(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    two_cards(&env);
    let before = env.inspect();
    for cmd in ["plan", "apply"] {
        let args = |key: &'static str| {
            let mut args = vec![cmd, "-f", "cards.yaml", "--replace", key];
            if cmd == "apply" {
                args.push("--auto-approve");
            }
            args
        };
        let out = run(&env, &args("brav"));
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(err.contains("--replace brav"), "{cmd}: {err}");
        assert!(err.contains("did you mean `bravo`?"), "{cmd}: {err}");
        let out = run(&env, &args("nosuch"));
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stdout(&out));
        assert!(
            stderr(&out).contains("card `nosuch` is neither declared nor in state"),
            "{cmd}: {}",
            stderr(&out)
        );
    }
    let after = env.inspect();
    assert_eq!(after.orders, before.orders, "nothing was sent");
    assert_eq!(after.total_charged, before.total_charged);
}

#[test]
fn replace_needs_a_declared_card_in_state_and_keeps_guard_rails() {
    let env = Env::new();
    two_cards(&env);
    // Declared but never issued: nothing to replace yet.
    env.write(
        "cards.yaml",
        &format!("{CARDS}  - {{key: charlie, external_user_id: u-3}}\n"),
    );
    let out = run(&env, &["plan", "-f", "cards.yaml", "--replace", "charlie"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not in state"), "{}", stderr(&out));
    // The fee budget holds: a replace costs an issue fee.
    let before = env.inspect();
    env.write("cards.yaml", CARDS);
    let out = run(
        &env,
        &[
            "apply",
            "-f",
            "cards.yaml",
            "--replace",
            "alpha",
            "--max-fees",
            "1.00",
            "--auto-approve",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(env.inspect().orders, before.orders, "nothing was sent");
}

#[test]
fn a_frozen_card_is_replaced_by_a_frozen_card() {
    let env = Env::new();
    let frozen = CARDS.replace(
        "external_user_id: u-2}",
        "external_user_id: u-2, status: frozen}",
    );
    env.write("cards.yaml", &frozen);
    assert_success(&run(&env, &["apply", "-f", "cards.yaml", "--auto-approve"]));
    let out = run(
        &env,
        &[
            "apply",
            "-f",
            "cards.yaml",
            "--replace",
            "bravo",
            "--auto-approve",
        ],
    );
    assert_success(&out);
    let shown = json_of(&env, &["show", "bravo", "--json"]);
    assert_eq!(shown["card"]["status"], "frozen", "{shown}");
    assert_eq!(shown["card"]["attempt"], 2, "{shown}");
    assert_eq!(shown["replaced"][0]["phase"], "frozen", "{shown}");
    assert_eq!(env.inspect().issue_count("u-2", PRODUCT), 2);
    let out = run(&env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

on_both_backends!(
    replace_issues_one_new_card_and_freezes_the_old,
    an_unknown_key_is_refused_naming_it,
);
