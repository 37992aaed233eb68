//! `cardform serve`: what it refuses to start with, the token on every route, reconciles on
//! start, on changed files and on `POST /api/reconcile`, a SIGTERM mid-run that exits 0 and
//! resumes on restart, and two replicas where the leader dies with `kill -9` mid-run. Through the
//! real binary, against the sandbox and the test PostgreSQL server; every count is checked at
//! the sandbox (what the provider saw) and in state.

use cardform::sandbox::SandboxConfig;
use std::time::{Duration, Instant};

use crate::harness::*;
use crate::serve_harness::{self as serve, Serve};

fn fleet(prefix: &str, n: usize) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: {prefix}-{i:03}, external_user_id: {prefix}-u{i:03}, product_code: VISA_USD_STD}}\n"
        ));
    }
    s
}

fn issued(env: &Env) -> u64 {
    env.inspect().issue_orders.iter().map(|c| c.count).sum()
}

/// Every card was ordered exactly once at the sandbox, `n` in all, and state lists `n` cards.
fn each_card_once(env: &Env, n: u64) {
    let inspection = env.inspect();
    assert!(
        inspection.issue_orders.iter().all(|c| c.count == 1),
        "a card was ordered twice: {:?}",
        inspection.issue_orders
    );
    assert_eq!(issued(env), n);
    let out = env.cardform(&["state", "list", "--json"]).output().unwrap();
    assert_success(&out);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cards = listed
        .as_array()
        .or_else(|| listed["cards"].as_array())
        .map_or(0, Vec::len);
    assert_eq!(cards as u64, n, "{listed}");
}

fn slow(latency_ms: u64) -> SandboxConfig {
    SandboxConfig {
        order_latency: Duration::from_millis(latency_ms),
        ..fast_sandbox()
    }
}

#[test]
fn refuses_a_sqlite_state_and_a_missing_or_short_token() {
    let env = Env::new();
    env.write("cards/a.yaml", &fleet("a", 1));
    let mut s = serve::spawn(&env, "sqlite", &["-f", "cards"], Some(serve::TOKEN));
    let status = s.child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    assert!(s.log().contains("PostgreSQL"), "{}", s.log());

    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet("a", 1));
    let mut none = serve::spawn(&env, "none", &["-f", "cards"], None);
    assert_eq!(none.child.wait().unwrap().code(), Some(1));
    assert!(
        none.log().contains("CARDFORM_SERVE_TOKEN is not set"),
        "{}",
        none.log()
    );
    let mut short = serve::spawn(&env, "short", &["-f", "cards"], Some("tiny-secret"));
    assert_eq!(short.child.wait().unwrap().code(), Some(1));
    assert!(short.log().contains("too short"), "{}", short.log());
    assert!(!short.log().contains("tiny-secret"), "{}", short.log());
    assert_eq!(env.inspect().orders, 0);
}

#[test]
fn every_route_but_healthz_wants_the_token_and_every_answer_has_the_secure_headers() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet("a", 1));
    let s = serve::start(&env, "auth", &["-f", "cards"]);
    let health = s.request("GET", "/healthz", &[], "");
    assert_eq!(health.status, 200);
    for (method, path) in [
        ("GET", "/readyz"),
        ("POST", "/api/reconcile"),
        ("GET", "/"),
        ("GET", "/api/approvals"),
        ("GET", "/api/summary"),
        ("GET", "/metrics"),
        ("GET", "/no-such-route"),
    ] {
        for headers in [
            vec![],
            vec![("authorization", "Bearer not-the-token-at-all")],
            vec![(
                "cookie",
                "cardform_session=e2e-serve-token-0123456789abcdef",
            )],
        ] {
            let a = s.request(method, path, &headers, "");
            assert_eq!(a.status, 401, "{method} {path} {headers:?}: {a:?}");
            assert_eq!(a.json(), serde_json::json!({"error": "unauthorized"}));
        }
    }
    for a in [
        health,
        s.request("GET", "/readyz", &[], ""),
        s.get("/readyz"),
    ] {
        assert_eq!(
            a.header("content-security-policy"),
            Some("default-src 'self'")
        );
        assert_eq!(a.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(a.header("x-frame-options"), Some("DENY"));
        assert_eq!(a.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(a.header("cache-control"), Some("no-store"));
    }
    assert_eq!(s.get("/readyz").status, 200);

    // The login form sets a cookie that opens the protected routes; a wrong token sets none.
    let wrong = s.request("POST", "/login", &[], "token=wrong-token-wrong-token");
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    let login = s.request("POST", "/login", &[], &format!("token={}", serve::TOKEN));
    assert_eq!(login.status, 303, "{login:?}");
    let cookie = login.header("set-cookie").unwrap().to_owned();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains(serve::TOKEN),
        "the cookie must not hold the token"
    );
    let session = cookie.split(';').next().unwrap();
    assert_eq!(
        s.request("GET", "/readyz", &[("cookie", session)], "")
            .status,
        200
    );

    // Bodies over 64 KiB are refused.
    let big = "x".repeat(70 * 1024);
    let a = s.request("POST", "/login", &[], &big);
    assert_eq!(a.status, 413, "{a:?}");
}

#[test]
fn applies_the_directory_then_again_on_a_changed_file_and_on_post() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet("a", 5));
    let s = serve::start(&env, "loop", &["-f", "cards"]);
    s.wait_for(
        "the first reconcile issues 5 cards",
        Duration::from_secs(15),
        |_| issued(&env) == 5 && env.inspect().open_orders == 0,
    );
    s.wait_for(
        "the first reconcile finishes",
        Duration::from_secs(10),
        |s| s.count("reconcile finished") >= 1,
    );
    let t0 = Instant::now();
    env.write("cards/b.yaml", &fleet("b", 3));
    s.wait_for("a changed file is applied", Duration::from_secs(15), |_| {
        issued(&env) == 8
    });
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    s.wait_for("that reconcile finishes", Duration::from_secs(10), |s| {
        s.count("reconcile finished") >= 2
    });

    let before = s.count("reconcile finished");
    let a = s.post("/api/reconcile", "");
    assert_eq!(a.status, 202, "{a:?}");
    s.wait_for(
        "POST /api/reconcile reconciles",
        Duration::from_secs(10),
        |s| s.count("reconcile finished") > before,
    );
    each_card_once(&env, 8);
    // Each reconcile that changed something is a run in history, as an apply is.
    let out = env
        .cardform(&["state", "history", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let history = stdout(&out);
    assert_eq!(history.matches(" serve --listen ").count(), 2, "{history}");
    // Every line is one JSON object, and no line holds the token.
    let log = s.log();
    assert!(!log.contains(serve::TOKEN));
    assert!(!log.contains(&env.api_secret));
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

#[test]
fn bad_declarations_are_logged_counted_and_nothing_is_applied() {
    let env = Env::postgres();
    env.write(
        "cards/a.yaml",
        "version: 1\ncards:\n  - {key: a-1, external_user_id: u1, product_code: VISA_USD_STD, bogus: 1}\n",
    );
    let s = serve::start(&env, "bad", &["-f", "cards"]);
    s.wait_for("the failure is logged", Duration::from_secs(15), |s| {
        s.count("reconcile failed") >= 1
    });
    let problem = s
        .log_lines()
        .into_iter()
        .find(|l| l["msg"] == "declaration problem")
        .unwrap_or_else(|| panic!("{}", s.log()));
    assert!(
        problem["file"].as_str().unwrap().ends_with("a.yaml"),
        "{problem}"
    );
    assert_eq!(problem["line"], 3, "{problem}");
    assert_eq!(s.request("GET", "/healthz", &[], "").status, 200);
    assert_eq!(env.inspect().orders, 0);

    // Declarations that read but plan a problem (an unknown product) apply nothing either.
    env.write(
        "cards/a.yaml",
        "version: 1\ncards:\n  - {key: a-1, external_user_id: u1, product_code: NO_SUCH_PRODUCT}\n",
    );
    s.wait_for("the plan problem is logged", Duration::from_secs(15), |s| {
        s.log_lines()
            .iter()
            .any(|l| l["msg"] == "plan problem" && l["problem"] == "unknown_product")
    });
    assert!(s.count("reconcile failed") >= 2, "{}", s.log());
    assert_eq!(env.inspect().orders, 0);
}

#[test]
fn sigterm_mid_run_exits_zero_and_a_restart_finishes_without_doubling() {
    let env = Env::on(Backend::Postgres, slow(1500));
    env.write("cards/a.yaml", &fleet("a", 24));
    let args = [
        "-f",
        "cards",
        "--parallelism",
        "4",
        "--drain-timeout",
        "10s",
    ];
    let mut s = serve::start(&env, "first", &args);
    s.wait_for("orders are in flight", Duration::from_secs(15), |_| {
        env.inspect().calls_to("cards/create") >= 4
    });
    let status = s.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", s.log());
    let sent = env.inspect().calls_to("cards/create");
    assert!(sent < 24, "SIGTERM must stop new orders: {sent} of 24 sent");
    assert!(s.count("lock released") == 1, "{}", s.log());

    let again = serve::start(&env, "second", &args);
    again.wait_for(
        "the restart finishes the fleet",
        Duration::from_secs(30),
        |_| issued(&env) == 24 && env.inspect().open_orders == 0,
    );
    again.wait_for("its reconcile finishes", Duration::from_secs(10), |s| {
        s.count("reconcile finished") >= 1
    });
    each_card_once(&env, 24);
}

#[test]
fn a_standby_takes_over_within_seconds_of_the_leader_being_killed() {
    let env = Env::on(Backend::Postgres, slow(1500));
    env.write("cards/a.yaml", &fleet("a", 24));
    let args = ["-f", "cards", "--parallelism", "4"];
    let mut first = serve::start(&env, "one", &args);
    first.wait_for(
        "the first replica leads",
        Duration::from_secs(10),
        Serve::leads,
    );
    let second = serve::start(&env, "two", &args);
    first.wait_for("orders are in flight", Duration::from_secs(15), |_| {
        env.inspect().calls_to("cards/create") >= 4
    });
    assert!(!second.leads(), "two leaders at once");
    first.kill();
    let killed = Instant::now();
    second.wait_for(
        "the standby takes over",
        Duration::from_secs(12),
        Serve::leads,
    );
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(10), "took over after {took:?}");
    eprintln!("the standby took over {took:?} after the leader's kill -9");
    second.wait_for(
        "the standby finishes the fleet",
        Duration::from_secs(40),
        |_| issued(&env) == 24 && env.inspect().open_orders == 0,
    );
    second.wait_for("its reconcile finishes", Duration::from_secs(10), |s| {
        s.count("reconcile finished") >= 1
    });
    each_card_once(&env, 24);
}

#[test]
fn a_leader_whose_lock_is_taken_over_steps_down_and_nothing_is_doubled() {
    let env = Env::on(Backend::Postgres, slow(1500));
    env.write("cards/a.yaml", &fleet("a", 24));
    let args = ["-f", "cards", "--parallelism", "4"];
    let first = serve::start(&env, "one", &args);
    first.wait_for(
        "the first replica leads",
        Duration::from_secs(10),
        Serve::leads,
    );
    let second = serve::start(&env, "two", &args);
    first.wait_for("orders are in flight", Duration::from_secs(15), |_| {
        env.inspect().calls_to("cards/create") >= 4
    });
    // Every session of the state's database ends, as a failover would: the leader's lock goes
    // with its session while it still runs, and the standby takes the state over.
    let state = env.state_arg();
    let database = state.rsplit('/').next().unwrap().split('?').next().unwrap();
    crate::pg::server().terminate_connections(database);
    second.wait_for(
        "the standby takes over",
        Duration::from_secs(12),
        Serve::leads,
    );
    first.wait_for("the old leader steps down", Duration::from_secs(12), |s| {
        s.count("lock lost: standing by, spending nothing more") >= 1 && !s.leads()
    });
    second.wait_for(
        "the new leader finishes the fleet",
        Duration::from_secs(40),
        |_| issued(&env) == 24 && env.inspect().open_orders == 0,
    );
    second.wait_for("its reconcile finishes", Duration::from_secs(10), |s| {
        s.count("reconcile finished") >= 1
    });
    assert!(!first.leads(), "two leaders at once");
    each_card_once(&env, 24);
}

#[test]
fn a_drain_timeout_leaves_slow_orders_open_and_the_next_leader_resumes_them() {
    let env = Env::on(Backend::Postgres, slow(6000));
    env.write("cards/a.yaml", &fleet("a", 6));
    let args = ["-f", "cards", "--parallelism", "3", "--drain-timeout", "1s"];
    let mut s = serve::start(&env, "first", &args);
    s.wait_for("orders are in flight", Duration::from_secs(15), |_| {
        env.inspect().calls_to("cards/create") >= 3
    });
    let t0 = Instant::now();
    let status = s.terminate(Duration::from_secs(8));
    assert_eq!(status.code(), Some(0), "{}", s.log());
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(s.log().contains("drain timed out"), "{}", s.log());
    assert_eq!(s.count("lock released"), 1, "{}", s.log());
    assert!(
        env.inspect().open_orders > 0,
        "the orders were meant to outlast the drain"
    );

    let again = serve::start(&env, "second", &args);
    again.wait_for(
        "the restart resumes and finishes",
        Duration::from_secs(30),
        |_| issued(&env) == 6 && env.inspect().open_orders == 0,
    );
    again.wait_for("its reconcile finishes", Duration::from_secs(10), |s| {
        s.count("reconcile finished") >= 1
    });
    each_card_once(&env, 6);
}

#[test]
fn the_serve_table_of_cardform_toml_sets_defaults_and_flags_win() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet("a", 1));
    env.write(
        "cardform.toml",
        "files = [\"cards/\"]\n[serve]\ninterval = \"soon\"\n",
    );
    let mut bad = serve::spawn(&env, "bad", &[], Some(serve::TOKEN));
    assert_eq!(bad.child.wait().unwrap().code(), Some(1));
    assert!(
        bad.log().contains("cardform.toml:3: [serve] interval"),
        "{}",
        bad.log()
    );

    // The file's interval reconciles every second, with no change and no trigger...
    env.write(
        "cardform.toml",
        "files = [\"cards/\"]\n[serve]\ninterval = \"1s\"\n",
    );
    let s = serve::start(&env, "file", &[]);
    s.wait_for(
        "three reconciles, a second apart",
        Duration::from_secs(10),
        |s| s.count("reconcile finished") >= 3,
    );
    drop(s);
    // ...and a flag wins over it.
    let s = serve::start(&env, "flag", &["--interval", "1h"]);
    s.wait_for("the first reconcile", Duration::from_secs(10), |s| {
        s.count("reconcile finished") >= 1
    });
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(s.count("reconcile finished"), 1, "{}", s.log());
    each_card_once(&env, 1);
}

/// `max_fees_per_day` in `[serve]` is the policy's day budget unless the flag says otherwise, and
/// `cardform config` shows every serve setting with the line it came from.
#[test]
fn the_day_budget_comes_from_the_serve_table_and_config_shows_the_serve_settings() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet("a", 2));
    env.write(
        "cardform.toml",
        "files = [\"cards/\"]\n[serve]\nmax_fees_per_day = \"7.00\"\ninterval = \"1h\"\n",
    );
    let toml = env.path("cardform.toml").display().to_string();
    let out = env.cardform(&["config", "--json"]).output().unwrap();
    assert_success(&out);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let setting = |name: &str| {
        let s = &doc["settings"][name];
        (
            s["value"].as_str().unwrap().to_owned(),
            s["source"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(
        setting("max_fees_per_day"),
        ("7.00".into(), format!("{toml}:3"))
    );
    assert_eq!(setting("interval"), ("1h".into(), format!("{toml}:4")));
    assert_eq!(
        setting("listen"),
        ("127.0.0.1:8080".into(), "default".into())
    );
    assert_eq!(setting("drift_interval"), ("15m".into(), "default".into()));
    assert_eq!(setting("drain_timeout"), ("30s".into(), "default".into()));
    assert_eq!(setting("public_url"), ("(none)".into(), "default".into()));
    let out = env.cardform(&["config"]).output().unwrap();
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("max_fees_per_day ") && l.ends_with(&format!("{toml}:3"))),
        "{}",
        stdout(&out)
    );

    // Two cards at 5.00 are past the file's 7.00: the plan waits, nothing is sent.
    let s = serve::start(&env, "file", &[]);
    s.wait_for("the first reconcile", Duration::from_secs(20), |s| {
        s.count("reconcile finished") >= 1
    });
    let waiting = s.get("/api/approvals").json()["approvals"].clone();
    assert_eq!(waiting[0]["status"], "pending", "{waiting}");
    assert!(
        waiting[0]["reasons"][0].as_str().unwrap().contains("7.00"),
        "{waiting}"
    );
    assert_eq!(issued(&env), 0);
    drop(s);
    // The flag wins over the file.
    let s = serve::start(&env, "flag", &["--max-fees-per-day", "100"]);
    s.wait_for("the first reconcile", Duration::from_secs(20), |s| {
        s.count("reconcile finished") >= 1
    });
    each_card_once(&env, 2);
}

/// Guessing the token at `/login` is slowed: every wrong try from an address waits longer than
/// the one before, and the right token still logs in (and lifts the brake).
#[test]
fn wrong_logins_are_slowed_and_the_right_token_still_works() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet("a", 1));
    let s = serve::start(&env, "login", &["-f", "cards", "--interval", "1h"]);
    let timed = |token: &str| {
        let t0 = Instant::now();
        let a = s.request("POST", "/login", &[], &format!("token={token}"));
        (a.status, t0.elapsed())
    };
    let (status, first) = timed("wrong-token-wrong-token");
    assert_eq!(status, 401);
    let t0 = Instant::now();
    let mut last = first;
    for _ in 1..20 {
        let (status, took) = timed("wrong-token-wrong-token");
        assert_eq!(status, 401);
        last = took;
    }
    let all = t0.elapsed() + first;
    eprintln!("20 wrong logins took {all:?}; the first {first:?}, the last {last:?}");
    // 25 ms more per failure: 19 × 20 / 2 × 25 ms = 4.75 s in all, the last one 475 ms.
    assert!(all >= Duration::from_secs(4), "{all:?}");
    assert!(last >= Duration::from_millis(400), "{last:?}");
    assert!(first < Duration::from_millis(300), "{first:?}");

    let (status, _) = timed(serve::TOKEN);
    assert_eq!(status, 303, "the right token still logs in");
    let (status, took) = timed("wrong-token-wrong-token");
    assert_eq!(status, 401);
    assert!(
        took < Duration::from_millis(300),
        "a success lifts the brake: {took:?}"
    );
}

#[test]
fn readyz_says_503_within_seconds_when_the_provider_is_gone() {
    let mut env = Env::postgres();
    env.write("cards/a.yaml", &fleet("a", 1));
    let s = serve::start(&env, "ready", &["-f", "cards"]);
    let ready = s.get("/readyz");
    assert_eq!(ready.status, 200, "{ready:?}");
    assert_eq!(ready.json()["provider"], "ok");
    let sandbox = env.sandbox.take().unwrap();
    env.rt.block_on(sandbox.shutdown());
    let t0 = Instant::now();
    let gone = s.get("/readyz");
    assert_eq!(gone.status, 503, "{gone:?}");
    assert_eq!(gone.json()["provider"], "unreachable");
    assert_eq!(gone.json()["state"], "ok");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(s.request("GET", "/healthz", &[], "").status, 200);
}

#[test]
fn drift_is_noticed_counted_and_logged_but_never_recorded_or_acted_on() {
    let env = Env::postgres();
    env.write("cards/a.yaml", &fleet("a", 3));
    let s = serve::start(&env, "drift", &["-f", "cards", "--drift-interval", "1s"]);
    s.wait_for("the fleet is issued", Duration::from_secs(15), |s| {
        issued(&env) == 3 && s.count("reconcile finished") >= 1
    });
    s.wait_for("a look finds nothing", Duration::from_secs(10), |s| {
        s.count("drift look: none") >= 1
    });
    let out = env.cardform(&["show", "a-001", "--json"]).output().unwrap();
    assert_success(&out);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let card_id = shown["card"]["card_id"]
        .as_str()
        .expect("a-001 has a card id");
    let sandbox = env.sandbox.as_ref().expect("sandbox running");
    assert!(sandbox.close_card(card_id));

    s.wait_for(
        "the look finds the closed card",
        Duration::from_secs(10),
        |s| {
            s.log_lines().iter().any(|l| {
                l["msg"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("drift found"))
                    && l["drifted_cards"] == 1
                    && l["keys"] == serde_json::json!(["a-001"])
            })
        },
    );
    let metrics = s.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l == "cardform_drifted_cards 1"),
        "{}",
        metrics.body
    );
    // Seen, not recorded: state still holds the card as it was, and nothing was sent for it.
    let out = env.cardform(&["show", "a-001", "--json"]).output().unwrap();
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["card"], shown["card"]);
    assert_eq!(env.inspect().calls_to("cards/create"), 3);
}
