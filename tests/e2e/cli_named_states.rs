//! Named PostgreSQL states (issue 29, Terraform's workspaces): `workspace list` lists every state of the
//! database `--state` points into, `workspace new` creates one, `workspace delete` removes one, and each
//! refusal holds: the selected state, a locked one, one with live cards (unless --force), a
//! schema cardform did not create, a SQLite file. Through the real binary, against the sandbox
//! and the test PostgreSQL server.

use cardform::state::{LockRequest, StateLocation, Store};
use std::time::Duration;

use crate::harness::*;

const TWO_CARDS: &str = "version: 1\ncards:\n  \
    - {key: a, external_user_id: u-1, product_code: VISA_USD_STD}\n  \
    - {key: b, external_user_id: u-2, product_code: VISA_USD_STD}\n";

/// `env`'s database with `?state=NAME`.
fn named(env: &Env, name: &str) -> String {
    let url = env.pg_state.as_deref().expect("a PostgreSQL env");
    url.replace("?state=e2e", &format!("?state={name}"))
}

fn ls_json(env: &Env) -> serde_json::Value {
    let out = env
        .cardform(&["workspace", "list", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn names(doc: &serde_json::Value) -> Vec<String> {
    doc["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn fails_with(out: &std::process::Output, words: &str) {
    assert_eq!(out.status.code(), Some(1), "{}{}", stdout(out), stderr(out));
    assert!(
        stderr(out).contains(words),
        "{words:?} not in:\n{}",
        stderr(out)
    );
}

#[test]
fn named_states_are_listed_created_used_and_deleted() {
    let env = Env::postgres();
    env.write("cards.yaml", TWO_CARDS);
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );

    let created = env
        .cardform(&["workspace", "new", "staging"])
        .output()
        .unwrap();
    assert_success(&created);
    let said = stdout(&created);
    assert!(said.contains("Created state staging in"), "{said}");
    assert!(!said.contains(crate::pg::PASSWORD), "{said}");
    fails_with(
        &env.cardform(&["workspace", "new", "staging"])
            .output()
            .unwrap(),
        "a state named staging already exists",
    );
    fails_with(
        &env.cardform(&["workspace", "new", "Bad-Name"])
            .output()
            .unwrap(),
        "must be 1 to 40 characters from a-z 0-9 _",
    );

    let doc = ls_json(&env);
    assert_eq!(names(&doc), ["e2e", "staging"], "{doc:#}");
    assert_eq!(doc["selected"], "e2e");
    assert_eq!(doc["selected_by"], "flag --state");
    let e2e = &doc["states"][0];
    assert_eq!(
        (
            &e2e["serial"],
            &e2e["cards"],
            &e2e["live_cards"],
            &e2e["selected"]
        ),
        (&1.into(), &2.into(), &2.into(), &true.into()),
        "{doc:#}"
    );
    assert!(
        e2e["last_run"].as_str().unwrap().starts_with("20"),
        "{doc:#}"
    );
    let staging = &doc["states"][1];
    assert_eq!(
        (&staging["serial"], &staging["cards"], &staging["selected"]),
        (&0.into(), &0.into(), &false.into())
    );
    assert_eq!(staging["last_run"], serde_json::Value::Null);

    let table = env.cardform(&["workspace", "list"]).output().unwrap();
    assert_success(&table);
    let text = stdout(&table);
    assert!(text.contains("NAME"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("* e2e")), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("  staging") && l.contains("never")),
        "{text}"
    );
    assert!(text.contains("Selected: e2e (from flag --state)"), "{text}");
    assert!(!text.contains(crate::pg::PASSWORD), "{text}");

    // The new state is a state like any: a plan against it plans both cards anew.
    let plan = env
        .cardform_at(&named(&env, "staging"), &["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert_success(&plan);
    assert!(stdout(&plan).contains("2 to issue"), "{}", stdout(&plan));

    // No terminal to ask on: --force is needed, and nothing is deleted without it.
    fails_with(
        &env.cardform(&["workspace", "delete", "staging"])
            .output()
            .unwrap(),
        "pass --force",
    );
    assert_eq!(names(&ls_json(&env)), ["e2e", "staging"]);
    fails_with(
        &env.cardform(&["workspace", "delete", "nosuch", "--force"])
            .output()
            .unwrap(),
        "no state named nosuch in",
    );
    let gone = env
        .cardform(&["workspace", "delete", "staging", "--force"])
        .output()
        .unwrap();
    assert_success(&gone);
    assert!(
        stdout(&gone).contains("Deleted state staging"),
        "{}",
        stdout(&gone)
    );
    assert_eq!(names(&ls_json(&env)), ["e2e"]);
    // And its name is free again.
    assert_success(
        &env.cardform(&["workspace", "new", "staging"])
            .output()
            .unwrap(),
    );
}

#[test]
fn the_selected_a_locked_and_a_live_state_are_not_deleted() {
    let env = Env::postgres();
    env.write("cards.yaml", TWO_CARDS);
    let staging = named(&env, "staging");
    assert_success(
        &env.cardform(&["workspace", "new", "staging"])
            .output()
            .unwrap(),
    );

    fails_with(
        &env.cardform(&["workspace", "delete", "e2e", "--force"])
            .output()
            .unwrap(),
        "refusing to delete state e2e: it is the state selected now (from flag --state)",
    );

    // Live cards: refused without --force, however it is asked.
    assert_success(
        &env.cardform_at(&staging, &["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    fails_with(
        &env.cardform(&["workspace", "delete", "staging"])
            .output()
            .unwrap(),
        "it still has 2 live cards",
    );

    // Locked: refused even with --force, naming the holder; deleted once it lets go.
    let location = StateLocation::parse(&staging).unwrap();
    let (store, lock) = env.rt.block_on(async {
        let store = Store::open(&location).await.unwrap();
        let who = LockRequest {
            command: "cardform apply (held by the test)".into(),
            pid: 4242,
            host: "runner-7".into(),
            user: "ci".into(),
        };
        let lock = store.acquire_lock(who, Duration::ZERO).await.unwrap();
        (store, lock)
    });
    let ls = ls_json(&env);
    assert_eq!(ls["states"][1]["locked"], true, "{ls:#}");
    let refused = env
        .cardform(&["workspace", "delete", "staging", "--force"])
        .output()
        .unwrap();
    fails_with(&refused, "state is locked by lock");
    assert!(
        stderr(&refused).contains("runner-7"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(names(&ls_json(&env)), ["e2e", "staging"]);
    env.rt.block_on(async {
        store.release_lock(&lock.lock_id).await.unwrap();
        store.close().await;
    });

    let gone = env
        .cardform(&["workspace", "delete", "staging", "--force"])
        .output()
        .unwrap();
    assert_success(&gone);
    assert!(
        stdout(&gone).contains("2 cards, 2 live"),
        "{}",
        stdout(&gone)
    );
    assert_eq!(names(&ls_json(&env)), ["e2e"]);
}

#[test]
fn a_schema_cardform_did_not_create_is_listed_as_such_and_never_dropped() {
    let env = Env::postgres();
    let url = env.pg_state.clone().unwrap().replace("?state=e2e", "");
    let run = |sql: &'static str| {
        let url = url.clone();
        env.rt.block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        })
    };
    run("CREATE SCHEMA cardform_theirs; CREATE TABLE cardform_theirs.payroll (id int)");

    let ls = env.cardform(&["workspace", "list"]).output().unwrap();
    assert_success(&ls);
    assert!(
        stdout(&ls).contains("theirs") && stdout(&ls).contains("not a cardform state"),
        "{}",
        stdout(&ls)
    );
    fails_with(
        &env.cardform(&["workspace", "delete", "theirs", "--force"])
            .output()
            .unwrap(),
        "is not a cardform state",
    );
    // The table is still there.
    run("SELECT * FROM cardform_theirs.payroll");
}

#[test]
fn a_sqlite_file_is_one_state() {
    let env = Env::new();
    env.write("cards.yaml", TWO_CARDS);
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let ls = env
        .cardform(&["workspace", "list", "--json"])
        .output()
        .unwrap();
    assert_success(&ls);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&ls)).unwrap();
    let only = &doc["states"][0];
    assert_eq!(doc["states"].as_array().unwrap().len(), 1, "{doc:#}");
    assert_eq!(only["name"], env.state().display().to_string());
    assert_eq!(
        (&only["serial"], &only["cards"], &only["selected"]),
        (&1.into(), &2.into(), &true.into())
    );
    for args in [
        ["workspace", "new", "staging"],
        ["workspace", "delete", "staging"],
    ] {
        let out = env.cardform(&args).output().unwrap();
        fails_with(&out, "is a SQLite file, which holds exactly one state");
        assert!(
            stderr(&out).contains("use another file"),
            "{}",
            stderr(&out)
        );
    }
}
