//! `request_timestamp`: microseconds since the Unix epoch, strictly increasing across every request
//! this process sends, however many are in flight (the provider rejects duplicates as replays).
//!
//! Wall-clock time enters here through [`Clock`], the seam tests use to be deterministic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Where "now" comes from, in microseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    fn now_micros(&self) -> u64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    }
}

/// Hands out `max(now, last + 1)`: never the same value twice, never backwards, and never more
/// than a few microseconds ahead of the clock unless callers outpace one per microsecond.
pub struct TimestampSource {
    clock: Arc<dyn Clock>,
    last: AtomicU64,
}

impl TimestampSource {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            last: AtomicU64::new(0),
        }
    }

    /// The process-wide source every client shares, so two clients in one process cannot collide.
    pub fn global() -> &'static TimestampSource {
        static GLOBAL: OnceLock<TimestampSource> = OnceLock::new();
        GLOBAL.get_or_init(|| TimestampSource::new(Arc::new(SystemClock)))
    }

    pub fn next(&self) -> u64 {
        let now = self.clock.now_micros();
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let candidate = now.max(last + 1);
            match self.last.compare_exchange_weak(
                last,
                candidate,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return candidate,
                Err(actual) => last = actual,
            }
        }
    }
}

/// RFC 3339 (UTC, microseconds) for a time in microseconds since the epoch: how every timestamp
/// cardform records is written.
pub fn rfc3339(micros: u64) -> String {
    jiff::Timestamp::from_microsecond(micros as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Now, as RFC 3339, from the given clock.
pub fn now_rfc3339(clock: &dyn Clock) -> String {
    rfc3339(clock.now_micros())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    struct Frozen(u64);
    impl Clock for Frozen {
        fn now_micros(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn frozen_clock_still_increases() {
        let src = TimestampSource::new(Arc::new(Frozen(1_000)));
        assert_eq!(src.next(), 1_000);
        assert_eq!(src.next(), 1_001);
        assert_eq!(src.next(), 1_002);
    }

    #[test]
    fn thousands_of_concurrent_callers_never_collide() {
        let src = Arc::new(TimestampSource::new(Arc::new(SystemClock)));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let src = src.clone();
                std::thread::spawn(move || (0..5_000).map(|_| src.next()).collect::<Vec<_>>())
            })
            .collect();
        let mut all = HashSet::new();
        for t in threads {
            let values = t.join().unwrap();
            assert!(values.windows(2).all(|w| w[0] < w[1]), "per-thread order");
            for v in values {
                assert!(all.insert(v), "duplicate timestamp {v}");
            }
        }
        assert_eq!(all.len(), 80_000);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_tasks_share_the_global_source() {
        let tasks: Vec<_> = (0..2_000)
            .map(|_| tokio::spawn(async { TimestampSource::global().next() }))
            .collect();
        let mut seen = HashSet::new();
        for t in tasks {
            assert!(seen.insert(t.await.unwrap()));
        }
    }
}
