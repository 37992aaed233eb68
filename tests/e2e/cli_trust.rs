//! Resume and refresh trust nothing blindly: an order the provider returns is checked against the
//! journal before anything is bound to a card; sandbox worlds never hand out the same ids; and an
//! `apply --sandbox` killed with SIGKILL converges when run again, as the README promises.

use cardform::state::OrderPhase;
use cardform::wire::CreateCardRequest;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::*;

#[test]
fn an_answer_that_contradicts_the_journal_binds_nothing() {
    let env = Env::new();
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: frank, external_user_id: u-3001, product_code: VISA_USD_STD}\n",
    );
    // The provider (a world that is not the one this state was applied against) has an order
    // under the id the journal holds for frank, but it is someone else's.
    let theirs = env.rt.block_on(async {
        env.client()
            .call(
                &CreateCardRequest {
                    product_code: Some("MC_EUR_PREMIUM".into()),
                    product_id: None,
                    external_user_id: "u-9999".into(),
                    initial_topup_amount: None,
                },
                Some("cf-someone-else"),
            )
            .await
            .unwrap()
            .order_id
    });
    journal_open_issue(&env, "frank", "cf-franks-key", Some(&theirs));
    let orders = env.inspect().orders;

    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("order_mismatch"), "{text}");
    assert!(
        text.contains("is for product MC_EUR_PREMIUM, not VISA_USD_STD"),
        "{text}"
    );
    assert_eq!(env.inspect().orders, orders, "no new order");

    let out = env.cardform(&["show", "frank", "--json"]).output().unwrap();
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        shown["card"]["card_id"],
        serde_json::Value::Null,
        "{shown:#}"
    );
    assert_eq!(shown["card"]["status"], "pending");
    let journal = shown["orders"].as_array().unwrap();
    assert_eq!(journal.len(), 1);
    assert_eq!(journal[0]["order_id"], theirs.as_str(), "{shown:#}");
    assert_eq!(
        journal[0]["phase"],
        OrderPhase::Open.as_str(),
        "still tracked"
    );
    let audit = stdout(
        &env.cardform(&["state", "audit", "--format", "csv"])
            .output()
            .unwrap(),
    );
    assert!(
        audit.contains(&format!("cf-franks-key,{theirs},frank,order_mismatch")),
        "{audit}"
    );
}

#[test]
fn two_fresh_sandbox_worlds_never_hand_out_the_same_ids() {
    let ids = |env: &Env| {
        env.write(
            "cards.yaml",
            "version: 1\ncards:\n  - {key: a, external_user_id: u-1, product_code: VISA_USD_STD}\n",
        );
        assert_success(
            &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
                .output()
                .unwrap(),
        );
        let out = env.cardform(&["show", "a", "--json"]).output().unwrap();
        let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        (
            shown["card"]["card_id"].as_str().unwrap().to_owned(),
            shown["orders"][0]["order_id"].as_str().unwrap().to_owned(),
        )
    };
    // The same seed, the same requests: only the worlds differ.
    let (card_a, order_a) = ids(&Env::new());
    let (card_b, order_b) = ids(&Env::new());
    assert_ne!(card_a, card_b);
    assert_ne!(order_a, order_b);
}

/// `apply --sandbox` runs the sandbox inside cardform: killing cardform kills the provider too.
#[test]
fn an_apply_sandbox_killed_with_sigkill_converges_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("version: 1\ndefaults: {product_code: VISA_USD_STD}\ncards:\n");
    for i in 0..30 {
        yaml.push_str(&format!(
            "  - {{key: k{i:02}, external_user_id: u{i:02}}}\n"
        ));
    }
    std::fs::write(dir.path().join("cards.yaml"), yaml).unwrap();
    let cardform = |args: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cardform"));
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .args(["--sandbox"])
            .args(args);
        cmd
    };
    for delay in [700, 400] {
        let mut child = cardform(&[
            "apply",
            "-f",
            "cards.yaml",
            "--auto-approve",
            "--parallelism",
            "4",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL: cardform and its sandbox die mid-run
        child.wait().unwrap();
    }
    let out = cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let out = cardform(&["plan", "-f", "cards.yaml", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // The provider's own record: exactly one issue order per person, and the cards state binds
    // are the provider's, each to one key.
    let world: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("state/sandbox-world.json")).unwrap(),
    )
    .unwrap();
    let mut per_user: BTreeMap<String, u32> = BTreeMap::new();
    for o in world["orders"].as_object().unwrap().values() {
        if o["kind"] == "issue" {
            *per_user
                .entry(o["external_user_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    }
    assert_eq!(per_user.len(), 30, "{per_user:?}");
    assert!(per_user.values().all(|n| *n == 1), "{per_user:?}");
    let out = cardform(&["show", "--json"]).output().unwrap();
    let cards: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    let mut ids: Vec<&str> = cards
        .iter()
        .map(|c| c["card_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 30);
    let world_cards = world["cards"].as_object().unwrap();
    assert!(ids.iter().all(|id| world_cards.contains_key(*id)));
}

#[test]
fn refresh_binds_nothing_that_contradicts_the_journal() {
    let env = Env::new();
    let theirs = env.rt.block_on(async {
        env.client()
            .call(
                &CreateCardRequest {
                    product_code: Some("MC_EUR_PREMIUM".into()),
                    product_id: None,
                    external_user_id: "u-9999".into(),
                    initial_topup_amount: None,
                },
                Some("cf-someone-else"),
            )
            .await
            .unwrap()
            .order_id
    });
    journal_open_issue(&env, "frank", "cf-franks-key", Some(&theirs));
    // Let their order finish, so a blind refresh would settle it and bind its card to frank.
    std::thread::sleep(Duration::from_millis(400));
    let out = env.cardform(&["refresh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("order_mismatch"), "{text}");
    let out = env.cardform(&["show", "frank", "--json"]).output().unwrap();
    let shown: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        shown["card"]["card_id"],
        serde_json::Value::Null,
        "{shown:#}"
    );
    assert_eq!(shown["orders"][0]["phase"], "open", "{shown:#}");
}
