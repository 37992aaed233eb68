//! Schema 8 (plans that wait for approval), end to end: a state written by the last build of
//! schema 7 (`tests/fixtures/schema7`), and a PostgreSQL state taken back to schema 7, upgrade;
//! readers refuse them until then, and afterwards every run reads as it did.

use cardform::state::SCHEMA_VERSION;
use sqlx::Connection;
use std::path::{Path, PathBuf};

use crate::harness::{Env, assert_success, stderr, stdout};
use crate::upgrade::user_version;

fn schema7(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/schema7")
        .join(name)
}

/// From schema 7, the last before plans could wait for approval (`tests/fixtures/schema7`): the
/// upgrade adds the approvals and changes nothing else; history reads as it did, no plan has
/// waited, and applying the same declarations again sends nothing.
#[test]
fn a_schema_7_state_upgrades_to_approvals() {
    let (env, _world) = crate::upgrade::fixture_env("schema7", &["cards.yaml"]);

    let out = env.cardform(&["approve", "--list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("older cardform (schema 7"),
        "{}",
        stderr(&out)
    );
    let out = env.cardform(&["init", "--upgrade"]).output().unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains(&format!("from schema 7 to {SCHEMA_VERSION}")),
        "{}",
        stdout(&out)
    );
    assert_eq!(env.rt.block_on(user_version(&env.state())), SCHEMA_VERSION);
    let copy = env.path("state/cardform.db.schema-7.bak");
    assert_eq!(env.rt.block_on(user_version(&copy)), 7);

    let history = stdout(&env.cardform(&["state", "history"]).output().unwrap());
    assert_eq!(
        history,
        std::fs::read_to_string(schema7("expected-history.txt")).unwrap()
    );
    let out = env.cardform(&["approve", "--list"]).output().unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out), "No plan has waited for approval.\n");

    // The fixture's sandbox listened on another port: the state moves to this one, recorded.
    let out = env
        .cardform(&["state", "replace-provider", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let before = env.inspect();
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let after = env.inspect();
    assert_eq!(after.orders, before.orders);
    assert_eq!(after.total_charged, before.total_charged);
}

/// A PostgreSQL state taken back to schema 7 (its approvals table and migration record gone, as
/// schema 7 had them) is refused by a reader, upgraded by `init --upgrade`, and keeps its runs.
#[test]
fn a_schema_7_postgres_state_upgrades_to_approvals() {
    let env = Env::postgres();
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: a, external_user_id: u-a, product_code: VISA_USD_STD}\n",
    );
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let location = env.location();
    let cardform::state::StateLocation::Postgres(pg) = &location else {
        unreachable!("a postgres env");
    };
    let url = location.to_string().replace("***", crate::pg::PASSWORD);
    let url = url.split('?').next().unwrap().to_owned();
    let schema = format!("cardform_{}", pg.name());
    env.rt.block_on(async {
        let mut conn = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
        for statement in [
            format!("DROP TABLE {schema}.approvals"),
            format!("DELETE FROM {schema}.cardform_migrations WHERE version = 8"),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    });
    let out = env.cardform(&["state", "history"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("older cardform (schema 7"),
        "{}",
        stderr(&out)
    );
    let out = env.cardform(&["init", "--upgrade"]).output().unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains(&format!("from schema 7 to {SCHEMA_VERSION}")),
        "{}",
        stdout(&out)
    );
    let out = env
        .cardform(&["state", "history", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let runs: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["charged"], "5.00");
    let out = env
        .cardform(&["approve", "--list", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(listed["approvals"], serde_json::json!([]));
}
