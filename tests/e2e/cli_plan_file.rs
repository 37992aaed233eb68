//! Plan files (format 2: compact, fields shared with `action_defaults` left out) and `--json`
//! (format 1, as it always was): a fleet in block-style YAML planned with `--out`, shown and
//! applied from the file, and the plan the file holds equal to what `--json` prints.

use crate::harness::*;

/// A fleet as the README writes cards: block style, some with a quoted top-up, a comment, labels.
fn block_fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - key: card-{i:03}          # one of the fleet\n    external_user_id: u-{i:03}\n"
        ));
        match i % 3 {
            0 => s.push_str("    initial_topup: \"10.00\"\n    labels: {team: ops}\n"),
            1 => s.push_str("    labels:\n      team: travel\n    status: frozen\n"),
            _ => {}
        }
    }
    s
}

#[test]
fn a_saved_plan_file_is_compact_reads_as_the_json_plan_and_applies() {
    let env = Env::new();
    let f = env.write("cards.yaml", &block_fleet(40));
    let file = f.to_str().unwrap();
    let out = env
        .cardform(&["plan", "-f", file, "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["format_version"], 1);
    assert!(json.get("action_defaults").is_none());
    assert_eq!(json["actions"].as_array().unwrap().len(), 40);

    let out = env
        .cardform(&["plan", "-f", file, "--out", "plan.json"])
        .output()
        .unwrap();
    assert_success(&out);
    let saved = std::fs::read_to_string(env.path("plan.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(doc["format_version"], 2);
    assert_eq!(doc["action_defaults"]["action"], "issue", "{saved}");
    // One action a line, and each of them much shorter than in `--json`.
    assert_eq!(
        saved.lines().filter(|l| l.starts_with("{\"key\"")).count(),
        40
    );
    let pretty = serde_json::to_string_pretty(&json).unwrap();
    assert!(
        saved.len() * 3 < pretty.len(),
        "{} vs {}",
        saved.len(),
        pretty.len()
    );

    // Shown from the file: the document `--json` printed, created_at and all.
    let out = env
        .cardform(&["show", "plan.json", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let without_time = |mut v: serde_json::Value| {
        v["created_at"] = serde_json::Value::Null;
        v
    };
    assert_eq!(without_time(shown), without_time(json.clone()));

    let out = env.cardform(&["apply", "plan.json"]).output().unwrap();
    assert_success(&out);
    assert_eq!(env.inspect().cards, 40, "{}", stdout(&out));
    let out = env.cardform(&["plan", "-f", file]).output().unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("No changes"), "{}", stdout(&out));
}

/// A plan file of format 1 (every field, pretty: what earlier cardforms saved) still applies.
#[test]
fn a_format_1_plan_file_still_applies() {
    let env = Env::new();
    let f = env.write("cards.yaml", &block_fleet(4));
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    env.write("old.json", &stdout(&out));
    let out = env.cardform(&["apply", "old.json"]).output().unwrap();
    assert_success(&out);
    assert_eq!(env.inspect().cards, 4);
}
