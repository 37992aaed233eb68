//! What this `serve` process has done since it started, counted lock-free for the metrics and the
//! dashboard. Owns counting only: nothing here may steer behaviour. What state knows (cards,
//! orders in flight, money) is read from state, not counted here, so every replica agrees.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    /// This replica holds the state lock and reconciles; the others stand by.
    pub leader: AtomicBool,
    /// Reconciles started, and those that ended in an error.
    pub reconciles: AtomicU64,
    pub reconcile_failures: AtomicU64,
    /// How long the last reconcile took, in milliseconds.
    pub last_reconcile_millis: AtomicU64,
    /// When the last successful reconcile ended (Unix seconds; 0: none yet).
    pub last_success_unix: AtomicI64,
    /// Cards whose provider state differs from state, as the last reconcile's refresh found.
    pub drifted_cards: AtomicU64,
    /// Plans waiting for approval.
    pub pending_approvals: AtomicU64,
    /// Webhook deliveries: accepted, duplicates of one already taken, and refused by the check.
    pub webhooks_accepted: AtomicU64,
    pub webhooks_duplicate: AtomicU64,
    pub webhooks_refused: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads `counter`.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
