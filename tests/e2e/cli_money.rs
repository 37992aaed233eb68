//! Every money figure equals the provider's, to the cent: refunds (full, partial, none; of issue
//! and top-up orders), a run that lost its lock, `force-unlock` then a re-run, and kill -9. Each
//! test ends with every figure cardform reports (state list, export, history, audit, show, the
//! apply summaries) equal to the sandbox's own ledger.

use cardform::sandbox::{RefundPolicy, SandboxConfig};
use rust_decimal::Decimal;
use std::time::Duration;

use crate::harness::{Backend, Env, assert_success, fast_sandbox, on_both_backends, stdout};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn dec(v: &serde_json::Value) -> Decimal {
    d(v.as_str()
        .unwrap_or_else(|| panic!("a decimal string: {v}")))
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let out = env.cardform(args).output().unwrap();
    assert_success(&out);
    serde_json::from_str(&stdout(&out)).unwrap()
}

/// What the provider's balance went down by.
pub(crate) fn spent(env: &Env, start: Decimal) -> Decimal {
    let seen = env.inspect();
    assert_eq!(
        start - seen.balance,
        seen.total_charged - seen.total_refunded
    );
    start - seen.balance
}

/// Every figure cardform reports, each summed: they must all equal `spent`.
pub(crate) fn assert_figures(env: &Env, spent: Decimal) {
    let export = json(env, &["state", "export", "--format", "json"]);
    let cards = export["cards"].as_array().unwrap();
    let by_cards: Decimal = cards.iter().map(|c| dec(&c["charged"])).sum();
    assert_eq!(by_cards, spent, "state export: per-card charged");

    let listed = stdout(&env.cardform(&["state", "list"]).output().unwrap());
    assert!(
        listed.contains(&format!("{spent} USDT charged in total")),
        "state list total: {listed}"
    );

    let runs = json(env, &["state", "history", "--json"]);
    let by_runs: Decimal = runs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.get("charged").map(dec))
        .sum();
    assert_eq!(by_runs, spent, "state history: per run");

    let audit = json(env, &["state", "audit", "--format", "json"]);
    let by_calls: Decimal = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["charge"].as_str().map(d))
        .sum();
    assert_eq!(by_calls, spent, "state audit: the charge column nets");

    // `show` of cards at both ends (each one is a process: a whole fleet would be slow under
    // load): its orders cost what the card says, and the text agrees.
    let ends = cards.len().min(3);
    for c in cards[..ends].iter().chain(&cards[cards.len() - ends..]) {
        let key = c["key"].as_str().unwrap();
        let shown = json(env, &["show", key, "--json"]);
        let orders: Decimal = shown["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["cost"].as_str().map(d))
            .sum();
        assert_eq!(orders, dec(&c["charged"]), "show {key}: {shown:#}");
        let text = stdout(&env.cardform(&["show", key]).output().unwrap());
        assert!(
            text.contains(&format!("Charges: {} USDT in total", dec(&c["charged"])))
                || (orders.is_zero() && text.contains("Charges: 0")),
            "show {key}: {text}"
        );
    }
}

const CARDS: &str = "version: 1
cards:
  - {key: good-1, external_user_id: u-1, product_code: VISA_USD_STD, initial_topup: \"20.00\",
     topups: [{id: t1, amount: \"100.00\"}]}
  - {key: good-2, external_user_id: u-2, product_code: VISA_USD_STD}
  - {key: bad-1, external_user_id: u-3, product_code: MC_EUR_PREMIUM, initial_topup: \"60.00\"}
  - {key: bad-2, external_user_id: u-4, product_code: MC_EUR_PREMIUM}
  - {key: legacy-1, external_user_id: u-5, product_code: VIRTUAL_NOFEES,
     topups: [{id: t1, amount: \"40.00\"}, {id: t2, amount: \"15.00\"}]}
";

/// A product whose issue orders fail, a product whose top-ups fail, under each refund policy
/// (hardest first: none given back, then half, then all), applied twice so failed orders are
/// charged and refunded again under their next attempt.
fn refunds_are_counted_as_the_provider_counts_them(backend: Backend) {
    for refund in [
        RefundPolicy::None,
        RefundPolicy::Partial,
        RefundPolicy::Full,
    ] {
        let env = Env::on(
            backend,
            SandboxConfig {
                fail_products: vec!["MC_EUR_PREMIUM".into()],
                fail_topup_products: vec!["VIRTUAL_NOFEES".into()],
                refund,
                ..fast_sandbox()
            },
        );
        let start = env.inspect().balance;
        env.write("cards.yaml", CARDS);
        let mut summaries = Decimal::ZERO;
        for _ in 0..2 {
            let out = env
                .cardform(&["apply", "-f", "cards.yaml", "--auto-approve", "--json"])
                .output()
                .unwrap();
            // Failed changes make the run exit non-zero; the figures are what is tested here.
            let text = stdout(&out);
            let finished = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|e| e["event"] == "finished")
                .unwrap_or_else(|| panic!("no finished event: {text}"));
            summaries += dec(&finished["summary"]["charged"]);
        }
        let spent = spent(&env, start);
        assert!(spent > Decimal::ZERO);
        assert_eq!(summaries, spent, "{refund:?}: the apply summaries");
        assert_figures(&env, spent);
        let seen = env.inspect();
        match refund {
            RefundPolicy::None => assert!(seen.total_refunded.is_zero()),
            _ => assert!(seen.total_refunded > Decimal::ZERO),
        }
    }
}

/// A card that was never issued costs what its failed orders kept: nothing when given back.
fn a_card_never_issued_costs_nothing_when_refunded(backend: Backend) {
    let env = Env::on(
        backend,
        SandboxConfig {
            fail_products: vec!["MC_EUR_PREMIUM".into()],
            ..fast_sandbox()
        },
    );
    env.write("cards.yaml", CARDS);
    for _ in 0..2 {
        let _ = env
            .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap();
    }
    let shown = stdout(&env.cardform(&["show", "bad-2"]).output().unwrap());
    assert!(
        shown.contains("Charges: 0.00 USDT in total (issue 0.00), after 30.00 USDT refunded"),
        "{shown}"
    );
    assert!(shown.contains("REFUNDED"), "{shown}");
    let audit = stdout(&env.cardform(&["state", "audit"]).output().unwrap());
    assert!(audit.contains("refund"), "{audit}");
}

/// `force-unlock` of a run on "another host", then an immediate re-run: the first run stops at
/// its next write having changed nothing, the second resumes its orders, and every figure is
/// the provider's.
fn force_unlock_then_rerun_counts_each_order_once(backend: Backend) {
    let env = Env::on(
        backend,
        SandboxConfig {
            order_latency: Duration::from_millis(1500),
            ..fast_sandbox()
        },
    );
    let start = env.inspect().balance;
    let mut yaml = String::from("version: 1\ncards:\n");
    for i in 0..40 {
        yaml.push_str(&format!(
            "  - {{key: c{i}, external_user_id: u-{i}, product_code: VISA_USD_STD, initial_topup: \"10.00\"}}\n"
        ));
    }
    env.write("cards.yaml", &yaml);
    let args = [
        "apply",
        "-f",
        "cards.yaml",
        "--auto-approve",
        "--parallelism",
        "8",
        "--lock-timeout",
        "60s",
    ];
    let mut first = env.spawn_until_sent(&args, 10);
    // The lock row names this host and a live pid, so force-unlock would refuse it: make it
    // another host's, as a CI runner's elsewhere would be.
    let lock_id = rehost_lock(&env, "ci-runner-7.invalid");
    let out = env
        .cardform(&["force-unlock", &lock_id, "--force"])
        .output()
        .unwrap();
    assert_success(&out);
    // An immediate re-run: on SQLite it waits for the first to stop (its OS lock lives in that
    // process), which it does at its next write; on PostgreSQL its session was ended.
    let second = env
        .cardform(&args)
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let _ = first.wait();
    assert_success(&second);
    settle_and_check(&env, &args, start, 40, d("40") * d("15.45"));
}

/// Re-runs `args` until nothing is left, then checks every card was issued once and every
/// figure is the provider's.
fn settle_and_check(env: &Env, args: &[&str], start: Decimal, cards: u64, cost: Decimal) {
    let again = env.cardform(args).output().unwrap();
    assert_success(&again);
    assert!(stdout(&again).contains("No changes."), "{}", stdout(&again));
    let seen = env.inspect();
    assert_eq!(seen.cards, cards, "each card issued once");
    let spent = spent(env, start);
    assert_eq!(spent, cost);
    assert_figures(env, spent);
}

/// Rewrites the lock row to say `host` holds it; returns its id.
fn rehost_lock(env: &Env, host: &str) -> String {
    env.rt.block_on(async {
        let store = cardform::state::Store::open(&env.location()).await.unwrap();
        let lock = store.current_lock().await.unwrap().expect("a lock is held");
        store.close().await;
        let sql = format!(
            "UPDATE {}lock SET host = '{host}' WHERE lock_id = '{}'",
            if env.pg_state.is_some() {
                "cardform_e2e."
            } else {
                ""
            },
            lock.lock_id
        );
        use sqlx::Connection;
        match &env.pg_state {
            None => {
                let mut c = sqlx::sqlite::SqliteConnection::connect_with(
                    &sqlx::sqlite::SqliteConnectOptions::new().filename(env.state()),
                )
                .await
                .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            Some(url) => {
                let url = url.split('?').next().unwrap();
                let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        }
        lock.lock_id
    })
}

/// PostgreSQL: the database ends the first runner's lock session mid-apply while a second runner
/// waits for the lock. The first writes nothing more; the second takes over and resumes.
#[test]
fn a_lost_lock_session_while_a_second_runner_waits_counts_each_order_once() {
    let env = Env::on(
        Backend::Postgres,
        SandboxConfig {
            order_latency: Duration::from_millis(1500),
            ..fast_sandbox()
        },
    );
    let start = env.inspect().balance;
    let mut yaml = String::from("version: 1\ncards:\n");
    for i in 0..60 {
        yaml.push_str(&format!(
            "  - {{key: c{i}, external_user_id: u-{i}, product_code: VISA_USD_STD, initial_topup: \"10.00\"}}\n"
        ));
    }
    env.write("cards.yaml", &yaml);
    let args = [
        "apply",
        "-f",
        "cards.yaml",
        "--auto-approve",
        "--parallelism",
        "8",
        "--lock-timeout",
        "90s",
    ];
    let mut first = env.spawn_until_sent(&args, 12);
    let second = env
        .process(&args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // End the session that holds the advisory lock, as a failover or an idle timeout would.
    let url = env
        .pg_state
        .as_deref()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    env.rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND granted AND pid <> pg_backend_pid() \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .execute(&mut c)
        .await
        .unwrap();
    });
    let second = second.wait_with_output().unwrap();
    let _ = first.wait();
    assert_success(&second);
    settle_and_check(&env, &args, start, 60, d("60") * d("15.45"));
}

/// kill -9 mid-apply, then a re-run: every figure the provider's.
fn kill_9_then_rerun_counts_each_order_once(backend: Backend) {
    let env = Env::on(
        backend,
        SandboxConfig {
            order_latency: Duration::from_millis(800),
            fail_products: vec!["MC_EUR_PREMIUM".into()],
            refund: RefundPolicy::Partial,
            ..fast_sandbox()
        },
    );
    let start = env.inspect().balance;
    let mut yaml = String::from("version: 1\ncards:\n");
    for i in 0..30 {
        let product = if i % 3 == 0 {
            "MC_EUR_PREMIUM"
        } else {
            "VISA_USD_STD"
        };
        yaml.push_str(&format!(
            "  - {{key: c{i}, external_user_id: u-{i}, product_code: {product}}}\n"
        ));
    }
    env.write("cards.yaml", &yaml);
    let args = ["apply", "-f", "cards.yaml", "--auto-approve"];
    let mut first = env.spawn_until_sent(&args, 12);
    first.kill().unwrap();
    let _ = first.wait();
    let _ = env.cardform(&args).output().unwrap();
    let spent = spent(&env, start);
    assert_figures(&env, spent);
    let seen = env.inspect();
    assert_eq!(seen.cards, 20, "each good card issued once");
}

on_both_backends!(
    refunds_are_counted_as_the_provider_counts_them,
    a_card_never_issued_costs_nothing_when_refunded,
    force_unlock_then_rerun_counts_each_order_once,
    kill_9_then_rerun_counts_each_order_once,
);
