//! A state is a state or an error: whatever is at the state's location and is not a cardform
//! state (an empty file, another program's database, a file that is not SQLite, an empty or
//! foreign PostgreSQL schema) is refused by every command, naming it and saying what to do,
//! before anything is sent, and left as it was. Only `init` creates a state, never over anything.

use sqlx::Connection;

use crate::harness::*;

const CARDS: &str = "version: 1\ncards:\n  - {key: card-000, external_user_id: u-000, product_code: VISA_USD_STD}\n";

/// An SQLite database some other program made: one table, nothing of cardform's.
fn foreign_sqlite(env: &Env, path: &std::path::Path) {
    env.rt.block_on(async {
        let mut conn = sqlx::sqlite::SqliteConnection::connect_with(
            &sqlx::sqlite::SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true),
        )
        .await
        .unwrap();
        sqlx::raw_sql("CREATE TABLE notes (x INTEGER); INSERT INTO notes VALUES (1)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    });
}

/// Every command refuses the file at `env.state()`, naming it, sending nothing, changing nothing.
fn every_command_refuses(env: &Env, what: &str) {
    env.write("cards.yaml", CARDS);
    let state = env.state();
    let before = std::fs::read(&state).unwrap();
    for args in [
        &["apply", "-f", "cards.yaml", "--auto-approve"][..],
        &["plan", "-f", "cards.yaml"],
        &["refresh"],
        &["import", "card-000", "card_1"],
        &["show"],
        &["state", "list"],
        &["state", "history"],
        &["state", "rm", "card-000"],
        &["--sandbox", "apply", "-f", "cards.yaml", "--auto-approve"],
    ] {
        let out = env.cardform(args).output().unwrap();
        let err = stderr(&out);
        assert_ne!(
            out.status.code(),
            Some(0),
            "{what}: `{}`: {err}",
            args.join(" ")
        );
        assert!(
            err.contains(&state.display().to_string()) && err.contains("is not a cardform state"),
            "{what}: `{}` must name the file: {err}",
            args.join(" ")
        );
        assert!(
            err.contains("restore the state from a backup"),
            "{what}: `{}` must say what to do: {err}",
            args.join(" ")
        );
    }
    assert_eq!(env.inspect().calls_to("cards/create"), 0, "{what}");
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "{what}: the file changed"
    );

    let out = env.cardform(&["init"]).output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{what}: init: {}", stderr(&out));
    assert_eq!(
        std::fs::read(&state).unwrap(),
        before,
        "{what}: init changed it"
    );
}

#[test]
fn an_empty_state_file_is_refused_by_every_command() {
    let env = Env::new();
    std::fs::write(env.state(), b"").unwrap();
    every_command_refuses(&env, "0 bytes");
    let err = stderr(
        &env.cardform(&["plan", "-f", "cards.yaml"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("an empty file (0 bytes)"), "{err}");
}

#[test]
fn another_programs_database_is_refused_by_every_command() {
    let env = Env::new();
    std::fs::remove_file(env.state()).unwrap();
    foreign_sqlite(&env, &env.state());
    every_command_refuses(&env, "foreign SQLite");
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_by_every_command() {
    let env = Env::new();
    std::fs::write(env.state(), "hello, not a database at all\n").unwrap();
    every_command_refuses(&env, "not SQLite");
    let err = stderr(&env.cardform(&["show"]).output().unwrap());
    assert!(err.contains("not an SQLite database"), "{err}");
}

#[test]
fn init_creates_only_where_nothing_is() {
    let env = Env::uninitialised();
    let out = env.cardform(&["init"]).output().unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains("Initialised a new cardform state"),
        "{}",
        stdout(&out)
    );
    // No file of its making is left beside it.
    let names: Vec<_> = std::fs::read_dir(env.path("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cardform.db"], "{names:?}");

    // Another file, empty: init refuses it too, rather than taking it for a place to create.
    let other = env.path("state/other.db");
    std::fs::write(&other, b"").unwrap();
    let out = env
        .cardform_at(&other.display().to_string(), &["init"])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("other.db"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&other).unwrap(), b"");
}

#[test]
fn the_sandbox_creates_its_state_only_where_nothing_is() {
    let env = Env::new();
    env.write("cards.yaml", CARDS);
    // Nothing there: created, as on a fresh clone.
    let fresh = env.path("state/fresh.db").display().to_string();
    let out = env
        .cardform_at(
            &fresh,
            &["--sandbox", "apply", "-f", "cards.yaml", "--auto-approve"],
        )
        .output()
        .unwrap();
    assert_success(&out);
    // An empty file there: refused, nothing sent.
    let sent = env.inspect().calls_to("cards/create");
    let empty = env.path("state/empty.db");
    std::fs::write(&empty, b"").unwrap();
    let out = env
        .cardform_at(
            &empty.display().to_string(),
            &["--sandbox", "apply", "-f", "cards.yaml", "--auto-approve"],
        )
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("is not a cardform state"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.inspect().calls_to("cards/create"), sent);
    assert_eq!(std::fs::read(&empty).unwrap(), b"");
}

/// Runs `sql` in the database of the env's PostgreSQL state.
fn pg_sql(env: &Env, sql: &str) {
    let url = env
        .pg_state
        .as_deref()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    env.rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    });
}

#[test]
fn an_empty_or_foreign_postgres_schema_is_refused() {
    let env = Env::postgres();
    env.write("cards.yaml", CARDS);
    for (name, sql, what) in [
        (
            "empty",
            "CREATE SCHEMA cardform_empty",
            "exists but is empty",
        ),
        (
            "foreign",
            "CREATE SCHEMA cardform_foreign; CREATE TABLE cardform_foreign.notes (x int)",
            "tables cardform did not create (notes)",
        ),
    ] {
        pg_sql(&env, sql);
        let state = env
            .state_arg()
            .replace("state=e2e", &format!("state={name}"));
        for args in [
            &["apply", "-f", "cards.yaml", "--auto-approve"][..],
            &["plan", "-f", "cards.yaml"],
            &["state", "list"],
            &["init"],
        ] {
            let out = env.cardform_at(&state, args).output().unwrap();
            let err = stderr(&out);
            assert_ne!(
                out.status.code(),
                Some(0),
                "{name}: `{}`: {err}",
                args.join(" ")
            );
            assert!(
                err.contains("is not a cardform state") && err.contains(what),
                "{name}: `{}`: {err}",
                args.join(" ")
            );
        }
    }
    assert_eq!(env.inspect().calls_to("cards/create"), 0);

    // Where nothing is, init creates the state, and apply then uses it.
    let state = env.state_arg().replace("state=e2e", "state=fresh");
    assert_success(&env.cardform_at(&state, &["init"]).output().unwrap());
    let out = env.cardform_at(&state, &["init"]).output().unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    let out = env
        .cardform_at(&state, &["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(env.inspect().calls_to("cards/create"), 1);
}
