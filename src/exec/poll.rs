//! When to check an order again. Checks cost rate-limit budget, so the executor learns how long
//! orders take and checks just after the expected finish; slow orders back off.
//!
//! Until one order has been seen to finish, the expected finish is a guess, and a run's first
//! orders (a whole short run, at a high rate) would all wait out its safety margin. So one order,
//! the scout, checks at the guess itself, and every order waiting for its first check is woken
//! when the estimate moves, to wait for what is known then instead of what was guessed when it
//! was sent. A wrong guess costs the scout's re-checks, not every order's. A scout whose order
//! ends unseen (its checks failed) hands the role on to an order still waiting.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A running estimate of order duration (EWMA of the mean and the absolute deviation).
pub struct LatencyModel {
    /// (mean, deviation, observations), in seconds.
    inner: Mutex<(f64, f64, u64)>,
    /// Notified when the first check's wait moves by more than [`MOVED`].
    moved: Notify,
    /// Whether an order has taken the scout's place (see the module's doc).
    scouting: AtomicBool,
}

const ALPHA: f64 = 0.2;
const MIN_WAIT: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_secs(30);
/// A change of the first check's wait (as a share of it) worth waking the waiting orders for.
const MOVED: f64 = 0.05;

impl LatencyModel {
    pub fn new(initial: Duration) -> Self {
        Self {
            inner: Mutex::new((initial.as_secs_f64(), initial.as_secs_f64() / 4.0, 0)),
            moved: Notify::new(),
            scouting: AtomicBool::new(false),
        }
    }

    /// Record how long an order took (from the provider's timestamps, or as observed).
    pub fn observe(&self, took: Duration) {
        let mut g = self.inner.lock().expect("latency model lock");
        let before = first_check_secs(*g);
        let x = took.as_secs_f64();
        if g.2 == 0 {
            *g = (x, x / 10.0, 1);
        } else {
            let dev = (x - g.0).abs();
            g.0 += ALPHA * (x - g.0);
            g.1 += ALPHA * (dev - g.1);
            g.2 += 1;
        }
        let after = first_check_secs(*g);
        drop(g);
        if (after - before).abs() > MOVED * before {
            self.moved.notify_waiters();
        }
    }

    /// How long after creation to check first: just past the expected finish.
    pub fn first_check(&self, jitter: f64) -> Duration {
        let g = self.inner.lock().expect("latency model lock");
        clamp(first_check_secs(*g) * (1.0 + 0.1 * jitter))
    }

    /// Waits until the first check of an order acknowledged at `since` is due, by the estimate as
    /// it stands when due (see the module's doc); `jitter` in [-1, 1] spreads the checks. Keep
    /// what it returns until the order is observed or given up on: dropped before anything was
    /// observed, it hands the scout's role on.
    pub async fn until_first_check(&self, since: Instant, jitter: f64) -> FirstCheck<'_> {
        // Held from the moment the role is taken: a wait cancelled midway hands it on too.
        let mut check = FirstCheck {
            model: self,
            scout: false,
        };
        loop {
            // Registered before the estimate is read, so a change in between is not missed.
            let moved = self.moved.notified();
            let mut moved = std::pin::pin!(moved);
            moved.as_mut().enable();
            check.scout = check.scout
                || (self.observations() == 0 && !self.scouting.swap(true, Ordering::AcqRel));
            let wait = if check.scout && self.observations() == 0 {
                let mean = self.inner.lock().expect("latency model lock").0;
                clamp((mean * 1.05 + 0.02) * (1.0 + 0.1 * jitter))
            } else {
                self.first_check(jitter)
            };
            let due = since + wait;
            if Instant::now() >= due {
                return check;
            }
            tokio::select! {
                () = tokio::time::sleep_until(due) => return check,
                () = moved => {}
            }
        }
    }

    fn observations(&self) -> u64 {
        self.inner.lock().expect("latency model lock").2
    }

    /// The wait before the `n`th re-check (n ≥ 1) of an order that was not done yet.
    pub fn recheck(&self, n: u32, jitter: f64) -> Duration {
        let g = self.inner.lock().expect("latency model lock");
        let base = (g.0 * 0.25).max(0.1);
        clamp(base * 1.6f64.powi(n as i32 - 1) * (1.0 + 0.2 * jitter))
    }
}

/// An order's first check being made. The scout's, dropped before any order was observed (its
/// check failed, say), frees the role and wakes the waiting orders, so one of them checks at the
/// guess instead of all waiting out its margin.
#[must_use = "hold it until the order is observed"]
pub struct FirstCheck<'a> {
    model: &'a LatencyModel,
    scout: bool,
}

impl Drop for FirstCheck<'_> {
    fn drop(&mut self) {
        if self.scout && self.model.observations() == 0 {
            self.model.scouting.store(false, Ordering::Release);
            self.model.moved.notify_waiters();
        }
    }
}

/// The first check's wait, before jitter: past the mean by twice the deviation, plus 5 %.
fn first_check_secs((mean, dev, _): (f64, f64, u64)) -> f64 {
    (mean + 2.0 * dev) * 1.05 + 0.02
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

    /// Waits for the first check of orders acknowledged at 0, on a paused clock: when each
    /// returns, in milliseconds.
    async fn first_checks(m: std::sync::Arc<LatencyModel>, orders: usize) -> Vec<u128> {
        let start = Instant::now();
        let tasks: Vec<_> = (0..orders)
            .map(|_| {
                let m = m.clone();
                tokio::spawn(async move {
                    let _check = m.until_first_check(start, 0.0).await;
                    start.elapsed().as_millis()
                })
            })
            .collect();
        let mut at = Vec::new();
        for t in tasks {
            at.push(t.await.unwrap());
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn one_scout_checks_at_the_guess_and_the_rest_follow_what_it_learns() {
        let m = std::sync::Arc::new(LatencyModel::new(Duration::from_secs(1)));
        let learner = m.clone();
        tokio::spawn(async move {
            // The scout's order is found done at its check, having taken 0.6 s.
            tokio::time::sleep(Duration::from_millis(1070)).await;
            learner.observe(Duration::from_millis(600));
        });
        let at = first_checks(m, 3).await;
        // The scout at the guess (1 s, +5 % + 20 ms); the others, due by then by what it
        // learnt, at once instead of at the guess's margin (1.595 s).
        assert_eq!(at, vec![1070, 1070, 1070]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_scout_whose_check_fails_hands_the_role_on() {
        let m = std::sync::Arc::new(LatencyModel::new(Duration::from_secs(1)));
        let start = Instant::now();
        let scout = {
            let m = m.clone();
            tokio::spawn(async move {
                // Its check fails: the order ends unobserved and the role is dropped.
                let check = m.until_first_check(start, 0.0).await;
                assert!(check.scout);
                start.elapsed().as_millis()
            })
        };
        tokio::task::yield_now().await;
        let waiting = {
            let m = m.clone();
            tokio::spawn(async move {
                let check = m.until_first_check(start, 0.0).await;
                let at = start.elapsed().as_millis();
                // The new scout's check finds the order done.
                assert!(check.scout);
                m.observe(Duration::from_millis(600));
                at
            })
        };
        let last = first_checks(m.clone(), 2).await;
        assert_eq!(scout.await.unwrap(), 1070);
        // At once, at the failed scout's time, not at the guess's margin (1.595 s); the
        // others follow what the new scout learnt.
        assert_eq!(waiting.await.unwrap(), 1070);
        assert_eq!(last, vec![1070, 1070]);
        assert_eq!(m.observations(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_longer_latency_learnt_meanwhile_pushes_the_waiting_checks_back() {
        let m = std::sync::Arc::new(LatencyModel::new(Duration::from_secs(1)));
        m.observe(Duration::from_secs(1));
        let learner = m.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            for _ in 0..10 {
                learner.observe(Duration::from_secs(3));
            }
        });
        let expected = m.first_check(0.0);
        let at = first_checks(m.clone(), 2).await;
        let later = m.first_check(0.0).as_millis();
        assert!(
            later > expected.as_millis() + 1000,
            "{later} vs {expected:?}"
        );
        // No scout once something was learnt: both wait for the estimate as it now stands
        // (give or take the millisecond a `Duration` round-trip through seconds loses).
        assert!(
            at.iter().all(|t| t.abs_diff(later) <= 1),
            "{at:?} vs {later}"
        );
    }
}
