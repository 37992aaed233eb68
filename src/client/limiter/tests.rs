//! The limiter on a paused tokio clock: its pacing rules one by one, then whole runs against a
//! simulated provider of each limit shape, where the throughput and 429 targets are exact
//! (simulated time has no noise) and so are asserted.

use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn pacing_keeps_headroom_under_the_limit() {
    assert!((pace(200.0) - 194.0).abs() < 1e-9);
    assert!((pace(50.0) - 48.5).abs() < 1e-9);
    assert!((pace(20.0) - 19.0).abs() < 1e-9);
    assert!((pace(1.0) - 0.5).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn slots_are_evenly_spaced_without_burst() {
    let lim = RateLimiter::new(Some(11.0));
    let t0 = Instant::now();
    // pace(11) = 10/s: one slot every 100 ms from now on, however many ask at once.
    let slots: Vec<_> = (0..25).map(|_| lim.reserve_at(t0)).collect();
    for (i, s) in slots.iter().enumerate() {
        let expected = secs(0.1 * i as f64);
        let got = s.duration_since(t0);
        assert!(got.abs_diff(expected) < secs(1e-6), "{i}: {got:?}");
    }
    assert_eq!(lim.current_rate(), Some(10.0));
}

#[tokio::test(start_paused = true)]
async fn a_stall_does_not_come_back_as_a_burst() {
    let lim = RateLimiter::new(Some(11.0));
    let t0 = Instant::now();
    for _ in 0..5 {
        lim.reserve_at(t0);
    }
    // Idle for a while, then ten callers at once: paced again, not ten at once.
    let later = t0 + secs(5.0);
    let slots: Vec<_> = (0..10).map(|_| lim.reserve_at(later)).collect();
    assert_eq!(slots[0], later);
    assert!(slots[9].duration_since(later) >= secs(0.9 - 1e-6));
    // A burst sent before any limit was known still counts against the first second.
    let lim = RateLimiter::new(None);
    let burst: Vec<_> = (0..30).map(|_| lim.reserve_at(t0)).collect();
    for s in &burst[..20] {
        lim.on_success_at(*s, t0);
    }
    lim.on_throttled_at(burst[20], None, t0);
    assert_eq!(lim.current_rate(), Some(pace(20.0)));
    let next = lim.reserve_at(t0 + secs(0.01));
    assert!(next > t0 + secs(1.0), "{:?}", next.duration_since(t0));
}

#[tokio::test(start_paused = true)]
async fn retry_after_pauses_every_caller_and_reslots_them_evenly() {
    let lim = Arc::new(RateLimiter::new(Some(21.0)));
    let t0 = Instant::now();
    let first = lim.acquire().await;
    lim.on_throttled(first, Some(Duration::from_secs(1)));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let lim = lim.clone();
            tokio::spawn(async move { lim.acquire().await })
        })
        .collect();
    let mut slots = Vec::new();
    for t in tasks {
        slots.push(t.await.unwrap());
    }
    slots.sort();
    assert!(slots[0] >= t0 + Duration::from_secs(1));
    // Spaced at the (lowered) pace, not all released together when the pause ends.
    for w in slots.windows(2) {
        assert!(w[1].duration_since(w[0]) >= secs(1.0 / 21.0), "{slots:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn callers_queued_into_a_pause_are_booked_again_after_it() {
    let lim = Arc::new(RateLimiter::new(Some(11.0)));
    let t0 = Instant::now();
    // Five callers queued at 100 ms spacing; a 429 at 150 ms with Retry-After 1 s.
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let lim = lim.clone();
            tokio::spawn(async move { lim.acquire().await })
        })
        .collect();
    tokio::time::sleep(secs(0.15)).await;
    lim.on_throttled(t0, Some(Duration::from_secs(1)));
    let mut slots = Vec::new();
    for t in tasks {
        slots.push(t.await.unwrap());
    }
    slots.sort();
    // Slots 0 and 100 ms were before the 429; the three after it wait out the pause.
    assert_eq!(slots[1], t0 + secs(0.1));
    assert!(slots[2] >= t0 + secs(1.15), "{slots:?}");
}

#[tokio::test(start_paused = true)]
async fn unlimited_until_the_first_429_then_the_accepted_count() {
    let lim = RateLimiter::new(None);
    let t0 = Instant::now();
    let mut slots = Vec::new();
    for i in 0..60 {
        slots.push(lim.reserve_at(t0 + secs(0.001 * f64::from(i))));
    }
    assert!(
        slots
            .iter()
            .zip(0..)
            .all(|(s, i)| *s == t0 + secs(0.001 * f64::from(i)))
    );
    assert_eq!(lim.current_rate(), None);
    // The provider took the first 40 and refused the rest.
    let now = t0 + secs(0.07);
    for s in &slots[..40] {
        lim.on_success_at(*s, now);
    }
    lim.on_throttled_at(slots[40], Some(Duration::from_secs(1)), now);
    for s in &slots[41..] {
        lim.on_throttled_at(*s, Some(Duration::from_secs(1)), now);
    }
    assert_eq!(lim.current_rate(), Some(pace(40.0)));
}

#[tokio::test(start_paused = true)]
async fn late_answers_of_the_wave_still_count_towards_the_estimate() {
    let lim = RateLimiter::new(None);
    let t0 = Instant::now();
    let slots: Vec<_> = (0..30).map(|_| lim.reserve_at(t0)).collect();
    let now = t0 + secs(0.01);
    for s in &slots[..10] {
        lim.on_success_at(*s, now);
    }
    lim.on_throttled_at(slots[29], Some(Duration::from_secs(1)), now);
    assert_eq!(lim.current_rate(), Some(pace(10.0)));
    for s in &slots[10..25] {
        lim.on_success_at(*s, now + secs(0.01));
    }
    assert_eq!(lim.current_rate(), Some(pace(25.0)));
}

#[tokio::test(start_paused = true)]
async fn a_429_while_limited_lowers_the_rate_and_it_recovers_to_under_the_old_one() {
    let lim = RateLimiter::new(Some(100.0));
    let t0 = Instant::now();
    let slots: Vec<_> = (0..200).map(|_| lim.reserve_at(t0)).collect();
    let now = slots[150];
    for s in &slots[..150] {
        lim.on_success_at(*s, now);
    }
    lim.on_throttled_at(slots[150], None, now);
    // 97 accepted in the trailing second (pace 97/s), × 0.9.
    let r = lim.current_rate().unwrap();
    assert!(r < pace(88.0) && r > pace(86.0), "{r}");
    // More 429s of the same wave change nothing.
    lim.on_throttled_at(slots[151], None, now + secs(0.1));
    assert_eq!(lim.current_rate(), Some(r));
    // Some seconds later: back up, but only to just under the old limit.
    lim.reserve_at(now + secs(30.0));
    let back = lim.current_rate().unwrap();
    assert!((back - pace(98.0)).abs() < 1e-9, "{back}");
}

#[tokio::test(start_paused = true)]
async fn a_provider_far_below_the_configured_rate_sets_the_ceiling() {
    let lim = RateLimiter::new(Some(100.0));
    let t0 = Instant::now();
    let slots: Vec<_> = (0..100).map(|_| lim.reserve_at(t0)).collect();
    let now = slots[99];
    // It only took 30 of the last 99.
    for s in &slots[69..99] {
        lim.on_success_at(*s, now);
    }
    lim.on_throttled_at(slots[99], None, now);
    lim.reserve_at(now + secs(60.0));
    assert_eq!(lim.current_rate(), Some(pace(30.0 * (1.0 + HEADROOM))));
}

#[test]
fn never_below_the_floor() {
    let slow = RateLimiter::new(Some(0.1));
    assert_eq!(slow.floor, 0.1);
    let lim = RateLimiter::new(Some(1.0));
    assert_eq!(lim.floor, MIN_RATE);
}

// ------------------------------------------------------------------ simulated provider

/// A provider limit of `n`/s in one shape, written apart from the sandbox's on purpose, so the
/// two check each other. Refused requests count in the sliding window, as the strictest do.
enum Model {
    Sliding(VecDeque<Instant>),
    Fixed {
        base: Instant,
        second: u64,
        count: u32,
    },
    Bucket {
        tokens: f64,
        last: Instant,
    },
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Sliding,
    Fixed,
    Bucket,
}

impl Model {
    fn new(shape: Shape, n: u32, start: Instant) -> Self {
        match shape {
            Shape::Sliding => Model::Sliding(VecDeque::new()),
            // The wall clock's seconds do not start when the client does.
            Shape::Fixed => Model::Fixed {
                base: start - secs(0.37),
                second: 0,
                count: 0,
            },
            Shape::Bucket => Model::Bucket {
                tokens: f64::from(n),
                last: start,
            },
        }
    }

    /// `Err(retry_after)` when over the limit.
    fn admit(&mut self, at: Instant, n: u32) -> Result<(), Duration> {
        let one = Duration::from_secs(1);
        match self {
            Model::Sliding(log) => {
                while log.front().is_some_and(|t| *t + one < at) {
                    log.pop_front();
                }
                let over = log.len() >= n as usize;
                log.push_back(at);
                if over { Err(one) } else { Ok(()) }
            }
            Model::Fixed {
                base,
                second,
                count,
            } => {
                let this = at.duration_since(*base).as_secs();
                if this != *second {
                    *second = this;
                    *count = 0;
                }
                *count += 1;
                if *count <= n { Ok(()) } else { Err(one) }
            }
            Model::Bucket { tokens, last } => {
                *tokens = (*tokens + at.duration_since(*last).as_secs_f64() * f64::from(n))
                    .min(f64::from(n));
                *last = at;
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    Ok(())
                } else {
                    Err(one)
                }
            }
        }
    }
}

struct Run {
    calls: u64,
    throttled: u64,
    elapsed: Duration,
}

impl Run {
    /// Accepted calls per second as a share of the provider's limit: for cards of two calls
    /// each, the same as cards/s as a share of R/2.
    fn utilisation(&self, done: usize, n: u32) -> f64 {
        done as f64 / self.elapsed.as_secs_f64() / f64::from(n)
    }
}

/// `done` calls through a provider of limit `n` in `shape`, by `workers` concurrent callers
/// (like apply's parallelism), each retrying a 429 after its Retry-After. Requests arrive 0 to
/// 8 ms after they leave (deterministic jitter), answers take 1 ms.
async fn simulate(shape: Shape, n: u32, rate: Option<f64>, done: usize, workers: usize) -> Run {
    let lim = Arc::new(RateLimiter::new(rate));
    let start = Instant::now();
    let model = Arc::new(Mutex::new(Model::new(shape, n, start)));
    let next = Arc::new(AtomicUsize::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let throttled = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let (lim, model, next) = (lim.clone(), model.clone(), next.clone());
            let (calls, throttled) = (calls.clone(), throttled.clone());
            tokio::spawn(async move {
                let mut x = 0x2545_F491_4F6C_DD1D_u64 ^ (w as u64 + 1).wrapping_mul(0x9E37);
                while next.fetch_add(1, Ordering::Relaxed) < done {
                    loop {
                        let slot = lim.acquire().await;
                        calls.fetch_add(1, Ordering::Relaxed);
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        tokio::time::sleep(Duration::from_micros(x % 8_000)).await;
                        let verdict = model.lock().unwrap().admit(Instant::now(), n);
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        match verdict {
                            Ok(()) => {
                                lim.on_success(slot);
                                break;
                            }
                            Err(after) => {
                                throttled.fetch_add(1, Ordering::Relaxed);
                                lim.on_throttled(slot, Some(after));
                                tokio::time::sleep(after).await;
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    Run {
        calls: calls.load(Ordering::Relaxed),
        throttled: throttled.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
    }
}

const SHAPES: [Shape; 3] = [Shape::Sliding, Shape::Fixed, Shape::Bucket];

/// The targets of `--rate R`: ≥ 90 % of R, ≤ 1.05 calls per accepted call (2.1 per card of two),
/// 429s under 2 % of calls; for 300 and 1,000 cards (600 and 2,000 calls), R = 50 and 200.
#[tokio::test(start_paused = true)]
async fn configured_rate_keeps_every_shape_busy_without_429s() {
    for shape in SHAPES {
        for n in [50, 200] {
            for done in [600, 2_000] {
                let run = simulate(shape, n, Some(f64::from(n)), done, 128).await;
                let u = run.utilisation(done, n);
                let label = format!(
                    "{shape:?} R={n} calls={done}: {u:.3}, {} 429s",
                    run.throttled
                );
                assert!(u >= 0.9, "{label}");
                assert!(run.calls as f64 <= 1.05 * done as f64, "{label}");
                assert!((run.throttled as f64) < 0.02 * run.calls as f64, "{label}");
            }
        }
    }
}

/// Without `--rate`: the limit is found from the first wave of 429s and held; ≥ 80 % of R.
#[tokio::test(start_paused = true)]
async fn discovered_rate_keeps_every_shape_busy() {
    for shape in SHAPES {
        for n in [50, 200] {
            for done in [600, 2_000] {
                let run = simulate(shape, n, None, done, 128).await;
                let u = run.utilisation(done, n);
                let label = format!(
                    "{shape:?} R={n} calls={done}: {u:.3}, {} 429s",
                    run.throttled
                );
                assert!(u >= 0.8, "{label}");
                // The discovery costs one wave of 429s, about one parallelism's worth.
                assert!(run.throttled <= 128 + 10, "{label}");
            }
        }
    }
}

/// A `--rate` higher than the provider's real limit: it settles under the real one.
#[tokio::test(start_paused = true)]
async fn too_high_a_configured_rate_is_corrected() {
    for shape in SHAPES {
        let run = simulate(shape, 50, Some(100.0), 2_000, 128).await;
        let u = run.utilisation(2_000, 50);
        let label = format!("{shape:?}: {u:.3}, {} 429s", run.throttled);
        assert!(u >= 0.8, "{label}");
        assert!(run.throttled < 20, "{label}");
    }
}
