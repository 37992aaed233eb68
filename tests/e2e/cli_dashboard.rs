//! `cardform serve`'s `/metrics` and dashboard, through the real binary against the sandbox and
//! the test PostgreSQL server: the figures equal `state list`'s, in the metrics, in
//! `/api/summary` and on the page as headless Chromium shows it (`tests/browser/dashboard.py`,
//! Playwright driving Debian's Chromium), which also signs in, approves a pending plan and sees
//! no console error. Without Playwright or Chromium that part says SKIPPED, loudly.

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;
use crate::serve_harness::{self as serve, Serve};

fn fleet(keys: &[(&str, &str)]) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for (key, team) in keys {
        s.push_str(&format!(
            "  - {{key: {key}, external_user_id: person-{key}, product_code: VISA_USD_STD, labels: {{team: {team}}}}}\n"
        ));
    }
    s
}

/// What `state list` says: cards by status, and the total line's amount and currency.
struct Listed {
    by_status: BTreeMap<String, u64>,
    total: u64,
    charged: Decimal,
    currency: String,
}

fn listed(env: &Env) -> Listed {
    let out = env.cardform(&["state", "list", "--json"]).output().unwrap();
    assert_success(&out);
    let cards: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut by_status = BTreeMap::new();
    for c in cards.as_array().unwrap() {
        *by_status
            .entry(c["status"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let text = stdout(&env.cardform(&["state", "list"]).output().unwrap());
    // "N cards, 12.00 USDT charged in total." (none before the first card)
    let (amount, currency) = match text.lines().find(|l| l.ends_with("charged in total.")) {
        Some(line) => {
            let money = line.split(", ").nth(1).unwrap();
            money
                .trim_end_matches(" charged in total.")
                .split_once(' ')
                .unwrap()
        }
        None => ("0", ""),
    };
    Listed {
        total: by_status.values().sum(),
        by_status,
        charged: amount.parse().unwrap(),
        currency: currency.to_owned(),
    }
}

/// The samples of `/metrics`, by series as written.
fn metrics(s: &Serve) -> BTreeMap<String, String> {
    let a = s.get("/metrics");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    a.body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn pending(s: &Serve) -> Vec<String> {
    s.get("/api/approvals").json()["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["status"] == "pending")
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn metrics_summary_and_the_page_in_chromium_agree_with_state_list_and_approve_works() {
    let env = Env::postgres();
    let all = [
        ("d-1", "ops"),
        ("d-2", "ops"),
        ("d-3", "sales"),
        ("d-4", "sales"),
    ];
    env.write("cards/a.yaml", &fleet(&all));
    let s = serve::start(
        &env,
        "dash",
        &["-f", "cards", "--prune", "--max-prune", "1"],
    );
    s.wait_for("the fleet applied", Duration::from_secs(30), |_| {
        listed(&env).by_status.get("active") == Some(&4)
    });
    // Two cards gone from the files: pruning both is over --max-prune 1, so the plan waits.
    env.write("cards/a.yaml", &fleet(&all[..2]));
    s.post("/api/reconcile", "");
    s.wait_for("a pending approval", Duration::from_secs(30), |s| {
        !pending(s).is_empty()
    });
    let approve = pending(&s).remove(0);
    let want = listed(&env);
    assert_eq!(want.total, 4);

    // The state-derived figures are cached a few seconds: wait for a read after the apply.
    s.wait_for("the summary caught up", Duration::from_secs(10), |s| {
        let v = s.get("/api/summary").json();
        v["cards"]["total"] == 4 && v["live"]["pending_approvals"] == 1
    });
    let summary = s.get("/api/summary").json();
    assert_eq!(
        summary["cards"]["charged"]
            .as_str()
            .unwrap()
            .parse::<Decimal>()
            .unwrap(),
        want.charged
    );
    assert_eq!(summary["currency"], want.currency.as_str());
    assert_eq!(summary["cards"]["by_label"]["team=sales"], 2);
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs[0]["command"], "serve", "{summary}");
    assert!(
        runs.iter()
            .all(|r| r["by"].as_str().unwrap().chars().count() <= 3),
        "{summary}"
    );
    let shown = summary.to_string();
    for private in ["person-d-1", "d-3"] {
        assert!(!shown.contains(private), "{private} in {shown}");
    }

    let m = metrics(&s);
    assert_eq!(
        m[r#"cardform_cards{status="active",product="VISA_USD_STD"}"#],
        "4"
    );
    let charged: Decimal = m[&format!(r#"cardform_charged{{currency="{}"}}"#, want.currency)]
        .parse()
        .unwrap();
    assert_eq!(charged, want.charged);
    assert_eq!(m["cardform_leader"], "1");
    assert_eq!(m["cardform_pending_approvals"], "1");
    assert!(m[r#"cardform_provider_requests_total{endpoint="cards/create",result="ok"}"#] != "0");
    assert_ne!(m["cardform_last_reconcile_success_timestamp_seconds"], "0");

    browser(&s, &want, &approve);
    // The approved prune froze two cards: once the cache runs out, the figures follow state.
    let after = listed(&env);
    assert_eq!(after.by_status.get("frozen"), Some(&2));
    s.wait_for(
        "the summary after the prune",
        Duration::from_secs(10),
        |s| {
            let v = s.get("/api/summary").json();
            v["cards"]["by_status"]["frozen"] == 2 && v["live"]["pending_approvals"] == 0
        },
    );
    let m = metrics(&s);
    assert_eq!(
        m[r#"cardform_cards{status="frozen",product="VISA_USD_STD"}"#],
        "2"
    );
    assert_eq!(m["cardform_pending_approvals"], "0");
}

/// The page in headless Chromium, through `tests/browser/dashboard.py`, which approves
/// `approve` (through the API when the browser part is SKIPPED); then waits for the plan to apply.
fn browser(s: &Serve, want: &Listed, approve: &str) {
    let expected = serde_json::json!({
        "cards": want.total,
        "charged": want.charged.to_string(),
        "currency": want.currency,
        "by_status": want.by_status,
        "approve": approve,
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(format!("http://{}", s.addr))
        .arg(expected.to_string())
        .env("CARDFORM_SERVE_TOKEN", serve::TOKEN)
        .output()
        .expect("python3 runs");
    let said = format!("{}{}", stdout(&out), String::from_utf8_lossy(&out.stderr));
    if out.status.code() == Some(77) {
        eprintln!(
            "################################################################################"
        );
        eprintln!(
            "# SKIPPED: the dashboard in a real browser. {}",
            said.trim()
        );
        eprintln!("# Install Debian's chromium and `pip install playwright` (see .ci/run).");
        eprintln!(
            "################################################################################"
        );
        let a = s.post(&format!("/api/approvals/{approve}/approve"), "");
        assert_eq!(a.status, 200, "{a:?}");
    } else {
        assert!(
            out.status.success(),
            "the browser check failed:\n{said}\n{}",
            s.log()
        );
        eprintln!("{said}");
    }
    // Approving does not start a reconcile by itself (yet): the next one applies the plan.
    s.post("/api/reconcile", "");
    s.wait_for("the approved plan applied", Duration::from_secs(30), |s| {
        s.get("/api/approvals").json()["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == approve && a["status"] == "applied")
    });
}
