//! Rollout control for big runs: `--target` restricts a plan to some cards and says what it
//! leaves out; `--canary N` tries N changes across products before the rest; the failure-rate
//! brake stops a run whose orders keep failing. Each is checked against the sandbox, with a
//! product misconfigured at the provider (`fail_products`).

use crate::harness::*;
use cardform::sandbox::SandboxConfig;

const TEAMS: &str = "version: 1
cards:
  - {key: team-a/x1, external_user_id: u-a1, product_code: VISA_USD_STD, labels: {team: a}}
  - {key: team-a/x2, external_user_id: u-a2, product_code: VISA_USD_STD, labels: {team: a}}
  - {key: team-a/x3, external_user_id: u-a3, product_code: VISA_USD_STD, labels: {team: a}}
  - {key: team-b/y1, external_user_id: u-b1, product_code: MC_EUR_PREMIUM, labels: {team: b}}
  - {key: team-b/y2, external_user_id: u-b2, product_code: MC_EUR_PREMIUM, labels: {team: b}}
";

fn plan(env: &Env, targets: &[&str]) -> std::process::Output {
    let mut args = vec!["plan", "-f", "cards.yaml"];
    for t in targets {
        args.extend(["--target", t]);
    }
    env.cardform(&args).output().unwrap()
}

#[test]
fn a_target_restricts_the_plan_and_says_what_it_leaves_out() {
    let env = Env::new();
    env.write("cards.yaml", TEAMS);
    for (targets, issues, left_out) in [
        (&["team-a/x1"][..], 1, 4),
        (&["team-a/*"], 3, 2),
        (&["label=b"], 2, 3),
        (&["label=team=a"], 3, 2),
        // `NAME=VALUE` is the label, as `state list --label` spells it (issue 29).
        (&["team=a"], 3, 2),
        (&["product=MC_EUR_PREMIUM"], 2, 3),
        (&["team-a/x1", "product=MC_EUR_PREMIUM"], 3, 2),
    ] {
        let out = plan(&env, targets);
        assert_success(&out);
        let text = stdout(&out);
        assert!(
            text.contains(&format!("Plan: {issues} to issue"))
                && text.contains(&format!("{left_out} changes of the full plan are left out")),
            "{targets:?}: {text}"
        );
    }
    let out = plan(&env, &["team-a/x1"]);
    insta::assert_snapshot!("partial_plan_human", stdout(&out));
    let out = env
        .cardform(&[
            "plan",
            "-f",
            "cards.yaml",
            "--target",
            "team-b/*",
            "--format",
            "markdown",
        ])
        .output()
        .unwrap();
    insta::assert_snapshot!(
        "partial_plan_markdown",
        stdout(&out)
            .lines()
            .filter(|l| !l.starts_with("<sub>state"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // A target that matches nothing is a typo until shown otherwise.
    let out = plan(&env, &["team-c/*"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--target team-c/* matches no declared card and no card in state"),
        "{}",
        stderr(&out)
    );

    // A saved partial plan says so, and applies only what it holds.
    let out = env
        .cardform(&[
            "plan",
            "-f",
            "cards.yaml",
            "--target",
            "team-b/*",
            "--out",
            "b.json",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path("b.json")).unwrap()).unwrap();
    assert_eq!(saved["partial"]["left_out"], 3, "{saved:#}");
    assert_eq!(saved["partial"]["targets"][0], "team-b/*");
    let out = env.cardform(&["apply", "b.json"]).output().unwrap();
    assert_success(&out);
    assert!(
        stderr(&out).contains("partial plan (--target team-b/*)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.inspect().orders, 2);
    let out = plan(&env, &[]);
    assert!(
        stdout(&out).contains("Plan: 3 to issue"),
        "{}",
        stdout(&out)
    );
}

fn mixed_fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in 0..n {
        let product = if i % 2 == 0 {
            "VISA_USD_STD"
        } else {
            "MC_EUR_PREMIUM"
        };
        s.push_str(&format!(
            "  - {{key: c{i:04}, external_user_id: u{i:04}, product_code: {product}}}\n"
        ));
    }
    s
}

fn failing_premium() -> Env {
    Env::with(SandboxConfig {
        fail_products: vec!["MC_EUR_PREMIUM".into()],
        ..fast_sandbox()
    })
}

#[test]
fn a_canary_stops_a_big_run_after_a_handful_of_orders() {
    let env = failing_premium();
    env.write("cards.yaml", &mixed_fleet(1000));
    let out = env
        .cardform(&[
            "apply",
            "-f",
            "cards.yaml",
            "--auto-approve",
            "--canary",
            "4",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // Spread across products: the failing one is in the canary although half the plan is not.
    assert_eq!(env.inspect().orders, 4, "only the canary was sent");
    assert_eq!(env.inspect().calls_to("cards/create"), 4);
    let err = stderr(&out);
    assert!(err.contains("canary: 4 changes first"), "{err}");
    assert!(!err.contains("canary passed"), "{err}");
    let text = stdout(&out);
    assert!(
        text.contains(
            "stopped early: the canary failed (2 of its changes); nothing else was started"
        ) && text.contains("provider_error × 2"),
        "{text}"
    );
    assert!(text.contains("skipped     996"), "{text}");
}

#[test]
fn a_canary_that_passes_lets_the_rest_roll_out() {
    let env = Env::new();
    env.write("cards.yaml", TEAMS);
    let out = env
        .cardform(&[
            "apply",
            "-f",
            "cards.yaml",
            "--auto-approve",
            "--canary",
            "2",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains("canary: 2 changes first")
            && err.contains("canary passed: rolling out the other 3 changes"),
        "{err}"
    );
    assert_eq!(env.inspect().orders, 5);
}

#[test]
fn the_failure_rate_brake_stops_a_failing_run_and_tracks_what_is_in_flight() {
    let env = failing_premium();
    // Every card on the failing product: the brake, not the canary, must stop it.
    let fleet = mixed_fleet(400).replace("VISA_USD_STD", "MC_EUR_PREMIUM");
    env.write("cards.yaml", &fleet);
    let out = env
        .cardform(&[
            "apply",
            "-f",
            "cards.yaml",
            "--auto-approve",
            "--parallelism",
            "8",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let orders = env.inspect().orders;
    assert!(
        (20..=20 + 8).contains(&orders),
        "stopped after 20 finished, plus what was in flight: {orders} orders"
    );
    assert_eq!(
        env.inspect().open_orders,
        0,
        "in-flight orders were tracked to the end"
    );
    let text = stdout(&out);
    assert!(
        text.contains("stopped early:") && text.contains("more than --max-failure-rate 20%"),
        "{text}"
    );
    // Nothing is left open in state either: the next plan resumes nothing.
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert!(!stdout(&out).contains("resume"), "{}", stdout(&out));
}

/// At default settings (`--parallelism` 128), a product whose every order fails costs about
/// what the brake needs to see: the slow start never opens past its first window, so about 30
/// orders are sent, not the 147 of a run that started 128 at once.
#[test]
fn a_failing_product_at_default_settings_costs_about_the_brakes_threshold() {
    let env = failing_premium();
    let fleet = mixed_fleet(300).replace("VISA_USD_STD", "MC_EUR_PREMIUM");
    env.write("cards.yaml", &fleet);
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let orders = env.inspect().orders;
    assert!(
        (20..=20 + cardform::exec::SLOW_START as u64).contains(&orders),
        "about the brake's threshold: {orders} orders"
    );
    assert!(stdout(&out).contains("more than --max-failure-rate 20%"));
}

/// A healthy run still reaches its full parallelism: with 128 allowed, more than 64 orders are
/// in flight at once before the end (the slow start doubled four times).
#[test]
fn a_healthy_run_ramps_up_to_full_parallelism() {
    let env = Env::with(cardform::sandbox::SandboxConfig {
        order_latency: std::time::Duration::from_millis(400),
        ..fast_sandbox()
    });
    env.write(
        "cards.yaml",
        &mixed_fleet(400).replace("MC_EUR_PREMIUM", "VISA_USD_STD"),
    );
    let mut child = env
        .process(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .spawn()
        .unwrap();
    let mut most = 0;
    while child.try_wait().unwrap().is_none() {
        most = most.max(env.inspect().open_orders);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    assert!(most > 64, "at most {most} orders open at once");
    assert_eq!(env.inspect().cards, 400);
}
