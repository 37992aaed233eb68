//! Card lifecycle through apply: replacements, status changes, pruning, budgets, --fail-fast,
//! Ctrl-C and NDJSON progress.

use crate::harness::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn apply(env: &Env, f: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", "-f", f, "--auto-approve"];
    args.extend_from_slice(extra);
    env.cardform(&args).output().unwrap()
}

fn calls(env: &Env, endpoint: &str) -> u64 {
    env.inspect().calls.get(endpoint).copied().unwrap_or(0)
}

fn replace_freeze_unfreeze_relabel_and_prune(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    let f = "cards.yaml";
    env.write(
        f,
        "version: 1\ncards:\n  - {key: a, external_user_id: u1, product_code: VISA_USD_STD}\n  - {key: b, external_user_id: u2, product_code: VISA_USD_STD}\n  - {key: c, external_user_id: u3, product_code: VISA_USD_STD}\n",
    );
    let out = apply(&env, f, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // a: new product (replace); b: frozen; c: relabelled.
    env.write(
        f,
        "version: 1\ncards:\n  - {key: a, external_user_id: u1, product_code: MC_EUR_PREMIUM}\n  - {key: b, external_user_id: u2, product_code: VISA_USD_STD, status: frozen}\n  - {key: c, external_user_id: u3, product_code: VISA_USD_STD, labels: {team: ops}}\n",
    );
    let out = env.cardform(&["plan", "-f", f]).output().unwrap();
    let text = stdout(&out);
    assert!(
        text.contains("1 to replace, 1 to freeze, 1 to relabel"),
        "{text}"
    );
    assert!(
        text.contains("product_code VISA_USD_STD → MC_EUR_PREMIUM"),
        "{text}"
    );
    let out = apply(&env, f, &[]);
    assert_success(&out);
    // One freeze for b, one for the old card of a.
    assert_eq!(calls(&env, "cards/freeze"), 2);
    assert_eq!(
        env.inspect().issue_orders.len(),
        4,
        "three cards, plus a's replacement"
    );
    let out = env
        .cardform(&["plan", "-f", f, "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // b back to active; c no longer declared: listed, untouched; with --prune, frozen.
    env.write(
        f,
        "version: 1\ncards:\n  - {key: a, external_user_id: u1, product_code: MC_EUR_PREMIUM}\n  - {key: b, external_user_id: u2, product_code: VISA_USD_STD}\n",
    );
    let out = env.cardform(&["plan", "-f", f]).output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("1 to unfreeze; 1 undeclared"), "{text}");
    let out = apply(&env, f, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(calls(&env, "cards/unfreeze"), 1);
    assert_eq!(
        calls(&env, "cards/freeze"),
        2,
        "undeclared cards are left alone"
    );
    // One of three cards is a third of the fleet: more than the default --max-prune 10%.
    let out = apply(&env, f, &["--prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("more than --max-prune 10%"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        calls(&env, "cards/freeze"),
        2,
        "refused before anything was sent"
    );
    let out = apply(&env, f, &["--prune", "--max-prune", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(calls(&env, "cards/freeze"), 3);
    let out = env
        .cardform(&["plan", "-f", f, "--prune", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn fail_fast_stops_starting_new_work() {
    let users: Vec<String> = (0..20).map(|i| format!("u-{i:05}")).collect();
    // Unknown to the provider: refused at once (a KYC still running would be waited for instead).
    let env = Env::with(cardform::sandbox::SandboxConfig {
        unknown_users: users,
        ..fast_sandbox()
    });
    let mut yaml = String::from("version: 1\ncards:\n");
    for i in 0..20 {
        yaml.push_str(&format!(
            "  - {{key: k{i:02}, external_user_id: u-{i:05}, product_code: VISA_USD_STD}}\n"
        ));
    }
    env.write("cards.yaml", &yaml);
    let out = apply(&env, "cards.yaml", &["--fail-fast", "--parallelism", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("failed        1"), "{text}");
    assert!(text.contains("skipped      19"), "{text}");
    assert_eq!(calls(&env, "cards/create"), 1);
}

fn max_fees_stops_starting_orders_at_the_budget(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    let mut yaml = String::from("version: 1\ncards:\n");
    for i in 0..6 {
        yaml.push_str(&format!(
            "  - {{key: k{i}, external_user_id: u{i}, product_code: VISA_USD_STD}}\n"
        ));
    }
    env.write("cards.yaml", &yaml);
    // The plan itself refuses a budget it cannot meet...
    let out = apply(&env, "cards.yaml", &["--max-fees", "12.00"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("fees 30.00 exceed --max-fees 12.00"),
        "{}",
        stdout(&out)
    );
    assert_eq!(calls(&env, "cards/create"), 0);
}

#[test]
fn ndjson_progress_events() {
    let env = Env::new();
    env.write("cards.yaml", ONBOARDING);
    let out = apply(&env, "cards.yaml", &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every stdout line is a JSON event"))
        .collect();
    assert_eq!(events.first().unwrap()["event"], "started");
    assert_eq!(events.first().unwrap()["total"], 3);
    let done = events.iter().filter(|e| e["event"] == "done").count();
    assert_eq!(done, 3);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "finished");
    assert_eq!(last["summary"]["charged"], "178.05");
}

fn first_ctrl_c_finishes_in_flight_orders_and_exits_130(backend: Backend) {
    let env = Env::on(
        backend,
        cardform::sandbox::SandboxConfig {
            order_latency: Duration::from_millis(1500),
            ..fast_sandbox()
        },
    );
    let mut yaml = String::from("version: 1\ncards:\n");
    for i in 0..40 {
        yaml.push_str(&format!(
            "  - {{key: k{i:02}, external_user_id: u{i:02}, product_code: VISA_USD_STD}}\n"
        ));
    }
    env.write("cards.yaml", &yaml);
    let child = env
        .process(&[])
        .args([
            "apply",
            "-f",
            "cards.yaml",
            "--auto-approve",
            "--parallelism",
            "5",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while calls(&env, "cards/create") < 5 {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = calls(&env, "cards/create");
    assert!(
        created < 40,
        "nothing new starts after Ctrl-C ({created} created)"
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("interrupted"), "{text}");
    // The orders in flight were tracked to the end: nothing is left open, so a re-run only issues
    // the rest, once each.
    let out = apply(&env, "cards.yaml", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let inspection = env.inspect();
    assert!(inspection.issue_orders.iter().all(|c| c.count == 1));
    assert_eq!(inspection.issue_orders.len(), 40);
}

#[test]
fn large_plans_are_grouped_by_product() {
    let env = Env::new();
    let mut yaml = String::from("version: 1\ncards:\n");
    for i in 0..45 {
        let product = if i % 3 == 0 {
            "MC_EUR_PREMIUM"
        } else {
            "VISA_USD_STD"
        };
        yaml.push_str(&format!(
            "  - {{key: k{i:02}, external_user_id: u{i:02}, product_code: {product}}}\n"
        ));
    }
    env.write("cards.yaml", &yaml);
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    insta::assert_snapshot!("plan_grouped", scrub(&stdout(&out), env.dir.path()));
}

#[test]
fn fetch_details_records_last4_and_never_the_pan() {
    let env = Env::new();
    env.write("cards.yaml", ONBOARDING);
    let out = apply(&env, "cards.yaml", &["--fetch-details"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(calls(&env, "cards/get"), 3);
    let export: serde_json::Value = serde_json::from_str(&stdout(
        &env.cardform(&["state", "export", "--format", "json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let bytes = env.state_bytes();
    let client = env.client();
    for key in ["alice-travel", "bob-ops", "carol-premium"] {
        let card = export["cards"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["key"] == key))
            .unwrap();
        let last4 = card["last4"].as_str().expect("last4 recorded");
        let card_id = card["card_id"].as_str().unwrap();
        let real = env.rt.block_on(client.get_card(card_id)).unwrap();
        let pan = real.card_number.as_ref().unwrap().expose().to_owned();
        assert!(pan.ends_with(last4), "{key}: {last4} vs the card's PAN");
        assert!(
            !bytes.windows(pan.len()).any(|w| w == pan.as_bytes()),
            "{key}: the PAN reached the state database"
        );
    }
}

on_both_backends!(
    replace_freeze_unfreeze_relabel_and_prune,
    first_ctrl_c_finishes_in_flight_orders_and_exits_130,
    max_fees_stops_starting_orders_at_the_budget,
);
