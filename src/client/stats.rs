//! Counters of what the client did, for progress output, benchmarks and `serve`'s metrics.
//!
//! Owns lock-free counting only; it must not influence behaviour.

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::wire::Endpoint;

/// A snapshot of the counters of one `Client` (shared by all its clones).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientStats {
    /// HTTP requests sent (every attempt, retries included), by endpoint path.
    pub requests: BTreeMap<String, u64>,
    /// Attempts that were followed by another attempt of the same call.
    pub retries: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// 5xx answers.
    pub server_errors: u64,
    /// Attempts with no usable HTTP answer: refused or reset connections, timeouts, cut-off bodies.
    pub connection_errors: u64,
    /// The subset of `connection_errors` that were timeouts.
    pub timeouts: u64,
    /// The client-side rate in force (requests/s); `None` while unlimited.
    pub current_rate: Option<f64>,
    /// How each attempt ended, by endpoint path then [`CallResult::as_str`]: only pairs seen.
    pub results: BTreeMap<String, BTreeMap<String, u64>>,
}

/// How one attempt (one HTTP request) ended, as the metrics tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallResult {
    /// A success body the provider signed.
    Ok,
    /// An error body of the provider's own (not a rate limit): the call was understood and refused.
    ProviderError,
    /// HTTP 429, or the provider's `rate_limited` error body.
    RateLimited,
    /// HTTP 5xx.
    ServerError,
    /// No usable HTTP answer: refused or reset connection, timeout, cut-off body.
    Transport,
    /// Anything else: a 408, an undecodable body, an answer of the wrong shape.
    Other,
}

impl CallResult {
    pub const ALL: [CallResult; 6] = [
        CallResult::Ok,
        CallResult::ProviderError,
        CallResult::RateLimited,
        CallResult::ServerError,
        CallResult::Transport,
        CallResult::Other,
    ];

    /// The label value the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Ok => "ok",
            CallResult::ProviderError => "provider_error",
            CallResult::RateLimited => "rate_limited",
            CallResult::ServerError => "server_error",
            CallResult::Transport => "transport",
            CallResult::Other => "other",
        }
    }
}

impl ClientStats {
    pub fn total_requests(&self) -> u64 {
        self.requests.values().sum()
    }

    pub fn requests_to(&self, endpoint: Endpoint) -> u64 {
        self.requests.get(endpoint.path()).copied().unwrap_or(0)
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    per_endpoint: [AtomicU64; Endpoint::ALL.len()],
    pub(crate) retries: AtomicU64,
    pub(crate) rate_limited: AtomicU64,
    pub(crate) server_errors: AtomicU64,
    pub(crate) connection_errors: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    /// By endpoint (index in `Endpoint::ALL`), then result (index in `CallResult::ALL`).
    per_result: [[AtomicU64; CallResult::ALL.len()]; Endpoint::ALL.len()],
}

pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn sent(&self, endpoint: Endpoint) {
        if let Some(i) = Endpoint::ALL.iter().position(|e| *e == endpoint) {
            bump(&self.per_endpoint[i]);
        }
    }

    /// Counts how one attempt at `endpoint` ended.
    pub(crate) fn ended(&self, endpoint: Endpoint, result: CallResult) {
        let e = Endpoint::ALL.iter().position(|x| *x == endpoint);
        let r = CallResult::ALL.iter().position(|x| *x == result);
        if let (Some(e), Some(r)) = (e, r) {
            bump(&self.per_result[e][r]);
        }
    }

    fn results(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Endpoint::ALL
            .iter()
            .zip(&self.per_result)
            .filter_map(|(e, row)| {
                let seen: BTreeMap<String, u64> = CallResult::ALL
                    .iter()
                    .zip(row)
                    .filter(|(_, c)| get(c) > 0)
                    .map(|(r, c)| (r.as_str().to_owned(), get(c)))
                    .collect();
                (!seen.is_empty()).then(|| (e.path().to_owned(), seen))
            })
            .collect()
    }

    pub(crate) fn snapshot(&self, current_rate: Option<f64>) -> ClientStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ClientStats {
            requests: Endpoint::ALL
                .iter()
                .zip(&self.per_endpoint)
                .filter(|(_, c)| get(c) > 0)
                .map(|(e, c)| (e.path().to_owned(), get(c)))
                .collect(),
            retries: get(&self.retries),
            rate_limited: get(&self.rate_limited),
            server_errors: get(&self.server_errors),
            connection_errors: get(&self.connection_errors),
            timeouts: get(&self.timeouts),
            current_rate,
            results: self.results(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_kept_apart_by_endpoint_and_result() {
        let c = Counters::default();
        c.ended(Endpoint::CardsCreate, CallResult::Ok);
        c.ended(Endpoint::CardsCreate, CallResult::Ok);
        c.ended(Endpoint::CardsCreate, CallResult::RateLimited);
        c.ended(Endpoint::OrdersCheck, CallResult::Transport);
        let s = c.snapshot(None);
        assert_eq!(s.results.len(), 2);
        assert_eq!(s.results["cards/create"]["ok"], 2);
        assert_eq!(s.results["cards/create"]["rate_limited"], 1);
        assert_eq!(s.results["orders/check"]["transport"], 1);
        assert!(!s.results["cards/create"].contains_key("transport"));
    }
}
