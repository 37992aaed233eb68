//! `cardform serve`: the long-running reconciler. It leads through the state lock (standing by
//! while another replica holds it), reconciles the declarations in a directory against
//! PostgreSQL state, completes orders on the provider's webhooks, and answers HTTP: health,
//! Prometheus metrics, the dashboard and its API.
//!
//! Layer: beside the commands of `cli`, above `exec`, `plan`, `state` and `client`. `cli` parses
//! the flags and the project file into settings and calls in here; this module never parses
//! arguments and never prints to stdout (it logs, and answers requests).
//!
//! Each part owns one file and offers `routes()` for the one router: every route but
//! `/healthz` and the provider's webhook (which is checked by its own envelope) sits behind the
//! token.

pub mod counters;
pub mod dashboard;
pub mod metrics;

use std::sync::Arc;

pub use counters::Counters;

/// What every request handler and the reconcile loop share, built once at start.
pub struct Shared {
    /// The state (PostgreSQL only: `serve` refuses SQLite).
    pub store: crate::state::Store,
    /// The provider client; its stats feed the metrics.
    pub client: crate::client::Client,
    /// What this process did, for the metrics and the dashboard.
    pub counters: Counters,
}

/// The router state of every part of `serve`.
pub type State = Arc<Shared>;
