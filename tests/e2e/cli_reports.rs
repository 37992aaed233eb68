//! Reports that say only what they know, and a `force-unlock` that is deliberate: a refresh that
//! could not read every card never says "No drift"; a run that left part of its plan sets what
//! it was charged against the estimate of what it carried out, and says what is left; a lock is
//! removed only when asked (or with `--force`), never from a holder still running on this host.

use crate::harness::*;
use cardform::sandbox::SandboxConfig;
use cardform::state::{LockInfo, LockRequest, Store, local_host};
use rust_decimal::Decimal;
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// `n` cards of VISA_USD_STD (a fee known to the plan), keys from `from`.
fn cards(from: usize, n: usize) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in from..from + n {
        s.push_str(&format!(
            "  - {{key: card-{i:03}, external_user_id: u-{i:03}, product_code: VISA_USD_STD}}\n"
        ));
    }
    s
}

fn money(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("money as a string: {v}"))
        .parse()
        .unwrap()
}

fn current_lock(env: &Env) -> Option<LockInfo> {
    env.rt.block_on(async {
        let store = Store::open(&env.location()).await.unwrap();
        let lock = store.current_lock().await.unwrap();
        store.close().await;
        lock
    })
}

/// A lock row as its holder left it, taken for `host` and `pid`; its OS lock went with the
/// handle (as it does with a process on another machine, or one that died). Returns its id.
fn lock_left_by(env: &Env, host: &str, pid: u32) -> String {
    env.rt.block_on(async {
        let holder = Store::open(&env.location()).await.unwrap();
        let lock = holder
            .acquire_lock(
                LockRequest {
                    command: "cardform apply -f cards.yaml".into(),
                    pid,
                    host: host.into(),
                    user: "alice".into(),
                },
                Duration::ZERO,
            )
            .await
            .unwrap();
        holder.close().await;
        lock.lock_id
    })
}

fn elsewhere() -> String {
    format!("{}-elsewhere.invalid", local_host())
}

/// What another host's holder goes through when its lock is removed, as force-unlock says it.
const FATE: &str = "it stops at its next write, having changed nothing; its orders in flight \
                    stay open in the journal and the next run resumes them";

#[test]
fn force_unlock_without_a_terminal_refuses_unless_forced() {
    let env = Env::new();
    let id = lock_left_by(&env, &elsewhere(), 4242);
    let out = env
        .cardform(&["force-unlock", &id])
        .write_stdin("yes\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not a terminal") && err.contains("pass --force"),
        "{err}"
    );
    assert_eq!(
        current_lock(&env).map(|l| l.lock_id),
        Some(id),
        "the lock is still there"
    );
}

#[test]
fn force_unlock_refuses_a_holder_alive_on_this_host_even_forced() {
    let env = Env::new();
    let mut alive = std::process::Command::new("sleep")
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = alive.id();
    let id = lock_left_by(&env, &local_host(), pid);
    let out = env
        .cardform(&["force-unlock", &id, "--force"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("pid {pid} is still running on this host")),
        "{err}"
    );
    assert_eq!(current_lock(&env).map(|l| l.lock_id), Some(id.clone()));

    // Once that process is gone, its lock may go.
    alive.kill().unwrap();
    alive.wait().unwrap();
    let out = env
        .cardform(&["force-unlock", &id, "--force"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Removed lock {id}"))
            && text.contains(&format!(
                "Its process (pid {pid}) is no longer running on this host."
            )),
        "{text}"
    );
    assert_eq!(current_lock(&env), None);
}

#[test]
fn force_unlock_forced_removes_another_hosts_lock_and_says_what_becomes_of_its_holder() {
    let env = Env::new();
    let host = elsewhere();
    let id = lock_left_by(&env, &host, 4242);
    let out = env
        .cardform(&["force-unlock", &id, "--force"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!("Removed lock {id} (held by alice@{host} pid 4242"))
            && text.contains(FATE),
        "{text}"
    );
    assert_eq!(current_lock(&env), None);
    // The next run takes the lock at once.
    let f = env.write("cards.yaml", &cards(0, 2));
    assert_success(
        &env.cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"])
            .output()
            .unwrap(),
    );
}

/// The env's sandbox replaced by a fresh one at the same address: the cards it issued are gone.
fn provider_forgets_every_card(env: &mut Env) {
    let old = env.sandbox.take().unwrap();
    let listen = old.addr();
    env.rt.block_on(old.shutdown());
    let fresh = env
        .rt
        .block_on(cardform::sandbox::spawn(SandboxConfig {
            listen,
            // Another seed: ids it makes never repeat the old sandbox's.
            seed: 0x5eed,
            ..fast_sandbox()
        }))
        .unwrap();
    env.sandbox = Some(fresh);
}

#[test]
fn refresh_that_cannot_read_every_card_says_how_many_and_why_never_no_drift() {
    let mut env = Env::new();
    let f = env.write("cards.yaml", &cards(0, 2));
    let f = f.to_str().unwrap().to_owned();
    assert_success(
        &env.cardform(&["apply", "-f", &f, "--auto-approve"])
            .output()
            .unwrap(),
    );
    // Two cards the provider no longer knows, three it issued since.
    provider_forgets_every_card(&mut env);
    env.write("cards.yaml", &cards(0, 5));
    assert_success(
        &env.cardform(&["apply", "-f", &f, "--auto-approve"])
            .output()
            .unwrap(),
    );

    let out = env.cardform(&["refresh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("No drift"), "{text}");
    assert!(
        text.contains("2 cards could not be read (card_not_found: 2)"),
        "{text}"
    );

    let out = env.cardform(&["refresh", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["cards_unread"], 2, "{report:#}");
    assert_eq!(
        report["cards_unread_by_slug"],
        serde_json::json!({"card_not_found": 2}),
        "{report:#}"
    );
    assert_eq!(report["unread"].as_array().unwrap().len(), 2, "{report:#}");
}

#[test]
fn refresh_that_read_every_card_still_says_no_drift() {
    let env = Env::new();
    let f = env.write("cards.yaml", &cards(0, 3));
    assert_success(
        &env.cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"])
            .output()
            .unwrap(),
    );
    let out = env.cardform(&["refresh", "--json"]).output().unwrap();
    assert_success(&out);
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["cards_unread"], 0, "{report:#}");
    let out = env.cardform(&["refresh"]).output().unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("No drift"), "{}", stdout(&out));
}

/// The whole plan's estimated charge, from `plan --json`.
fn plan_estimate(env: &Env, file: &str) -> Decimal {
    let out = env
        .cardform(&["plan", "-f", file, "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(plan["totals"]["unknown_fees"], 0, "{plan:#}");
    money(&plan["totals"]["charge"])
}

/// The last apply's summary, as state history keeps it.
fn last_apply_summary(env: &Env) -> Value {
    let out = env
        .cardform(&["state", "history", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let runs: Value = serde_json::from_str(&stdout(&out)).unwrap();
    runs.as_array()
        .unwrap()
        .iter()
        .rfind(|r| r["command"].as_str().unwrap().contains(" apply "))
        .unwrap()["summary"]
        .clone()
}

/// A summary of a run that left part of its plan: its carried-out and left shares make the whole
/// plan's estimate and changes, what it was charged is what left the provider's balance, and the
/// human line says the same figures.
fn assert_money_split(
    env: &Env,
    text: &str,
    whole: Decimal,
    changes: u64,
    balance_before: Decimal,
) {
    let s = last_apply_summary(env);
    let done = &s["carried_out"];
    let left = &s["left"];
    let (done_est, left_est) = (money(&done["estimated"]), money(&left["estimated"]));
    assert!(left["changes"].as_u64().unwrap() > 0, "{s:#}");
    assert_eq!(
        done["changes"].as_u64().unwrap() + left["changes"].as_u64().unwrap(),
        changes,
        "{s:#}"
    );
    assert_eq!(done_est + left_est, whole, "{s:#}");
    assert_eq!(money(&s["estimated"]), whole, "{s:#}");
    let seen = env.inspect();
    let charged = money(&s["charged"]);
    assert_eq!(charged, balance_before - seen.balance, "{s:#}");
    assert_eq!(charged, seen.total_charged - seen.total_refunded, "{s:#}");
    let line = format!(
        "Money: estimated {done_est:.2} USDT for the {} changes carried out, actually charged \
         {charged:.2} USDT; {} changes (estimated {left_est:.2} USDT) left for the next run",
        done["changes"], left["changes"]
    );
    assert!(text.contains(&line), "{line}\n{text}");
}

#[test]
fn an_interrupted_run_sets_its_charge_against_what_it_carried_out() {
    let env = Env::with(SandboxConfig {
        order_latency: Duration::from_millis(800),
        ..fast_sandbox()
    });
    let n = 40;
    let f = env.write("cards.yaml", &cards(0, n));
    let f = f.to_str().unwrap().to_owned();
    let whole = plan_estimate(&env, &f);
    let before = env.inspect().balance;
    let child = env
        .process(&["apply", "-f", &f, "--auto-approve", "--parallelism", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while env.inspect().calls_to("cards/create") == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "it never sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("interrupted"), "{text}");
    assert_money_split(&env, &text, whole, n as u64, before);
}

/// In parts, the parts never started are left with what the plan estimated for them.
#[test]
fn an_interrupted_run_in_parts_leaves_the_parts_it_never_started_with_their_estimate() {
    let env = Env::with(SandboxConfig {
        order_latency: Duration::from_secs(1),
        ..fast_sandbox()
    });
    let n = 30;
    let f = env.write("cards.yaml", &cards(0, n));
    let f = f.to_str().unwrap().to_owned();
    let whole = plan_estimate(&env, &f);
    let before = env.inspect().balance;
    let child = env
        .process(&["apply", "-f", &f, "--auto-approve", "--part-size", "6"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while env.inspect().calls_to("cards/create") == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "it never sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    assert_money_split(&env, &stdout(&out), whole, n as u64, before);
}

#[test]
fn a_braked_run_sets_its_charge_against_what_it_carried_out() {
    // Every order of the product fails (charged, then refunded): the brake stops the run.
    let env = Env::with(SandboxConfig {
        fail_products: vec!["VISA_USD_STD".into()],
        ..fast_sandbox()
    });
    let n = 60;
    let f = env.write("cards.yaml", &cards(0, n));
    let f = f.to_str().unwrap().to_owned();
    let whole = plan_estimate(&env, &f);
    let before = env.inspect().balance;
    let out = env
        .cardform(&["apply", "-f", &f, "--auto-approve", "--parallelism", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("stopped early"), "{text}");
    assert_money_split(&env, &text, whole, n as u64, before);
}

#[test]
fn a_complete_run_keeps_the_whole_plans_money_line() {
    let env = Env::new();
    let f = env.write("cards.yaml", &cards(0, 3));
    let f = f.to_str().unwrap().to_owned();
    let whole = plan_estimate(&env, &f);
    let out = env
        .cardform(&["apply", "-f", &f, "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "Money: estimated {whole:.2} USDT, actually charged {whole:.2} USDT"
        )) && !text.contains("left for the next run"),
        "{text}"
    );
    let s = last_apply_summary(&env);
    assert!(
        s.get("carried_out").is_none() && s.get("left").is_none(),
        "{s:#}"
    );
}
