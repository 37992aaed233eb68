//! Bind only what checks out, and say when a charge is not the fee: against a sandbox given the
//! hostile switches of issue 26 (every order naming one card, orders completed without a card
//! id, charges ten times the fee or a credit), a card id is never bound to two keys, top-ups are
//! never sent to another person's card, an order that issued nothing stays open, and a charge
//! other than planned is a warning naming the order while every report carries it as observed.

use cardform::sandbox::SandboxConfig;
use rust_decimal::Decimal;
use std::collections::BTreeSet;

use crate::harness::{Env, assert_success, fast_sandbox, stderr, stdout};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn dec(v: &serde_json::Value) -> Decimal {
    d(v.as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}")))
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let out = env.cardform(args).output().unwrap();
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// The cards of `state export`, as (key, card id, charged).
fn exported(env: &Env) -> Vec<(String, Option<String>, Decimal)> {
    let export = json(env, &["state", "export", "--format", "json"]);
    export["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_owned(),
                c["card_id"].as_str().map(str::to_owned),
                dec(&c["charged"]),
            )
        })
        .collect()
}

/// The `finished` event's summary of an `apply --json`.
fn summary_of(out: &std::process::Output) -> serde_json::Value {
    let text = stdout(out);
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "finished")
        .unwrap_or_else(|| panic!("no finished event: {text}"))["summary"]
        .clone()
}

/// Ten cards for ten people; the first three with a declared top-up of 100, 200 and 300.
fn ten_cards() -> String {
    let mut yaml = "version: 1\ncards:\n".to_owned();
    for i in 0..10 {
        let topups = match i {
            0..3 => format!(", topups: [{{id: t1, amount: \"{}.00\"}}]", (i + 1) * 100),
            _ => String::new(),
        };
        yaml.push_str(&format!(
            "  - {{key: card-{i}, external_user_id: u-{i}, product_code: VISA_USD_STD{topups}}}\n"
        ));
    }
    yaml
}

#[test]
fn one_card_id_named_for_every_order_is_bound_once_and_gets_only_its_own_topups() {
    for parallelism in ["1", "16"] {
        let env = Env::with(SandboxConfig {
            same_card_for_every_order: true,
            ..fast_sandbox()
        });
        env.write("cards.yaml", &ten_cards());
        let out = env
            .cardform(&[
                "apply",
                "-f",
                "cards.yaml",
                "--auto-approve",
                "--parallelism",
                parallelism,
            ])
            .output()
            .unwrap();
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert_eq!(out.status.code(), Some(1), "{text}");
        assert!(text.contains("order_mismatch"), "{text}");
        assert!(text.contains("which is already bound to card-"), "{text}");

        let cards = exported(&env);
        assert_eq!(cards.len(), 10);
        let bound: Vec<_> = cards.iter().filter(|(_, id, _)| id.is_some()).collect();
        assert!(bound.len() <= 1, "at most one bound: {bound:?}");
        let ids: BTreeSet<_> = bound.iter().map(|(_, id, _)| id.clone()).collect();
        assert_eq!(ids.len(), bound.len(), "no two keys share a card id");
        // Nine keys failed to bind: their top-ups waited for them and were never sent. The bound
        // key's own top-up (if it has one) reached the provider only if the card is really its
        // own: at a higher parallelism another order may finish first and bind it, and then its
        // top-up is refused (cardform reads whose card it is before sending money to it).
        let own_topups = match bound.first() {
            Some((key, Some(id), _)) if ["card-0", "card-1", "card-2"].contains(&key.as_str()) => {
                let owner = env
                    .rt
                    .block_on(env.client().get_card(id))
                    .unwrap()
                    .external_user_id
                    .unwrap();
                u64::from(owner == key.replace("card-", "u-"))
            }
            _ => 0,
        };
        if parallelism == "1" {
            // One at a time, the first order is the one whose card every order names: it binds
            // rightly, and its top-up goes to its own card.
            assert_eq!(bound.len(), 1, "{cards:?}");
            assert_eq!(bound[0].0, "card-0", "{cards:?}");
        }
        assert_eq!(
            env.inspect().calls_to("cards/topup"),
            own_topups,
            "top-ups: {text}"
        );

        // The refused orders stay in the journal, and the next run checks them again (and
        // refuses them again) rather than issuing new cards.
        let orders = env.inspect().orders;
        let again = env
            .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
        assert_eq!(env.inspect().orders, orders, "no new issue orders");
        let ids: Vec<_> = exported(&env).into_iter().filter_map(|c| c.1).collect();
        assert!(ids.len() <= 1, "{ids:?}");
    }
}

#[test]
fn an_order_completed_without_a_card_id_issues_nothing_and_is_looked_at_again() {
    let env = Env::with(SandboxConfig {
        completed_without_card_id: true,
        ..fast_sandbox()
    });
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: ann, external_user_id: u-1, product_code: VISA_USD_STD}\n",
    );
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("order_mismatch"), "{text}");
    assert!(text.contains("completed without a card id"), "{text}");

    let shown = json(&env, &["show", "ann", "--json"]);
    assert_ne!(shown["card"]["status"], "active", "{shown:#}");
    assert_eq!(shown["card"]["card_id"], serde_json::Value::Null);
    assert_eq!(shown["orders"][0]["phase"], "open", "{shown:#}");

    let plan = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert!(!stdout(&plan).contains("No changes"), "{}", stdout(&plan));
}

#[test]
fn an_overcharge_is_a_warning_naming_the_order_and_recorded_as_charged() {
    let env = Env::with(SandboxConfig {
        charge_multiplier: Some(d("10")),
        ..fast_sandbox()
    });
    let start = env.inspect().balance;
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: ann, external_user_id: u-1, product_code: VISA_USD_STD}\n",
    );
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_success(&out);
    let shown = json(&env, &["show", "ann", "--json"]);
    let order_id = shown["orders"][0]["order_id"].as_str().unwrap().to_owned();
    assert!(
        text.contains(&format!(
            "ann: issue order {order_id} charged 50.00 USDT, the plan expected 5.00 USDT"
        )),
        "{text}"
    );
    assert!(
        text.contains("1 order charged other than the plan expected (recorded as charged)"),
        "{text}"
    );

    // A second card, a declared top-up on the first, in JSON: the summary names both orders.
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: ann, external_user_id: u-1, product_code: VISA_USD_STD,\n     topups: [{id: t1, amount: \"100.00\"}]}\n  - {key: bob, external_user_id: u-2, product_code: VISA_USD_STD}\n",
    );
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let summary = summary_of(&out);
    assert_eq!(summary["charge_warnings"], 2, "{summary:#}");
    let named: BTreeSet<_> = summary["charge_warning_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            assert!(w["order_id"].as_str().is_some_and(|o| !o.is_empty()));
            assert!(dec(&w["charged"]) > dec(&w["expected"]), "{w}");
            w["key"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(named, BTreeSet::from(["ann:t1".into(), "bob".into()]));

    assert_recorded_as_observed(&env, start);
}

#[test]
fn a_credit_where_a_fee_was_expected_is_flagged() {
    let env = Env::with(SandboxConfig {
        charge_multiplier: Some(d("-1")),
        ..fast_sandbox()
    });
    let start = env.inspect().balance;
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: ann, external_user_id: u-1, product_code: VISA_USD_STD}\n",
    );
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let summary = summary_of(&out);
    assert_eq!(summary["charge_warnings"], 1, "{summary:#}");
    let w = &summary["charge_warning_orders"][0];
    assert_eq!(
        (w["key"].as_str(), w["kind"].as_str()),
        (Some("ann"), Some("issue"))
    );
    assert_eq!(dec(&w["charged"]), d("-5.00"), "{w}");
    assert_eq!(dec(&w["expected"]), d("5.00"), "{w}");
    assert_eq!(dec(&summary["charged"]), d("-5.00"), "{summary:#}");
    let event = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "charge_differs")
        .expect("a charge_differs event");
    assert_eq!(event["order_id"], w["order_id"]);

    // In text, the warning says it was a credit.
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: ann, external_user_id: u-1, product_code: VISA_USD_STD}\n  - {key: bob, external_user_id: u-2, product_code: VISA_USD_STD}\n",
    );
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_success(&out);
    assert!(
        text.contains(
            "charged -5.00 USDT, the plan expected 5.00 USDT (a credit: the balance went up)"
        ),
        "{text}"
    );
    assert_recorded_as_observed(&env, start);
}

/// What the sandbox's balance went down by equals the cards' charged in `state export`, the
/// runs' in `state history` and the audit's column: the charge as observed, never "corrected".
fn assert_recorded_as_observed(env: &Env, start: Decimal) {
    let seen = env.inspect();
    let spent = start - seen.balance;
    assert_eq!(spent, seen.total_charged - seen.total_refunded);
    let by_cards: Decimal = exported(env).iter().map(|c| c.2).sum();
    assert_eq!(by_cards, spent, "state export: per-card charged");
    let by_runs: Decimal = json(env, &["state", "history", "--json"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.get("charged").map(dec))
        .sum();
    assert_eq!(by_runs, spent, "state history");
    let by_calls: Decimal = json(env, &["state", "audit", "--format", "json"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["charge"].as_str().map(d))
        .sum();
    assert_eq!(by_calls, spent, "state audit");
    let listed = stdout(&env.cardform(&["state", "list"]).output().unwrap());
    assert!(
        listed.contains(&format!("{spent} USDT charged in total")),
        "state list: {listed}"
    );
}

#[test]
fn no_topup_is_sent_to_a_card_an_answer_gave_to_the_wrong_key() {
    let env = Env::with(SandboxConfig {
        same_card_for_every_order: true,
        ..fast_sandbox()
    });
    // Someone else's card, issued outside this state: every later order names it, and nothing in
    // state says it is taken.
    env.rt.block_on(async {
        env.client()
            .call(
                &cardform::wire::CreateCardRequest {
                    product_code: Some("VISA_USD_STD".into()),
                    product_id: None,
                    external_user_id: "u-someone".into(),
                    initial_topup_amount: None,
                },
                Some("cf-someone-elses-card"),
            )
            .await
            .unwrap()
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: amy, external_user_id: u-amy, product_code: VISA_USD_STD,\n     topups: [{id: t1, amount: \"100.00\"}]}\n",
    );
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("belongs to user u-someone, not u-amy; the top-up was not sent"),
        "{text}"
    );
    assert_eq!(env.inspect().calls_to("cards/topup"), 0, "{text}");
}
