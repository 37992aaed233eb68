//! `cardform apply` against the sandbox with its fault options on, through the real binary.

use crate::harness::*;
use rust_decimal::Decimal;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn fleet(n: usize, product: &str) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: card-{i:05}, external_user_id: u-{i:05}, product_code: {product}}}\n"
        ));
    }
    s
}

/// Every declared card was ordered exactly once, and the balance moved by exactly `per_card` each.
fn assert_exactly_once(env: &Env, n: usize, per_card: Decimal) {
    let inspection = env.inspect();
    let total: u64 = inspection.issue_orders.iter().map(|c| c.count).sum();
    assert_eq!(
        total as usize, n,
        "issue orders: {:?}",
        inspection.issue_orders
    );
    assert!(
        inspection.issue_orders.iter().all(|c| c.count == 1),
        "a card was ordered twice: {:?}",
        inspection
            .issue_orders
            .iter()
            .filter(|c| c.count != 1)
            .collect::<Vec<_>>()
    );
    assert_eq!(inspection.total_charged, per_card * Decimal::from(n as u64));
}

#[test]
fn apply_then_plan_has_no_changes() {
    let env = Env::new();
    let f = env.write("cards.yaml", ONBOARDING);
    let f = f.to_str().unwrap();
    let out = env
        .cardform(&["apply", "-f", f, "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("issued        3"), "{text}");
    // alice 5 + 50 + 0.75 + 0.30 = 56.05; bob 5.00; carol 15 + 100 + 2 = 117.00
    assert!(
        text.contains("estimated 178.05 USDT, actually charged 178.05 USDT"),
        "{text}"
    );
    let inspection = env.inspect();
    assert_eq!(inspection.total_charged, "178.05".parse().unwrap());
    assert!(
        inspection.calls.get("cards/freeze").copied().unwrap_or(0) >= 1,
        "carol is declared frozen"
    );

    let out = env
        .cardform(&["plan", "-f", f, "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."));
}

#[test]
fn apply_without_a_terminal_refuses_and_sends_nothing() {
    let env = Env::new();
    let f = env.write("cards.yaml", ONBOARDING);
    let out = env
        .cardform(&["apply", "-f", f.to_str().unwrap()])
        .write_stdin("yes\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--auto-approve"), "{}", stderr(&out));
    assert_eq!(env.inspect().calls.get("cards/create"), None);
}

#[test]
fn lost_responses_and_5xx_still_issue_exactly_once() {
    let env = Env::with(cardform::sandbox::SandboxConfig {
        drop_rate: 0.4,
        error_rate: 0.15,
        seed: 7,
        ..fast_sandbox()
    });
    let f = env.write("cards.yaml", &fleet(40, "VISA_USD_STD"));
    let out = env
        .cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_exactly_once(&env, 40, "5.00".parse().unwrap());
}

#[test]
fn rate_limited_provider_is_honoured() {
    let env = Env::with(cardform::sandbox::SandboxConfig {
        rate_limit: Some(20),
        ..fast_sandbox()
    });
    let f = env.write("cards.yaml", &fleet(30, "VISA_USD_STD"));
    let out = env
        .cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_exactly_once(&env, 30, "5.00".parse().unwrap());
}

#[test]
fn failed_cards_are_reported_by_slug_and_others_go_on() {
    let env = Env::with(cardform::sandbox::SandboxConfig {
        not_ready_users: vec!["u-00001".into()],
        ..fast_sandbox()
    });
    let f = env.write("cards.yaml", &fleet(3, "VISA_USD_STD"));
    let out = env
        .cardform(&[
            "apply",
            "-f",
            f.to_str().unwrap(),
            "--auto-approve",
            "--kyc-wait",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    // Its cardholder's KYC is pending: the card waits (--kyc-wait), then is left for the next run.
    assert!(text.contains("waiting for KYC   1: card-00001"), "{text}");
    assert!(
        text.contains("hint: KYC was not approved within --kyc-wait"),
        "{text}"
    );
    assert!(text.contains("issued        2"), "{text}");
    // The failed card is planned again as a re-issue (next attempt), the others are done.
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert!(text.contains("1 to re-issue"), "{text}");
}

#[test]
fn failed_orders_are_reissued_with_a_new_attempt() {
    let env = Env::with(cardform::sandbox::SandboxConfig {
        fail_rate: 0.5,
        seed: 3,
        ..fast_sandbox()
    });
    let f = env.write("cards.yaml", &fleet(12, "VISA_USD_STD"));
    let f = f.to_str().unwrap();
    let mut runs = 0;
    loop {
        runs += 1;
        let out = env
            .cardform(&["apply", "-f", f, "--auto-approve"])
            .output()
            .unwrap();
        if out.status.code() == Some(0) {
            break;
        }
        assert!(
            runs < 15,
            "still failing after {runs} runs:\n{}",
            stdout(&out)
        );
    }
    assert!(
        runs > 1,
        "with fail_rate 0.5 some orders must have failed first"
    );
    let out = env
        .cardform(&["plan", "-f", f, "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

fn saved_plan_applies_once_then_is_stale(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    let f = env.write("cards.yaml", ONBOARDING);
    let (f, plan) = (f.to_str().unwrap(), env.path("plan.json"));
    let plan = plan.to_str().unwrap();
    let run = |args: &[&str]| env.cardform(args).output().unwrap();
    assert_success(&run(&["plan", "-f", f, "--out", plan]));
    assert_success(&run(&["apply", plan]));
    let out = run(&["apply", plan]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("stale plan"), "{err}");
    assert!(
        err.contains("serial 1: `cardform --state"),
        "names the run since: {err}"
    );

    // A plan with nothing to do records no run: the serial, and so every other plan saved
    // against it, stays as it is.
    assert_success(&run(&["plan", "-f", f, "--out", plan]));
    for _ in 0..2 {
        let out = run(&["apply", plan]);
        assert_success(&out);
        assert!(
            stdout(&out).contains("No changes in the saved plan: nothing to apply."),
            "{}",
            stdout(&out)
        );
    }
    let runs: serde_json::Value =
        serde_json::from_slice(&run(&["state", "history", "--json"]).stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs:#}");
}

fn two_concurrent_applies_cannot_both_run(backend: Backend) {
    let env = Env::on(
        backend,
        cardform::sandbox::SandboxConfig {
            order_latency: Duration::from_secs(3),
            ..fast_sandbox()
        },
    );
    let f = env.write("cards.yaml", &fleet(5, "VISA_USD_STD"));
    let f = f.to_str().unwrap();
    let mut child = env
        .process(&[])
        .args(["apply", "-f", f, "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first apply has created orders (so it holds the lock).
    let t0 = Instant::now();
    while env
        .inspect()
        .calls
        .get("cards/create")
        .copied()
        .unwrap_or(0)
        == 0
    {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "first apply never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let out = env
        .cardform(&["apply", "-f", f, "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the second apply must fail fast"
    );
    let err = stderr(&out);
    assert!(err.contains("lock"), "{err}");
    assert!(
        err.contains(&child.id().to_string()),
        "names the holder's pid: {err}"
    );
    assert!(child.wait().unwrap().success());
    assert_exactly_once(&env, 5, "5.00".parse().unwrap());
}

fn current_lock(env: &Env) -> Option<cardform::state::LockInfo> {
    env.rt.block_on(async {
        // The state may not exist yet, or be mid-creation: that is "no lock" for a poller.
        let store = cardform::state::Store::open_existing(&env.location())
            .await
            .ok()??;
        let lock = store.current_lock().await.ok()?;
        store.close().await;
        lock
    })
}

/// Waits until `child` holds the state lock: `true`; or until it exits successfully first
/// (it had nothing left to do): `false`. Its failing means it was refused the lock.
fn holds_the_lock(env: &Env, child: &mut std::process::Child) -> bool {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                status.success(),
                "apply pid {} failed: {status}",
                child.id()
            );
            return false;
        }
        if current_lock(env).is_some_and(|l| l.pid == child.id()) {
            return true;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "apply never took the lock"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn killed_applies_converge_to_exactly_one_order_per_card(backend: Backend) {
    let env = Env::on(
        backend,
        cardform::sandbox::SandboxConfig {
            order_latency: Duration::from_millis(400),
            drop_rate: 0.1,
            seed: 11,
            ..fast_sandbox()
        },
    );
    let n = 150;
    let f = env.write("cards.yaml", &fleet(n, "VISA_USD_STD"));
    let f = f.to_str().unwrap();
    let mut killed_holding_the_lock = 0;
    for (round, delay_ms) in [150u64, 400, 250, 700, 100].into_iter().enumerate() {
        let mut child = env
            .process(&[])
            .args(["apply", "-f", f, "--auto-approve", "--parallelism", "16"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Every round's apply gets the lock the previous round's killed one left, with no
        // force-unlock in between (it fails at once, with the default --lock-timeout 0s, if not).
        if !holds_the_lock(&env, &mut child) {
            continue; // it finished before it could be killed: nothing left behind
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL: no chance to clean up
        if child.wait().unwrap().success() {
            continue; // it finished just before the kill
        }
        let left = current_lock(&env).expect("a killed apply leaves its lock row");
        assert_eq!(left.pid, child.id(), "round {round}");
        killed_holding_the_lock += 1;
    }
    // 150 cards at 400 ms an order take seconds: every round is cut short.
    assert_eq!(killed_holding_the_lock, 5);
    // The last killed apply's lock is taken over the same way.
    let out = env
        .cardform(&["apply", "-f", f, "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let out = env
        .cardform(&["plan", "-f", f, "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_exactly_once(&env, n, "5.00".parse().unwrap());
}

fn an_apply_killed_holding_the_lock_is_followed_by_one_that_needs_no_force_unlock(
    backend: Backend,
) {
    let env = Env::on(
        backend,
        cardform::sandbox::SandboxConfig {
            order_latency: Duration::from_secs(2),
            ..fast_sandbox()
        },
    );
    let f = env.write("cards.yaml", &fleet(5, "VISA_USD_STD"));
    let f = f.to_str().unwrap();
    let mut child = env
        .process(&[])
        .args(["apply", "-f", f, "--auto-approve"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(holds_the_lock(&env, &mut child));
    // Orders on their way: the run has begun, and the kill lands mid-apply.
    let t0 = Instant::now();
    while !env.inspect().calls.contains_key("cards/create") {
        assert!(t0.elapsed() < Duration::from_secs(30), "apply never sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL: no chance to release the lock
    child.wait().unwrap();
    let left = current_lock(&env).expect("the killed apply's lock row is left behind");
    assert_eq!(left.pid, child.id());

    let out = env
        .cardform(&["apply", "-f", f, "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(current_lock(&env), None, "the new apply released it");

    let out = env
        .cardform(&["state", "history", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(runs.len(), 2, "{runs:#?}");
    assert!(
        runs.iter()
            .all(|r| r["command"].as_str().unwrap().contains(" apply "))
    );
    assert!(runs[0]["finished_at"].is_null(), "killed: {:#}", runs[0]);
    assert!(
        runs[1]["finished_at"].is_string(),
        "finished: {:#}",
        runs[1]
    );
    let out = env.cardform(&["state", "history"]).output().unwrap();
    assert_success(&out);
    let human = stdout(&out);
    let lines: Vec<&str> = human.lines().filter(|l| l.contains(" apply ")).collect();
    assert_eq!(lines.len(), 2, "{human}");
    assert!(lines[0].contains("unfinished"), "{human}");
    assert!(!lines[1].contains("unfinished"), "{human}");
    assert_exactly_once(&env, 5, "5.00".parse().unwrap());
}

on_both_backends!(
    saved_plan_applies_once_then_is_stale,
    two_concurrent_applies_cannot_both_run,
    killed_applies_converge_to_exactly_one_order_per_card,
    an_apply_killed_holding_the_lock_is_followed_by_one_that_needs_no_force_unlock,
);
