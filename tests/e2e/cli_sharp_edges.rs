//! The sharp edges a newcomer hits first: which product codes exist, a product code in the
//! wrong case, a semicolon-separated CSV, half-configured provider variables, a URL without a
//! scheme, and sandbox flags nobody explained.

use crate::harness::*;

#[test]
fn products_lists_what_can_be_declared() {
    let env = Env::new();
    let out = env.cardform(&["products"]).output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.starts_with("PRODUCT"), "{text}");
    let visa = text
        .lines()
        .find(|l| l.starts_with("VISA_USD_STD"))
        .expect("the sandbox's VISA_USD_STD");
    assert!(visa.contains(" USD ") && visa.contains("5.00"), "{visa}");
    assert!(
        text.contains("the master balance's currency (USDT)"),
        "currencies read as they do in a plan: {text}"
    );
    let out = env.cardform(&["products", "--json"]).output().unwrap();
    let products: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        products
            .iter()
            .any(|p| p["product_code"] == "MC_EUR_PREMIUM")
    );
}

#[test]
fn a_product_code_in_the_wrong_case_gets_a_did_you_mean() {
    let env = Env::new();
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: a, external_user_id: u1, product_code: visa_usd_std}\n  - {key: b, external_user_id: u2, product_code: NOPE_AT_ALL}\n",
    );
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("product visa_usd_std does not exist at the provider (cards: a); did you mean VISA_USD_STD?"),
        "{text}"
    );
    // A hint written below the cli layer gets the flags this state needs, like every suggestion.
    assert!(
        text.contains(&format!(
            "product NOPE_AT_ALL does not exist at the provider (cards: b); `cardform --state {} products` lists them",
            env.state_arg()
        )),
        "{text}"
    );
}

#[test]
fn a_semicolon_separated_csv_says_so() {
    let env = Env::new();
    env.write(
        "cards.csv",
        "key;external_user_id;product_code\nalice;u1;VISA_USD_STD\n",
    );
    let out = env
        .cardform(&["validate", "-f", "cards.csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("this file is separated by `;`"), "{err}");
}

#[test]
fn half_configured_provider_variables_are_named() {
    let env = Env::new();
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: a, external_user_id: u1, product_code: VISA_USD_STD}\n",
    );
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .env_remove("CARDFORM_API_KEY")
        .env_remove("CARDFORM_API_SECRET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("CARDFORM_API_KEY and CARDFORM_API_SECRET not set (CARDFORM_API_URL set)"),
        "{err}"
    );
    let no_scheme = env.url().replace("http://", "");
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .env("CARDFORM_API_URL", &no_scheme)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("write it as https://{no_scheme}")),
        "{err}"
    );
}

#[test]
fn every_sandbox_flag_is_described() {
    let env = Env::new();
    let out = env.cardform(&["sandbox", "--help"]).output().unwrap();
    assert_success(&out);
    let help = stdout(&out);
    let mut flags = 0;
    let lines: Vec<&str> = help.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with("--")
            || trimmed.starts_with("--help")
            || trimmed.starts_with("--version")
        {
            continue;
        }
        flags += 1;
        // The description follows on the same line, or (wrapped help) on the next.
        let described = trimmed
            .split_once("  ")
            .is_some_and(|(_, d)| !d.trim().is_empty())
            || lines
                .get(i + 1)
                .is_some_and(|n| n.starts_with("          ") && !n.trim().starts_with('-'));
        assert!(described, "undescribed flag: {line}\n{help}");
    }
    assert!(flags >= 12, "{help}");
}

fn a_plan_made_during_an_apply_shows_its_orders_in_progress(backend: Backend) {
    let env = Env::on(
        backend,
        cardform::sandbox::SandboxConfig {
            order_latency: std::time::Duration::from_secs(3),
            ..fast_sandbox()
        },
    );
    env.write("cards.yaml", ONBOARDING);
    let mut child = env.spawn_until_sent(&["apply", "-f", "cards.yaml", "--auto-approve"], 3);
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("another cardform is applying right now"),
        "{text}"
    );
    assert!(
        text.contains(" apply -f cards.yaml"),
        "names the command: {text}"
    );
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["in_progress"]["by"].as_str().unwrap().contains('@'),
        "{doc:#}"
    );
    assert!(child.wait().unwrap().success());
    // Once it is done, nothing is in progress.
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert!(
        !stdout(&out).contains("another cardform"),
        "{}",
        stdout(&out)
    );
}

on_both_backends!(a_plan_made_during_an_apply_shows_its_orders_in_progress);

#[test]
fn a_suggested_command_carries_the_state_it_needs() {
    let env = Env::new();
    env.write("cards.yaml", ONBOARDING);
    let state = env.state_arg();
    // The harness passes --state explicitly, as someone with a non-default state would.
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--out", "plan.json"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains(&format!("cardform --state {state} apply plan.json")),
        "{}",
        stdout(&out)
    );
    let out = env.cardform(&["show", "nobody"]).output().unwrap();
    assert!(
        stderr(&out).contains(&format!("`cardform --state {state} show` lists the keys")),
        "{}",
        stderr(&out)
    );
    // With --sandbox and its default state, the suggestion says --sandbox.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cards.yaml"), ONBOARDING).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cardform"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--sandbox", "plan", "-f", "cards.yaml", "--out", "p.json"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains("cardform --sandbox apply p.json"),
        "{}",
        stdout(&out)
    );
}
