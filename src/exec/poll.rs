//! When to check an order again. Checks cost rate-limit budget, so the executor learns how long
//! orders take and checks just after the expected finish; slow orders back off.

use std::sync::Mutex;
use std::time::Duration;

/// A running estimate of order duration (EWMA of the mean and the absolute deviation).
pub struct LatencyModel {
    inner: Mutex<(f64, f64, u64)>,
}

const ALPHA: f64 = 0.2;
const MIN_WAIT: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_secs(30);

impl LatencyModel {
    pub fn new(initial: Duration) -> Self {
        Self {
            inner: Mutex::new((initial.as_secs_f64(), initial.as_secs_f64() / 4.0, 0)),
        }
    }

    /// Record how long an order took (from the provider's timestamps, or as observed).
    pub fn observe(&self, took: Duration) {
        let mut g = self.inner.lock().expect("latency model lock");
        let x = took.as_secs_f64();
        if g.2 == 0 {
            *g = (x, x / 10.0, 1);
            return;
        }
        let dev = (x - g.0).abs();
        g.0 += ALPHA * (x - g.0);
        g.1 += ALPHA * (dev - g.1);
        g.2 += 1;
    }

    /// How long after creation to check first: just past the expected finish.
    pub fn first_check(&self, jitter: f64) -> Duration {
        let g = self.inner.lock().expect("latency model lock");
        let secs = (g.0 + 2.0 * g.1) * 1.05 + 0.02;
        clamp(secs * (1.0 + 0.1 * jitter))
    }

    /// The wait before the `n`th re-check (n ≥ 1) of an order that was not done yet.
    pub fn recheck(&self, n: u32, jitter: f64) -> Duration {
        let g = self.inner.lock().expect("latency model lock");
        let base = (g.0 * 0.25).max(0.1);
        clamp(base * 1.6f64.powi(n as i32 - 1) * (1.0 + 0.2 * jitter))
    }
}

fn clamp(secs: f64) -> Duration {
    Duration::from_secs_f64(secs).clamp(MIN_WAIT, MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_and_backs_off() {
        let m = LatencyModel::new(Duration::from_secs(1));
        for _ in 0..20 {
            m.observe(Duration::from_millis(300));
        }
        let first = m.first_check(0.0);
        assert!(
            first >= Duration::from_millis(300) && first < Duration::from_millis(450),
            "{first:?}"
        );
        assert!(m.recheck(3, 0.0) > m.recheck(1, 0.0));
        assert!(m.recheck(40, 0.0) <= MAX_WAIT);
    }
}
