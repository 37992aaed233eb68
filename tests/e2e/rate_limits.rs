//! `apply` against the sandbox's rate limit in each of its shapes (sliding window, fixed window,
//! token bucket), with `--rate` given and with the limit discovered from 429s: every card is
//! issued exactly once, at about two calls per card, with few 429s.
//!
//! Only counts are asserted here; throughput on a shared machine is noise, so
//! `scripts/bench-apply.sh` prints it instead.

use crate::harness::*;
use cardform::sandbox::{RateLimitShape, SandboxConfig};
use rust_decimal::Decimal;

const CARDS: usize = 40;
const LIMIT: u32 = 20;

fn fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: card-{i:05}, external_user_id: u-{i:05}}}\n"
        ));
    }
    s
}

struct Run {
    calls: u64,
    rate_limited: u64,
}

/// Applies [`CARDS`] cards against a sandbox limited to [`LIMIT`]/s in `shape`, and checks that
/// each was ordered exactly once and charged once.
fn apply(shape: RateLimitShape, rate: Option<&str>) -> Run {
    let env = Env::with(SandboxConfig {
        rate_limit: Some(LIMIT),
        rate_limit_shape: shape,
        ..fast_sandbox()
    });
    let f = env.write("cards.yaml", &fleet(CARDS));
    let mut args = vec!["apply", "-f", f.to_str().unwrap(), "--auto-approve"];
    if let Some(r) = rate {
        args.extend(["--rate", r]);
    }
    let out = env.cardform(&args).output().unwrap();
    assert_success(&out);

    let inspection = env.inspect();
    let issued: u64 = inspection.issue_orders.iter().map(|c| c.count).sum();
    assert_eq!(issued as usize, CARDS, "{:?}", inspection.issue_orders);
    assert!(
        inspection.issue_orders.iter().all(|c| c.count == 1),
        "a card was ordered twice: {:?}",
        inspection.issue_orders
    );
    assert_eq!(inspection.cards as usize, CARDS);
    assert_eq!(
        inspection.total_charged,
        Decimal::new(500, 2) * Decimal::from(CARDS as u64)
    );
    let out = env
        .cardform(&["plan", "-f", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("No changes"), "{}", stdout(&out));
    Run {
        calls: inspection.calls.values().sum(),
        rate_limited: inspection.rate_limited,
    }
}

fn with_rate(shape: RateLimitShape) {
    let run = apply(shape, Some("20"));
    // The plan's two reads, then a create and one status check per card.
    let per_card = run.calls as f64 / CARDS as f64;
    assert!(per_card <= 2.1, "{shape}: {} calls", run.calls);
    assert!(run.rate_limited <= 1, "{shape}: {} 429s", run.rate_limited);
}

fn discovered(shape: RateLimitShape) {
    let run = apply(shape, None);
    // One wave of 429s while finding the limit, and the retries they cost; nothing after.
    assert!(
        run.rate_limited <= CARDS as u64,
        "{shape}: {} 429s",
        run.rate_limited
    );
    assert!(
        run.calls <= 2 + 2 * CARDS as u64 + run.rate_limited + 2,
        "{shape}: {} calls, {} of them 429",
        run.calls,
        run.rate_limited
    );
}

#[test]
fn sliding_window_with_rate() {
    with_rate(RateLimitShape::Sliding);
}

#[test]
fn fixed_window_with_rate() {
    with_rate(RateLimitShape::Fixed);
}

#[test]
fn token_bucket_with_rate() {
    with_rate(RateLimitShape::Bucket);
}

#[test]
fn sliding_window_discovered() {
    discovered(RateLimitShape::Sliding);
}

#[test]
fn fixed_window_discovered() {
    discovered(RateLimitShape::Fixed);
}

#[test]
fn token_bucket_discovered() {
    discovered(RateLimitShape::Bucket);
}

#[test]
fn the_sandbox_cli_takes_a_shape() {
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_cardform"))
        .args(["sandbox", "--help"])
        .output()
        .unwrap();
    let text = stdout(&help);
    for word in ["--rate-limit-shape", "sliding", "fixed", "bucket"] {
        assert!(text.contains(word), "{word}: {text}");
    }
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_cardform"))
        .args([
            "sandbox",
            "--rate-limit",
            "5",
            "--rate-limit-shape",
            "leaky",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("sliding"), "{}", stderr(&bad));
}
