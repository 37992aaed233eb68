//! `cardform serve` completing orders on the sandbox's webhooks: the leader subscribes its
//! `--public-url`, a run takes delivered orders instead of polling, and a lost, late, forged,
//! stale or duplicated delivery never loses, doubles or mis-records a card. Through the real
//! binary, against the sandbox (whose counters say what was delivered and what it got back) and
//! the test PostgreSQL server.

use cardform::sandbox::{Inspection, SandboxConfig, WebhookFaults};
use rust_decimal::Decimal;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::*;
use crate::serve_harness::{self as serve, Serve};

fn fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: w-{i:03}, external_user_id: w-u{i:03}, product_code: VISA_USD_STD}}\n"
        ));
    }
    s
}

/// `cardform serve -f cards --public-url` its own address, healthy.
fn start(env: &Env, name: &str) -> Serve {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", serve::free_port()).parse().unwrap();
    let log_path = env.path(&format!("serve-{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let public = format!("http://{addr}");
    let mut cmd = env.process(&["serve", "--listen", &addr.to_string()]);
    cmd.args(["-f", "cards", "--public-url", &public])
        .env("CARDFORM_SERVE_TOKEN", serve::TOKEN)
        .stdout(Stdio::null())
        .stderr(log);
    let s = Serve {
        child: cmd.spawn().unwrap(),
        addr,
        log_path,
    };
    s.wait_healthy();
    s
}

/// The state's cards as `state list --json` shows them.
fn state_cards(env: &Env) -> Vec<serde_json::Value> {
    let out = env.cardform(&["state", "list", "--json"]).output().unwrap();
    assert_success(&out);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    listed
        .as_array()
        .or_else(|| listed["cards"].as_array())
        .cloned()
        .unwrap_or_default()
}

/// Every card issued exactly once; state holds each with the sandbox's card, and what state
/// says they cost is what the sandbox's ledger took.
fn state_equals_the_sandbox(env: &Env, n: usize) {
    let seen = env.inspect();
    assert!(
        seen.issue_orders.iter().all(|c| c.count == 1),
        "a card was ordered twice: {:?}",
        seen.issue_orders
    );
    assert_eq!(seen.issue_orders.len(), n);
    assert_eq!(seen.cards as usize, n);
    let cards = state_cards(env);
    assert_eq!(cards.len(), n, "{cards:?}");
    let mut charged = Decimal::ZERO;
    for c in &cards {
        assert!(
            c["card_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{c}"
        );
        charged += c["charged"]
            .as_str()
            .and_then(|v| v.parse::<Decimal>().ok())
            .unwrap_or_else(|| panic!("no charged figure: {c}"));
    }
    assert_eq!(charged, seen.total_charged - seen.total_refunded);
}

/// Runs `n` cards through serve against a sandbox with `faults`; the sandbox's inspection
/// once every card is settled, and serve's log.
fn run(n: usize, faults: WebhookFaults, name: &str) -> (Env, Inspection, String) {
    let env = Env::on(
        Backend::Postgres,
        SandboxConfig {
            order_latency: Duration::from_millis(300),
            seed: 11,
            webhooks: faults,
            ..fast_sandbox()
        },
    );
    env.write("cards/a.yaml", &fleet(n));
    let s = start(&env, name);
    s.wait_for("the leader subscribes", Duration::from_secs(15), |s| {
        s.count("webhooks subscribed") == 1
    });
    s.wait_for(
        "every card is issued and the reconcile finishes",
        Duration::from_secs(60),
        |s| s.count("reconcile finished") >= 1,
    );
    let seen = env.inspect();
    let log = s.log();
    (env, seen, log)
}

#[test]
fn drop_forged_reorder_duplicate_and_delay_together_lose_and_double_nothing() {
    let faults = WebhookFaults {
        delay: Duration::from_millis(50),
        duplicate: 1,
        drop_rate: 0.3,
        reorder: true,
        forged: true,
    };
    let (env, seen, log) = run(30, faults, "hostile");
    state_equals_the_sandbox(&env, 30);
    let w = &seen.webhooks;
    assert!(w.dropped > 0, "{w:?}");
    assert!(w.forged > 0, "{w:?}");
    assert_eq!(
        w.forged_accepted, 0,
        "a forged delivery was accepted: {w:?}"
    );
    assert_eq!(
        w.forged_responses.get("401").copied(),
        Some(w.forged),
        "{w:?}"
    );
    let refused = log
        .lines()
        .filter(|l| l.contains("webhook refused"))
        .count() as u64;
    assert_eq!(refused, w.forged, "serve counted every forged delivery");
    assert!(w.stale > 0 && w.duplicates > 0, "{w:?}");
    // Dropped deliveries were made up for by polling.
    assert!(seen.calls_to("orders/check") > 0);
}

#[test]
fn dropped_deliveries_fall_back_to_polling() {
    let faults = WebhookFaults {
        drop_rate: 1.0,
        ..WebhookFaults::default()
    };
    let (env, seen, _) = run(10, faults, "drop");
    state_equals_the_sandbox(&env, 10);
    assert_eq!(seen.webhooks.dropped, 10);
    assert!(seen.calls_to("orders/check") >= 10);
}

#[test]
fn without_faults_webhooks_complete_the_orders_at_under_1_1_calls_per_card() {
    let n = 100;
    let (env, seen, log) = run(n, WebhookFaults::default(), "clean");
    state_equals_the_sandbox(&env, n);
    let w = &seen.webhooks;
    assert_eq!((w.events, w.delivered, w.given_up), (n as u64, n as u64, 0));
    let calls: u64 = seen.calls.values().sum();
    let per_card = calls as f64 / n as f64;
    assert!(
        per_card <= 1.1,
        "{per_card} calls per card: {:?}",
        seen.calls
    );
    assert!(!log.contains(serve::TOKEN));
}

#[test]
fn sigterm_unsubscribes() {
    let env = Env::on(Backend::Postgres, fast_sandbox());
    env.write("cards/a.yaml", &fleet(2));
    let mut s = start(&env, "term");
    s.wait_for("the leader subscribes", Duration::from_secs(15), |s| {
        s.count("webhooks subscribed") == 1
    });
    let status = s.terminate(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{}", s.log());
    assert_eq!(s.count("webhooks unsubscribed"), 1, "{}", s.log());
    let calls = env.inspect().calls;
    assert_eq!(calls.get("wh/subscribe"), Some(&1));
    assert_eq!(calls.get("wh/unsubscribe"), Some(&1));
}
