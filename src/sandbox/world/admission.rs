//! What a request must get past before it is decided: the rate limit (in the shape of
//! [`rate_limit`](super::rate_limit)), the
//! replay window on `request_timestamp`, and the idempotency records that replay a mutation's
//! first answer.
//!
//! Keeps only the bookkeeping; the order of the checks, and what a replayed or conflicting key
//! answers, are decided on the request path in `mod.rs`. Nothing here may touch balance, orders,
//! cards or users.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::rate_limit::{RateLimitShape, RateWindow};
use super::{ApiError, World, err};
use crate::wire::Endpoint;
use crate::wire::assumed;
use crate::wire::error::slug;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct IdemRec {
    pub(super) endpoint: String,
    pub(super) fields: Value,
    pub(super) response: Value,
    pub(super) created: u64,
}

impl World {
    /// Counts the request against the rate limit: `Err(retry_after_secs)` when over it.
    pub(super) fn admit(&mut self, now: u64, rate: u32, shape: RateLimitShape) -> Result<(), u64> {
        self.rate_window
            .get_or_insert_with(|| RateWindow::new(shape, rate, now))
            .admit(now, rate)
    }

    pub(super) fn check_timestamp(&mut self, now: u64, ts: u64) -> Result<(), ApiError> {
        let window = assumed::TIMESTAMP_WINDOW_MICROS;
        let off = now.abs_diff(ts);
        if off > window {
            return Err(err(
                slug::INVALID_REQUEST,
                format!(
                    "request_timestamp is {} s off the provider clock: check the system clock",
                    off / 1_000_000
                ),
            ));
        }
        let cutoff = now.saturating_sub(window);
        while self.seen.first().is_some_and(|t| *t < cutoff) {
            self.seen.pop_first();
        }
        if !self.seen.insert(ts) {
            return Err(err(
                slug::INVALID_REQUEST,
                "duplicate request_timestamp (replay)",
            ));
        }
        Ok(())
    }

    pub(super) fn remember_key(
        &mut self,
        now: u64,
        key: &str,
        e: Endpoint,
        fields: Value,
        response: Value,
    ) {
        let ttl = assumed::IDEMPOTENCY_KEY_TTL_SECS * 1_000_000;
        while let Some((t, k)) = self.idempotency_queue.front() {
            if t + ttl >= now {
                break;
            }
            if self.idempotency.get(k).is_some_and(|r| r.created == *t) {
                self.idempotency.remove(k);
            }
            self.idempotency_queue.pop_front();
        }
        self.idempotency.insert(
            key.to_owned(),
            IdemRec {
                endpoint: e.path().to_owned(),
                fields,
                response,
                created: now,
            },
        );
        self.idempotency_queue.push_back((now, key.to_owned()));
        self.dirty = true;
    }
}
