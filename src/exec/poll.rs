//! When to check an order again. Checks cost rate-limit budget, so the executor learns how long
//! orders take and checks just after the expected finish; slow orders back off.
//!
//! Until one order has been seen to finish, the expected finish is a guess, and a run's first
//! orders (a whole short run, at a high rate) would all wait out its safety margin. So one order,
//! the scout, checks at the guess itself, and every order waiting for its first check is woken
//! when the estimate moves, to wait for what is known then instead of what was guessed when it
//! was sent. A wrong guess costs the scout's re-checks, not every order's. A scout whose order
//! ends unseen (its checks failed) hands the role on to an order still waiting.
//!
//! What a check shows is censored: an order found done at its first check took at most that
//! long, one found open took longer, and `completed_at` is optional (or set when the order is
//! next read, or in whole seconds). Counting the whole wait as the duration made the estimate
//! only grow, up to the cap, while finished orders waited to be checked. So each order yields an
//! interval that surely holds its duration ([`Seen`]), and the estimate moves towards the nearest
//! point of it: up only to a time at which an order was seen open, down only to one by which it
//! was seen done. It stays between the shortest and the longest real duration, whatever the
//! provider sends. An estimate too high never shows in checks made after it, so now and then an
//! order (an explorer) checks well before it: found done, the estimate comes down and the next
//! explorers check earlier and more often; found open, they check later and more rarely.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// A running estimate of order duration (EWMA of the mean and the absolute deviation), learnt
/// from censored observations (see the module's doc).
pub struct LatencyModel {
    inner: Mutex<Estimate>,
    /// Notified when the first check's wait moves by more than [`MOVED`].
    moved: Notify,
    /// Whether an order has taken the scout's place (see the module's doc).
    scouting: AtomicBool,
    /// Whether an explorer is out: one at a time, so a wave of orders sent together does not
    /// explore before the first explorer's finding has been taken in.
    exploring: AtomicBool,
}

#[derive(Clone, Copy)]
struct Estimate {
    /// Expected duration and its deviation, in seconds.
    mean: f64,
    dev: f64,
    observations: u64,
    /// First checks made since something was learnt: every `explore_every`th explores.
    checks: u64,
    explore_every: u64,
    /// Where explorers check, as a share of `mean`.
    explore_at: f64,
}

/// What one order's checks showed, in seconds since its creation was acknowledged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    /// When the last check that found it still open was sent (none: the first found it done).
    pub open_at: Option<f64>,
    /// When the check that found it done was sent, and when its answer came.
    pub done_sent: f64,
    pub done_by: f64,
    /// The provider's own span for it (`completed_at`/`failed_at` − `created_at`, widened by the
    /// timestamps' resolution), if it gave one.
    pub provider: Option<(f64, f64)>,
}

impl Seen {
    /// An order whose duration is known exactly.
    pub fn exact(took: Duration) -> Self {
        let x = took.as_secs_f64();
        Seen {
            open_at: Some(x),
            done_sent: x,
            done_by: x,
            provider: None,
        }
    }

    /// The interval that holds the order's duration. The provider's span narrows the checks'
    /// only where it is finer than them and its stated end is before the check that found the
    /// order done: an end stamped at that check (or after) is when the order was read, not
    /// when it finished.
    fn interval(&self) -> (f64, f64) {
        let lo = self.open_at.unwrap_or(0.0);
        let hi = self.done_by.max(lo);
        match self.provider {
            Some((a, b)) if b - a < hi - lo && a < self.done_sent => {
                let (l, h) = (lo.max(a), hi.min(b));
                if l <= h { (l, h) } else { (lo, hi) }
            }
            _ => (lo, hi),
        }
    }
}

/// Weight of one observation (an explorer's: see [`LatencyModel::observe`]).
const ALPHA: f64 = 0.2;
const MIN_WAIT: Duration = Duration::from_millis(50);
const MAX_WAIT: Duration = Duration::from_secs(30);
/// A change of the first check's wait (as a share of it) worth waking the waiting orders for.
const MOVED: f64 = 0.05;
/// Explorers: one in 4 to one in 32 first checks, at 30 % to 90 % of the mean.
const EXPLORE_EVERY: (u64, u64) = (4, 32);
const EXPLORE_AT: (f64, f64) = (0.3, 0.9);

impl LatencyModel {
    pub fn new(initial: Duration) -> Self {
        let x = initial.as_secs_f64();
        Self {
            inner: Mutex::new(Estimate {
                mean: x,
                dev: x / 4.0,
                observations: 0,
                checks: 0,
                explore_every: EXPLORE_EVERY.0,
                explore_at: 0.5,
            }),
            moved: Notify::new(),
            scouting: AtomicBool::new(false),
            exploring: AtomicBool::new(false),
        }
    }

    /// Learn from one order's checks (`explorer`: its first check was an explorer's).
    pub fn observe(&self, seen: Seen, explorer: bool) {
        let mut g = self.inner.lock().expect("latency model lock");
        let before = first_check_secs(&g);
        let (lo, hi) = seen.interval();
        // The point of the interval nearest the estimate: the estimate moves only as far as
        // what was seen proves, so it cannot leave the range of real durations.
        let p = g.mean.clamp(lo, hi);
        if g.observations == 0 {
            g.mean = p;
            g.dev = p / 10.0;
        } else {
            // An explorer's pull is the estimate being too high, not spread. The deeper it
            // probed (sent there by explorers before it finding orders done), the more it
            // weighs; one just short of the estimate, finding a quick order, only nudges it.
            if !explorer {
                g.dev += ALPHA * ((p - g.mean).abs() - g.dev);
            }
            let alpha = if explorer {
                (2.0 * (1.0 - g.explore_at)).min(1.0)
            } else {
                ALPHA
            };
            g.mean += alpha * (p - g.mean);
        }
        g.observations += 1;
        if explorer {
            if seen.open_at.is_none() {
                g.explore_at = (g.explore_at * 0.7).max(EXPLORE_AT.0);
                g.explore_every = (g.explore_every / 2).max(EXPLORE_EVERY.0);
            } else {
                g.explore_at += (EXPLORE_AT.1 - g.explore_at) / 2.0;
                g.explore_every = (g.explore_every * 2).min(EXPLORE_EVERY.1);
            }
        }
        let after = first_check_secs(&g);
        drop(g);
        if (after - before).abs() > MOVED * before {
            self.moved.notify_waiters();
        }
    }

    /// How long after creation to check first: just past the expected finish. Spread later
    /// only: a check spread earlier would find orders open that the estimate says are done.
    pub fn first_check(&self, jitter: f64) -> Duration {
        let g = self.inner.lock().expect("latency model lock");
        clamp(first_check_secs(&g) * (1.0 + 0.1 * jitter.max(0.0)))
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
            explorer: self.take_explorer(),
        };
        loop {
            // Registered before the estimate is read, so a change in between is not missed.
            let moved = self.moved.notified();
            let mut moved = std::pin::pin!(moved);
            moved.as_mut().enable();
            check.scout = check.scout
                || (self.observations() == 0 && !self.scouting.swap(true, Ordering::AcqRel));
            let wait = if check.scout && self.observations() == 0 {
                let mean = self.inner.lock().expect("latency model lock").mean;
                clamp((mean * 1.05 + 0.02) * (1.0 + 0.1 * jitter))
            } else if check.explorer {
                let g = self.inner.lock().expect("latency model lock");
                clamp(g.mean * g.explore_at * (1.0 + 0.1 * jitter))
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

    /// Whether the next first check explores: once something was learnt, every
    /// `explore_every`th, unless an explorer is still out.
    fn take_explorer(&self) -> bool {
        let mut g = self.inner.lock().expect("latency model lock");
        if g.observations == 0 {
            return false;
        }
        g.checks += 1;
        g.checks.is_multiple_of(g.explore_every) && !self.exploring.swap(true, Ordering::AcqRel)
    }

    fn observations(&self) -> u64 {
        self.inner.lock().expect("latency model lock").observations
    }

    /// The wait before the `n`th re-check (n ≥ 1) of an order that was not done yet.
    pub fn recheck(&self, n: u32, jitter: f64) -> Duration {
        let g = self.inner.lock().expect("latency model lock");
        let base = (g.mean * 0.25).max(0.1);
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
    explorer: bool,
}

impl FirstCheck<'_> {
    /// Whether this check was made early, to see whether orders got faster.
    pub fn explores(&self) -> bool {
        self.explorer
    }
}

impl Drop for FirstCheck<'_> {
    fn drop(&mut self) {
        if self.explorer {
            self.model.exploring.store(false, Ordering::Release);
        }
        if self.scout && self.model.observations() == 0 {
            self.model.scouting.store(false, Ordering::Release);
            self.model.moved.notify_waiters();
        }
    }
}

/// The first check's wait, before jitter: past the mean by twice the deviation, plus 5 %.
fn first_check_secs(e: &Estimate) -> f64 {
    (e.mean + 2.0 * e.dev) * 1.05 + 0.02
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
            m.observe(Seen::exact(Duration::from_millis(300)), false);
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
            learner.observe(Seen::exact(Duration::from_millis(600)), false);
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
                m.observe(Seen::exact(Duration::from_millis(600)), false);
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
        m.observe(Seen::exact(Duration::from_secs(1)), false);
        let learner = m.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            for _ in 0..10 {
                learner.observe(Seen::exact(Duration::from_secs(3)), false);
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

    /// A provider whose orders take `latency` (a function of the order's number), checked in
    /// waves of `wave` orders that all wait before any is observed (as orders in flight do), as
    /// `track` checks them; `stamp` is what the provider says of the end, given the real
    /// duration and the time of the check that found the order done. Returns the checks made
    /// per order over the last half of the orders.
    fn simulate(
        m: &LatencyModel,
        orders: usize,
        wave: usize,
        latency: impl Fn(usize) -> f64,
        stamp: impl Fn(f64, f64) -> Option<(f64, f64)>,
    ) -> f64 {
        let mut checks = 0usize;
        for start in (0..orders).step_by(wave) {
            let batch: Vec<_> = (start..(start + wave).min(orders))
                .map(|i| {
                    let explorer = m.take_explorer();
                    let wait = if explorer {
                        let g = m.inner.lock().unwrap();
                        clamp(g.mean * g.explore_at)
                    } else {
                        m.first_check(0.0)
                    };
                    (i, explorer, wait.as_secs_f64())
                })
                .collect();
            for (i, explorer, wait) in batch {
                let l = latency(i);
                let (mut t, mut open_at, mut n) = (wait, None, 1);
                if explorer && t < l {
                    open_at = Some(t);
                    t = t.max(first_wait(m));
                    n += 1;
                }
                while t < l {
                    open_at = Some(t);
                    t += m.recheck(n, 0.0).as_secs_f64();
                    n += 1;
                }
                if i >= orders / 2 {
                    checks += n as usize;
                }
                let seen = Seen {
                    open_at,
                    done_sent: t,
                    done_by: t,
                    provider: stamp(l, t),
                };
                m.observe(seen, explorer);
                m.exploring.store(false, Ordering::Release);
            }
        }
        checks as f64 / (orders - orders / 2) as f64
    }

    fn omitted(_: f64, _: f64) -> Option<(f64, f64)> {
        None
    }

    /// Stamped when read: at the check that found it done, a little after it was sent.
    fn on_read(_: f64, check: f64) -> Option<(f64, f64)> {
        Some((check + 0.001, check + 0.001))
    }

    fn first_wait(m: &LatencyModel) -> f64 {
        m.first_check(0.0).as_secs_f64()
    }

    #[test]
    fn censored_checks_bring_a_high_estimate_down() {
        for wave in [1, 64] {
            let m = LatencyModel::new(Duration::from_secs(10));
            let per_order = simulate(&m, 600, wave, |_| 1.0, omitted);
            let w = first_wait(&m);
            assert!((1.0..1.3).contains(&w), "wave {wave}: {w}");
            assert!(
                per_order <= 1.1,
                "wave {wave}: {per_order} checks per order"
            );
        }
    }

    #[test]
    fn censored_checks_bring_a_low_estimate_up() {
        for wave in [1, 64] {
            let m = LatencyModel::new(Duration::from_millis(100));
            let per_order = simulate(&m, 600, wave, |_| 3.0, omitted);
            let w = first_wait(&m);
            assert!((3.0..3.9).contains(&w), "wave {wave}: {w}");
            assert!(
                per_order <= 1.1,
                "wave {wave}: {per_order} checks per order"
            );
        }
    }

    /// The old failure: every first check finds the order done and the whole wait was taken
    /// for its duration, so each wave waited longer, up to the cap.
    #[test]
    fn a_provider_that_stamps_the_read_cannot_push_the_estimate_up() {
        let m = LatencyModel::new(Duration::from_secs(1));
        let mut highest: f64 = 0.0;
        for _ in 0..20 {
            simulate(&m, 64, 64, |_| 0.5, on_read);
            highest = highest.max(first_wait(&m));
        }
        assert!(highest < 1.7, "{highest}");
        let w = first_wait(&m);
        assert!((0.5..0.7).contains(&w), "{w}");
    }

    #[test]
    fn follows_a_provider_that_slows_down_and_speeds_up_again() {
        let phase = |i: usize| match i / 400 {
            1 => 5.0,
            _ => 0.5,
        };
        // One run through all three phases, in waves, looking at the end of each.
        let m = LatencyModel::new(Duration::from_secs(1));
        let mut at = 0;
        for (end, l) in [(400, 0.5), (800, 5.0), (1200, 0.5)] {
            let offset = at;
            simulate(&m, end - at, 32, |i| phase(offset + i), omitted);
            at = end;
            let w = first_wait(&m);
            assert!(
                w >= l && w < l * 1.3 + 0.05,
                "until order {end}: {w} for {l}"
            );
        }
    }

    #[test]
    fn precise_timestamps_are_learnt_at_once_and_coarse_ones_only_narrow_the_checks() {
        let m = LatencyModel::new(Duration::from_secs(10));
        simulate(&m, 50, 1, |_| 2.0, |l, _| Some((l, l + 1e-6)));
        assert!((2.0..2.2).contains(&first_wait(&m)), "{}", first_wait(&m));

        let open_then_done = Seen {
            open_at: Some(1.0),
            done_sent: 3.0,
            done_by: 3.1,
            provider: None,
        };
        assert_eq!(open_then_done.interval(), (1.0, 3.1));
        // Finer than the checks and before the check that found it done: it narrows them.
        let stamped = |a, b| Seen {
            provider: Some((a, b)),
            ..open_then_done
        };
        assert_eq!(stamped(1.5, 2.5).interval(), (1.5, 2.5));
        // Whole seconds around a wider wait narrow one side only.
        assert_eq!(stamped(0.4, 1.4).interval(), (1.0, 1.4));
        // Stamped at (or after) the check: when it was read, not when it ended.
        assert_eq!(stamped(3.0, 3.0).interval(), (1.0, 3.1));
        // No finer than what the checks showed: ignored.
        assert_eq!(stamped(0.0, 3.0).interval(), (1.0, 3.1));
        // At odds with the checks: the checks stand.
        assert_eq!(stamped(0.2, 0.4).interval(), (1.0, 3.1));
    }
}
