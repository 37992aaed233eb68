//! Schema upgrades, end to end, on a state written by the release before schema 2
//! (`tests/fixtures/schema1`, applied against the sandbox world beside it): read-only commands
//! refuse it untouched; `init --upgrade`, or the first writing command, upgrades it in place and
//! keeps a copy; afterwards every report prints what the old release printed, and apply sends
//! nothing and charges nothing. A state from a newer cardform is refused untouched.

use cardform::sandbox::SandboxConfig;
use cardform::state::SCHEMA_VERSION;
use sqlx::Connection;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

use crate::harness::{Env, assert_success, fast_sandbox, stderr, stdout};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema1")
        .join(name)
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).unwrap()
}

/// The committed state of `tests/fixtures/{dir}` beside the sandbox world it was applied
/// against, with its declaration `files` in the env's directory. The world's own directory must
/// outlive the env.
pub fn fixture_env(dir: &str, files: &[&str]) -> (Env, TempDir) {
    let at = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(dir)
            .join(name)
    };
    let world_dir = TempDir::new().unwrap();
    let world = world_dir.path().join("world.json");
    std::fs::copy(at("world.json"), &world).unwrap();
    let env = Env::with(SandboxConfig {
        world_file: Some(world),
        ..fast_sandbox()
    });
    std::fs::create_dir_all(env.state().parent().unwrap()).unwrap();
    std::fs::copy(at("state.db"), env.state()).unwrap();
    for f in files {
        std::fs::copy(at(f), env.path(f)).unwrap();
    }
    (env, world_dir)
}

/// The schema-1 fixture and its declarations.
fn old_state_env() -> (Env, TempDir) {
    fixture_env("schema1", &["cards.yaml"])
}

fn backup(env: &Env) -> PathBuf {
    env.path("state/cardform.db.schema-1.bak")
}

pub async fn user_version(path: &Path) -> i64 {
    let mut conn = sqlx::sqlite::SqliteConnection::connect_with(
        &sqlx::sqlite::SqliteConnectOptions::new().filename(path),
    )
    .await
    .unwrap();
    let v = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    v
}

/// Everything the reports print, after an upgrade, is what the schema-1 release printed.
fn assert_same_facts(env: &Env) {
    for (args, file) in [
        // The one deliberate difference: money belongs to the run that sent the order (see the
        // fixture's README), so the killed serial 2 owns what it spent, not serial 3.
        (&["state", "history"][..], "corrected-history.txt"),
        (&["state", "diff", "1", "3"][..], "expected-diff.txt"),
        (
            &["state", "export", "--format", "json"][..],
            "expected-export.json",
        ),
        // One column added at the end (`address`), every other cell unchanged.
        (
            &["state", "audit", "--format", "csv"][..],
            "corrected-audit.csv",
        ),
        (&["show"][..], "expected-show.txt"),
        // Every amount now shows its currency: the one change in how the plan reads.
        (&["plan", "-f", "cards.yaml"][..], "corrected-plan.txt"),
    ] {
        let out = env.cardform(args).output().unwrap();
        assert_success(&out);
        assert_eq!(
            stdout(&out),
            expected(file),
            "`cardform {}`",
            args.join(" ")
        );
    }
}

#[test]
fn read_only_commands_refuse_an_old_state_and_leave_it_untouched() {
    let (env, _world) = old_state_env();
    let before = std::fs::read(env.state()).unwrap();
    let calls_before = env.inspect().calls;
    for args in [
        &["plan", "-f", "cards.yaml"][..],
        &["show"],
        &["show", "alice-travel"],
        &["state", "list"],
        &["state", "history"],
        &["state", "diff"],
        &["state", "export"],
        &["state", "audit"],
    ] {
        let out = env.cardform(args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "`{}`: {err}", args.join(" "));
        assert!(
            err.contains("older cardform (schema 1") && err.contains("cardform init --upgrade"),
            "`{}` must say which command upgrades: {err}",
            args.join(" ")
        );
    }
    assert_eq!(
        std::fs::read(env.state()).unwrap(),
        before,
        "the file changed"
    );
    assert!(!backup(&env).exists());
    assert_eq!(
        env.inspect().calls,
        calls_before,
        "nothing may reach the provider"
    );
    let v = env.rt.block_on(user_version(&env.state()));
    assert_eq!(v, 1);
}

#[test]
fn init_upgrade_keeps_every_fact_and_sends_nothing() {
    let (env, _world) = old_state_env();
    let out = env.cardform(&["init"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "init without --upgrade changes nothing"
    );
    assert!(stderr(&out).contains("init --upgrade"), "{}", stderr(&out));
    assert!(!backup(&env).exists());

    let out = env.cardform(&["init", "--upgrade"]).output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("from schema 1 to {SCHEMA_VERSION}")),
        "{text}"
    );
    assert!(text.contains("cardform.db.schema-1.bak"), "{text}");
    // The copy is the old state as it was: still schema 1, private like the state itself.
    assert_eq!(env.rt.block_on(user_version(&backup(&env))), 1);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(backup(&env))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(env.rt.block_on(user_version(&env.state())), SCHEMA_VERSION);

    assert_same_facts(&env);

    // Lineage and keys survived: re-applying sends no mutation and charges nothing.
    let before = env.inspect();
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("no changes"), "{}", stdout(&out));
    let after = env.inspect();
    assert_eq!(after.issue_orders, before.issue_orders);
    assert_eq!(after.orders, before.orders);
    assert_eq!(after.total_charged, before.total_charged);
    assert_eq!(after.balance, before.balance);

    // Upgrading again is a no-op that says so.
    let out = env.cardform(&["init", "--upgrade"]).output().unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
}

#[test]
fn the_first_writing_command_upgrades_in_place_and_says_so() {
    let (env, _world) = old_state_env();
    let before = env.inspect();
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "upgraded the state from schema 1 to {SCHEMA_VERSION}"
        )) && err.contains("cardform.db.schema-1.bak"),
        "{err}"
    );
    assert!(backup(&env).exists());
    assert_eq!(env.inspect().orders, before.orders);
    assert_eq!(env.inspect().total_charged, before.total_charged);
    // One copy, once.
    let out = env.cardform(&["state", "rm", "ghost"]).output().unwrap();
    assert_success(&out);
    assert!(!stderr(&out).contains("upgraded"), "{}", stderr(&out));
    assert!(!env.path("state/cardform.db.schema-1.2.bak").exists());
}

#[test]
fn a_state_from_a_newer_cardform_is_refused_untouched() {
    let env = Env::new();
    assert_success(&env.cardform(&["init"]).output().unwrap());
    env.rt.block_on(async {
        let mut conn = sqlx::sqlite::SqliteConnection::connect_with(
            &sqlx::sqlite::SqliteConnectOptions::new().filename(env.state()),
        )
        .await
        .unwrap();
        sqlx::raw_sql("PRAGMA user_version = 99")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
    let before = std::fs::read(env.state()).unwrap();
    std::fs::write(env.path("cards.yaml"), crate::harness::ONBOARDING).unwrap();
    for args in [
        &["plan", "-f", "cards.yaml"][..],
        &["apply", "-f", "cards.yaml", "--auto-approve"],
        &["init", "--upgrade"],
        &["state", "history"],
    ] {
        let out = env.cardform(args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "`{}`: {err}", args.join(" "));
        assert!(err.contains("newer cardform (schema 99"), "{err}");
    }
    assert_eq!(std::fs::read(env.state()).unwrap(), before);
    assert_eq!(env.inspect().orders, 0);
}

#[test]
fn init_creates_a_state_and_says_where() {
    let env = Env::uninitialised();
    let out = env.cardform(&["init"]).output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("Initialised a new cardform state at") && text.contains("cardform.db"),
        "{text}"
    );
    assert!(env.state().exists());
    let out = env.cardform(&["init"]).output().unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
}

fn schema3(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema3")
        .join(name)
}

/// The schema-3 fixture (top-ups sent, no top-up records) beside the world it was applied to.
fn schema3_env() -> (Env, TempDir) {
    fixture_env("schema3", &["cards.yaml", "payroll.csv"])
}

/// From schema 3 to 4: each top-up the journal holds gets its record (labels unknown: schema 3
/// never kept them), every report says what the schema-3 release said, and nothing is sent.
#[test]
fn a_schema_3_state_gets_a_record_for_every_topup_it_sent() {
    let (env, _world) = schema3_env();
    let out = env
        .cardform(&["state", "list", "--topup", "*"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("older cardform (schema 3"),
        "{}",
        stderr(&out)
    );

    let out = env.cardform(&["init", "--upgrade"]).output().unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains(&format!("from schema 3 to {SCHEMA_VERSION}")),
        "{}",
        stdout(&out)
    );
    let copy = env.path("state/cardform.db.schema-3.bak");
    assert_eq!(env.rt.block_on(user_version(&copy)), 3);
    assert_eq!(env.rt.block_on(user_version(&env.state())), SCHEMA_VERSION);

    // The records, from the journal: what was sent, how it ended, what it cost.
    let out = env
        .cardform(&["state", "list", "--topup", "*", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let records: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let seen: Vec<(String, String, String, String, bool)> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}:{}",
                    r["card"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                ),
                r["amount"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
                r["charge"].as_str().unwrap().to_owned(),
                r["labels"].as_object().unwrap().is_empty(),
            )
        })
        .collect();
    let row = |k: &str, a: &str, c: &str| (k.into(), a.into(), "completed".into(), c.into(), true);
    assert_eq!(
        seen,
        vec![
            row("alice-travel:2026-11", "100.00", "101.80"),
            row("alice-travel:bonus", "10.00", "10.45"),
            row("bob-ops:2026-11", "25.00", "25.68"),
        ]
    );

    // Every run the schema-3 release printed, printed again, then the upgrade's own run: schema
    // 3 lost one of alice-travel's top-up charges from her `charged` (106.80, where her orders
    // cost 117.25), and the upgrade to schema 7 recomputes it from the journal, recorded.
    let cells = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let history = stdout(&env.cardform(&["state", "history"]).output().unwrap());
    let expected = std::fs::read_to_string(schema3("expected-history.txt")).unwrap();
    let lines: Vec<&str> = history.lines().collect();
    let old_lines: Vec<&str> = expected.lines().collect();
    assert_eq!(lines.len(), old_lines.len() + 1, "{history}");
    for (now, then) in lines.iter().zip(&old_lines) {
        assert_eq!(cells(now), cells(then), "{history}");
    }
    let upgrade = cells(lines[old_lines.len()]);
    assert_eq!(upgrade[0], "3", "{history}");
    assert!(upgrade[3].contains("schema 7"), "{history}");
    assert_eq!(upgrade[4], "recomputed charged 1", "{history}");
    let alice = stdout(&env.cardform(&["show", "alice-travel"]).output().unwrap());
    assert!(alice.contains("charged         117.25 USDT"), "{alice}");
    let diff = stdout(&env.cardform(&["state", "diff", "2", "3"]).output().unwrap());
    assert!(
        diff.contains("alice-travel") && diff.contains("117.25"),
        "{diff}"
    );

    // The one deliberate difference: the labels schema 3 never kept are recorded, state only.
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "-f", "payroll.csv"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        stdout(&out),
        std::fs::read_to_string(schema3("corrected-plan.txt")).unwrap()
    );
    let out = env
        .cardform(&["state", "export", "--format", "json"])
        .output()
        .unwrap();
    let export: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let mut before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema3("expected-export.json")).unwrap())
            .unwrap();
    // The one figure the upgrade corrects (above).
    before["cards"][0]["charged"] = "117.25".into();
    assert_eq!(export["cards"], before["cards"]);
    assert_eq!(export["topups"].as_array().unwrap().len(), 3);
    // `show`: the card as it was, then its top-ups, then the same orders and charges.
    let shown = stdout(&env.cardform(&["show", "alice-travel"]).output().unwrap());
    let old = std::fs::read_to_string(schema3("expected-show-alice.txt")).unwrap();
    let orders = |t: &str| t[t.find("\nOrders:").unwrap()..].to_owned();
    assert_eq!(orders(&shown), orders(&old));
    assert!(shown.contains("Top-ups:\nID"), "{shown}");
    // The diff of the run that sent them, replayed from the backfilled change log.
    let diff = stdout(&env.cardform(&["state", "diff", "0", "2"]).output().unwrap());
    assert!(
        diff.contains("top-ups: 3 added, 0 removed, 0 changed."),
        "{diff}"
    );

    // Lineage and keys survived: re-applying sends nothing and charges nothing.
    let seen_before = env.inspect();
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
    let after = env.inspect();
    assert_eq!(after.orders, seen_before.orders);
    assert_eq!(after.total_charged, seen_before.total_charged);
    // That run relabelled the two top-ups the CSV labels (state only): their records are whole.
    let out = env
        .cardform(&[
            "state",
            "list",
            "--topup",
            "*",
            "--label",
            "run=payroll",
            "--json",
        ])
        .output()
        .unwrap();
    let labelled: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(labelled.as_array().unwrap().len(), 2, "{labelled:#}");
}

fn schema6(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema6")
        .join(name)
}

/// From schema 6, the last before money was derived from the journal: a state whose failed
/// issue orders were refunded by the provider but counted at their charge (`make.sh`). The
/// upgrade keeps every order; `refresh` reads the refunds schema 6 never recorded, and then every
/// figure is the provider's to the cent.
#[test]
fn a_schema_6_state_learns_the_refunds_it_never_recorded() {
    let (env, _world) = fixture_env("schema6", &["cards.yaml"]);
    let start = cardform::sandbox::SandboxConfig::default().balance;

    // What schema 6 printed: the refunded fees counted as spent.
    let old = std::fs::read_to_string(schema6("expected-list.txt")).unwrap();
    assert!(old.contains("charged in total"), "{old}");
    let out = env.cardform(&["init", "--upgrade"]).output().unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains(&format!("from schema 6 to {SCHEMA_VERSION}")),
        "{}",
        stdout(&out)
    );

    let out = env.cardform(&["refresh"]).output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("Read the refunds of 4 failed orders"),
        "{text}"
    );
    let spent = crate::cli_money::spent(&env, start);
    crate::cli_money::assert_figures(&env, spent);
    // Once learned, a refund is never read or counted again.
    let again = stdout(&env.cardform(&["refresh"]).output().unwrap());
    assert!(!again.contains("Read the refunds"), "{again}");
    crate::cli_money::assert_figures(&env, spent);
    let shown = stdout(&env.cardform(&["show", "carol-premium"]).output().unwrap());
    assert!(shown.contains("refunded by the provider"), "{shown}");
}
