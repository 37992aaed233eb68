//! The client-side rate limit: one adaptive token bucket shared by every clone of a `Client`.
//!
//! Owns pacing only: when the next request may leave. It must not retry, classify responses or
//! sleep for backoff; the call loop tells it about 429s and successes and it adjusts the rate
//! (multiplicative decrease, additive increase up to the configured rate).
//!
//! Time is `tokio::time::Instant`, so tests can run it on a paused clock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How much burst the bucket allows, in seconds of the current rate. Small on purpose: the
/// provider's own window is unknown, and a full second of burst on top of the steady rate is
/// exactly what trips a per-second limit.
const BURST_SECS: f64 = 0.25;
/// Multiplicative decrease on a 429.
const DECREASE_FACTOR: f64 = 0.7;
/// The effective rate never drops below this (nor below the configured rate, if smaller).
const MIN_RATE: f64 = 0.5;
/// A wave of concurrent requests all answered 429 is one signal, not fifty: decrease at most once
/// per this interval.
const DECREASE_COOLDOWN: Duration = Duration::from_secs(1);
/// Recovery: per success, add `max(1/rate, RECOVERY_FRACTION)`, i.e. about +1 req/s per second
/// at low rates and +5 %/s at high ones.
const RECOVERY_FRACTION: f64 = 0.05;
/// When no rate is configured, the send rate over this window is what a first 429 is measured
/// against.
const OBSERVE_WINDOW: Duration = Duration::from_secs(1);
/// A handful of sends within a few milliseconds says little about a rate; measure over at least
/// this long.
const MIN_OBSERVED_SPAN: Duration = Duration::from_millis(100);

pub(crate) struct RateLimiter {
    /// The ceiling recovery climbs back to; `None` = no configured limit.
    configured: Option<f64>,
    floor: f64,
    inner: Mutex<State>,
}

struct State {
    /// The rate in force; `None` while unlimited (nothing configured, no 429 seen yet).
    rate: Option<f64>,
    /// May go negative: each caller reserves its token and sleeps until it has accrued, which
    /// serves waiters in arrival order.
    tokens: f64,
    refilled: Instant,
    paused_until: Option<Instant>,
    last_decrease: Option<Instant>,
    /// Send times within `OBSERVE_WINDOW`, kept only while unlimited.
    recent: VecDeque<Instant>,
}

fn capacity(rate: f64) -> f64 {
    (rate * BURST_SECS).max(1.0)
}

impl RateLimiter {
    pub(crate) fn new(configured: Option<f64>) -> Self {
        let floor = configured.map_or(MIN_RATE, |c| c.min(MIN_RATE));
        Self {
            configured,
            floor,
            inner: Mutex::new(State {
                rate: configured,
                tokens: configured.map_or(0.0, capacity),
                refilled: Instant::now(),
                paused_until: None,
                last_decrease: None,
                recent: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the numbers inconsistent in a way that
        // matters for pacing, so a poisoned lock is simply reused.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until one request may be sent.
    pub(crate) async fn acquire(&self) {
        self.wait_for_pause().await;
        let wait = self.reserve_at(Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        // A 429 that arrived while this caller waited for its token pauses it too.
        self.wait_for_pause().await;
    }

    /// Takes one token (possibly on credit) and says how long until it has accrued.
    fn reserve_at(&self, now: Instant) -> Duration {
        let mut st = self.lock();
        match st.rate {
            None => {
                st.recent.push_back(now);
                prune(&mut st.recent, now);
                Duration::ZERO
            }
            Some(rate) => {
                refill(&mut st, rate, now);
                st.tokens -= 1.0;
                if st.tokens >= 0.0 {
                    Duration::ZERO
                } else {
                    Duration::from_secs_f64(-st.tokens / rate)
                }
            }
        }
    }

    async fn wait_for_pause(&self) {
        loop {
            let until = self.lock().paused_until;
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    /// The provider answered 429: hold everyone for `retry_after` and slow down.
    pub(crate) fn on_throttled(&self, retry_after: Option<Duration>) {
        self.on_throttled_at(retry_after, Instant::now());
    }

    fn on_throttled_at(&self, retry_after: Option<Duration>, now: Instant) {
        let mut st = self.lock();
        if let Some(ra) = retry_after {
            let until = now + ra;
            st.paused_until = Some(st.paused_until.map_or(until, |p| p.max(until)));
        }
        if st
            .last_decrease
            .is_some_and(|t| now.duration_since(t) < DECREASE_COOLDOWN)
        {
            return;
        }
        let base = match st.rate {
            Some(r) => r,
            None => {
                prune(&mut st.recent, now);
                // Measured over the span actually covered, so a burst right after start-up is
                // seen as the fast burst it was, not spread over a whole window.
                let span = st
                    .recent
                    .front()
                    .map_or(Duration::ZERO, |t| now.duration_since(*t))
                    .clamp(MIN_OBSERVED_SPAN, OBSERVE_WINDOW);
                let observed = st.recent.len() as f64 / span.as_secs_f64();
                st.recent.clear();
                observed
            }
        };
        let new = (base * DECREASE_FACTOR).max(self.floor);
        if let Some(old) = st.rate {
            refill(&mut st, old, now);
        } else {
            st.tokens = 0.0;
            st.refilled = now;
        }
        st.tokens = st.tokens.min(capacity(new));
        st.rate = Some(new);
        st.last_decrease = Some(now);
    }

    /// A request got an answer that was not a 429: creep back towards the configured rate.
    pub(crate) fn on_success(&self) {
        self.on_success_at(Instant::now());
    }

    fn on_success_at(&self, now: Instant) {
        let mut st = self.lock();
        let Some(rate) = st.rate else { return };
        let ceiling = self.configured.unwrap_or(f64::INFINITY);
        if rate >= ceiling {
            return;
        }
        refill(&mut st, rate, now);
        st.rate = Some((rate + (1.0 / rate).max(RECOVERY_FRACTION)).min(ceiling));
    }

    /// The rate in force, `None` while unlimited.
    pub(crate) fn current_rate(&self) -> Option<f64> {
        self.lock().rate
    }
}

fn refill(st: &mut State, rate: f64, now: Instant) {
    let elapsed = now.duration_since(st.refilled).as_secs_f64();
    st.tokens = (st.tokens + elapsed * rate).min(capacity(rate));
    st.refilled = now;
}

fn prune(recent: &mut VecDeque<Instant>, now: Instant) {
    while recent
        .front()
        .is_some_and(|t| now.duration_since(*t) > OBSERVE_WINDOW)
    {
        recent.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn reservations_pace_to_the_configured_rate() {
        let lim = RateLimiter::new(Some(10.0));
        let t0 = Instant::now();
        // Capacity 2.5 tokens, full at start: two free, then each waits for its own token.
        let waits: Vec<_> = (0..22).map(|_| lim.reserve_at(t0)).collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert_eq!(waits[1], Duration::ZERO);
        assert!((waits[2].as_secs_f64() - 0.05).abs() < 1e-9);
        assert!((waits[21].as_secs_f64() - 1.95).abs() < 1e-9);
        // Idle time refills, but never beyond the burst capacity.
        let later = t0 + secs(100.0);
        let free = (0..10)
            .take_while(|_| lim.reserve_at(later).is_zero())
            .count();
        assert_eq!(free, 2);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_bucket() {
        let lim = Arc::new(RateLimiter::new(Some(100.0)));
        let start = Instant::now();
        let tasks: Vec<_> = (0..55)
            .map(|_| {
                let lim = lim.clone();
                tokio::spawn(async move { lim.acquire().await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // 25 tokens of burst, 30 more at 100/s.
        let elapsed = start.elapsed().as_secs_f64();
        assert!((0.29..1.5).contains(&elapsed), "{elapsed}");
    }

    #[test]
    fn throttle_decreases_once_per_wave_and_recovers() {
        let lim = RateLimiter::new(Some(10.0));
        let t0 = Instant::now();
        lim.on_throttled_at(None, t0);
        lim.on_throttled_at(None, t0 + secs(0.5));
        assert_eq!(lim.current_rate(), Some(7.0));
        lim.on_throttled_at(None, t0 + secs(1.1));
        let r = lim.current_rate().unwrap();
        assert!((r - 4.9).abs() < 1e-9, "{r}");
        lim.on_success_at(t0 + secs(1.2));
        let r2 = lim.current_rate().unwrap();
        assert!(r2 > r && r2 < 5.2, "{r2}");
        for i in 0..1000 {
            lim.on_success_at(t0 + secs(2.0 + i as f64 * 0.01));
        }
        assert_eq!(lim.current_rate(), Some(10.0));
    }

    #[test]
    fn never_below_the_floor() {
        let lim = RateLimiter::new(Some(1.0));
        let t0 = Instant::now();
        for i in 0..20 {
            lim.on_throttled_at(None, t0 + secs(2.0 * i as f64));
        }
        assert_eq!(lim.current_rate(), Some(MIN_RATE));
        let slow = RateLimiter::new(Some(0.1));
        slow.on_throttled_at(None, t0);
        assert_eq!(slow.current_rate(), Some(0.1));
    }

    #[test]
    fn unlimited_starts_limiting_at_the_observed_rate() {
        let lim = RateLimiter::new(None);
        let t0 = Instant::now();
        for i in 0..100 {
            assert!(lim.reserve_at(t0 + secs(i as f64 * 0.02)).is_zero());
        }
        assert_eq!(lim.current_rate(), None);
        // 50 sends in the last second (one every 20 ms), × 0.7.
        lim.on_throttled_at(None, t0 + secs(1.99));
        let r = lim.current_rate().unwrap();
        assert!((r - 35.0).abs() < 1.0, "{r}");
        // No more free burst right after the 429.
        assert!(!lim.reserve_at(t0 + secs(1.99)).is_zero());
    }

    #[test]
    fn a_burst_after_start_up_is_measured_over_its_own_span() {
        let lim = RateLimiter::new(None);
        let t0 = Instant::now();
        for _ in 0..40 {
            lim.reserve_at(t0);
        }
        lim.on_throttled_at(None, t0 + secs(0.01));
        // 40 sends within the minimum span of 100 ms: 400/s, × 0.7.
        let r = lim.current_rate().unwrap();
        assert!((r - 280.0).abs() < 1e-6, "{r}");
    }

    #[tokio::test]
    async fn retry_after_pauses_every_caller() {
        let lim = RateLimiter::new(Some(100.0));
        lim.on_throttled(Some(Duration::from_millis(300)));
        let start = Instant::now();
        lim.acquire().await;
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(900), "{elapsed:?}");
    }
}
