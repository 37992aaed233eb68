//! Drift from the provider's side, end to end: a card closed at the provider (through the
//! sandbox's operator hook) is found by `refresh` or `plan --refresh`, re-issued exactly once by
//! `apply` under a fresh idempotency key, and the plan is clean afterwards.

use crate::harness::*;
use rust_decimal::Decimal;
use serde_json::Value;

const CARDS: &str = "version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n  - {key: alpha, external_user_id: u-1}\n  - {key: bravo, external_user_id: u-2}\n  - {key: charlie, external_user_id: u-3}\n";

const PRODUCT: &str = "VISA_USD_STD";

fn run(env: &Env, args: &[&str]) -> std::process::Output {
    env.cardform(args).output().expect("cardform runs")
}

fn show_json(env: &Env, key: &str) -> Value {
    let out = run(env, &["show", key, "--json"]);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).expect("show --json prints JSON")
}

/// Three cards applied, then `bravo` closed at the provider behind cardform's back.
/// Returns the closed card's id.
fn three_cards_one_closed(env: &Env) -> String {
    env.write("cards.yaml", CARDS);
    assert_success(&run(env, &["apply", "-f", "cards.yaml", "--auto-approve"]));
    let out = run(env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let card_id = show_json(env, "bravo")["card"]["card_id"]
        .as_str()
        .expect("bravo has a card id")
        .to_owned();
    let sandbox = env.sandbox.as_ref().expect("sandbox running");
    assert!(sandbox.close_card(&card_id));
    card_id
}

fn assert_reissue_planned(out: &std::process::Output) {
    let text = stdout(out);
    assert_eq!(out.status.code(), Some(2), "{text}\n{}", stderr(out));
    assert!(text.contains("1 to re-issue; 2 unchanged"), "{text}");
    assert!(
        text.contains("the card was closed at the provider"),
        "{text}"
    );
    let bravo = text
        .lines()
        .find(|l| l.contains("+ bravo"))
        .unwrap_or_else(|| panic!("bravo is listed for re-issue:\n{text}"));
    assert!(bravo.contains("fee 5.00"), "{bravo}");
    for other in ["alpha", "charlie"] {
        assert!(!text.contains(other), "only bravo changes:\n{text}");
    }
}

fn refresh_finds_a_closed_card_and_apply_reissues_it_once(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    let closed_id = three_cards_one_closed(&env);
    // Without a refresh, state still believes the card is active: nothing to do.
    let out = run(&env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = run(&env, &["refresh"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("Drift found (1)"), "{text}");
    assert!(
        text.contains("bravo: closed at the provider (was active)"),
        "{text}"
    );

    let out = run(&env, &["state", "history"]);
    assert_success(&out);
    let text = stdout(&out);
    let refresh_row = text
        .lines()
        .find(|l| l.contains(" refresh "))
        .unwrap_or_else(|| panic!("the refresh run is in the history:\n{text}"));
    assert!(refresh_row.contains("drift 1"), "{refresh_row}");
    assert!(refresh_row.contains("cards checked 3"), "{refresh_row}");

    let shown = show_json(&env, "bravo");
    assert_eq!(shown["card"]["status"], "closed", "{shown}");
    assert_eq!(shown["card"]["provider_status"], "closed", "{shown}");
    let out = run(&env, &["show", "bravo"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("provider says   closed"),
        "{}",
        stdout(&out)
    );

    assert_reissue_planned(&run(
        &env,
        &["plan", "-f", "cards.yaml", "--detailed-exitcode"],
    ));

    let before = env.inspect();
    let out = run(&env, &["apply", "-f", "cards.yaml", "--auto-approve"]);
    assert_success(&out);
    let after = env.inspect();
    assert_eq!(after.issue_count("u-2", PRODUCT), 2, "{after:?}");
    for user in ["u-1", "u-3"] {
        assert_eq!(after.issue_count(user, PRODUCT), 1, "{user}: {after:?}");
    }
    assert_eq!(after.cards, before.cards + 1);
    assert_eq!(
        after.total_charged - before.total_charged,
        Decimal::new(500, 2),
        "one more issue fee"
    );
    assert_eq!(after.idempotent_replays, 0);

    // The new card under a new key; the closed one stays in the order journal.
    let shown = show_json(&env, "bravo");
    let card = &shown["card"];
    assert_eq!(card["status"], "active", "{shown}");
    assert_eq!(card["attempt"], 2, "{shown}");
    assert_ne!(card["card_id"], Value::from(closed_id), "{shown}");
    let orders = shown["orders"].as_array().expect("orders");
    let issues: Vec<&Value> = orders.iter().filter(|o| o["kind"] == "issue").collect();
    assert_eq!(issues.len(), 2, "{shown}");
    assert_ne!(issues[0]["idempotency_key"], issues[1]["idempotency_key"]);
    assert!(issues.iter().all(|o| o["phase"] == "completed"), "{shown}");

    let out = run(&env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    // And the provider agrees: a fresh look finds nothing more.
    let out = run(
        &env,
        &[
            "plan",
            "-f",
            "cards.yaml",
            "--refresh",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(env.inspect().issue_count("u-2", PRODUCT), 2);
}

#[test]
fn plan_refresh_alone_detects_a_closed_card() {
    let env = Env::new();
    three_cards_one_closed(&env);
    let out = run(
        &env,
        &[
            "plan",
            "-f",
            "cards.yaml",
            "--refresh",
            "--detailed-exitcode",
        ],
    );
    assert!(
        stdout(&out).contains("bravo: closed at the provider (was active)"),
        "{}",
        stdout(&out)
    );
    assert_reissue_planned(&out);
    assert_eq!(
        env.inspect().calls_to("cards/create"),
        3,
        "plan changes nothing"
    );
}

#[test]
fn freezing_a_card_closed_unseen_fails_with_a_hint_and_refresh_recovers() {
    let env = Env::new();
    three_cards_one_closed(&env);
    env.write(
        "cards.yaml",
        &CARDS.replace(
            "external_user_id: u-2}",
            "external_user_id: u-2, status: frozen}",
        ),
    );
    // State has not seen the close: cardform tries the freeze and the provider refuses it.
    let out = run(&env, &["apply", "-f", "cards.yaml", "--auto-approve"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("invalid_card_status"), "{text}");
    assert!(
        text.contains(&format!(
            "run `cardform --state {} refresh`",
            env.state_arg()
        )),
        "the hint carries the state it needs: {text}"
    );

    assert_success(&run(&env, &["refresh"]));
    let out = run(&env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stdout(&out).contains("then frozen"), "{}", stdout(&out));
    assert!(stdout(&out).contains("1 to re-issue"), "{}", stdout(&out));
    assert_success(&run(&env, &["apply", "-f", "cards.yaml", "--auto-approve"]));
    assert_eq!(env.inspect().issue_count("u-2", PRODUCT), 2);
    let out = run(
        &env,
        &[
            "plan",
            "-f",
            "cards.yaml",
            "--refresh",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(show_json(&env, "bravo")["card"]["status"], "frozen");
}

on_both_backends!(refresh_finds_a_closed_card_and_apply_reissues_it_once,);
