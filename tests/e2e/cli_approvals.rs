//! `cardform serve`'s policy and approvals, through the real binary against the sandbox and the
//! test PostgreSQL server: a plan within policy applies on its own; a prune over `--max-prune`
//! and a plan past `--max-fees-per-day` wait (nothing sent), show in `GET /api/approvals`,
//! `cardform approve --list` and `state history`; the HTTP approve applies exactly that plan at
//! once, `cardform approve ID` within seconds (the leader looks); an approved plan that changed
//! since is superseded, not applied; the routes want the token. Every count is checked at the sandbox.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;
use crate::serve_harness::{self as serve, Serve};

fn fleet(range: std::ops::Range<usize>) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in range {
        s.push_str(&format!(
            "  - {{key: c-{i:02}, external_user_id: u-{i:02}, product_code: VISA_USD_STD}}\n"
        ));
    }
    s
}

/// Card statuses as state has them, by key.
fn statuses(env: &Env) -> BTreeMap<String, String> {
    let out = env.cardform(&["show", "--json"]).output().unwrap();
    assert_success(&out);
    let list: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    list.iter()
        .map(|c| {
            let key = c["key"].as_str().unwrap().to_owned();
            (key, c["status"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

fn frozen(env: &Env) -> usize {
    statuses(env).values().filter(|s| *s == "frozen").count()
}

/// The approvals `GET /api/approvals` lists, newest first.
fn approvals(s: &Serve) -> Vec<serde_json::Value> {
    let a = s.get("/api/approvals");
    assert_eq!(a.status, 200, "{a:?}");
    a.json()["approvals"].as_array().unwrap().clone()
}

/// Waits until the reconciles finished reach `n` (each logs one line, whatever its outcome).
fn reconciled(s: &Serve, n: usize) {
    s.wait_for("a reconcile finishes", Duration::from_secs(20), |s| {
        s.count("reconcile finished") >= n
    });
}

/// Asks for a reconcile and waits for it to finish.
fn reconcile(s: &Serve) {
    let before = s.count("reconcile finished");
    assert_eq!(s.post("/api/reconcile", "").status, 202);
    reconciled(s, before + 1);
}

fn orders(env: &Env) -> u64 {
    env.inspect().orders
}

#[test]
fn a_prune_over_the_limit_waits_until_approved_and_then_applies() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet(0..10));
    let args = [
        "-f",
        "cards",
        "--prune",
        "--max-prune",
        "1",
        "--interval",
        "1h",
    ];
    let s = serve::start(&env, "prune", &args);
    // Within policy: the first plan (10 new cards) applies on its own.
    reconciled(&s, 1);
    assert_eq!(env.inspect().cards, 10);
    assert!(approvals(&s).is_empty());

    // One card leaves the declarations: one prune is within --max-prune 1, and applies.
    env.write("cards/a.yaml", &fleet(0..9));
    reconciled(&s, 2);
    assert_eq!(frozen(&env), 1);
    assert!(approvals(&s).is_empty());

    // Three more leave: over the limit, the plan waits and nothing is sent.
    let sent = orders(&env);
    env.write("cards/a.yaml", &fleet(0..6));
    reconciled(&s, 3);
    assert_eq!(s.count("waiting for approval"), 1, "{}", s.log());
    assert_eq!(orders(&env), sent);
    assert_eq!(frozen(&env), 1);
    let listed = approvals(&s);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let waiting = &listed[0];
    assert_eq!(waiting["status"], "pending");
    assert_eq!(waiting["summary"]["destroy"], 3);
    assert_eq!(waiting["summary"]["currency"], "USDT");
    assert_eq!(waiting["approved_by"], serde_json::Value::Null);
    let reasons = waiting["reasons"].as_array().unwrap();
    assert!(
        reasons[0].as_str().unwrap().contains("over --max-prune 1"),
        "{reasons:?}"
    );
    let id = waiting["id"].as_str().unwrap().to_owned();
    // The same plan again reuses its approval: no second one.
    reconcile(&s);
    assert_eq!(approvals(&s).len(), 1);
    assert_eq!(orders(&env), sent);

    // Pending in history (human and JSON) and in `approve --list`.
    let history = stdout(&env.cardform(&["state", "history"]).output().unwrap());
    assert!(
        history.contains("Plans that waited for approval"),
        "{history}"
    );
    assert!(history.contains("pending"), "{history}");
    let entries: Vec<serde_json::Value> = serde_json::from_str(&stdout(
        &env.cardform(&["state", "history", "--json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let recorded: Vec<&serde_json::Value> =
        entries.iter().filter_map(|e| e.get("approval")).collect();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["status"], "pending");
    let list = env.cardform(&["approve", "--list"]).output().unwrap();
    assert_success(&list);
    assert!(
        stdout(&list).contains("over --max-prune 1"),
        "{}",
        stdout(&list)
    );

    // Without the token: 401, and nothing is approved.
    let no_token = s.request("GET", "/api/approvals", &[], "");
    assert_eq!(no_token.status, 401);
    assert!(!no_token.body.contains("max-prune"), "{}", no_token.body);
    let path = format!("/api/approvals/{id}/approve");
    assert_eq!(s.request("POST", &path, &[], "").status, 401);
    assert_eq!(approvals(&s)[0]["status"], "pending");

    // Approved from the command line: the next reconcile applies it, and history says so.
    let out = env
        .cardform(&["approve", &id, "--by", "alice"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains(&format!("Approved plan {id}")),
        "{}",
        stdout(&out)
    );
    let approved = &approvals(&s)[0];
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approved_by"], "alice");
    reconcile(&s);
    assert_eq!(frozen(&env), 4);
    let applied = &approvals(&s)[0];
    assert_eq!(applied["status"], "applied", "{applied}");
    let serial = applied["applied_serial"].as_u64().unwrap();
    let entries: Vec<serde_json::Value> = serde_json::from_str(&stdout(
        &env.cardform(&["state", "history", "--json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let run = entries.iter().find(|e| e["serial"] == serial).unwrap();
    assert_eq!(run["summary"]["approval"], id.as_str());

    // Approving it again is a conflict; an unknown id is not found.
    let again = s.post(&path, r#"{"by": "bob"}"#);
    assert_eq!(again.status, 409, "{again:?}");
    assert_eq!(s.post("/api/approvals/999/approve", "").status, 404);
    let out = env.cardform(&["approve", &id]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not pending"), "{}", stderr(&out));
}

#[test]
fn a_plan_past_the_day_budget_waits_and_an_approval_of_a_changed_plan_is_superseded() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet(0..2));
    // Two cards at 5.00 fit a day's 12.00; a third would not.
    let args = [
        "-f",
        "cards",
        "--max-fees-per-day",
        "12.00",
        "--interval",
        "1h",
    ];
    let s = serve::start(&env, "budget", &args);
    reconciled(&s, 1);
    assert_eq!(env.inspect().cards, 2);

    let sent = orders(&env);
    env.write("cards/a.yaml", &fleet(0..3));
    reconciled(&s, 2);
    assert_eq!(orders(&env), sent, "nothing is sent while the plan waits");
    let first = approvals(&s)[0].clone();
    assert_eq!(first["status"], "pending");
    assert_eq!(first["summary"]["create"], 1);
    assert_eq!(first["summary"]["fees"], "5.00");
    let reason = first["reasons"][0].as_str().unwrap();
    assert!(
        reason.contains("charged 10.00 today") && reason.contains("over --max-fees-per-day 12.00"),
        "{reason}"
    );
    let first_id = first["id"].as_str().unwrap().to_owned();

    // Approved while no replica runs, and the declarations change before the next reconcile: the
    // plan it approved is not the plan now, so the approval is superseded and the new plan waits
    // in turn.
    drop(s);
    let out = env
        .cardform(&["approve", &first_id, "--by", "finance"])
        .output()
        .unwrap();
    assert_success(&out);
    env.write("cards/a.yaml", &fleet(0..4));
    let s = serve::start(&env, "budget-again", &args);
    reconciled(&s, 1);
    assert_eq!(
        orders(&env),
        sent,
        "a changed plan is not applied on an old approval"
    );
    let listed = approvals(&s);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[1]["id"], first_id.as_str());
    assert_eq!(listed[1]["status"], "superseded");
    assert_eq!(listed[1]["approved_by"], "finance");
    assert_eq!(listed[0]["status"], "pending");
    assert_eq!(listed[0]["summary"]["create"], 2);
    let second_id = listed[0]["id"].as_str().unwrap().to_owned();
    let out = env.cardform(&["approve", &first_id]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a superseded plan cannot be approved"
    );

    // The new one approved over HTTP (as the dashboard does): applied at once, with no other
    // trigger, both cards issued once each.
    let a = s.post(
        &format!("/api/approvals/{second_id}/approve"),
        r#"{"by": "finance"}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["status"], "approved");
    assert_eq!(a.json()["approved_by"], "finance");
    s.wait_for("the approved plan applied", Duration::from_secs(5), |s| {
        approvals(s)[0]["status"] == "applied"
    });
    assert_eq!(env.inspect().cards, 4);
    assert!(env.inspect().issue_orders.iter().all(|c| c.count == 1));
    // Nothing left to apply: the next reconcile records no new approval.
    reconcile(&s);
    assert_eq!(approvals(&s).len(), 2);
}

/// `cardform approve` in another process cannot ask the leader for a reconcile; the leader sees
/// the approval on its own within seconds and applies the plan, with no interval or POST.
#[test]
fn an_approval_from_the_cli_is_applied_within_seconds_without_a_trigger() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet(0..3));
    let args = [
        "-f",
        "cards",
        "--max-fees-per-day",
        "1.00",
        "--interval",
        "1h",
    ];
    let s = serve::start(&env, "cli-approve", &args);
    reconciled(&s, 1);
    assert_eq!(orders(&env), 0, "nothing is sent while the plan waits");
    let id = approvals(&s)[0]["id"].as_str().unwrap().to_owned();
    // A few looks at the approvals with nothing new ask for nothing.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(s.count("reconcile started"), 1, "{}", s.log());

    let out = env.cardform(&["approve", &id]).output().unwrap();
    assert_success(&out);
    let approved = std::time::Instant::now();
    s.wait_for("the approved plan applied", Duration::from_secs(5), |s| {
        approvals(s)[0]["status"] == "applied"
    });
    eprintln!("applied {:?} after the CLI approval", approved.elapsed());
    assert_eq!(env.inspect().cards, 3);
    assert!(env.inspect().issue_orders.iter().all(|c| c.count == 1));
    assert_eq!(s.count("reconcile started"), 2, "{}", s.log());
}

#[test]
fn after_a_run_braked_on_the_failure_rate_nothing_applies_until_approved() {
    let env = Env::with_state(
        cardform::sandbox::SandboxConfig {
            fail_products: vec!["MC_EUR_PREMIUM".into()],
            ..fast_sandbox()
        },
        Some(Env::fresh_pg_state()),
    );
    let mut yaml = String::from("version: 1\ncards:\n");
    for i in 0..30 {
        yaml.push_str(&format!(
            "  - {{key: p-{i:02}, external_user_id: u-{i:02}, product_code: MC_EUR_PREMIUM}}\n"
        ));
    }
    env.write("cards/a.yaml", &yaml);
    let s = serve::start(&env, "brake", &["-f", "cards", "--interval", "1h"]);
    reconciled(&s, 1);
    let history: Vec<serde_json::Value> = serde_json::from_str(&stdout(
        &env.cardform(&["state", "history", "--json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let stopped = history[0]["summary"]["stopped"]
        .as_str()
        .unwrap_or_default();
    assert!(stopped.contains("--max-failure-rate"), "{history:?}");

    // The re-plan (new attempts for the failed cards) waits: the brake holds until approved.
    let sent = orders(&env);
    reconcile(&s);
    assert_eq!(orders(&env), sent, "nothing is sent after a brake");
    let waiting = approvals(&s);
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    let reason = waiting[0]["reasons"][0].as_str().unwrap();
    assert!(reason.contains("stopped on --max-failure-rate"), "{reason}");

    let id = waiting[0]["id"].as_str().unwrap().to_owned();
    assert_success(&env.cardform(&["approve", &id]).output().unwrap());
    reconcile(&s);
    assert!(orders(&env) > sent, "the approved plan is applied");
    assert_eq!(approvals(&s)[0]["status"], "applied");
}
