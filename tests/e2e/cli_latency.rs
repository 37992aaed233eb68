//! Order latency as `apply` learns it, against providers that give an order's end precisely,
//! not at all, as of the next read, or in whole seconds (`completed_at`, optional in the
//! reference), and against one whose latency drops midway: every mode costs about two calls
//! per card, a provider that leaves the time out is not much slower to apply against than one
//! that gives it, and a provider that got faster is noticed.
//!
//! Durations are compared within one test, on the same fleet, with generous ratios: the
//! machine is shared and absolute times are noise.

use std::time::{Duration, Instant};

use crate::harness::*;
use cardform::sandbox::{CompletedAt, SandboxConfig};

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
    secs: f64,
    calls_per_card: f64,
}

/// Applies `cards` new cards against a sandbox set up as `config`; each is ordered once.
fn apply(config: SandboxConfig, cards: usize) -> Run {
    let env = Env::with(config);
    let f = env.write("cards.yaml", &fleet(cards));
    let start = Instant::now();
    let out = env
        .cardform(&["apply", "-f", f.to_str().unwrap(), "--auto-approve"])
        .output()
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_success(&out);
    let inspection = env.inspect();
    let issued: u64 = inspection.issue_orders.iter().map(|c| c.count).sum();
    assert_eq!(issued as usize, cards, "{:?}", inspection.issue_orders);
    assert!(inspection.issue_orders.iter().all(|c| c.count == 1));
    Run {
        secs,
        calls_per_card: inspection.calls.values().sum::<u64>() as f64 / cards as f64,
    }
}

fn sandbox(completed_at: CompletedAt, latency: Duration) -> SandboxConfig {
    SandboxConfig {
        completed_at,
        order_latency: latency,
        ..fast_sandbox()
    }
}

#[test]
fn every_completed_at_mode_applies_at_about_two_calls_per_card() {
    const CARDS: usize = 150;
    let latency = Duration::from_millis(300);
    let mut secs = Vec::new();
    for mode in [
        CompletedAt::Precise,
        CompletedAt::Omitted,
        CompletedAt::OnRead,
        CompletedAt::Seconds,
    ] {
        let run = apply(sandbox(mode, latency), CARDS);
        assert!(
            run.calls_per_card <= 2.1,
            "{mode:?}: {:.3} calls per card",
            run.calls_per_card
        );
        secs.push((mode, run.secs));
    }
    let (precise, omitted) = (secs[0].1, secs[1].1);
    assert!(
        omitted < 1.6 * precise,
        "without completed_at {omitted:.2} s, with it {precise:.2} s: {secs:?}"
    );
}

/// Slow (1 s) at first, fast (100 ms) from 2 s on, with no `completed_at` to learn it from:
/// only checking earlier now and then shows that orders got faster.
#[test]
fn a_provider_that_gets_faster_midway_is_followed() {
    const CARDS: usize = 400;
    let slow = Duration::from_secs(1);
    let fixed = apply(sandbox(CompletedAt::Omitted, slow), CARDS);
    let faster = apply(
        SandboxConfig {
            latency_schedule: vec![(Duration::from_secs(2), Duration::from_millis(100))],
            ..sandbox(CompletedAt::Omitted, slow)
        },
        CARDS,
    );
    assert!(
        faster.secs < 0.8 * fixed.secs,
        "sped up midway {:.2} s, slow throughout {:.2} s",
        faster.secs,
        fixed.secs
    );
    for run in [&fixed, &faster] {
        assert!(
            run.calls_per_card <= 2.1,
            "{:.3} calls per card",
            run.calls_per_card
        );
    }
}

/// What an order says of its end in each mode, read twice well after it ended.
#[test]
fn each_mode_stamps_the_end_as_it_says() {
    use cardform::wire::{CheckOrderRequest, CreateCardRequest, Order};
    let latency = Duration::from_millis(200);
    for mode in [
        CompletedAt::Precise,
        CompletedAt::Omitted,
        CompletedAt::OnRead,
        CompletedAt::Seconds,
    ] {
        let env = Env::with(sandbox(mode, latency));
        let c = env.client();
        let (first, second): (Order, Order) = env.rt.block_on(async {
            let req = CreateCardRequest {
                product_code: Some("VISA_USD_STD".into()),
                product_id: None,
                external_user_id: "u-1".into(),
                initial_topup_amount: None,
            };
            let o: Order = c.call(&req, Some("stamp-1")).await.unwrap();
            let check = CheckOrderRequest {
                order_id: o.order_id.clone(),
            };
            tokio::time::sleep(Duration::from_millis(500)).await;
            let first: Order = c.call(&check, None).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            (first, c.call(&check, None).await.unwrap())
        });
        assert_eq!(first.status.to_string(), "completed", "{mode:?}");
        let took = |o: &Order| {
            let start: jiff::Timestamp = o.created_at.parse().unwrap();
            let end: jiff::Timestamp = o.completed_at.as_deref()?.parse().ok()?;
            Some((end, end.duration_since(start).as_secs_f64()))
        };
        match mode {
            CompletedAt::Precise => assert_eq!(took(&first).unwrap().1, 0.2),
            CompletedAt::Omitted => assert_eq!(first.completed_at, None),
            CompletedAt::OnRead => {
                let (_, d) = took(&first).unwrap();
                assert!(d >= 0.5, "{d}");
            }
            CompletedAt::Seconds => {
                let (end, d) = took(&first).unwrap();
                // Truncated: up to a second early, before the start even.
                assert_eq!(end.subsec_nanosecond(), 0);
                assert!(d <= 0.2 && d > -0.8, "{d}");
            }
        }
        // Read again, the same end.
        assert_eq!(first.completed_at, second.completed_at, "{mode:?}");
    }
}
