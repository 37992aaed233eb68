//! Output for a CI log (no terminal): a progress line every --progress-interval and each failure
//! with its slug and hint, not one line per card; `--log-cards` brings the per-card lines back.

use crate::harness::*;
use cardform::sandbox::SandboxConfig;
use std::time::Duration;

fn fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ndefaults: {product_code: VISA_USD_STD}\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: c{i:02}, external_user_id: u{i:02}}}\n"
        ));
    }
    s
}

fn env() -> Env {
    Env::with(SandboxConfig {
        unknown_users: vec!["u07".into()],
        order_latency: Duration::from_millis(300),
        ..fast_sandbox()
    })
}

#[test]
fn a_log_without_a_terminal_gets_progress_lines_and_every_failure() {
    let env = env();
    env.write("cards.yaml", &fleet(40));
    let out = env
        .cardform(&[
            "apply",
            "-f",
            "cards.yaml",
            "--auto-approve",
            "--parallelism",
            "4",
            "--progress-interval",
            "200ms",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "one card fails");
    let err = stderr(&out);
    assert!(
        err.starts_with("applying 40 changes as serial"),
        "it says what to expect: {err}"
    );
    assert!(!err.contains("issue done"), "no line per card: {err}");
    assert!(
        err.contains("✗ c07: issue failed: cardholder_not_found") && err.contains("\n    hint: "),
        "each failure on its own line, with what to do: {err}"
    );
    let progress: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .collect();
    assert!(!progress.is_empty(), "{err}");
    assert!(
        progress.iter().all(|l| l.contains("/40 done")
            && l.contains("cards/s")
            && l.contains("ETA")
            && l.contains("USDT")),
        "{progress:?}"
    );
    // The summary is on stdout as before, with the failure's hint.
    assert!(
        stdout(&out).contains("cardholder_not_found × 1"),
        "{}",
        stdout(&out)
    );

    // One line per card when asked.
    let env = self::env();
    env.write("cards.yaml", &fleet(10));
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve", "--log-cards"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(err.matches(": issue done").count(), 9, "{err}");
    assert!(err.contains("✗ c07: issue failed"), "{err}");
}
