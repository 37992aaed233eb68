//! `cardform validate` and `cardform plan` against the sandbox, through the real binary.

use crate::harness::*;

fn json_scrub(v: &mut serde_json::Value) {
    v["created_at"] = "[TIME]".into();
    // Every state has a lineage of its own (`cardform init` made this one).
    let lineage = v["state"]["lineage"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&lineage).is_ok(), "{lineage}");
    let fingerprint = v["state"]["fingerprint"]
        .as_str()
        .unwrap()
        .replace(&lineage, "[LINEAGE]");
    v["state"]["lineage"] = "[LINEAGE]".into();
    v["state"]["fingerprint"] = fingerprint.into();
}

/// The lineage `cardform init` gave this env's state.
fn doc_lineage(env: &Env) -> String {
    env.rt.block_on(async {
        let store = cardform::state::Store::open_existing(&env.location())
            .await
            .unwrap()
            .unwrap();
        let lineage = store.lineage().await.unwrap();
        store.close().await;
        lineage
    })
}

#[test]
fn plan_human_json_and_markdown() {
    let env = Env::new();
    env.write("cards.yaml", ONBOARDING);
    // Relative paths (commands run in the temp dir) keep the snapshots machine-independent.
    let f = std::path::Path::new("cards.yaml");
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    insta::assert_snapshot!("plan_human", stdout(&out));

    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["state"]["serial"], 0);
    json_scrub(&mut doc);
    insta::assert_json_snapshot!("plan_json", doc);

    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap(), "--format", "markdown"])
        .output()
        .unwrap();
    let lineage = doc_lineage(&env);
    insta::assert_snapshot!("plan_markdown", stdout(&out).replace(&lineage, "[LINEAGE]"));
}

#[test]
fn detailed_exitcode_and_saved_plan() {
    let env = Env::new();
    let f = env.write("cards.yaml", ONBOARDING);
    let plan_file = env.path("out/plan.json");
    let out = env
        .cardform(&[
            "plan",
            "-f",
            f.to_str().unwrap(),
            "--detailed-exitcode",
            "--out",
            plan_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan_file).unwrap()).unwrap();
    assert_eq!(saved["actions"].as_array().unwrap().len(), 3);
    assert!(
        saved["declarations"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn invalid_input_makes_no_provider_call() {
    let env = Env::new();
    let f = env.write(
        "bad.yaml",
        "version: 1\ncards:\n  - key: a\n    external_user_id: u1\n    prodcut_code: X\n",
    );
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("prodcut_code"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
    let calls: u64 = env.inspect().calls.values().sum();
    assert_eq!(calls, 0, "no provider call for invalid input");
}

#[test]
fn plan_fails_on_unknown_inactive_products_and_limits() {
    let env = Env::new();
    let f = env.write(
        "cards.yaml",
        r#"version: 1
cards:
  - {key: a, external_user_id: u1, product_code: NOPE}
  - {key: b, external_user_id: u2, product_code: VISA_USD_LEGACY}
  - {key: c, external_user_id: u3, product_code: VISA_USD_STD, initial_topup: "1.00"}
"#,
    );
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("product NOPE does not exist at the provider (cards: a)"),
        "{text}"
    );
    assert!(text.contains("VISA_USD_LEGACY is not active"), "{text}");
    assert!(text.contains("c: initial_topup 1.00 is outside"), "{text}");
}

#[test]
fn max_fees_and_unknown_fees() {
    let env = Env::new();
    let f = env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: a, external_user_id: u1, product_code: VISA_USD_STD}\n  - {key: n, external_user_id: u2, product_code: VIRTUAL_NOFEES}\n",
    );
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("fee unknown"), "{text}");
    assert!(text.contains("unknown fees for 1 card"), "{text}");
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap(), "--max-fees", "100"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "unknown fees cannot be proven within budget"
    );
}

#[test]
fn validate_needs_no_provider() {
    let env = Env::new();
    let f = env.write("cards.yaml", ONBOARDING);
    let out = env
        .cardform(&["validate", "-f", f.to_str().unwrap()])
        .env_remove("CARDFORM_API_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("3 cards declared in 1 file"));
}

#[test]
fn no_provider_configured_names_the_fix() {
    let env = Env::new();
    let f = env.write("cards.yaml", ONBOARDING);
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap()])
        .env_remove("CARDFORM_API_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--sandbox"), "{}", stderr(&out));
}

#[test]
fn validate_json_lists_every_problem_with_its_place() {
    let env = Env::new();
    env.write(
        "a.yaml",
        "version: 1\ncards:\n  - key: a\n    external_user_id: u1\n    prodcut_code: X\n",
    );
    env.write(
        "b.csv",
        "key,external_user_id,product_code\na,u2,VISA_USD_STD\n",
    );
    let out = env
        .cardform(&["validate", "-f", "a.yaml", "-f", "b.csv", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    let problems = doc["problems"].as_array().unwrap();
    let places: Vec<(String, String, u64)> = problems
        .iter()
        .map(|p| {
            (
                p["code"].as_str().unwrap().to_owned(),
                p["file"].as_str().unwrap().to_owned(),
                p["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        places.contains(&("cardform::spec::unknown_field".into(), "a.yaml".into(), 5)),
        "{places:?}"
    );
    assert!(
        places
            .iter()
            .any(|(c, f, l)| c == "cardform::spec::duplicate_key" && f == "b.csv" && *l == 2),
        "{places:?}"
    );
    assert_eq!(env.inspect().calls.values().sum::<u64>(), 0);
}
