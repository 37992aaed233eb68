//! `plan` never writes state: `plan --refresh` plans against the provider's view in memory, and
//! drift is recorded only by `refresh`, or by applying a `plan --refresh-only` plan (or
//! `apply --refresh-only`), in one run, as Terraform's `-refresh-only` does.

use crate::harness::*;
use serde_json::Value;

const CARDS: &str = "version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n  - {key: alpha, external_user_id: u-1}\n  - {key: bravo, external_user_id: u-2}\n  - {key: charlie, external_user_id: u-3}\n";

fn run(env: &Env, args: &[&str]) -> std::process::Output {
    env.cardform(args).output().expect("cardform runs")
}

fn json_of(env: &Env, args: &[&str]) -> Value {
    let out = run(env, args);
    assert_success(&out);
    serde_json::from_slice(&out.stdout).expect("prints JSON")
}

/// Every run state records, as `state history --json` lists them.
fn history(env: &Env) -> Vec<Value> {
    json_of(env, &["state", "history", "--json"])
        .as_array()
        .expect("a list of runs")
        .clone()
}

/// Three cards applied, then `bravo` closed at the provider behind cardform's back.
fn three_cards_one_closed(env: &Env) {
    env.write("cards.yaml", CARDS);
    assert_success(&run(env, &["apply", "-f", "cards.yaml", "--auto-approve"]));
    let card_id = json_of(env, &["show", "bravo", "--json"])["card"]["card_id"]
        .as_str()
        .expect("bravo has a card id")
        .to_owned();
    assert!(env.sandbox.as_ref().expect("sandbox").close_card(&card_id));
}

fn status_of(env: &Env, key: &str) -> Value {
    json_of(env, &["show", key, "--json"])["card"]["status"].clone()
}

fn plan_refresh_plans_the_drift_and_writes_nothing(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    three_cards_one_closed(&env);
    let runs = history(&env);
    let calls = env.inspect().calls;

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
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}\n{}", stderr(&out));
    assert!(text.contains("~ drift"), "{text}");
    assert!(
        text.contains("~ bravo: closed at the provider (was active)"),
        "{text}"
    );
    assert!(text.contains("`plan` records nothing"), "{text}");
    assert!(text.contains("1 to re-issue; 2 unchanged"), "{text}");

    // Nothing written: no run, the same serial, and state still believes what it believed.
    assert_eq!(history(&env), runs, "plan --refresh recorded a run");
    assert_eq!(status_of(&env, "bravo"), "active");
    // It only read: cards/get per card, no mutation.
    let after = env.inspect().calls;
    for (path, n) in &after {
        let reads = [
            "cards/get",
            "cards/products",
            "project/balance",
            "orders/check",
        ];
        if !reads.contains(&path.as_str()) {
            assert_eq!(calls.get(path), Some(n), "{path}: {after:?}");
        }
    }
    // Without --refresh, the plan still sees what state recorded.
    let out = run(&env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

fn refresh_only_plan_is_applied_as_one_run(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    three_cards_one_closed(&env);
    // Declarations that would issue a card: a refresh-only plan plans drift only.
    env.write(
        "cards.yaml",
        &format!("{CARDS}  - {{key: delta, external_user_id: u-4}}\n"),
    );
    let runs = history(&env);
    let creates = env.inspect().calls_to("cards/create");

    let out = run(
        &env,
        &[
            "plan",
            "--refresh-only",
            "-f",
            "cards.yaml",
            "--out",
            "p.json",
            "--detailed-exitcode",
        ],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{text}\n{}", stderr(&out));
    assert!(
        text.contains("~ bravo: closed at the provider (was active)"),
        "{text}"
    );
    assert!(text.contains("This is a refresh-only plan"), "{text}");
    assert!(
        !text.contains("delta"),
        "no declared change is planned:\n{text}"
    );
    assert!(!text.contains("re-issue"), "{text}");
    assert_eq!(history(&env), runs, "planning recorded nothing");

    let saved: Value = serde_json::from_slice(&std::fs::read(env.path("p.json")).unwrap()).unwrap();
    assert_eq!(saved["refresh"]["refresh_only"], true, "{saved}");
    assert_eq!(saved["actions"], Value::Array(vec![]), "{saved}");
    let drift: Vec<&Value> = saved["refresh"]["updates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["drift"].as_array().into_iter().flatten())
        .collect();
    assert_eq!(drift.len(), 1, "{saved}");
    assert_eq!(drift[0]["key"], "bravo");
    assert_eq!(drift[0]["now"], "closed");
    // A saved plan holds no card number or CVV, as state does not.
    let raw = std::fs::read_to_string(env.path("p.json")).unwrap();
    assert!(!raw.contains("\"pan\"") && !raw.contains("cvv"), "{raw}");

    let out = run(&env, &["apply", "p.json"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("Recorded") && stdout(&out).contains("nothing was sent"),
        "{}",
        stdout(&out)
    );
    let after = history(&env);
    assert_eq!(after.len(), runs.len() + 1, "exactly one run: {after:?}");
    let last = after.last().unwrap();
    assert_eq!(
        last["serial"],
        runs.last().unwrap()["serial"].as_u64().unwrap() + 1
    );
    assert_eq!(
        last["summary"]["drift"].as_array().map(Vec::len),
        Some(1),
        "{last}"
    );
    let table = stdout(&run(&env, &["state", "history"]));
    let row = table.lines().last().unwrap();
    assert!(
        row.contains("apply p.json") && row.contains("drift 1"),
        "{table}"
    );
    assert_eq!(status_of(&env, "bravo"), "closed");
    assert_eq!(
        env.inspect().calls_to("cards/create"),
        creates,
        "nothing was sent"
    );

    // Recorded: a second look finds nothing more, and the plan now re-issues the closed card.
    let out = run(&env, &["plan", "--refresh-only", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    let out = run(&env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("1 to re-issue"), "{}", stdout(&out));

    // The same plan again is stale: state moved on.
    let out = run(&env, &["apply", "p.json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("stale"), "{}", stderr(&out));
}

#[test]
fn apply_refresh_only_asks_then_records() {
    let env = Env::new();
    three_cards_one_closed(&env);
    let runs = history(&env);
    // No terminal to ask on: refused, nothing recorded.
    let out = run(&env, &["apply", "--refresh-only"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("--auto-approve"), "{}", stderr(&out));
    assert_eq!(history(&env), runs);
    assert_eq!(status_of(&env, "bravo"), "active");

    let out = run(&env, &["apply", "--refresh-only", "--auto-approve"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("~ bravo: closed at the provider"), "{text}");
    assert!(text.contains("Recorded"), "{text}");
    assert_eq!(history(&env).len(), runs.len() + 1);
    assert_eq!(status_of(&env, "bravo"), "closed");

    // Nothing left: no run is recorded for nothing.
    let out = run(&env, &["apply", "--refresh-only", "--auto-approve"]);
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    assert_eq!(history(&env).len(), runs.len() + 1);
}

#[test]
fn a_saved_refresh_plan_records_its_drift_with_its_changes() {
    let env = Env::new();
    three_cards_one_closed(&env);
    let runs = history(&env);
    let out = run(
        &env,
        &["plan", "-f", "cards.yaml", "--refresh", "--out", "p.json"],
    );
    assert_success(&out);
    assert_eq!(history(&env), runs);
    // Made against the provider's view: applied, the drift is recorded in the same run as the
    // re-issue it planned.
    let out = run(&env, &["apply", "p.json"]);
    assert_success(&out);
    let after = history(&env);
    assert_eq!(after.len(), runs.len() + 1);
    let summary = &after.last().unwrap()["summary"];
    assert_eq!(summary["issued"], 1, "{summary}");
    assert_eq!(
        summary["drift"].as_array().map(Vec::len),
        Some(1),
        "{summary}"
    );
    assert_eq!(env.inspect().issue_count("u-2", "VISA_USD_STD"), 2);
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
}

/// An order a killed apply left open, finished at the provider since: `plan --refresh` plans
/// against it finished (nothing to resume) and writes nothing; the refresh-only plan records
/// the order settled, with its charge, and the card it gave.
#[test]
fn an_order_found_finished_is_planned_then_recorded() {
    let env = Env::new();
    let c = env.client();
    let order_id = env.rt.block_on(async {
        let req = cardform::wire::CreateCardRequest {
            product_code: Some("VISA_USD_STD".into()),
            product_id: None,
            external_user_id: "u-3001".into(),
            initial_topup_amount: None,
        };
        let mut o = c.call(&req, Some("outside-frank")).await.unwrap();
        while !o.status.is_terminal() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            o = c.check_order(&o.order_id).await.unwrap();
        }
        o.order_id
    });
    journal_open_issue(&env, "frank", "outside-frank", Some(&order_id));
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: frank, external_user_id: u-3001, product_code: VISA_USD_STD}\n",
    );
    let runs = history(&env);

    let out = run(&env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "without a look it is still open"
    );
    assert!(stdout(&out).contains("to resume"), "{}", stdout(&out));
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
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "~ frank: issue order {order_id} completed, charged 5.00"
        )),
        "{text}"
    );
    assert_eq!(history(&env), runs);
    let open = json_of(&env, &["show", "frank", "--json"]);
    assert_eq!(open["orders"][0]["phase"], "open", "{open}");

    let out = run(&env, &["plan", "--refresh-only", "--out", "p.json"]);
    assert_success(&out);
    assert_success(&run(&env, &["apply", "p.json"]));
    let shown = json_of(&env, &["show", "frank", "--json"]);
    assert_eq!(shown["orders"][0]["phase"], "completed", "{shown}");
    assert_eq!(shown["card"]["status"], "active", "{shown}");
    assert_eq!(shown["card"]["charged"], "5.00", "{shown}");
    assert!(
        shown["card"]["card_id"]
            .as_str()
            .unwrap()
            .starts_with("card_")
    );
    let out = run(&env, &["plan", "-f", "cards.yaml", "--detailed-exitcode"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(
        env.inspect().calls_to("cards/create"),
        1,
        "nothing was sent"
    );
}

on_both_backends!(
    plan_refresh_plans_the_drift_and_writes_nothing,
    refresh_only_plan_is_applied_as_one_run,
);
