//! The provider's per-second request limit, in each of the shapes real providers use
//! (REFERENCE.md §1 leaves the shape open): a sliding window, a fixed window on the wall clock's
//! second boundaries, and a token bucket.
//!
//! Each is modelled as strictly as a plausible provider would be, because a lenient sandbox hides
//! client bugs: the sliding window counts refused requests too (a client that ignores
//! `Retry-After` keeps itself locked out), windows are closed at both ends, and `Retry-After` is
//! whole seconds rounded up, never 0. Only bookkeeping: "now" is passed in, in microseconds since
//! the Unix epoch, so tests drive it with any clock.

use std::collections::VecDeque;
use std::fmt;

use crate::wire::assumed::RATE_WINDOW_MICROS;

/// How the sandbox counts requests against `--rate-limit N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateLimitShape {
    /// At most N requests in any one-second window, wherever it starts: the strictest common
    /// shape, and the default.
    #[default]
    Sliding,
    /// At most N requests per second of the wall clock; the count resets on each boundary, so up
    /// to 2N can pass in one second that straddles a boundary.
    Fixed,
    /// A bucket of N tokens refilled at N per second: a full second of burst, then N/s.
    Bucket,
}

impl RateLimitShape {
    pub const ALL: [RateLimitShape; 3] = [Self::Sliding, Self::Fixed, Self::Bucket];

    pub fn name(self) -> &'static str {
        match self {
            Self::Sliding => "sliding",
            Self::Fixed => "fixed",
            Self::Bucket => "bucket",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Sliding => "sliding one-second window",
            Self::Fixed => "fixed window, reset each second",
            Self::Bucket => "token bucket, one second of burst",
        }
    }
}

impl fmt::Display for RateLimitShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The state of one limit of `rate` requests per second.
#[derive(Debug, Clone)]
pub(super) enum RateWindow {
    /// Arrival times still inside the window, refused ones included.
    Sliding(VecDeque<u64>),
    Fixed {
        second: u64,
        count: u64,
    },
    Bucket {
        tokens: f64,
        last: u64,
    },
}

impl RateWindow {
    pub(super) fn new(shape: RateLimitShape, rate: u32, now: u64) -> Self {
        match shape {
            RateLimitShape::Sliding => RateWindow::Sliding(VecDeque::new()),
            RateLimitShape::Fixed => RateWindow::Fixed {
                second: now / RATE_WINDOW_MICROS,
                count: 0,
            },
            RateLimitShape::Bucket => RateWindow::Bucket {
                tokens: f64::from(rate),
                last: now,
            },
        }
    }

    /// Counts one request arriving at `now`: `Ok` if it may pass, else the `Retry-After` in
    /// seconds.
    pub(super) fn admit(&mut self, now: u64, rate: u32) -> Result<(), u64> {
        let limit = u64::from(rate.max(1));
        match self {
            RateWindow::Sliding(log) => {
                // Closed window [now − 1 s, now]: a request exactly one second old still counts.
                let since = now.saturating_sub(RATE_WINDOW_MICROS);
                while log.front().is_some_and(|t| *t < since) {
                    log.pop_front();
                }
                let over = log.len() as u64 >= limit;
                log.push_back(now.max(log.back().copied().unwrap_or(0)));
                if !over {
                    return Ok(());
                }
                // Free again once all but limit − 1 of the logged requests have left the window.
                let index = log.len() - limit as usize;
                Err(whole_seconds(log[index] + RATE_WINDOW_MICROS + 1 - now))
            }
            RateWindow::Fixed { second, count } => {
                let this = now / RATE_WINDOW_MICROS;
                if this != *second {
                    *second = this;
                    *count = 0;
                }
                *count += 1;
                if *count <= limit {
                    Ok(())
                } else {
                    Err(whole_seconds((this + 1) * RATE_WINDOW_MICROS - now))
                }
            }
            RateWindow::Bucket { tokens, last } => {
                let rate = limit as f64;
                let elapsed = now.saturating_sub(*last) as f64 / 1e6;
                *tokens = (*tokens + elapsed * rate).min(rate);
                *last = now.max(*last);
                if *tokens >= 1.0 {
                    *tokens -= 1.0;
                    Ok(())
                } else {
                    Err(whole_seconds(((1.0 - *tokens) / rate * 1e6).ceil() as u64))
                }
            }
        }
    }
}

/// `Retry-After` is delay-seconds: rounded up, and at least 1 so nobody is told to hammer.
fn whole_seconds(micros: u64) -> u64 {
    micros.div_ceil(1_000_000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;
    const T0: u64 = 1_700_000_000 * S;

    /// Arrivals at `times` (µs after T0); which ones passed.
    fn run(shape: RateLimitShape, rate: u32, times: &[u64]) -> Vec<bool> {
        let mut w = RateWindow::new(shape, rate, T0);
        times
            .iter()
            .map(|t| w.admit(T0 + t, rate).is_ok())
            .collect()
    }

    fn passed_at(shape: RateLimitShape, rate: u32, times: &[u64]) -> Vec<u64> {
        times
            .iter()
            .zip(run(shape, rate, times))
            .filter(|(_, ok)| *ok)
            .map(|(t, _)| *t)
            .collect()
    }

    /// The most passed requests inside any closed one-second window.
    fn busiest_second(passed: &[u64]) -> usize {
        passed
            .iter()
            .map(|start| {
                passed
                    .iter()
                    .filter(|t| **t >= *start && **t <= start + S)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    /// A deterministic, uneven arrival pattern: bursts and gaps, about 3× the limit on average.
    fn arrivals(rate: u32, seconds: u64) -> Vec<u64> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut t = 0;
        let mut out = Vec::new();
        while t < seconds * S {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Gaps of 0 to 2/(3·rate) s: a third of them exactly 0 (simultaneous arrivals).
            let gap = (x % 3) * (S / (3 * u64::from(rate)));
            t += gap;
            out.push(t);
        }
        out
    }

    #[test]
    fn sliding_never_passes_more_than_n_in_any_second() {
        let times = arrivals(20, 10);
        let passed = passed_at(RateLimitShape::Sliding, 20, &times);
        assert!(busiest_second(&passed) <= 20, "{}", busiest_second(&passed));
        // Refused requests count: a client that keeps sending at 3× the limit without ever
        // waiting is locked out after its first second's worth.
        assert_eq!(passed.len(), 20);
    }

    #[test]
    fn sliding_counts_refused_requests_and_says_when_to_come_back() {
        let mut w = RateWindow::new(RateLimitShape::Sliding, 3, T0);
        for i in 0..3 {
            assert_eq!(w.admit(T0 + i, 3), Ok(()));
        }
        assert_eq!(w.admit(T0 + S / 2, 3), Err(1));
        // Exactly one second after the first: still inside the closed window.
        assert_eq!(w.admit(T0 + S, 3), Err(1));
        // The first three have left; the refused ones at 0.5 s and 1 s still count.
        assert_eq!(w.admit(T0 + S + 3, 3), Ok(()));
        assert_eq!(w.admit(T0 + S + 4, 3), Err(1));
        assert_eq!(w.admit(T0 + 2 * S + 10, 3), Ok(()));
        // A patient client: one per 1/3 s goes through forever.
        let mut w = RateWindow::new(RateLimitShape::Sliding, 3, T0);
        for i in 0..30 {
            assert_eq!(w.admit(T0 + i * (S / 3 + 1), 3), Ok(()), "request {i}");
        }
    }

    #[test]
    fn fixed_resets_on_the_wall_clock_second() {
        // T0 is on a second boundary; start 0.9 s into the second.
        let late = 9 * S / 10;
        let mut times: Vec<u64> = (0..5).map(|i| late + i).collect();
        times.push(late + 10);
        times.extend((0..5).map(|i| S + i));
        times.push(S + 10);
        let ok = run(RateLimitShape::Fixed, 5, &times);
        assert_eq!(
            ok,
            [
                true, true, true, true, true, false, true, true, true, true, true, false
            ]
        );
        // Ten passed within 0.1 s: the burst a fixed window allows across a boundary.
        let mut w = RateWindow::new(RateLimitShape::Fixed, 5, T0);
        for i in 0..5 {
            w.admit(T0 + late + i, 5).unwrap();
        }
        // 0.1 s before the boundary: come back in (rounded up) one second.
        assert_eq!(w.admit(T0 + late + 9, 5), Err(1));
        // Over a long uneven run: never more than N in one wall-clock second.
        let times = arrivals(20, 10);
        let passed = passed_at(RateLimitShape::Fixed, 20, &times);
        for second in 0..10 {
            let n = passed.iter().filter(|t| **t / S == second).count();
            assert!(n <= 20, "second {second}: {n}");
        }
    }

    #[test]
    fn bucket_allows_one_second_of_burst_then_the_rate() {
        let mut w = RateWindow::new(RateLimitShape::Bucket, 10, T0);
        for i in 0..10 {
            assert_eq!(w.admit(T0 + i, 10), Ok(()), "burst {i}");
        }
        assert_eq!(w.admit(T0 + 10, 10), Err(1));
        // One token back after 0.1 s.
        assert_eq!(w.admit(T0 + S / 10 + 10, 10), Ok(()));
        assert_eq!(w.admit(T0 + S / 10 + 20, 10), Err(1));
        // Over time: burst + rate × elapsed, no more.
        let times = arrivals(20, 10);
        let passed = passed_at(RateLimitShape::Bucket, 20, &times);
        let last = *times.last().unwrap();
        let bound = 20 + (20 * last).div_ceil(S) as usize;
        assert!(passed.len() <= bound, "{} > {bound}", passed.len());
        assert!(passed.len() + 20 >= bound, "{} ≪ {bound}", passed.len());
    }

    #[test]
    fn sliding_is_the_default() {
        assert_eq!(RateLimitShape::default(), RateLimitShape::Sliding);
        assert_eq!(RateLimitShape::Fixed.to_string(), "fixed");
    }
}
