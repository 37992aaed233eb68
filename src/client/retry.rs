//! When to try again: exponential backoff with full jitter, and the provider's `Retry-After`.
//!
//! Owns the delay arithmetic and the one source of randomness of the client (injectable, so tests
//! can seed it). It must not sleep, send or decide *whether* to retry.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::Mutex;
use std::time::Duration;

/// No backoff step grows beyond this.
pub const BACKOFF_CAP: Duration = Duration::from_secs(10);
/// A `Retry-After` beyond this is clamped: a run waits, but not indefinitely.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);

/// The randomness seam: entropy-seeded in production, fixed seed in tests.
pub struct Jitter(Mutex<StdRng>);

impl Jitter {
    pub fn from_entropy() -> Self {
        Self(Mutex::new(StdRng::from_os_rng()))
    }

    pub fn seeded(seed: u64) -> Self {
        Self(Mutex::new(StdRng::seed_from_u64(seed)))
    }

    /// A uniformly random duration in `[0, max]`.
    pub fn up_to(&self, max: Duration) -> Duration {
        let mut rng = self.0.lock().unwrap_or_else(|p| p.into_inner());
        max.mul_f64(rng.random_range(0.0..=1.0))
    }
}

/// "Full jitter": uniform in `[0, min(cap, base × 2^(failures−1))]`, so a crowd of clients that
/// failed together does not come back together.
pub fn backoff(base: Duration, failures: u32, jitter: &Jitter) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let ceiling = base.saturating_mul(1u32 << exp).min(BACKOFF_CAP);
    jitter.up_to(ceiling)
}

/// `Retry-After` as delay-seconds (integer, or a decimal some servers send). HTTP-dates are not
/// worth a date parser here: they fall back to backoff.
pub fn parse_retry_after(value: &str, now_micros: u64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        return Some(Duration::from_secs_f64(secs).min(RETRY_AFTER_CAP));
    }
    // HTTP also allows a date ("Wed, 21 Oct 2015 07:28:00 GMT"): wait until then.
    static PARSER: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    let at = PARSER.parse_timestamp(value).ok()?;
    let wait = at.as_microsecond().saturating_sub(now_micros as i64).max(0);
    Some(Duration::from_micros(wait as u64).min(RETRY_AFTER_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_the_cap() {
        let j = Jitter::seeded(7);
        let base = Duration::from_millis(100);
        for failures in 1..=12 {
            let ceiling = (base * (1 << (failures - 1))).min(BACKOFF_CAP);
            for _ in 0..50 {
                assert!(backoff(base, failures, &j) <= ceiling);
            }
        }
        // Full jitter actually spreads: 200 draws at the cap are not all equal.
        let draws: Vec<_> = (0..200).map(|_| backoff(base, 20, &j)).collect();
        assert!(draws.iter().any(|d| *d < BACKOFF_CAP / 2));
        assert!(draws.iter().any(|d| *d > BACKOFF_CAP / 2));
    }

    #[test]
    fn same_seed_same_delays() {
        let a = Jitter::seeded(42);
        let b = Jitter::seeded(42);
        let base = Duration::from_millis(100);
        for f in 1..10 {
            assert_eq!(backoff(base, f, &a), backoff(base, f, &b));
        }
    }

    #[test]
    fn retry_after_values() {
        let now = 1_445_412_470_000_000; // 2015-10-21T07:27:50Z
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 0.5 ", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_retry_after("99999", now), Some(RETRY_AFTER_CAP));
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
