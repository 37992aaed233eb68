//! Slow start: how many changes a run may have in flight. It starts small and doubles each time
//! a quarter of a window's worth of changes finished with few failures (so about four doublings
//! per order latency: full speed within two latencies), up to `--parallelism`; failures stop the
//! growth. So a product whose every order fails costs about what the failure-rate brake
//! needs to see (its first window, then the brake's count), not `--parallelism` orders, while a
//! healthy run reaches full speed after a few windows. Owns the arithmetic only: it must not
//! start, send or stop anything.

/// The first window: what a run risks before it has seen any answer.
pub const SLOW_START: usize = 8;

/// Of the changes finished since the window last grew, at most one in this many may have failed
/// for it to grow again.
const FAILURES_TOLERATED_ONE_IN: usize = 10;

#[derive(Debug, Clone)]
pub(super) struct Ramp {
    window: usize,
    max: usize,
    ok: usize,
    failed: usize,
}

impl Ramp {
    pub(super) fn new(max: usize) -> Self {
        let max = max.max(1);
        Ramp {
            window: SLOW_START.min(max),
            max,
            ok: 0,
            failed: 0,
        }
    }

    /// How many changes may be in flight now.
    pub(super) fn window(&self) -> usize {
        self.window
    }

    /// A change finished, well (`ok`) or not.
    pub(super) fn finished(&mut self, ok: bool) {
        if ok {
            self.ok += 1;
        } else {
            self.failed += 1;
        }
        if self.failed * FAILURES_TOLERATED_ONE_IN > self.ok.max(1) {
            // Too many failures for this window to prove anything: start counting again.
            self.ok = 0;
            self.failed = 0;
        } else if self.ok >= (self.window / 4).max(2) {
            self.window = (self.window * 2).min(self.max);
            self.ok = 0;
            self.failed = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_while_changes_succeed_up_to_the_limit() {
        let mut r = Ramp::new(128);
        let mut seen = vec![r.window()];
        for _ in 0..300 {
            r.finished(true);
            if seen.last() != Some(&r.window()) {
                seen.push(r.window());
            }
        }
        assert_eq!(seen, vec![8, 16, 32, 64, 128]);
        // 2 + 4 + 8 + 16 = 30 changes to full speed: the first wave of 8 opens it to 32.
        let mut r = Ramp::new(128);
        for _ in 0..8 {
            r.finished(true);
        }
        assert_eq!(r.window(), 32);
        for _ in 8..29 {
            r.finished(true);
        }
        assert_eq!(r.window(), 64);
        r.finished(true);
        assert_eq!(r.window(), 128);
    }

    #[test]
    fn a_failing_product_never_opens_the_window() {
        let mut r = Ramp::new(128);
        for _ in 0..1000 {
            r.finished(false);
            assert_eq!(r.window(), SLOW_START);
        }
    }

    #[test]
    fn rare_failures_slow_growth_but_do_not_stop_it() {
        let mut r = Ramp::new(128);
        for i in 0..2000 {
            r.finished(i % 50 != 49);
        }
        assert_eq!(r.window(), 128);
    }

    #[test]
    fn a_small_limit_is_the_window() {
        assert_eq!(Ramp::new(1).window(), 1);
        assert_eq!(Ramp::new(4).window(), 4);
        let mut r = Ramp::new(4);
        r.finished(true);
        assert_eq!(r.window(), 4);
    }
}
