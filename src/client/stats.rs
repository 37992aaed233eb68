//! Counters of what the client did, for progress output and benchmarks.
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
        }
    }
}
