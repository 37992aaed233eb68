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

pub mod apply;
pub mod approvals;
pub mod counters;
pub mod dashboard;
pub mod drift;
pub mod http;
pub mod leader;
pub mod log;
pub mod metrics;
pub mod policy;
pub mod reconcile;
pub mod throttle;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

pub use counters::Counters;

use crate::wire::Secret;

/// What every request handler and the reconcile loop share, built once at start.
pub struct Shared {
    /// The state (PostgreSQL only: `serve` refuses SQLite).
    pub store: crate::state::Store,
    /// The provider client; its stats feed the metrics.
    pub client: crate::client::Client,
    /// What this process did, for the metrics and the dashboard.
    pub counters: Counters,
    /// Asks the reconcile loop for one more reconcile (coalesced: see [`reconcile::Trigger`]).
    pub trigger: reconcile::Trigger,
    /// `CARDFORM_SERVE_TOKEN`: what a request must present (bearer, or the login cookie).
    pub token: Secret,
    /// Terminal orders the provider's webhooks delivered, for the reconcile loop's runs to take
    /// (`ExecOptions::inbox`).
    pub inbox: Arc<crate::exec::inbox::Inbox>,
    /// What a webhook delivery must carry (the project's API key and secret). `None`: every
    /// delivery is refused.
    pub webhook_check: Option<webhook::Check>,
    /// The provider's webhook subscription this replica holds while it leads.
    pub subscription: std::sync::Mutex<Option<crate::wire::webhook::Subscription>>,
    /// Slows wrong tokens at `POST /login`, per client address.
    pub login_throttle: throttle::LoginThrottle,
}

impl Shared {
    /// The shared state of a process that starts now, with nothing counted yet.
    pub fn new(store: crate::state::Store, client: crate::client::Client, token: Secret) -> Self {
        Shared {
            store,
            client,
            counters: Counters::default(),
            trigger: reconcile::Trigger::default(),
            token,
            inbox: Arc::new(crate::exec::inbox::Inbox::new(Arc::new(
                crate::wire::SystemClock,
            ))),
            webhook_check: None,
            subscription: std::sync::Mutex::new(None),
            login_throttle: throttle::LoginThrottle::default(),
        }
    }

    /// The same, believing webhook deliveries that pass `check`.
    #[must_use]
    pub fn with_webhooks(mut self, check: webhook::Check) -> Self {
        self.webhook_check = Some(check);
        self
    }
}

/// The router state of every part of `serve`.
pub type State = Arc<Shared>;

/// The shortest `CARDFORM_SERVE_TOKEN` accepted: guessing 16 characters online is hopeless.
pub const MIN_TOKEN_CHARS: usize = 16;

/// How `serve` runs, resolved and checked by `cli` before anything starts.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: std::net::SocketAddr,
    /// Where the declarations are, as `plan -f` takes them.
    pub files: Vec<std::path::PathBuf>,
    /// The URL this service is reached at (for links and the webhook registration), if set.
    pub public_url: Option<String>,
    /// A reconcile at least this often, changed files or not.
    pub interval: Duration,
    /// How long orders in flight may take to finish after SIGTERM before the process leaves.
    pub drain_timeout: Duration,
    /// How often the leader reads the fleet back to notice drift (see [`drift`]); `None`: never.
    pub drift_every: Option<Duration>,
    /// How often the declarations are looked at for changes.
    pub watch_every: Duration,
    /// How often a standby asks for the lock, and a leader checks it still holds it.
    pub lock_every: Duration,
    pub prune: bool,
    pub max_prune: crate::plan::MaxPrune,
    pub max_fees: Option<rust_decimal::Decimal>,
    /// The policy's budget of one UTC day (see [`policy`]); `None`: no budget.
    pub max_fees_per_day: Option<rust_decimal::Decimal>,
    pub max_failure_rate: Option<rust_decimal::Decimal>,
    pub parallelism: usize,
    /// Who this process is, as the lock records its holder.
    pub lock_request: crate::state::LockRequest,
    /// Who runs, as each run in history records it (its `at` is set when the run begins).
    pub run_info: crate::state::RunInfo,
    /// The provider as a state records it: a state recorded for another is refused.
    pub provider_id: crate::model::provider::ProviderId,
}

/// Why `serve` could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Http(std::io::Error),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
}

/// Runs `serve` until SIGTERM or Ctrl-C: the HTTP server, the watcher of the declarations and
/// the leadership loop (which reconciles while it leads). Returns once orders in flight have
/// drained (or `drain_timeout` passed) and the lock is released.
pub async fn run(shared: State, config: Config) -> Result<(), ServeError> {
    // Before anything answers: a SIGTERM from then on must drain, never kill outright.
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let local = listener.local_addr().map_err(ServeError::Http)?;
    log::info(
        "listening",
        serde_json::json!({"addr": local.to_string(), "files": config.files}),
    );
    // The client's long waits (a slow provider, a Retry-After) are log lines too, not plain text.
    shared
        .client
        .on_wait(Arc::new(|wait: &crate::client::Wait| {
            log::warn(
                "provider wait",
                serde_json::json!({"wait": crate::render::safe(&wait.to_string())}),
            );
        }));
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let server = {
        let mut stopping = stopping.clone();
        let app = http::router(shared.clone());
        tokio::spawn(async move {
            // The client's address, for the login brake (`throttle`).
            let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopping.wait_for(|s| *s).await;
                })
                .await
        })
    };
    let watcher = tokio::spawn(reconcile::watch_files(
        shared.clone(),
        config.files.clone(),
        config.watch_every,
    ));
    let leading = tokio::spawn(leader::run(shared.clone(), config.clone(), stopping));
    let signal = shutdown_signal(term).await;
    log::info(
        "shutting down",
        serde_json::json!({"signal": signal, "drain_timeout_secs": config.drain_timeout.as_secs()}),
    );
    let _ = stopping_tx.send(true);
    // The leadership loop stops starting orders at once, lets those in flight settle for up to
    // the drain timeout (past it they stay open in the journal for the next leader) and releases
    // the lock; this bound only guards against a release that hangs on an unreachable database.
    if tokio::time::timeout(config.drain_timeout + Duration::from_secs(10), leading)
        .await
        .is_err()
    {
        log::warn("leaving without releasing the lock", serde_json::json!({}));
    }
    watcher.abort();
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    log::info("stopped", serde_json::json!({}));
    Ok(())
}

/// Waits for SIGTERM or Ctrl-C (SIGINT); names the one that came.
async fn shutdown_signal(term: Option<tokio::signal::unix::Signal>) -> &'static str {
    let Some(mut term) = term else {
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = tokio::signal::ctrl_c() => "SIGINT",
    }
}
