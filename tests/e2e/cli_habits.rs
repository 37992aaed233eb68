//! Terraform's habits (issue 29): `cardform show PLANFILE` in human, markdown and JSON form, and
//! the wording a Terraform user reads first.

use crate::harness::*;

const ONE_CARD: &str = "version: 1\ncards:\n  - key: dave-sales\n    external_user_id: u-2001\n    product_code: VISA_USD_STD\n";

#[test]
fn show_renders_a_saved_plan_in_each_form() {
    let env = Env::new();
    env.write("cards.yaml", ONBOARDING);
    assert_success(
        &env.cardform(&["plan", "-f", "cards.yaml", "--out", "plan.json"])
            .output()
            .unwrap(),
    );
    let out = env.cardform(&["show", "plan.json"]).output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.starts_with("Saved plan plan.json, made "), "{text}");
    assert!(text.contains("Plan: 3 to issue"), "{text}");
    assert!(text.contains("alice-travel"), "{text}");
    assert!(
        text.contains("Apply exactly this plan with: cardform --state "),
        "{text}"
    );
    assert!(text.ends_with(" apply plan.json\n"), "{text}");

    let out = env
        .cardform(&["show", "plan.json", "--format", "markdown"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains("| `alice-travel` | issue |"),
        "{}",
        stdout(&out)
    );

    // --json prints the document as saved, in the form `plan --json` prints (format 1: every
    // field of every action, where the file leaves out what `action_defaults` holds).
    let out = env
        .cardform(&["show", "plan.json", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let mut shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("plan.json")).unwrap()).unwrap();
    assert_eq!(
        (
            shown["format_version"].take(),
            saved["format_version"].take()
        ),
        (1.into(), 2.into())
    );
    let (shown_actions, _) = (shown["actions"].take(), saved["actions"].take());
    saved.as_object_mut().unwrap().remove("action_defaults");
    assert_eq!(shown, saved);
    let actions = shown_actions.as_array().unwrap();
    assert_eq!(actions.len(), 3);
    assert!(
        actions
            .iter()
            .all(|a| a["reason"].is_string() && a["attempt"] == 1),
        "{actions:?}"
    );

    // A key is still a key; markdown is for plans only; a .json that is no plan says so.
    let out = env.cardform(&["show", "alice-travel"]).output().unwrap();
    assert!(
        stderr(&out).contains("no card \"alice-travel\""),
        "{}",
        stderr(&out)
    );
    let out = env
        .cardform(&["show", "--format", "markdown"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--format markdown is for a saved plan"));
    env.write("other.json", "{\"hello\": 1}");
    let out = env.cardform(&["show", "other.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("other.json is neither a saved plan (not a cardform plan file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn one_card_unchanged_is_one_card() {
    let env = Env::new();
    env.write("one.yaml", ONE_CARD);
    assert_success(
        &env.cardform(&["apply", "-f", "one.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let out = env.cardform(&["plan", "-f", "one.yaml"]).output().unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains("No changes. Declarations and state match (1 card unchanged)."),
        "{}",
        stdout(&out)
    );
}

/// A move is a move: `state history` lists `state mv` as the move it is, and `state diff` shows
/// the card under its old and new key as one moved card, not one key removed and another added.
#[test]
fn a_move_reads_as_a_move_in_history_and_diff() {
    let env = Env::new();
    env.write("cards.yaml", ONE_CARD);
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let out = env
        .cardform(&["state", "mv", "dave-sales", "dave-emea"])
        .output()
        .unwrap();
    assert_success(&out);
    let history = stdout(&env.cardform(&["state", "history"]).output().unwrap());
    let last = history.lines().last().unwrap();
    assert!(last.contains("moved dave-sales → dave-emea"), "{history}");
    let diff = stdout(&env.cardform(&["state", "diff", "1", "2"]).output().unwrap());
    assert!(diff.contains("> dave-sales → dave-emea (moved)"), "{diff}");
    assert!(
        diff.contains("0 added, 0 removed, 0 changed, 1 moved"),
        "{diff}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout(
        &env.cardform(&["state", "diff", "1", "2", "--json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(json["moved"][0]["from"], "dave-sales");
    assert_eq!(json["moved"][0]["to"], "dave-emea");
    assert_eq!(json["added"].as_array().unwrap().len(), 0);
}
