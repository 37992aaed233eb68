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
    // Each top-up's record followed its orders through every kill: all completed, labels kept.
    let records: serde_json::Value = serde_json::from_str(&stdout(
        &env.cardform(&["state", "list", "--topup", "2026-11", "--json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 60);
    assert!(
        records
            .iter()
            .all(|r| r["status"] == "completed" && r["labels"]["run"] == "payroll"),
        "{records:#?}"
    );
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
    // Each record holds its latest attempt: completed, the failed ones before it counted.
    let records: serde_json::Value = serde_json::from_str(&stdout(
        &env.cardform(&["state", "list", "--topup", "*", "--json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    let records = records.as_array().unwrap();
    assert!(records.iter().all(|r| r["status"] == "completed"));
    assert_eq!(
        records
            .iter()
            .filter(|r| r["attempt"].as_u64() > Some(1))
            .count(),
        retried
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

/// Two cards, three top-ups: one declared in YAML, two from a payroll CSV with a label column.
fn funded(env: &Env) {
    env.write(
        "cards.yaml",
        "version: 1\ndefaults: {product_code: VISA_USD_STD}\ncards:\n  - key: alice\n    \
         external_user_id: u-1\n    topups:\n      - {id: 2026-11, amount: \"100.00\"}\n  \
         - {key: bob, external_user_id: u-2}\n",
    );
    env.write(
        "payroll.csv",
        "key,topup_id,amount,label.run\nalice,bonus,10.00,payroll\nbob,2026-11,25.00,payroll\n",
    );
}

fn json_of(env: &Env, args: &[&str]) -> serde_json::Value {
    let out = env.cardform(args).output().unwrap();
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn ids(rows: &serde_json::Value) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}:{}",
                t["card"].as_str().unwrap(),
                t["id"].as_str().unwrap()
            )
        })
        .collect()
}

/// What state keeps of each top-up (its labels, status, charge) and every report that shows it:
/// `show`, `state list --topup`, `state history`, `state diff`, `state export`; and the balance a
/// refresh reads.
fn topup_records_are_kept_and_reported(backend: Backend) {
    let env = Env::on(backend, rich());
    funded(&env);
    let files = ["-f", "cards.yaml", "-f", "payroll.csv"];
    let apply = [&["apply", "--auto-approve"][..], &files[..]].concat();
    assert_success(&env.cardform(&apply).output().unwrap());

    // show: the card's top-ups with their labels, and a charged total that adds up.
    let alice = json_of(&env, &["show", "alice", "--json"]);
    let topups = &alice["topups"];
    assert_eq!(ids(topups), ["alice:2026-11", "alice:bonus"], "{alice:#}");
    assert_eq!(topups[0]["labels"], serde_json::json!({}));
    assert_eq!(topups[1]["labels"], serde_json::json!({"run": "payroll"}));
    assert_eq!(topups[1]["status"], "completed");
    assert_eq!(topups[1]["charge"], "10.45"); // 10.00 + 10 × 1.5% + 0.30
    let orders: Decimal = alice["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| money(&o["charge"]))
        .sum();
    assert_eq!(money(&alice["card"]["charged"]), orders, "{alice:#}");
    let text = stdout(&env.cardform(&["show", "alice"]).output().unwrap());
    assert!(
        text.contains("Top-ups:")
            && text.contains("bonus    completed  10.00   10.45   1        run=payroll"),
        "{text}"
    );

    // state list --topup: top-up rows, filtered like kubectl filters a kind.
    let by_id = json_of(&env, &["state", "list", "--topup", "2026-11", "--json"]);
    assert_eq!(ids(&by_id), ["alice:2026-11", "bob:2026-11"]);
    let labelled = json_of(
        &env,
        &[
            "state",
            "list",
            "--topup",
            "*",
            "--label",
            "run=payroll",
            "--json",
        ],
    );
    assert_eq!(ids(&labelled), ["alice:bonus", "bob:2026-11"]);
    let prefix = json_of(&env, &["state", "list", "--topup", "bo*", "--json"]);
    assert_eq!(ids(&prefix), ["alice:bonus"]);
    let failed = json_of(
        &env,
        &[
            "state", "list", "--topup", "*", "--status", "failed", "--json",
        ],
    );
    assert_eq!(ids(&failed), Vec::<String>::new());
    let table = stdout(
        &env.cardform(&["state", "list", "--topup", "2026-11"])
            .output()
            .unwrap(),
    );
    assert!(
        table.starts_with("CARD   TOPUP    STATUS     AMOUNT  CHARGE  ATTEMPT  SLUG  LABELS")
            && table
                .contains("2 top-ups: 125.00 USDT sent to cards, 127.48 USDT charged in total."),
        "{table}"
    );
    let out = env
        .cardform(&["state", "list", "--topup", "*", "--status", "active"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("prepared, open, completed, failed"));

    // history: the top-up orders each run sent, from the journal.
    let history = json_of(&env, &["state", "history", "--json"]);
    assert_eq!(history[0]["topups_sent"], 3, "{history:#}");

    // diff and export: the top-up records, labels included; CSV stays cards-only by default.
    let diff = json_of(&env, &["state", "diff", "0", "1", "--json"]);
    assert_eq!(
        ids(&diff["topups"]["added"]),
        ["alice:2026-11", "alice:bonus", "bob:2026-11"]
    );
    let human = stdout(&env.cardform(&["state", "diff", "0", "1"]).output().unwrap());
    assert!(
        human.contains("+ topup alice:bonus (added)")
            && human.contains("+label.run: payroll")
            && human
                .contains("2 added, 0 removed, 0 changed; top-ups: 3 added, 0 removed, 0 changed."),
        "{human}"
    );
    let export = json_of(&env, &["state", "export", "--format", "json"]);
    assert_eq!(export["cards"].as_array().unwrap().len(), 2);
    assert_eq!(
        ids(&export["topups"]),
        ["alice:2026-11", "alice:bonus", "bob:2026-11"]
    );
    let only = json_of(
        &env,
        &["state", "export", "--format", "json", "--kind", "topup"],
    );
    assert!(only.get("cards").is_none() && only["topups"].as_array().unwrap().len() == 3);
    let csv = stdout(
        &env.cardform(&["state", "export", "--format", "csv", "--kind", "topup"])
            .output()
            .unwrap(),
    );
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("key,topup_id,amount,status,attempt,charge,error_slug,created_at,label.run")
    );
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("alice,2026-11,100.00,completed,1,101.80,,")
    );
    let cards_csv = stdout(
        &env.cardform(&["state", "export", "--format", "csv"])
            .output()
            .unwrap(),
    );
    assert!(cards_csv.starts_with("key,card_id,status,"), "{cards_csv}");
    assert_eq!(cards_csv.lines().count(), 3);

    // refresh: the card's balance, as the provider reports it.
    assert_eq!(alice["card"].get("balance"), None, "not read yet");
    assert_success(&env.cardform(&["refresh"]).output().unwrap());
    let alice = json_of(&env, &["show", "alice", "--json"]);
    assert_eq!(alice["card"]["balance"], "110.00");
    let text = stdout(&env.cardform(&["show", "bob"]).output().unwrap());
    assert!(text.contains("balance         25.00 USDT"), "{text}");
    let diff = json_of(&env, &["state", "diff", "--json"]);
    assert_eq!(
        diff["changed"][0]["fields"],
        serde_json::json!(["provider_status", "last4", "balance"])
    );

    // Nothing left to do; then a sent top-up's labels change: its record follows, state only.
    let plan = [&["plan", "--detailed-exitcode"][..], &files[..]].concat();
    let out = env.cardform(&plan).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    env.write(
        "payroll.csv",
        "key,topup_id,amount,label.run\nalice,bonus,10.00,bonus\nbob,2026-11,25.00,payroll\n",
    );
    let out = env.cardform(&plan).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("~ alice:bonus  labels run=bonus")
            && stdout(&out).contains("Plan: 1 to relabel; 2 unchanged."),
        "{}",
        stdout(&out)
    );
    let orders = env.inspect().orders;
    let apply = [&["apply", "--auto-approve"][..], &files[..]].concat();
    assert_success(&env.cardform(&apply).output().unwrap());
    assert_eq!(env.inspect().orders, orders, "a relabel sends nothing");
    let alice = json_of(&env, &["show", "alice", "--json"]);
    assert_eq!(
        alice["topups"][1]["labels"],
        serde_json::json!({"run": "bonus"})
    );
    let diff = json_of(&env, &["state", "diff", "--json"]);
    assert_eq!(
        diff["topups"]["changed"][0]["fields"],
        serde_json::json!(["labels"])
    );
    let out = env.cardform(&plan).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
}

crate::harness::on_both_backends!(topup_records_are_kept_and_reported);

#[test]
fn the_json_plan_of_topups() {
    let env = Env::with(rich());
    funded(&env);
    let mut doc = plan_json(&env, &["cards.yaml", "payroll.csv"]);
    doc["created_at"] = "[TIME]".into();
    let lineage = doc["state"]["lineage"].as_str().unwrap().to_owned();
    doc["state"]["fingerprint"] = doc["state"]["fingerprint"]
        .as_str()
        .unwrap()
        .replace(&lineage, "[LINEAGE]")
        .into();
    doc["state"]["lineage"] = "[LINEAGE]".into();
    insta::assert_json_snapshot!("topup_plan_json", doc);
}

#[test]
fn a_renamed_card_keeps_its_topups_sent() {
    let env = Env::with(rich());
    funded(&env);
    let files = ["-f", "cards.yaml", "-f", "payroll.csv"];
    assert_success(
        &env.cardform(&[&["apply", "--auto-approve"][..], &files[..]].concat())
            .output()
            .unwrap(),
    );
    let sent = env.inspect().calls_to("cards/topup");
    assert_success(
        &env.cardform(&["state", "mv", "alice", "alice-x"])
            .output()
            .unwrap(),
    );
    let yaml = std::fs::read_to_string(env.path("cards.yaml")).unwrap();
    env.write(
        "cards.yaml",
        &yaml.replace("key: alice\n", "key: alice-x\n"),
    );
    let csv = std::fs::read_to_string(env.path("payroll.csv")).unwrap();
    env.write("payroll.csv", &csv.replace("alice,", "alice-x,"));
    let out = env
        .cardform(&[&["apply", "--auto-approve"][..], &files[..]].concat())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        env.inspect().calls_to("cards/topup"),
        sent,
        "{}",
        stdout(&out)
    );
    let moved = json_of(&env, &["show", "alice-x", "--json"]);
    assert_eq!(ids(&moved["topups"]), ["alice-x:2026-11", "alice-x:bonus"]);
    assert_eq!(moved["topups"][1]["labels"]["run"], "payroll");

    // A rename declared with `moved:` plans the move and nothing else: no top-up twice.
    let yaml = std::fs::read_to_string(env.path("cards.yaml")).unwrap();
    env.write(
        "cards.yaml",
        &format!(
            "{}moved:\n  - {{from: alice-x, to: alice-y}}\n",
            yaml.replace("key: alice-x\n", "key: alice-y\n")
        ),
    );
    let csv = std::fs::read_to_string(env.path("payroll.csv")).unwrap();
    env.write("payroll.csv", &csv.replace("alice-x,", "alice-y,"));
    let plan = json_of(&env, &[&["plan", "--json"][..], &files[..]].concat());
    assert_eq!(
        plan["totals"]["counts"],
        serde_json::json!({"move": 1}),
        "{plan:#}"
    );
    assert_success(
        &env.cardform(&[&["apply", "--auto-approve"][..], &files[..]].concat())
            .output()
            .unwrap(),
    );
    assert_eq!(env.inspect().calls_to("cards/topup"), sent);
    let moved = json_of(&env, &["show", "alice-y", "--json"]);
    assert_eq!(ids(&moved["topups"]), ["alice-y:2026-11", "alice-y:bonus"]);

    // The old key declared again, with the top-ups it had: a new card, sent its own top-ups
    // under keys of their own. Those its first card was sent under moved with it and are never
    // re-sent (the journal refused them, and the whole run stopped).
    let csv = std::fs::read_to_string(env.path("payroll.csv")).unwrap();
    let again: String = csv
        .lines()
        .filter(|l| l.starts_with("alice-y,"))
        .map(|l| format!("{}\n", l.replacen("alice-y,", "alice,", 1)))
        .collect();
    env.write("payroll.csv", &format!("{csv}{again}"));
    let yaml = std::fs::read_to_string(env.path("cards.yaml")).unwrap();
    let alice_y = yaml
        .split("\n  - ")
        .find(|c| c.contains("key: alice-y\n"))
        .unwrap()
        .replace("key: alice-y\n", "key: alice\n");
    let yaml = yaml.replace("moved:\n  - {from: alice-x, to: alice-y}\n", "");
    env.write(
        "cards.yaml",
        &format!("{}  - {}\n", yaml, alice_y.trim_end()),
    );
    let out = env
        .cardform(&[&["apply", "--auto-approve"][..], &files[..]].concat())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        env.inspect().calls_to("cards/topup"),
        sent + 2,
        "{}",
        stdout(&out)
    );
    let new = json_of(&env, &["show", "alice", "--json"]);
    assert!(new["card"]["card_id"].is_string(), "{new:#}");
    assert_ne!(new["card"]["card_id"], moved["card"]["card_id"]);
    assert_eq!(ids(&new["topups"]), ["alice:2026-11", "alice:bonus"]);
    let plan = stdout(
        &env.cardform(&[&["plan"][..], &files[..]].concat())
            .output()
            .unwrap(),
    );
    assert!(plan.contains("No changes."), "{plan}");
}
