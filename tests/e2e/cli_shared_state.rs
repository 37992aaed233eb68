//! State a team shares: `init` and the refusal of a missing state, PostgreSQL state used from
//! several fresh working directories (the GitOps runner case), concurrent and killed appliers on
//! it, `state migrate` between backends, and the database's own failures. Everything through the
//! real binary, against the sandbox and the test PostgreSQL server.

use cardform::sandbox::SandboxConfig;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::*;

fn fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: card-{i:03}, external_user_id: u-{i:03}, product_code: VISA_USD_STD}}\n"
        ));
    }
    s
}

fn issue_orders(env: &Env) -> u64 {
    env.inspect().issue_orders.iter().map(|c| c.count).sum()
}

/// A second working directory (a fresh CI runner) using `env`'s provider and the state `state`.
fn runner(env: &Env, state: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cards.yaml"), fleet(4)).unwrap();
    let mut cmd = assert_cmd::Command::cargo_bin("cardform").unwrap();
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CARDFORM_API_URL", env.url())
        .env("CARDFORM_API_KEY", &env.api_key)
        .env("CARDFORM_API_SECRET", &env.api_secret)
        .env("CARDFORM_STATE", state)
        .args(args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap()
}

fn missing_state_is_refused_and_nothing_is_sent(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    // Point at a state nobody created: another file, or another name in the database.
    let state = match backend {
        Backend::Sqlite => env.path("elsewhere/cardform.db").display().to_string(),
        Backend::Postgres => env.state_arg().replace("state=e2e", "state=nobody"),
    };
    env.write("cards.yaml", &fleet(2));
    let before = env.inspect().calls;
    for args in [
        &["plan", "-f", "cards.yaml"][..],
        &["apply", "-f", "cards.yaml", "--auto-approve"],
        &["refresh"],
        &["import", "k", "card_1"],
        &["show"],
        &["state", "list"],
        &["state", "history"],
        &["state", "diff"],
        &["state", "export"],
        &["state", "audit"],
        &["state", "rm", "k"],
        &["state", "migrate", "--to", "x.db"],
    ] {
        let out = env.cardform_at(&state, args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "`{}`: {err}", args.join(" "));
        assert!(
            err.contains("no state at") && err.contains("cardform init"),
            "`{}` must say how to fix it: {err}",
            args.join(" ")
        );
        assert!(!err.contains(crate::pg::PASSWORD), "{err}");
    }
    assert_eq!(
        env.inspect().calls,
        before,
        "nothing may reach the provider"
    );
    assert!(!env.path("elsewhere/cardform.db").exists());

    // `init` creates it, and says where.
    let out = env.cardform_at(&state, &["init"]).output().unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("Initialised a new cardform state at"));
    assert!(
        !stdout(&out).contains(crate::pg::PASSWORD),
        "{}",
        stdout(&out)
    );
    let out = env
        .cardform_at(&state, &["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert_success(&out);
}

fn the_sandbox_needs_no_init(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    let state = match backend {
        Backend::Sqlite => "state/fresh.db".to_owned(),
        Backend::Postgres => env.state_arg().replace("state=e2e", "state=demo"),
    };
    env.write("cards.yaml", &fleet(2));
    let out = env
        .cardform_at(
            &state,
            &["--sandbox", "apply", "-f", "cards.yaml", "--auto-approve"],
        )
        .output()
        .unwrap();
    assert_success(&out);
    let out = env
        .cardform_at(&state, &["--sandbox", "plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
}

on_both_backends!(
    missing_state_is_refused_and_nothing_is_sent,
    the_sandbox_needs_no_init
);

/// The GitOps case: every runner starts from an empty directory; the state is in PostgreSQL.
#[test]
fn fresh_runners_sharing_postgres_state_issue_and_pay_once() {
    let env = Env::postgres();
    let state = env.state_arg();
    let out = runner(
        &env,
        &state,
        &["apply", "-f", "cards.yaml", "--auto-approve"],
    );
    assert_success(&out);
    assert_eq!(issue_orders(&env), 4);
    let charged = env.inspect().total_charged;

    // A second runner, another empty directory: the plan knows every card.
    let out = runner(
        &env,
        &state,
        &["plan", "-f", "cards.yaml", "--detailed-exitcode"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("No changes."), "{}", stdout(&out));
    let out = runner(
        &env,
        &state,
        &["apply", "-f", "cards.yaml", "--auto-approve"],
    );
    assert_success(&out);
    assert_eq!(issue_orders(&env), 4, "a second runner must issue nothing");
    assert_eq!(env.inspect().total_charged, charged, "nor pay anything");

    // Two states side by side in one database: another name is another, empty, state.
    let other = state.replace("state=e2e", "state=staging");
    let out = runner(&env, &other, &["plan", "-f", "cards.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "not created yet: {}",
        stderr(&out)
    );
    assert_success(&runner(&env, &other, &["init"]));
    let out = runner(&env, &other, &["plan", "-f", "cards.yaml"]);
    assert_success(&out);
    assert!(stdout(&out).contains("4 to issue"), "{}", stdout(&out));

    // History names who ran what, and never the password.
    let out = runner(&env, &state, &["state", "history"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("apply -f cards.yaml"), "{text}");
    assert!(!text.contains(crate::pg::PASSWORD), "{text}");
}

#[test]
fn concurrent_appliers_on_postgres_state_order_each_card_once() {
    let env = Env::on(
        Backend::Postgres,
        SandboxConfig {
            order_latency: Duration::from_millis(300),
            ..fast_sandbox()
        },
    );
    let f = env.write("cards.yaml", &fleet(40));
    let f = f.to_str().unwrap();
    // Three appliers at once, each willing to wait for the lock: they take turns.
    let children: Vec<_> = (0..3)
        .map(|_| {
            env.process(&["apply", "-f", f, "--auto-approve", "--lock-timeout", "60s"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let inspection = env.inspect();
    assert_eq!(issue_orders(&env), 40, "{:?}", inspection.issue_orders);
    assert!(inspection.issue_orders.iter().all(|c| c.count == 1));
    assert_eq!(inspection.total_charged, "200.00".parse().unwrap());
}

#[test]
fn a_lost_database_connection_stops_new_orders_and_the_next_run_resumes_exactly() {
    let env = Env::on(
        Backend::Postgres,
        SandboxConfig {
            order_latency: Duration::from_millis(800),
            ..fast_sandbox()
        },
    );
    let f = env.write("cards.yaml", &fleet(60));
    let f = f.to_str().unwrap();
    let child = env
        .process(&["apply", "-f", f, "--auto-approve", "--parallelism", "8"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while env
        .inspect()
        .calls
        .get("cards/create")
        .copied()
        .unwrap_or(0)
        < 4
    {
        assert!(t0.elapsed() < Duration::from_secs(30), "apply never sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The database drops every connection of this state's database, as a failover would.
    let database = env.state_arg();
    let database = database
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    crate::pg::server().terminate_connections(database);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run cannot go on without its journal"
    );
    let created = env
        .inspect()
        .calls
        .get("cards/create")
        .copied()
        .unwrap_or(0);
    assert!(
        created < 60,
        "new orders must stop: {created} of 60 were sent"
    );

    let out = env
        .cardform(&["apply", "-f", f, "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let inspection = env.inspect();
    assert_eq!(issue_orders(&env), 60);
    assert!(
        inspection.issue_orders.iter().all(|c| c.count == 1),
        "a card was ordered twice: {:?}",
        inspection.issue_orders
    );
    assert_eq!(inspection.total_charged, "300.00".parse().unwrap());
}

#[test]
fn migrate_a_file_state_to_postgres_and_back_keeps_every_fact() {
    let env = Env::new();
    env.write("cards.yaml", &fleet(5));
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    assert_success(&env.cardform(&["state", "rm", "card-004"]).output().unwrap());
    let report = |state: &str, args: &[&str]| {
        let out = env.cardform_at(state, args).output().unwrap();
        assert_success(&out);
        stdout(&out)
    };
    let file = env.state_arg();
    let pg = Env::fresh_pg_state();
    let out = env
        .cardform(&["state", "migrate", "--to", &pg])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("serial 2"), "{}", stdout(&out));
    // What was copied, counted; no approvals to name where serve never held a plan back.
    assert!(stdout(&out).contains(" runs, "), "{}", stdout(&out));
    assert!(!stdout(&out).contains("approvals"), "{}", stdout(&out));
    assert!(
        !stdout(&out).contains(crate::pg::PASSWORD),
        "{}",
        stdout(&out)
    );
    for args in [
        &["state", "export", "--format", "json"][..],
        &["state", "history"],
        &["state", "audit", "--format", "csv"],
        &["state", "diff", "0", "2"],
        &["show"],
    ] {
        assert_eq!(report(&file, args), report(&pg, args), "{}", args.join(" "));
    }
    // The same lineage, so the same keys: card-004, forgotten and declared again, is planned
    // as an issue, but its key is the one it was first ordered with, so the provider answers
    // with that order: no new order, no new fee.
    let (orders, charged) = (env.inspect().orders, env.inspect().total_charged);
    let out = report(&pg, &["apply", "-f", "cards.yaml", "--auto-approve"]);
    assert!(out.contains("1 to issue"), "card-004 was forgotten: {out}");
    assert_eq!(env.inspect().orders, orders);
    assert_eq!(env.inspect().total_charged, charged);

    // Back onto the file, which has moved on less: both sides were written since, refused.
    let out = env
        .cardform_at(&pg, &["state", "migrate", "--to", &file])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("serial 2"), "{}", stderr(&out));
    // Onto a state `init` made and nothing wrote: that is an empty place, and it works.
    let empty = Env::new();
    let out = env
        .cardform_at(&pg, &["state", "migrate", "--to", &empty.state_arg()])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        report(&empty.state_arg(), &["state", "history"]),
        report(&pg, &["state", "history"])
    );
    // Onto another lineage's state: refused, untouched.
    let stranger = Env::new();
    stranger.write("cards.yaml", &fleet(1));
    assert_success(
        &stranger
            .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let before = report(
        &stranger.state_arg(),
        &["state", "export", "--format", "json"],
    );
    let out = env
        .cardform_at(&pg, &["state", "migrate", "--to", &stranger.state_arg()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("another state (lineage"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        report(
            &stranger.state_arg(),
            &["state", "export", "--format", "json"]
        ),
        before
    );
}

#[test]
fn database_faults_are_clear_and_never_show_the_password() {
    let env = Env::new();
    let port = crate::pg::server().port();
    let wrong = format!("postgres://postgres:not-the-password@127.0.0.1:{port}/postgres");
    let out = env.cardform_at(&wrong, &["show"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");

    // Nothing listens there: refused at once, naming the host.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://ci:hunter2@127.0.0.1:{closed}/cardform");
    let started = Instant::now();
    env.write("x.yaml", &fleet(1));
    let out = env
        .cardform_at(&url, &["plan", "-f", "x.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "must fail within seconds"
    );
    let err = stderr(&out);
    assert!(err.contains(&format!("127.0.0.1:{closed}")), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    // The password from the environment works as well as one in the URL.
    let state = Env::fresh_pg_state().replace(&format!(":{}@", crate::pg::PASSWORD), "@");
    let out = env
        .cardform_at(&state, &["init"])
        .env("PGPASSWORD", crate::pg::PASSWORD)
        .output()
        .unwrap();
    assert_success(&out);
}
