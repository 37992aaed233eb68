//! Funding as code: declared top-ups (on a card in YAML, or in bulk from a top-up CSV) are
//! planned with their fees, sent through the journal exactly once whatever happens to the run,
//! retried under a new key when they fail, and never edited once sent.

use crate::harness::*;
use cardform::sandbox::SandboxConfig;
use rust_decimal::Decimal;
use std::time::Duration;

fn rich() -> SandboxConfig {
    SandboxConfig {
        balance: Decimal::from(1_000_000),
        ..fast_sandbox()
    }
}

fn fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ndefaults: {product_code: VISA_USD_STD}\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: c{i:04}, external_user_id: u{i:04}}}\n"
        ));
    }
    s
}

fn payroll(n: usize, amount: &str) -> String {
    let mut s = String::from("key,topup_id,amount,label.run\n");
    for i in 0..n {
        s.push_str(&format!("c{i:04},2026-11,{amount},payroll\n"));
    }
    s
}

fn plan_json(env: &Env, files: &[&str]) -> serde_json::Value {
    let mut args = vec!["plan", "--json"];
    for f in files {
        args.extend(["-f", f]);
    }
    let out = env.cardform(&args).output().unwrap();
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn money(v: &serde_json::Value) -> Decimal {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn a_payroll_csv_of_1000_topups_is_sent_once_with_the_exact_charge() {
    let env = Env::with(rich());
    env.write("cards.yaml", &fleet(1000));
    env.write("payroll.csv", &payroll(1000, "50.00"));
    let plan = plan_json(&env, &["cards.yaml", "payroll.csv"]);
    assert_eq!(
        plan["totals"]["counts"]["topup"], 1000,
        "{}",
        plan["totals"]
    );
    let estimated = money(&plan["totals"]["charge"]);
    // 1,000 × (issue 5.00 + top-up 50.00 + fee 50 × 1.5% + 0.30 = 1.05)
    assert_eq!(estimated, "56050.00".parse::<Decimal>().unwrap());

    let out = env
        .cardform(&[
            "apply",
            "-f",
            "cards.yaml",
            "-f",
            "payroll.csv",
            "--auto-approve",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let seen = env.inspect();
    assert_eq!(seen.calls_to("cards/topup"), 1000);
    assert_eq!(
        seen.total_charged, estimated,
        "charged exactly what the plan said"
    );
    assert!(
        stdout(&out).contains(&format!("actually charged {estimated} USDT")),
        "{}",
        stdout(&out)
    );
    let out = env
        .cardform(&[
            "plan",
            "-f",
            "cards.yaml",
            "-f",
            "payroll.csv",
            "--detailed-exitcode",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_killed_apply_sends_each_topup_exactly_once() {
    let env = Env::with(SandboxConfig {
        order_latency: Duration::from_millis(600),
        ..rich()
    });
    env.write("cards.yaml", &fleet(60));
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    env.write("payroll.csv", &payroll(60, "25.00"));
    let args = [
        "apply",
        "-f",
        "cards.yaml",
        "-f",
        "payroll.csv",
        "--auto-approve",
        "--parallelism",
        "8",
    ];
    for until in [5, 20, 40] {
        let mut child = env
            .process(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while env.inspect().calls_to("cards/topup") < until
            && t0.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL, mid-run
        child.wait().unwrap();
    }
    let out = env.cardform(&args).output().unwrap();
    assert_success(&out);
    // 60 issue orders and exactly 60 top-up orders: no top-up was created twice.
    let seen = env.inspect();
    assert_eq!(seen.orders, 120, "{seen:?}");
    let per_topup = "25.68".parse::<Decimal>().unwrap(); // 25.00 + 25 × 1.5% + 0.30, half up
    assert_eq!(
        seen.total_charged,
        Decimal::from(60) * ("5.00".parse::<Decimal>().unwrap() + per_topup)
    );
    let out = env
        .cardform(&[
            "plan",
            "-f",
            "cards.yaml",
            "-f",
            "payroll.csv",
            "--detailed-exitcode",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

#[test]
fn a_failed_topup_is_sent_again_by_the_next_run_under_a_new_key() {
    let env = Env::with(SandboxConfig {
        fail_rate: 0.5,
        seed: 7,
        ..rich()
    });
    env.write("cards.yaml", &fleet(12));
    env.write("payroll.csv", &payroll(12, "20.00"));
    let args = [
        "apply",
        "-f",
        "cards.yaml",
        "-f",
        "payroll.csv",
        "--auto-approve",
        "--max-failure-rate",
        "100%",
    ];
    let mut converged = false;
    for _ in 0..12 {
        let out = env.cardform(&args).output().unwrap();
        if out.status.success() {
            converged = true;
            break;
        }
        assert!(stdout(&out).contains("provider_error"), "{}", stdout(&out));
    }
    assert!(converged, "every failure is retried by the next run");
    let mut retried = 0;
    for i in 0..12 {
        let key = format!("c{i:04}");
        let card: serde_json::Value = serde_json::from_str(&stdout(
            &env.cardform(&["show", &key, "--json"]).output().unwrap(),
        ))
        .unwrap();
        let topups: Vec<&serde_json::Value> = card["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["kind"] == "topup")
            .collect();
        let completed = topups.iter().filter(|o| o["phase"] == "completed").count();
        assert_eq!(completed, 1, "{key}: {topups:#?}");
        let mut keys: Vec<&str> = topups
            .iter()
            .map(|o| o["idempotency_key"].as_str().unwrap())
            .collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), topups.len(), "each attempt has its own key");
        if topups.len() > 1 {
            retried += 1;
            assert!(
                topups[..topups.len() - 1]
                    .iter()
                    .all(|o| o["phase"] == "failed"),
                "{topups:#?}"
            );
        }
    }
    assert!(
        retried > 0,
        "with a 50% failure rate some top-up failed first"
    );
}

#[test]
fn topup_problems_are_caught_before_anything_is_sent() {
    let env = Env::with(rich());
    let yaml = |amount: &str, status: &str| {
        format!(
            "version: 1\ndefaults: {{product_code: VISA_USD_STD}}\ncards:\n  - key: alice\n    \
             external_user_id: u-1\n    status: {status}\n    topups:\n      - {{id: 2026-11, \
             amount: \"{amount}\"}}\n"
        )
    };
    env.write("cards.yaml", &yaml("100.00", "active"));
    insta::assert_snapshot!(
        "topup_plan_human",
        stdout(
            &env.cardform(&["plan", "-f", "cards.yaml"])
                .output()
                .unwrap()
        )
    );
    insta::assert_snapshot!(
        "topup_plan_markdown",
        stdout(
            &env.cardform(&["plan", "-f", "cards.yaml", "--format", "markdown"])
                .output()
                .unwrap()
        )
        .lines()
        .filter(|l| !l.starts_with("<sub>state"))
        .collect::<Vec<_>>()
        .join("\n")
    );
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let sent = env.inspect().orders;
    let refused = |text: &str, needle: &str| {
        env.write("cards.yaml", text);
        let out = env
            .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(
            stdout(&out).contains(needle) || stderr(&out).contains(needle),
            "{needle}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    };
    // Money sent cannot be edited.
    refused(
        &yaml("150.00", "active"),
        "top-up alice:2026-11: 100.00 was sent already and cannot be changed to 150.00",
    );
    // A new top-up on a card declared frozen.
    refused(
        &yaml("100.00", "frozen").replace(
            "amount: \"100.00\"}\n",
            "amount: \"100.00\"}\n      - {id: extra, amount: \"20.00\"}\n",
        ),
        "top-up alice:extra: its card is declared frozen",
    );
    // Outside the product's limits.
    refused(
        &yaml("100.00", "active").replace(
            "amount: \"100.00\"}\n",
            "amount: \"100.00\"}\n      - {id: huge, amount: \"999999.00\"}\n",
        ),
        "alice:huge: top-up 999999.00 is outside the product's limits",
    );
    // A top-up for a card no file declares, with file, line and column.
    env.write("cards.yaml", &yaml("100.00", "active"));
    env.write("more.csv", "key,topup_id,amount\nalicee,2026-12,10.00\n");
    let out = env
        .cardform(&["validate", "-f", "cards.yaml", "-f", "more.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("no card `alicee` is declared")
            && err.contains("more.csv:2:1")
            && err.contains("did you mean `alice`?"),
        "{err}"
    );
    assert_eq!(env.inspect().orders, sent, "nothing was sent");

    // A sent top-up that leaves the declarations is listed; nothing is undone.
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: alice, external_user_id: u-1, product_code: VISA_USD_STD}\n",
    );
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("alice:2026-11") && stdout(&out).contains("money sent stays sent"),
        "{}",
        stdout(&out)
    );
}
