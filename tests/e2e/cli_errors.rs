//! The common first mistakes each get an error that names the fix.

use crate::harness::*;
use cardform::wire::Clock;
use std::sync::Arc;

fn plan_err(env: &Env, extra_env: &[(&str, &str)]) -> String {
    env.write("cards.yaml", ONBOARDING);
    let mut cmd = env.cardform(&["plan", "-f", "cards.yaml"]);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    stderr(&out)
}

#[test]
fn wrong_api_key() {
    let env = Env::new();
    let err = plan_err(&env, &[("CARDFORM_API_KEY", "not-the-key")]);
    assert!(err.contains("project_not_found"), "{err}");
    assert!(err.contains("check CARDFORM_API_KEY"), "{err}");
}

#[test]
fn wrong_api_secret() {
    let env = Env::new();
    let err = plan_err(&env, &[("CARDFORM_API_SECRET", "not-the-secret")]);
    assert!(err.contains("CARDFORM_API_SECRET"), "{err}");
    assert!(
        !err.contains("not-the-secret"),
        "the secret is never echoed: {err}"
    );
}

struct Behind(u64);
impl Clock for Behind {
    fn now_micros(&self) -> u64 {
        cardform::wire::SystemClock.now_micros() - self.0
    }
}

#[test]
fn clock_skew_beyond_30_seconds() {
    let env = Env::with(cardform::sandbox::SandboxConfig {
        clock: Arc::new(Behind(90_000_000)),
        ..fast_sandbox()
    });
    let err = plan_err(&env, &[]);
    assert!(err.contains("invalid_request"), "{err}");
    assert!(err.to_lowercase().contains("clock"), "{err}");
}

#[test]
fn insufficient_balance_says_how_much_is_missing() {
    let env = Env::with(cardform::sandbox::SandboxConfig {
        balance: "100.00".parse().unwrap(),
        ..fast_sandbox()
    });
    env.write("cards.yaml", ONBOARDING);
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains(
            "the plan charges 178.05 but the master balance is 100.00: top up at least 78.05"
        ),
        "{text}"
    );
    assert_eq!(
        env.inspect().calls.get("cards/create"),
        None,
        "nothing is sent"
    );
}

#[test]
fn locked_state_names_the_holder_and_the_fix() {
    let env = Env::new();
    env.write("cards.yaml", ONBOARDING);
    // A lock held by a live process (this one): the store, and its OS lock, stay open while the
    // apply below runs. A holder that died would have its lock taken over instead.
    let state = env.state();
    let holder = env.rt.block_on(async {
        let store = cardform::state::Store::open(&cardform::state::StateLocation::file(&state))
            .await
            .unwrap();
        store
            .acquire_lock(
                cardform::state::LockRequest {
                    command: "cardform apply -f old.yaml".into(),
                    pid: std::process::id(),
                    host: cardform::state::local_host(),
                    user: "ci".into(),
                },
                std::time::Duration::ZERO,
            )
            .await
            .unwrap();
        store
    });
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    for needle in [
        &std::process::id().to_string(),
        "cardform apply -f old.yaml",
        "still running",
        "--lock-timeout",
    ] {
        assert!(err.contains(needle), "{needle}: {err}");
    }
    assert!(
        !err.contains("force-unlock"),
        "a live holder is waited for: {err}"
    );
    env.rt.block_on(holder.close());
}

#[test]
fn usage_errors_exit_1_never_2() {
    // 2 means "changes present" to a pipeline using --detailed-exitcode.
    let env = Env::new();
    let out = env
        .cardform(&["plan", "--detailed-exitcode", "--bogus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--bogus"));
    let out = env.cardform(&["--version"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}
