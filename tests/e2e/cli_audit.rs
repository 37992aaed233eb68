//! `show`, `state list|history|diff|export|rm|audit`, `import`, `refresh` and `plan --refresh`,
//! through the real binary against the sandbox; plus the check that state never holds a PAN or
//! CVV the sandbox issued.

use crate::harness::*;
use cardform::client::Client;
use cardform::sandbox::SandboxConfig;
use cardform::state::Store;
use cardform::wire::{CreateCardRequest, FreezeRequest, Order};
use std::collections::BTreeMap;
use std::time::Duration;

fn ok(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

fn fails(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    stderr(&out)
}

async fn wait_terminal(c: &Client, mut o: Order) -> Order {
    while !o.status.is_terminal() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        o = c.check_order(&o.order_id).await.unwrap();
    }
    o
}

/// Issues a card straight at the provider, as if someone did it outside cardform.
fn issue_outside(env: &Env, user: &str) -> String {
    let c = env.client();
    env.rt.block_on(async {
        let req = CreateCardRequest {
            product_code: Some("VISA_USD_STD".into()),
            product_id: None,
            external_user_id: user.into(),
            initial_topup_amount: None,
        };
        let o = c
            .call(&req, Some(&format!("outside-{user}")))
            .await
            .unwrap();
        wait_terminal(&c, o).await.card_id.expect("issued card")
    })
}

fn freeze_outside(env: &Env, card_id: &str, user: &str) {
    let c = env.client();
    env.rt.block_on(async {
        let req = FreezeRequest {
            card_id: card_id.into(),
            external_user_id: user.into(),
        };
        let o = c.call(&req, Some("outside-freeze")).await.unwrap();
        let o = wait_terminal(&c, o).await;
        assert_eq!(o.status.to_string(), "completed");
    });
}

fn cards(env: &Env) -> BTreeMap<String, serde_json::Value> {
    let text = ok(&mut env.cardform(&["show", "--json"]));
    let list: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    list.into_iter()
        .map(|c| (c["key"].as_str().unwrap().to_owned(), c))
        .collect()
}

fn apply(env: &Env, yaml: &str) {
    let f = env.write("cards.yaml", yaml);
    ok(&mut env.cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"]));
}

const CHANGED: &str = r#"version: 1
defaults:
  product_code: VISA_USD_STD
cards:
  - key: alice-travel
    external_user_id: u-1001
    initial_topup: "50.00"
    labels: {team: finance}
  - key: bob-ops
    external_user_id: u-1002
    status: frozen
  - key: carol-premium
    external_user_id: u-1003
    product_code: MC_EUR_PREMIUM
    initial_topup: 100
    status: frozen
  - key: dan-new
    external_user_id: u-1004
"#;

/// Ids, timestamps and last4 differ per run; snapshots keep the shape.
fn with_filters(f: impl FnOnce()) {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"card_[0-9a-f]{8,}", "[CARD_ID]");
    settings.add_filter(r"ord_[0-9a-f]{8,}", "[ORDER_ID]");
    settings.add_filter(
        r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
        "[UUID]",
    );
    settings.add_filter(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]");
    // last4 in the diff/yaml, json and csv (after the provider status) forms.
    settings.add_filter(r"(last4: '?)\d{4}", "$1[L4]");
    settings.add_filter(r#"("last4": ")\d{4}"#, "$1[L4]");
    settings.add_filter(
        r",(active|frozen|wait_for_topup_activation_by_user),\d{4},",
        ",$1,[L4],",
    );
    settings.bind(f);
}

fn show_and_list_with_filters(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    apply(&env, ONBOARDING);

    let table = ok(&mut env.cardform(&["show"]));
    for key in ["alice-travel", "bob-ops", "carol-premium"] {
        assert!(table.contains(key), "{table}");
    }
    assert!(
        table.contains("3 cards, 178.05 USDT charged in total."),
        "{table}"
    );

    let detail = ok(&mut env.cardform(&["show", "carol-premium"]));
    assert!(detail.contains("declared        frozen"), "{detail}");
    assert!(detail.contains("recorded        frozen"), "{detail}");
    assert!(detail.contains("issue   1"), "{detail}");
    assert!(detail.contains("freeze  1"), "{detail}");
    assert!(
        detail.contains("cf-"),
        "idempotency keys are shown: {detail}"
    );
    assert!(detail.contains("Charges: 117.00 USDT in total"), "{detail}");
    assert!(
        detail.contains("initial top-up  100.00 USDT"),
        "amounts carry their currency: {detail}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&ok(&mut env.cardform(&["show", "alice-travel", "--json"]))).unwrap();
    assert_eq!(json["card"]["charged"], "56.05");
    assert_eq!(json["orders"][0]["kind"], "issue");
    assert_eq!(json["orders"][0]["phase"], "completed");
    assert_eq!(json["orders"][0]["charge"], "56.05");

    let err = fails(&mut env.cardform(&["show", "nobody"]));
    assert!(err.contains("no card \"nobody\""), "{err}");

    let frozen = ok(&mut env.cardform(&["state", "list", "--status", "frozen"]));
    assert!(
        frozen.contains("carol-premium") && !frozen.contains("bob-ops"),
        "{frozen}"
    );
    let travel = ok(&mut env.cardform(&["state", "list", "--label", "team=travel", "--json"]));
    let travel: Vec<serde_json::Value> = serde_json::from_str(&travel).unwrap();
    assert_eq!(travel.len(), 1);
    assert_eq!(travel[0]["key"], "alice-travel");
    let visa = ok(&mut env.cardform(&["state", "list", "--product", "VISA_USD_STD", "--json"]));
    let visa: Vec<serde_json::Value> = serde_json::from_str(&visa).unwrap();
    assert_eq!(visa.len(), 2);
    let err = fails(&mut env.cardform(&["state", "list", "--status", "sleepy"]));
    assert!(err.contains("expected one of active"), "{err}");
}

fn history_after_apply_rm_import_refresh(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    apply(&env, ONBOARDING);
    let outside = issue_outside(&env, "u-2001");
    let out = ok(&mut env.cardform(&["state", "rm", "bob-ops"]));
    assert!(out.contains("Removed bob-ops"), "{out}");
    let out = ok(&mut env.cardform(&["import", "dave-sales", &outside, "--label", "team=sales"]));
    assert!(out.contains("Imported card"), "{out}");
    ok(&mut env.cardform(&["refresh"]));

    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&mut env.cardform(&["state", "history", "--json"]))).unwrap();
    let commands: Vec<&str> = runs
        .iter()
        .map(|r| r["command"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 4, "{commands:?}");
    assert!(commands[0].contains(" apply "), "{commands:?}");
    assert!(commands[1].ends_with("state rm bob-ops"), "{commands:?}");
    assert!(commands[2].contains("import dave-sales"), "{commands:?}");
    assert!(commands[3].ends_with("refresh"), "{commands:?}");
    assert_eq!(
        runs.iter()
            .map(|r| r["serial"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );

    let human = ok(&mut env.cardform(&["state", "history"]));
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 5, "{human}");
    assert!(
        lines[1].contains("issued 3") && lines[1].contains("charged 178.05"),
        "{human}"
    );
    assert!(lines[2].contains("removed 1"), "{human}");
    assert!(lines[3].contains("imported 1"), "{human}");
    assert!(lines[4].contains("cards checked 3"), "{human}");
    assert!(lines[1].contains('@'), "who is user@host: {human}");

    // The imported card is managed like the others; the forgotten one is gone from state only.
    let state = cards(&env);
    assert!(!state.contains_key("bob-ops"));
    assert_eq!(state["dave-sales"]["card_id"], outside.as_str());
    assert_eq!(state["dave-sales"]["charged"], "0.00");
    assert_eq!(state["dave-sales"]["labels"]["team"], "sales");
    assert_eq!(state["dave-sales"]["last4"].as_str().unwrap().len(), 4);
    assert_eq!(env.inspect().calls.get("cards/freeze").copied(), Some(1));

    // Import refuses a key that exists, and a card already managed.
    let err = fails(&mut env.cardform(&["import", "dave-sales", &outside]));
    assert!(err.contains("already in state"), "{err}");
    let err = fails(&mut env.cardform(&["import", "dave-2", &outside]));
    assert!(err.contains("already managed as dave-sales"), "{err}");
    // A mistyped card id is a typo to fix, not drift to refresh (issue 29).
    let err = fails(&mut env.cardform(&["import", "dave-3", "card_no_such_id"]));
    assert!(
        err.contains("the provider has no card \"card_no_such_id\"")
            && err.contains("check the card id"),
        "{err}"
    );
    assert!(!err.contains("refresh"), "{err}");
    let err = fails(&mut env.cardform(&["state", "rm", "bob-ops"]));
    assert!(err.contains("no card \"bob-ops\""), "{err}");
    // Refusals are not runs.
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&mut env.cardform(&["state", "history", "--json"]))).unwrap();
    assert_eq!(runs.len(), 4);
}

/// A card taken out of state and declared again sends its first issue order's key again; the
/// provider answers with that order (no second card, no second fee), and apply says the money
/// was the first run's, as `state history` does.
fn redeclared_after_rm_reports_the_first_runs_money(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    apply(&env, ONBOARDING);
    let before = cards(&env);
    let first_charge = before["bob-ops"]["charged"].as_str().unwrap().to_owned();
    let provider_total = env.inspect().total_charged;
    let out = ok(&mut env.cardform(&["state", "rm", "bob-ops"]));
    assert!(
        out.contains("Declared again, bob-ops takes this same card back at no charge"),
        "{out}"
    );

    let creates = env.inspect().calls["cards/create"];
    let f = env.write("cards.yaml", ONBOARDING);
    // The plan knows the card comes back: what it costs is nothing.
    let plan: serde_json::Value = serde_json::from_str(&ok(&mut env.cardform(&[
        "plan",
        "-f",
        f.to_str().unwrap(),
        "--json",
    ])))
    .unwrap();
    let totals = &plan["totals"];
    assert_eq!(totals["counts"]["issue"], 1, "{totals:#}");
    assert_eq!(totals["charge"], "0", "{totals:#}");
    let human = ok(&mut env.cardform(&["plan", "-f", f.to_str().unwrap()]));
    assert!(
        human.contains("taken out of state earlier: its issue order") && !human.contains("fee "),
        "{human}"
    );
    let out = ok(&mut env.cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"]));
    // The journal knows the order's id: it is checked, never sent again under its key (which
    // the provider keeps only so long, and past that would issue a second card).
    assert_eq!(env.inspect().calls["cards/create"], creates, "{out}");
    assert!(
        out.contains("taken back    1")
            && out.contains("actually charged 0.00 USDT")
            && out.contains(&format!(
                "plus {first_charge} USDT charged earlier by run 1"
            )),
        "{out}"
    );
    assert_eq!(
        env.inspect().total_charged,
        provider_total,
        "nothing charged again"
    );
    let after = cards(&env);
    assert_eq!(after["bob-ops"]["card_id"], before["bob-ops"]["card_id"]);
    assert_eq!(after["bob-ops"]["charged"], before["bob-ops"]["charged"]);

    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&mut env.cardform(&["state", "history", "--json"]))).unwrap();
    let last = &runs[2]["summary"];
    // Created when first issued, before it was taken out of state.
    assert!(
        after["bob-ops"]["created_at"].as_str().unwrap() < runs[1]["at"].as_str().unwrap(),
        "{} then rm at {}",
        after["bob-ops"]["created_at"],
        runs[1]["at"]
    );
    assert_eq!(last["taken_back"], 1, "{last:#}");
    assert_eq!(last["issued"], 0, "no card was issued: {last:#}");
    let history = ok(&mut env.cardform(&["state", "history"]));
    assert!(
        history
            .lines()
            .nth(3)
            .is_some_and(|l| l.contains("taken back 1") && !l.contains("issued")),
        "{history}"
    );
    let charged: rust_decimal::Decimal = last["charged"].as_str().unwrap().parse().unwrap();
    assert!(charged.is_zero(), "{last:#}");
    assert_eq!(
        last["charged_earlier"]["1"],
        first_charge.as_str(),
        "{last:#}"
    );

    // A card cardform never issued (imported) has no issue order to check: removed, then
    // declared again, it would be a new card, and `state rm` says how to take it back instead.
    let outside = issue_outside(&env, "u-2001");
    ok(&mut env.cardform(&["import", "dave-sales", &outside]));
    let out = ok(&mut env.cardform(&["state", "rm", "dave-sales"]));
    assert!(
        out.contains("Declared again, dave-sales may be issued as a new card")
            && out.contains(&format!("import dave-sales {outside}` takes this one back")),
        "{out}"
    );
}

/// A key that left state and is declared again with what its old order cannot give back (a
/// failed order, another product) or whose card moved to another key gets a new card, under a
/// new idempotency key: the old one is never re-sent with another request (a journal conflict
/// that stopped the whole run) nor taken back from the card's new key.
fn redeclared_after_rm_or_mv_gets_a_new_card(backend: Backend) {
    let env = Env::on(
        backend,
        SandboxConfig {
            fail_products: vec!["MC_EUR_PREMIUM".into()],
            ..fast_sandbox()
        },
    );
    let f = env.write("cards.yaml", ONBOARDING);
    let out = env
        .cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "carol's product fails");
    assert_eq!(cards(&env)["carol-premium"]["status"], "failed");
    ok(&mut env.cardform(&["state", "rm", "carol-premium", "--force"]));
    ok(&mut env.cardform(&["state", "mv", "bob-ops", "bob-2"]));
    // carol-premium's key keeps its orders: another card moved there would mix the histories.
    let err = fails(&mut env.cardform(&["state", "mv", "bob-2", "carol-premium"]));
    assert!(
        err.contains("the journal holds the orders of an earlier card under carol-premium"),
        "{err}"
    );

    // carol on a product that works, bob-ops declared beside the card that was his.
    let again = ONBOARDING
        .replace("product_code: MC_EUR_PREMIUM", "product_code: VISA_USD_STD")
        .replace(
            "  - key: bob-ops\n",
            "  - key: bob-2\n    external_user_id: u-1002\n  - key: bob-ops\n",
        );
    let f = env.write("cards.yaml", &again);
    let plan = ok(&mut env.cardform(&["plan", "-f", f.to_str().unwrap()]));
    assert!(plan.contains("2 to issue"), "{plan}");
    assert!(
        plan.contains("its last issue order (attempt 1) failed")
            && plan.contains("it moved to another key, or was imported"),
        "{plan}"
    );
    let creates = env.inspect().calls["cards/create"];
    let out = ok(&mut env.cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"]));
    assert!(
        out.contains("issued        2") && out.contains("failed        0"),
        "{out}"
    );
    assert_eq!(env.inspect().calls["cards/create"], creates + 2, "{out}");
    let state = cards(&env);
    assert_eq!(
        state["carol-premium"]["status"], "frozen",
        "issued, then frozen"
    );
    assert_eq!(state["carol-premium"]["product_code"], "VISA_USD_STD");
    assert_ne!(state["bob-ops"]["card_id"], state["bob-2"]["card_id"]);
    assert_eq!(state["bob-ops"]["status"], "active");
    let replan = ok(&mut env.cardform(&["plan", "-f", f.to_str().unwrap()]));
    assert!(replan.contains("No changes."), "{replan}");
}

/// A change whose idempotency key the journal holds for another request (a state edited by
/// hand, or two histories mixed by an older release) fails alone, saying so; the rest of the run
/// goes on, and nothing is sent for it.
fn a_journal_conflict_fails_one_change_not_the_run(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    journal_by_hand(
        &env,
        |lineage| {
            let mut order = issue_order(
                "bob-ops",
                &cardform::exec::keys::issue(lineage, "bob-ops", 1),
                r#"{"product_code":"MC_EUR_PREMIUM","external_user_id":"u-9"}"#,
            );
            order.phase = cardform::state::OrderPhase::Failed;
            order
        },
        None,
    );
    let f = env.write("cards.yaml", ONBOARDING);
    let out = env
        .cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"])
        .output()
        .unwrap();
    let (text, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{text}{err}");
    assert!(
        err.contains("bob-ops")
            && err.contains("journal_conflict")
            && err.contains("nothing was sent"),
        "{err}"
    );
    assert!(text.contains("issued        2"), "{text}");
    assert_eq!(
        env.inspect().calls["cards/create"],
        2,
        "nothing sent for bob-ops"
    );
    let state = cards(&env);
    assert!(state.contains_key("alice-travel") && state.contains_key("carol-premium"));
    assert!(!state.contains_key("bob-ops"), "nothing recorded for it");
}

fn diff_between_serials(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    apply(&env, ONBOARDING);
    apply(&env, CHANGED);

    let human = ok(&mut env.cardform(&["state", "diff"]));
    // carol is unchanged between serial 1 and 2: not in the diff.
    assert!(!human.contains("carol-premium"), "{human}");
    assert!(
        human.contains("-status: active\n-provider_status: wait_for_topup_activation_by_user\n+status: frozen\n+provider_status: frozen"),
        "{human}"
    );
    assert!(
        human.contains("-label.team: travel\n+label.team: finance"),
        "{human}"
    );
    assert!(human.contains("+ dan-new (added)"), "{human}");
    with_filters(|| insta::assert_snapshot!("state_diff_human", human));

    let json: serde_json::Value = serde_json::from_str(&ok(
        &mut env.cardform(&["state", "diff", "1", "2", "--json"])
    ))
    .unwrap();
    assert_eq!(json["from"], 1);
    assert_eq!(json["to"], 2);
    assert_eq!(json["added"][0]["key"], "dan-new");
    assert_eq!(json["removed"].as_array().unwrap().len(), 0);
    let changed: Vec<&str> = json["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(changed, vec!["alice-travel", "bob-ops"]);
    assert_eq!(json["changed"][1]["before"]["status"], "active");
    assert_eq!(json["changed"][1]["after"]["status"], "frozen");
    assert_eq!(
        json["changed"][1]["fields"],
        serde_json::json!(["status", "provider_status", "desired_status"])
    );

    let from_empty: serde_json::Value = serde_json::from_str(&ok(
        &mut env.cardform(&["state", "diff", "0", "1", "--json"])
    ))
    .unwrap();
    assert_eq!(from_empty["added"].as_array().unwrap().len(), 3);

    let err = fails(&mut env.cardform(&["state", "diff", "1", "9"]));
    assert!(err.contains("latest serial is 2"), "{err}");
}

fn export_is_deterministic(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    apply(&env, ONBOARDING);
    ok(&mut env.cardform(&["refresh"]));
    for format in ["yaml", "json", "csv"] {
        let a = env
            .cardform(&["state", "export", "--format", format])
            .output()
            .unwrap();
        let b = env
            .cardform(&["state", "export", "--format", format])
            .output()
            .unwrap();
        assert_eq!(a.status.code(), Some(0));
        assert_eq!(a.stdout, b.stdout, "{format} export differs between runs");
        let text = stdout(&a);
        // Money is always two decimals, as a string.
        assert!(text.contains("178.05") || text.contains("56.05"), "{text}");
        assert!(text.contains("117.00"), "{format}: {text}");
        with_filters(|| insta::assert_snapshot!(format!("state_export_{format}"), text));
    }
    // An old serial exports as it was then.
    let first = ok(&mut env.cardform(&["state", "export", "--format", "json", "--at", "1"]));
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["serial"], 1);
    assert!(
        first["cards"][0]["last4"].is_null(),
        "last4 only comes with refresh"
    );
}

fn drift_is_refreshed_and_planned_away(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    apply(&env, ONBOARDING);
    let state = cards(&env);
    let bob = state["bob-ops"]["card_id"].as_str().unwrap().to_owned();
    freeze_outside(&env, &bob, "u-1002");

    let out = ok(&mut env.cardform(&["refresh"]));
    assert!(
        out.contains("bob-ops: frozen outside cardform (was active)"),
        "{out}"
    );
    assert!(!out.contains("alice-travel:"), "{out}");
    let history = ok(&mut env.cardform(&["state", "history"]));
    assert!(
        history.lines().nth(2).unwrap().contains("drift 1"),
        "{history}"
    );
    assert_eq!(cards(&env)["bob-ops"]["status"], "frozen");

    // The recorded drift plans the corrective action.
    let f = env.write("cards.yaml", ONBOARDING);
    let f = f.to_str().unwrap();
    let out = env
        .cardform(&["plan", "-f", f, "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let plan = stdout(&out);
    assert!(plan.contains("unfreeze"), "{plan}");
    assert!(plan.contains("bob-ops"), "{plan}");

    // A second refresh finds nothing new; apply unfreezes; `plan --refresh` sees it all agree.
    let out = ok(&mut env.cardform(&["refresh"]));
    assert!(out.contains("No drift"), "{out}");
    ok(&mut env.cardform(&["apply", "-f", f, "--auto-approve"]));
    freeze_outside_again(&env, &bob);
    let out = env
        .cardform(&["plan", "-f", f, "--refresh", "--detailed-exitcode"])
        .output()
        .unwrap();
    let plan = stdout(&out);
    assert_eq!(out.status.code(), Some(2), "{plan}{}", stderr(&out));
    assert!(
        plan.contains("bob-ops: frozen outside cardform (was active)"),
        "{plan}"
    );
    assert!(plan.contains("unfreeze"), "{plan}");
}

fn freeze_outside_again(env: &Env, card_id: &str) {
    let c = env.client();
    env.rt.block_on(async {
        let req = FreezeRequest {
            card_id: card_id.into(),
            external_user_id: "u-1002".into(),
        };
        let o = c.call(&req, Some("outside-freeze-2")).await.unwrap();
        wait_terminal(&c, o).await;
    });
}

fn rm_refuses_a_card_with_an_open_order_unless_forced(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    journal_open_issue(&env, "eve", "outside-eve", None);
    let err = fails(&mut env.cardform(&["state", "rm", "eve"]));
    assert!(err.contains("still open"), "{err}");
    assert!(err.contains("--force"), "{err}");
    assert!(cards(&env).contains_key("eve"));
    let out = ok(&mut env.cardform(&["state", "rm", "eve", "--force"]));
    assert!(out.contains("Removed eve"), "{out}");
    assert!(!cards(&env).contains_key("eve"));
    // Nothing was sent to the provider.
    assert!(env.inspect().calls.is_empty(), "{:?}", env.inspect().calls);
}

fn refresh_finishes_open_orders(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    // The order exists at the provider; state knows it only as open (apply was killed).
    let c = env.client();
    let order_id = env.rt.block_on(async {
        let req = CreateCardRequest {
            product_code: Some("VISA_USD_STD".into()),
            product_id: None,
            external_user_id: "u-3001".into(),
            initial_topup_amount: None,
        };
        let o = c.call(&req, Some("outside-frank")).await.unwrap();
        wait_terminal(&c, o.clone()).await;
        o.order_id
    });
    journal_open_issue(&env, "frank", "outside-frank", Some(&order_id));
    let out = ok(&mut env.cardform(&["refresh"]));
    assert!(
        out.contains(&format!(
            "frank: issue order {order_id} completed, charged 5.00"
        )),
        "{out}"
    );
    let frank = &cards(&env)["frank"];
    assert_eq!(frank["status"], "active");
    assert_eq!(frank["charged"], "5.00");
    assert!(frank["card_id"].as_str().unwrap().starts_with("card_"));
    assert_eq!(frank["last4"].as_str().unwrap().len(), 4);
    let detail: serde_json::Value =
        serde_json::from_str(&ok(&mut env.cardform(&["show", "frank", "--json"]))).unwrap();
    assert_eq!(detail["orders"][0]["phase"], "completed");
    // Refresh sends no mutation.
    assert_eq!(env.inspect().calls.get("cards/create").copied(), Some(1));
}

fn audit_lists_every_mutation(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    apply(&env, ONBOARDING);
    let csv = ok(&mut env.cardform(&["state", "audit", "--format", "csv"]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "at,endpoint,idempotency_key,order_id,card_key,result,charge,address"
    );
    // 3 issues + carol's freeze.
    assert_eq!(lines.len(), 5, "{csv}");
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(",cards/create,"))
            .count(),
        3
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains(",cards/freeze,"))
            .count(),
        1
    );
    assert!(
        lines.iter().any(|l| l.contains(",alice-travel,ok,56.05")),
        "{csv}"
    );

    let json: Vec<serde_json::Value> = serde_json::from_str(&ok(
        &mut env.cardform(&["state", "audit", "--format", "json"])
    ))
    .unwrap();
    assert_eq!(json.len(), 4);
    assert!(
        json.iter()
            .all(|c| c["order_id"].as_str().unwrap().starts_with("ord_"))
    );
    assert!(
        json.iter()
            .all(|c| c["idempotency_key"].as_str().unwrap().starts_with("cf-"))
    );

    let table = ok(&mut env.cardform(&["state", "audit"]));
    assert!(table.contains("4 calls, 178.05 USDT charged."), "{table}");
    let later =
        ok(&mut env.cardform(&["state", "audit", "--since", "2999-01-01", "--format", "csv"]));
    assert_eq!(later.lines().count(), 1, "{later}");
    let err = fails(&mut env.cardform(&["state", "audit", "--since", "yesterday"]));
    assert!(err.contains("RFC 3339"), "{err}");
}

/// A PAN is 16 digits and cannot appear by accident; a 3-digit CVV appears in any timestamp, so
/// for CVVs the check is for how a leak would look: a JSON string (every JSON column: card
/// images, journaled requests, run summaries) or a field name.
#[test]
fn state_never_holds_a_pan_or_cvv() {
    let env = Env::new();
    apply(&env, ONBOARDING);
    ok(&mut env.cardform(&["refresh"]));
    let outside = issue_outside(&env, "u-2002");
    ok(&mut env.cardform(&["import", "gina", &outside]));
    ok(&mut env.cardform(&["refresh"]));

    let ids: Vec<String> = cards(&env)
        .values()
        .map(|c| c["card_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);
    let c = env.client();
    let secrets: Vec<(String, String)> = env.rt.block_on(async {
        let mut v = Vec::new();
        for id in &ids {
            let card = c.get_card(id).await.unwrap();
            v.push((
                card.card_number.unwrap().expose().to_owned(),
                card.cvv.unwrap().expose().to_owned(),
            ));
        }
        v
    });

    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", env.state().display()));
        if let Ok(bytes) = std::fs::read(&p) {
            files.push((p, bytes));
        }
    }
    assert!(!files.is_empty() && !files[0].1.is_empty());
    // The bytes are readable state (not, say, an empty or unrelated file): the ids are in them.
    for id in &ids {
        assert!(
            files
                .iter()
                .any(|(_, b)| b.windows(id.len()).any(|w| w == id.as_bytes())),
            "{id} not found in the raw state files"
        );
    }
    let contains =
        |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
    for (path, bytes) in &files {
        for (pan, cvv) in &secrets {
            assert_eq!(pan.len(), 16, "sandbox PANs are 16 digits");
            assert!(!contains(bytes, pan), "{} holds a PAN", path.display());
            assert!(
                !contains(bytes, &pan[..12]),
                "{} holds most of a PAN",
                path.display()
            );
            assert!(
                !contains(bytes, &format!("\"{cvv}\"")),
                "{} holds a CVV",
                path.display()
            );
        }
        for name in ["card_number", "cvv", "\"pan\""] {
            assert!(!contains(bytes, name), "{} mentions {name}", path.display());
        }
    }
    // And the last four digits are what state keeps of each PAN.
    let state = cards(&env);
    for (pan, _) in &secrets {
        assert!(
            state.values().any(|c| c["last4"] == pan[12..]),
            "each card's last4 is kept"
        );
    }
}

fn audit_records_refusals(backend: Backend) {
    let env = Env::on(
        backend,
        SandboxConfig {
            unknown_users: vec!["u-1002".into()],
            ..fast_sandbox()
        },
    );
    let f = env.write("cards.yaml", ONBOARDING);
    let out = env
        .cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "bob's user is unknown");
    let json: Vec<serde_json::Value> = serde_json::from_str(&ok(
        &mut env.cardform(&["state", "audit", "--format", "json"])
    ))
    .unwrap();
    let bob: Vec<&serde_json::Value> = json.iter().filter(|c| c["card_key"] == "bob-ops").collect();
    assert_eq!(bob.len(), 1, "{json:?}");
    assert_eq!(bob[0]["endpoint"], "cards/create");
    assert_eq!(bob[0]["result"], "cardholder_not_found");
    assert!(bob[0]["order_id"].is_null());
    assert!(
        bob[0]["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with("cf-")
    );
}

#[test]
fn writers_take_the_state_lock() {
    let env = Env::new();
    apply(&env, ONBOARDING);
    // The holder stays open while the writers run: a closed one's lock dies with it and would be
    // taken over.
    let (store, holder) = env.rt.block_on(async {
        let store = Store::open(&env.location()).await.unwrap();
        let lock = store
            .acquire_lock(
                cardform::state::LockRequest {
                    command: "cardform apply -f elsewhere".into(),
                    pid: std::process::id(),
                    host: cardform::state::local_host(),
                    user: "someone".into(),
                },
                Duration::ZERO,
            )
            .await
            .unwrap();
        (store, lock)
    });
    for args in [
        vec!["state", "rm", "bob-ops"],
        vec!["refresh"],
        vec!["import", "x", "card_123"],
    ] {
        let err = fails(&mut env.cardform(&args));
        assert!(err.contains(&holder.lock_id), "{args:?}: {err}");
    }
    env.rt.block_on(store.close());
    let runs: Vec<serde_json::Value> =
        serde_json::from_str(&ok(&mut env.cardform(&["state", "history", "--json"]))).unwrap();
    assert_eq!(runs.len(), 1, "locked out commands recorded no run");
    assert!(cards(&env).contains_key("bob-ops"));
}

on_both_backends!(
    show_and_list_with_filters,
    history_after_apply_rm_import_refresh,
    redeclared_after_rm_reports_the_first_runs_money,
    redeclared_after_rm_or_mv_gets_a_new_card,
    a_journal_conflict_fails_one_change_not_the_run,
    diff_between_serials,
    export_is_deterministic,
    drift_is_refreshed_and_planned_away,
    rm_refuses_a_card_with_an_open_order_unless_forced,
    refresh_finishes_open_orders,
    audit_lists_every_mutation,
    audit_records_refusals,
);
