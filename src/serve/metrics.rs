//! `GET /metrics`: what state holds and what this process did, in the Prometheus text
//! exposition format 0.0.4, written by hand.
//!
//! Owns the figures' names, their HELP and TYPE lines and the state-derived [`Fleet`] (cached a
//! few seconds: reading the whole state per scrape is costly for a large fleet; the dashboard
//! reads it too). It must not count anything itself (that is `Counters` and the client's stats)
//! nor steer behaviour, and money is rendered from the `Decimal`'s own string, never through an
//! `f64`. No label carries a card key, a user or anything personal: product, status, endpoint.
//!
//! By hand rather than `prometheus-client`: that crate's gauges are `f64` (money would pass
//! through one) and its registry wants metrics registered up front, while every figure here is
//! read fresh from state or from counters that already exist; the format is a few line shapes.

use axum::Router;
use axum::extract::State as Extract;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Counters, State};
use crate::client::ClientStats;
use crate::state::{StateError, Store};

/// How long a read of state serves scrapes and dashboard loads before the next read.
pub const FLEET_TTL: Duration = Duration::from_secs(3);

/// The content type of the text format this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The figures state holds, read in one snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    /// Cards by (status, product).
    pub cards: BTreeMap<(String, String), u64>,
    /// Cards by label, `NAME=VALUE` as `state list --label` spells it (the dashboard's; too
    /// many series for the metrics).
    pub labels: BTreeMap<String, u64>,
    /// Open (prepared or acknowledged) orders by kind.
    pub orders_in_flight: BTreeMap<String, u64>,
    /// What the managed cards cost, as `state list` totals it.
    pub charged: Decimal,
    /// The currency state charges in, once a run has learned it.
    pub currency: Option<String>,
}

impl Fleet {
    /// Reads `store` once.
    pub async fn read(store: &Store) -> Result<Fleet, StateError> {
        let snapshot = store.snapshot().await?;
        let mut fleet = Fleet {
            currency: store.currency().await?,
            ..Fleet::default()
        };
        for card in snapshot.cards.values() {
            let key = (
                card.phase.as_str().to_owned(),
                card.product_code.to_string(),
            );
            *fleet.cards.entry(key).or_default() += 1;
            fleet.charged += card.charged;
            for (k, v) in card.labels.iter() {
                *fleet.labels.entry(format!("{k}={v}")).or_default() += 1;
            }
        }
        for order in snapshot.open_orders.values().flatten() {
            *fleet
                .orders_in_flight
                .entry(order.kind.as_str().to_owned())
                .or_default() += 1;
        }
        Ok(fleet)
    }
}

/// One value kept for a while. A reader that finds it stale reloads it while holding the lock,
/// so concurrent scrapes wait for one read of state instead of each making their own.
#[derive(Debug)]
pub struct Cached<T> {
    ttl: Duration,
    slot: tokio::sync::Mutex<Option<(Instant, Arc<T>)>>,
}

impl<T> Cached<T> {
    pub fn new(ttl: Duration) -> Self {
        Cached {
            ttl,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// The kept value if younger than the TTL, else what `load` returns (kept on success only).
    pub async fn get<E, F: Future<Output = Result<T, E>>>(
        &self,
        load: impl FnOnce() -> F,
    ) -> Result<Arc<T>, E> {
        let mut slot = self.slot.lock().await;
        if let Some((at, value)) = &*slot
            && at.elapsed() < self.ttl
        {
            return Ok(value.clone());
        }
        let value = Arc::new(load().await?);
        *slot = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

/// The `/metrics` route, with its own cache of the fleet.
pub fn routes() -> Router<State> {
    let cache = Arc::new(Cached::<Fleet>::new(FLEET_TTL));
    Router::new().route(
        "/metrics",
        get(move |Extract(shared): Extract<State>| async move {
            match cache.get(|| Fleet::read(&shared.store)).await {
                Ok(fleet) => {
                    let body = render(&fleet, &shared.counters, &shared.client.stats());
                    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
                }
                Err(e) => unavailable(&e),
            }
        }),
    )
}

/// 503 without the error's text: it is logged, not shown to whoever scrapes.
pub fn unavailable(e: &StateError) -> Response {
    tracing::warn!(target: "cardform::serve", error = %e, "reading state for a view failed");
    (StatusCode::SERVICE_UNAVAILABLE, "state unavailable\n").into_response()
}

/// The whole exposition.
pub fn render(fleet: &Fleet, counters: &Counters, calls: &ClientStats) -> String {
    let mut out = Text::default();
    state_part(&mut out, fleet);
    calls_part(&mut out, calls);
    process_part(&mut out, counters);
    out.0
}

fn state_part(out: &mut Text, fleet: &Fleet) {
    out.family(
        "cardform_cards",
        "gauge",
        "Managed cards by status and product.",
    );
    for ((status, product), n) in &fleet.cards {
        out.sample(
            "cardform_cards",
            &[("status", status), ("product", product)],
            n,
        );
    }
    out.family(
        "cardform_orders_in_flight",
        "gauge",
        "Orders sent or about to be sent whose end is not known yet, by kind.",
    );
    for (kind, n) in &fleet.orders_in_flight {
        out.sample("cardform_orders_in_flight", &[("kind", kind)], n);
    }
    out.family(
        "cardform_charged",
        "gauge",
        "What the managed cards cost so far, as state list totals it, by currency.",
    );
    if let Some(cur) = &fleet.currency {
        out.sample("cardform_charged", &[("currency", cur)], fleet.charged);
    }
}

fn calls_part(out: &mut Text, calls: &ClientStats) {
    out.family(
        "cardform_provider_requests_total",
        "counter",
        "HTTP requests to the provider (each attempt), by endpoint and how they ended.",
    );
    for (endpoint, results) in &calls.results {
        for (result, n) in results {
            out.sample(
                "cardform_provider_requests_total",
                &[("endpoint", endpoint), ("result", result)],
                n,
            );
        }
    }
    out.family(
        "cardform_provider_rate_limited_total",
        "counter",
        "Answers that told this process to slow down (HTTP 429 or rate_limited).",
    );
    out.sample(
        "cardform_provider_rate_limited_total",
        &[],
        calls.rate_limited,
    );
}

fn process_part(out: &mut Text, c: &Counters) {
    let n = Counters::get;
    out.gauge(
        "cardform_leader",
        "1 while this replica leads, 0 while it stands by.",
        u64::from(c.leader.load(Ordering::Relaxed)),
    );
    out.gauge(
        "cardform_drifted_cards",
        "Cards whose provider state differs from state, as the last refresh found.",
        n(&c.drifted_cards),
    );
    out.gauge(
        "cardform_pending_approvals",
        "Plans waiting for approval.",
        n(&c.pending_approvals),
    );
    out.counter(
        "cardform_reconciles_total",
        "Reconciles started.",
        n(&c.reconciles),
    );
    out.counter(
        "cardform_reconcile_failures_total",
        "Reconciles that ended in an error.",
        n(&c.reconcile_failures),
    );
    out.gauge(
        "cardform_reconcile_duration_seconds",
        "How long the last reconcile took.",
        millis_as_seconds(n(&c.last_reconcile_millis)),
    );
    out.gauge(
        "cardform_last_reconcile_success_timestamp_seconds",
        "When the last successful reconcile ended (Unix time; 0: none yet).",
        c.last_success_unix.load(Ordering::Relaxed),
    );
    out.family("cardform_webhooks_total", "counter",
        "Provider webhook deliveries: accepted, duplicates of one taken already, refused by the check.");
    for (result, counter) in [
        ("accepted", &c.webhooks_accepted),
        ("duplicate", &c.webhooks_duplicate),
        ("refused", &c.webhooks_refused),
    ] {
        out.sample("cardform_webhooks_total", &[("result", result)], n(counter));
    }
}

/// Exact: `1234` ms is `1.234`, with no float in between.
fn millis_as_seconds(ms: u64) -> Decimal {
    Decimal::from(ms) / Decimal::from(1000)
}

/// The exposition being written.
#[derive(Default)]
struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(
            self.0,
            "# HELP {name} {}",
            help.replace('\\', r"\\").replace('\n', r"\n")
        );
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.0, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(self.0, " {value}");
    }

    fn gauge(&mut self, name: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, "gauge", help);
        self.sample(name, &[], value);
    }

    fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.family(name, "counter", help);
        self.sample(name, &[], value);
    }
}

/// The format's three escapes in a label value.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
