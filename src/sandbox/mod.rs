//! The built-in sandbox provider: a faithful stand-in for the card-issuing API of
//! `shared/api/REFERENCE.md`, served over HTTP on loopback for tests, demos and benchmarks.
//!
//! This file owns the server (listener, connections, graceful shutdown, world-file saving) and the
//! public API; the provider's rules live in [`world`], its products in [`catalog`]. It speaks the
//! protocol only through `crate::wire` and must not share code paths with `crate::client`, so the
//! two cannot agree on anything the reference does not state.
//!
//! Beside the provider API (`POST /api/v1/<path>`) it serves two operator endpoints in plain,
//! unauthenticated JSON, outside `/api/v1/` because they are not part of the provider protocol:
//! - `GET /__sandbox/inspect` ([`INSPECT_PATH`]): the [`Inspection`] counters.
//! - `POST /__sandbox/close` ([`CLOSE_PATH`]) with `{"card_id": "..."}`: close the card as the
//!   provider would on its own (200 `{"card_id", "status": "closed"}`; 404 `card_not_found` if
//!   unknown). Only loopback peers may call it, whatever the listen address: it changes the world.
//!   Also [`SandboxHandle::close_card`].

mod catalog;
mod webhooks;
mod world;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::wire::body::{encode_error, encode_success};
use crate::wire::{Clock, Key, Secret, SystemClock};
use world::{Payload, Reply, Settings, World};

pub use catalog::{SUBPROVIDER, SUBPROVIDER_EU};
pub use webhooks::{WebhookFaults, WebhookStats};
pub use world::{CompletedAt, RateLimitShape, RefundPolicy, luhn_valid};

/// The unauthenticated inspection endpoint.
pub const INSPECT_PATH: &str = "/__sandbox/inspect";

/// The unauthenticated operator endpoint that closes a card at the provider.
pub const CLOSE_PATH: &str = "/__sandbox/close";

/// How often a changed world is written to the world file.
const SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// How long shutdown waits for open requests before closing their connections anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the sandbox behaves. `..Default::default()` gives a well-behaved provider on :8080.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Where to listen; port 0 picks a free port.
    pub listen: SocketAddr,
    pub api_key: String,
    pub api_secret: Secret,
    /// The starting USDT master balance (ignored when a world file is loaded).
    pub balance: Decimal,
    /// How long an order takes from creation to `completed`.
    pub order_latency: Duration,
    /// Steps of order latency during a run: (from, latency), `from` counted from the first
    /// order the sandbox creates; `order_latency` before the first step. Empty: fixed.
    pub latency_schedule: Vec<(Duration, Duration)>,
    /// What orders say of when they ended: the real time (default), nothing, the time of the
    /// first read that saw them ended, or whole seconds.
    pub completed_at: CompletedAt,
    /// Requests per second over all API calls; beyond it 429 with `Retry-After`. `None` or 0: no limit.
    pub rate_limit: Option<u32>,
    /// How `rate_limit` counts: sliding window (default), fixed window or token bucket.
    pub rate_limit_shape: RateLimitShape,
    /// Fraction of issue orders that end `failed` (with `provider_error`), refunded.
    pub fail_rate: f64,
    /// Fraction of API requests answered 500/503 before anything is done.
    pub error_rate: f64,
    /// Fraction of new `cards/create` orders carried out and charged whose connection is then
    /// closed without a response.
    pub drop_rate: f64,
    pub seed: u64,
    /// `external_user_id`s whose KYC stays pending forever: `cardholder_not_ready` on
    /// `cards/create` (with `kyc_status: pending`), whether their cardholder was created or not.
    pub not_ready_users: Vec<String>,
    /// `external_user_id`s that get `cardholder_not_found` until registered via users/cardholders
    /// (outside people mode; in people mode everyone is unknown until created).
    pub unknown_users: Vec<String>,
    /// How long a new cardholder's KYC stays `pending` before it is decided (world clock).
    /// Zero (the default here; the CLI's `--kyc-latency` defaults to 2s): decided at creation.
    pub kyc_latency: Duration,
    /// `external_user_id`s whose KYC ends `rejected` (registration `failed`) after `kyc_latency`.
    pub kyc_rejected_users: Vec<String>,
    /// `external_user_id`s whose KYC ends `expired` after `kyc_latency`: approved once, lapsed
    /// since (documents out of date), so no card may be issued to them until it is renewed.
    pub kyc_expired_users: Vec<String>,
    /// People mode: every `external_user_id` is unknown until `users/create` and then
    /// `cardholders/create` at the product's subprovider; `cardholders/create` needs the user.
    pub require_people: bool,
    /// Product codes whose issue orders all end failed, as when a product is misconfigured at the
    /// provider (the order is created and charged, then fails and is refunded).
    pub fail_products: Vec<String>,
    /// Product codes whose top-up orders all end failed (charged, then given back as `refund`
    /// says).
    pub fail_topup_products: Vec<String>,
    /// What a failed order (issue or top-up) gives back to the master balance.
    pub refund: RefundPolicy,
    /// Hostile: every issue order, once issued, names the first card id this world ever issued
    /// (a provider that mixes its answers up). The cards themselves are created as usual.
    pub same_card_for_every_order: bool,
    /// Hostile: issue orders end `completed` without a `card_id`.
    pub completed_without_card_id: bool,
    /// Hostile: issue and top-up orders take their fee times this from the master balance
    /// (`10`: ten times the fee; `-1`: a credit of the fee, the balance goes up). The ledger
    /// (`balance`, `total_charged`) records what the orders really took.
    pub charge_multiplier: Option<Decimal>,
    /// Load the world from this JSON at start, save it periodically when changed and on shutdown.
    pub world_file: Option<PathBuf>,
    /// Save the world file before answering any request that changed it, so a process killed at
    /// any instant loses nothing a client was told (`--sandbox` runs in cardform's own process).
    /// Costs a whole-file write per change: for demos and tests, not for load.
    pub durable: bool,
    /// How webhook deliveries misbehave (they are sent only to subscribed URLs).
    pub webhooks: WebhookFaults,
    /// Where "now" comes from: orders age and timestamps are checked against it.
    pub clock: Arc<dyn Clock>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            api_key: "sandbox-key".to_owned(),
            api_secret: Secret::new("sandbox-secret"),
            balance: Decimal::new(1_000_000, 2),
            order_latency: Duration::from_secs(2),
            latency_schedule: Vec::new(),
            completed_at: CompletedAt::default(),
            rate_limit: None,
            rate_limit_shape: RateLimitShape::default(),
            fail_rate: 0.0,
            error_rate: 0.0,
            drop_rate: 0.0,
            seed: 0,
            not_ready_users: Vec::new(),
            unknown_users: Vec::new(),
            kyc_latency: Duration::ZERO,
            kyc_rejected_users: Vec::new(),
            kyc_expired_users: Vec::new(),
            require_people: false,
            fail_products: Vec::new(),
            fail_topup_products: Vec::new(),
            refund: RefundPolicy::default(),
            same_card_for_every_order: false,
            completed_without_card_id: false,
            charge_multiplier: None,
            world_file: None,
            durable: false,
            webhooks: WebhookFaults::default(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("listen", &self.listen)
            .field("api_key", &self.api_key)
            .field("api_secret", &self.api_secret)
            .field("balance", &self.balance)
            .field("order_latency", &self.order_latency)
            .field("latency_schedule", &self.latency_schedule)
            .field("completed_at", &self.completed_at)
            .field("rate_limit", &self.rate_limit)
            .field("rate_limit_shape", &self.rate_limit_shape)
            .field("fail_rate", &self.fail_rate)
            .field("error_rate", &self.error_rate)
            .field("drop_rate", &self.drop_rate)
            .field("seed", &self.seed)
            .field("not_ready_users", &self.not_ready_users)
            .field("unknown_users", &self.unknown_users)
            .field("kyc_latency", &self.kyc_latency)
            .field("kyc_rejected_users", &self.kyc_rejected_users)
            .field("kyc_expired_users", &self.kyc_expired_users)
            .field("require_people", &self.require_people)
            .field("fail_products", &self.fail_products)
            .field("fail_topup_products", &self.fail_topup_products)
            .field("refund", &self.refund)
            .field("same_card_for_every_order", &self.same_card_for_every_order)
            .field("completed_without_card_id", &self.completed_without_card_id)
            .field("charge_multiplier", &self.charge_multiplier)
            .field("world_file", &self.world_file)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("sandbox: {0}")]
    InvalidConfig(String),
    #[error("sandbox: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sandbox: cannot read world file {path}: {source}")]
    ReadWorld {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("sandbox: world file {path} is unusable: {reason}")]
    BadWorld { path: PathBuf, reason: String },
}

/// Issue orders per (external_user_id, product_code).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct IssueOrderCount {
    pub external_user_id: String,
    pub product_code: String,
    pub count: u64,
}

/// What the sandbox has done so far; also served as plain JSON on [`INSPECT_PATH`].
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Inspection {
    pub balance: Decimal,
    /// Every charge at order creation, before refunds.
    pub total_charged: Decimal,
    /// Given back for failed issue orders.
    pub total_refunded: Decimal,
    /// Paid in by the operator ([`SandboxHandle::deposit_up_to`]): neither a charge nor a refund.
    #[serde(default)]
    pub total_deposited: Decimal,
    /// Sorted by (external_user_id, product_code).
    pub issue_orders: Vec<IssueOrderCount>,
    /// Per endpoint path, every call including rejected ones (`(unknown)` for other paths).
    pub calls: BTreeMap<String, u64>,
    pub orders: u64,
    pub open_orders: u64,
    pub failed_orders: u64,
    pub cards: u64,
    pub users: u64,
    /// Every cardholder, over all (external_user_id, subprovider_code) pairs.
    pub cardholders: u64,
    pub rate_limited: u64,
    pub dropped: u64,
    pub injected_errors: u64,
    pub idempotent_replays: u64,
    /// Every external_user_id with a user or a cardholder, sorted by it.
    #[serde(default)]
    pub people: Vec<PersonCount>,
    /// Cardholders per current `kyc_status` (`pending`, `approved`, `rejected`).
    #[serde(default)]
    pub kyc: BTreeMap<String, u64>,
    /// Webhook deliveries and what they got.
    #[serde(default)]
    pub webhooks: WebhookStats,
}

/// Users and cardholders of one external_user_id.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PersonCount {
    pub external_user_id: String,
    /// 0 or 1: users/create refuses a second one.
    pub users: u64,
    pub cardholders: u64,
    /// subprovider_code → the `kyc_status` of the cardholder there now.
    pub kyc: BTreeMap<String, String>,
}

impl Inspection {
    /// How many issue orders were created for this user and product.
    pub fn issue_count(&self, external_user_id: &str, product_code: &str) -> u64 {
        self.issue_orders
            .iter()
            .find(|c| c.external_user_id == external_user_id && c.product_code == product_code)
            .map_or(0, |c| c.count)
    }

    /// The users and cardholders of this external_user_id, if it has any.
    pub fn person(&self, external_user_id: &str) -> Option<&PersonCount> {
        self.people
            .iter()
            .find(|p| p.external_user_id == external_user_id)
    }

    /// (users, cardholders) of this external_user_id: `(1, 1)` for a person fully onboarded once
    /// at one subprovider.
    pub fn people_count(&self, external_user_id: &str) -> (u64, u64) {
        self.person(external_user_id)
            .map_or((0, 0), |p| (p.users, p.cardholders))
    }

    pub fn calls_to(&self, path: &str) -> u64 {
        self.calls.get(path).copied().unwrap_or(0)
    }
}

struct Shared {
    settings: Settings,
    clock: Arc<dyn Clock>,
    world: Mutex<World>,
    /// The world file to write before each answer that changed the world (durable mode).
    durable: Option<PathBuf>,
    /// Held from taking a world's picture until its file is in place: saves run one at a time, so
    /// an older picture never lands over a newer one and no two share the temporary file.
    saving: Mutex<()>,
    /// Webhook deliveries: faults and counters.
    hooks: webhooks::Dispatcher,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        // A panic elsewhere must not take the whole sandbox down; the world stays consistent
        // because every mutation completes under the lock before it is released.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn inspect(&self) -> Inspection {
        let now = self.clock.now_micros();
        let mut inspection = self.world().inspect(now);
        inspection.webhooks = self.hooks.stats();
        inspection
    }

    fn close_card(&self, card_id: &str) -> bool {
        let now = self.clock.now_micros();
        self.world().close_card(now, card_id)
    }

    fn deposit_up_to(&self, target: Decimal) -> Decimal {
        self.world().deposit_up_to(target)
    }
}

/// A running sandbox. Dropping it stops the server without saving; call [`shutdown`](Self::shutdown).
pub struct SandboxHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    saver: Option<(watch::Sender<bool>, JoinHandle<()>)>,
    world_file: Option<PathBuf>,
    /// Sends webhook deliveries; aborted with the server.
    dispatcher: JoinHandle<()>,
}

impl SandboxHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn inspect(&self) -> Inspection {
        self.shared.inspect()
    }

    /// Raise the master balance to `target` if it is below it, as an operator's deposit (a world
    /// loaded from its file keeps its own balance otherwise). Returns what was paid in. Saved
    /// with the world's next save, like any change.
    pub fn deposit_up_to(&self, target: Decimal) -> Decimal {
        self.shared.deposit_up_to(target)
    }

    /// Close a card at the provider, as `POST /__sandbox/close` does. `false` if no such card.
    pub fn close_card(&self, card_id: &str) -> bool {
        self.shared.close_card(card_id)
    }

    /// What `cardform sandbox` prints at start: where it listens, the credentials (printing them
    /// is the point: this is a sandbox) and the environment lines for another shell.
    pub fn banner(&self, config: &SandboxConfig) -> String {
        let url = self.base_url();
        let mut faults = Vec::new();
        if let Some(r) = config.rate_limit.filter(|r| *r > 0) {
            faults.push(format!(
                "rate limit {r}/s ({})",
                config.rate_limit_shape.describe()
            ));
        }
        for (name, v) in [
            ("fail rate", config.fail_rate),
            ("error rate", config.error_rate),
            ("drop rate", config.drop_rate),
        ] {
            if v > 0.0 {
                faults.push(format!("{name} {v}"));
            }
        }
        if config.same_card_for_every_order {
            faults.push("hostile: every issue order names the first card".to_owned());
        }
        if config.completed_without_card_id {
            faults.push("hostile: issue orders complete without a card id".to_owned());
        }
        if let Some(m) = config.charge_multiplier {
            faults.push(format!("hostile: orders charge {m} × their fee"));
        }
        faults.extend(config.webhooks.describe());
        if config.completed_at != CompletedAt::Precise {
            faults.push(format!("completed_at {:?}", config.completed_at));
        }
        for (from, l) in &config.latency_schedule {
            faults.push(format!("order latency {l:?} from {from:?}"));
        }
        let balance = self.inspect().balance;
        let mut out = format!(
            "cardform sandbox listening on {url}\n\
             \x20 api key:        {key}\n\
             \x20 api secret:     {secret}\n\
             \x20 master balance: {balance} USDT\n\
             \x20 order latency:  {latency:?}\n\
             \x20 kyc latency:    {kyc:?}{people}\n\
             \x20 faults:         {faults}\n\
             \x20 inspect:        GET {url}{INSPECT_PATH}\n\
             \x20 close a card:   POST {url}{CLOSE_PATH} {{\"card_id\": \"...\"}}\n",
            key = config.api_key,
            secret = config.api_secret.expose(),
            latency = config.order_latency,
            kyc = config.kyc_latency,
            people = if config.require_people {
                " (people mode: users and cardholders must be created first)"
            } else {
                ""
            },
            faults = if faults.is_empty() {
                "none".to_owned()
            } else {
                faults.join(", ")
            },
        );
        if let Some(p) = &self.world_file {
            out.push_str(&format!("  world file:     {}\n", p.display()));
        }
        out.push_str(&format!(
            "\nexport CARDFORM_API_URL={url}\nexport CARDFORM_API_KEY={}\nexport CARDFORM_API_SECRET={}\n",
            config.api_key,
            config.api_secret.expose()
        ));
        out
    }

    /// Stop accepting, let open requests finish (up to a grace period), then save the world file.
    pub async fn shutdown(mut self) {
        self.dispatcher.abort();
        self.stop_server().await;
        if let Some((tx, task)) = self.saver.take() {
            let _ = tx.send(true);
            let _ = task.await;
        }
        if let Some(path) = &self.world_file
            && let Err(e) = save_world(&self.shared, path, true)
        {
            eprintln!("sandbox: could not save world file {}: {e}", path.display());
        }
    }

    async fn stop_server(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        self.dispatcher.abort();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some((tx, _)) = self.saver.take() {
            let _ = tx.send(true);
        }
    }
}

/// Start the sandbox on `config.listen` and return once it accepts connections.
pub async fn spawn(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
    for (name, v) in [
        ("fail_rate", config.fail_rate),
        ("error_rate", config.error_rate),
        ("drop_rate", config.drop_rate),
        ("webhook drop rate", config.webhooks.drop_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(SandboxError::InvalidConfig(format!(
                "{name} must be between 0 and 1, got {v}"
            )));
        }
    }
    if config.balance < Decimal::ZERO {
        return Err(SandboxError::InvalidConfig(
            "the starting balance cannot be negative".to_owned(),
        ));
    }
    let world = match &config.world_file {
        Some(path) if path.exists() => load_world(path, config.seed)?,
        _ => World::new(config.balance, config.seed),
    };
    let settings = Settings {
        api_key: config.api_key.clone(),
        key: Key::from_secret(&config.api_secret),
        latency_us: micros(config.order_latency),
        latency_schedule: config
            .latency_schedule
            .iter()
            .map(|&(from, l)| (micros(from), micros(l)))
            .collect(),
        schedule_origin: std::sync::OnceLock::new(),
        completed_at: config.completed_at,
        rate_limit: config.rate_limit,
        rate_limit_shape: config.rate_limit_shape,
        fail_rate: config.fail_rate,
        error_rate: config.error_rate,
        drop_rate: config.drop_rate,
        not_ready: config
            .not_ready_users
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        unknown: config.unknown_users.iter().cloned().collect::<HashSet<_>>(),
        kyc_latency_us: u64::try_from(config.kyc_latency.as_micros()).unwrap_or(u64::MAX / 4),
        kyc_reject: config
            .kyc_rejected_users
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        kyc_expire: config
            .kyc_expired_users
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        require_people: config.require_people,
        fail_products: config.fail_products.iter().cloned().collect::<HashSet<_>>(),
        fail_topup_products: config
            .fail_topup_products
            .iter()
            .cloned()
            .collect::<HashSet<_>>(),
        refund: config.refund,
        same_card_for_every_order: config.same_card_for_every_order,
        completed_without_card_id: config.completed_without_card_id,
        charge_multiplier: config.charge_multiplier,
    };
    let shared = Arc::new(Shared {
        settings,
        clock: config.clock.clone(),
        world: Mutex::new(world),
        durable: config.world_file.clone().filter(|_| config.durable),
        saving: Mutex::new(()),
        hooks: webhooks::Dispatcher::new(config.webhooks.clone(), config.seed),
    });

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SandboxError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| SandboxError::Bind {
        addr: config.listen,
        source,
    })?;

    let router = Router::new()
        .route("/api/v1/{*path}", post(api))
        .route(INSPECT_PATH, get(inspect))
        .route(CLOSE_PATH, post(close))
        .fallback(not_found)
        .with_state(shared.clone());
    let (stop_tx, stop_rx) = oneshot::channel();
    let server = tokio::spawn(serve(listener, router, stop_rx));

    let saver = config.world_file.clone().map(|path| {
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(save_periodically(shared.clone(), path, rx));
        (tx, task)
    });

    let dispatcher = tokio::spawn(webhooks::run(shared.clone()));
    Ok(SandboxHandle {
        dispatcher,
        addr,
        shared,
        stop: Some(stop_tx),
        server: Some(server),
        saver,
        world_file: config.world_file,
    })
}

/// The connection's remote address, handed to handlers that only loopback peers may call.
#[derive(Clone, Copy)]
struct Peer(SocketAddr);

/// Marks a response whose connection must be closed instead of answered.
#[derive(Clone, Copy)]
struct DropConnection;

#[derive(Debug, thiserror::Error)]
#[error("sandbox: connection dropped on purpose (--drop-rate)")]
struct Dropped;

/// Serve connections with hyper directly: axum's own server cannot close a connection without
/// answering, and the lost-response fault needs exactly that. A service error makes hyper drop the
/// connection with no response.
async fn serve(listener: tokio::net::TcpListener, router: Router, mut stop: oneshot::Receiver<()>) {
    let graceful = GracefulShutdown::new();
    let http = hyper::server::conn::http1::Builder::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(_) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok().map(Peer);
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let router = router.clone();
            async move {
                let mut req = req.map(Body::new);
                if let Some(peer) = peer {
                    req.extensions_mut().insert(peer);
                }
                let resp = match router.oneshot(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                };
                if resp.extensions().get::<DropConnection>().is_some() {
                    Err(Dropped)
                } else {
                    Ok(resp)
                }
            }
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
}

async fn api(
    State(shared): State<Arc<Shared>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let reply = {
        let now = shared.clock.now_micros();
        shared.world().handle(
            &shared.settings,
            now,
            &path,
            header("API-KEY"),
            header("Idempotency-Key"),
            &body,
        )
    };
    if let Some(path) = shared.durable.clone() {
        // Written before the client hears of it: a kill after this point loses nothing.
        let saver = shared.clone();
        let saved = tokio::task::spawn_blocking(move || save_world(&saver, &path, false)).await;
        if !matches!(saved, Ok(Ok(()))) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "sandbox: could not save the world before answering",
            )
                .into_response();
        }
    }
    render(&shared.settings.key, reply)
}

fn render(key: &Key, reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match (&reply.payload, reply.plain) {
        (Payload::Success(data), _) => encode_success(key, data).map_err(|e| e.to_string()),
        (Payload::Error(e), true) => serde_json::to_vec(e).map_err(|e| e.to_string()),
        (Payload::Error(e), false) => encode_error(key, e).map_err(|e| e.to_string()),
    };
    let mut resp = match body {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            Body::from(bytes),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("sandbox: cannot encode the response: {e}"),
        )
            .into_response(),
    };
    if let Some(secs) = reply.retry_after {
        resp.headers_mut().insert(
            crate::wire::assumed::RETRY_AFTER_HEADER,
            HeaderValue::from(secs),
        );
    }
    if reply.drop {
        resp.extensions_mut().insert(DropConnection);
    }
    resp
}

async fn inspect(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.inspect()).into_response()
}

#[derive(Deserialize)]
struct CloseRequest {
    card_id: String,
}

async fn close(
    State(shared): State<Arc<Shared>>,
    peer: Option<axum::Extension<Peer>>,
    body: Bytes,
) -> Response {
    use crate::wire::error::slug;
    let plain = |status: StatusCode, slug: &str, message: String| {
        (
            status,
            axum::Json(crate::wire::ErrorBody::new(slug, message)),
        )
            .into_response()
    };
    // An unknown peer is refused too: this endpoint changes the world and has no authentication.
    if !peer.is_some_and(|axum::Extension(Peer(a))| a.ip().is_loopback()) {
        return plain(
            StatusCode::FORBIDDEN,
            slug::INVALID_REQUEST,
            format!("{CLOSE_PATH} is only served to loopback clients"),
        );
    }
    let req: CloseRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                slug::INVALID_REQUEST,
                format!("expected {{\"card_id\": \"...\"}}: {e}"),
            );
        }
    };
    if shared.close_card(&req.card_id) {
        axum::Json(serde_json::json!({"card_id": req.card_id, "status": "closed"})).into_response()
    } else {
        plain(
            StatusCode::NOT_FOUND,
            slug::CARD_NOT_FOUND,
            format!("no card {}", req.card_id),
        )
    }
}

async fn not_found() -> Response {
    let body = crate::wire::ErrorBody::new(
        crate::wire::error::slug::INVALID_REQUEST,
        "not found: the provider API is POST /api/v1/<path>",
    );
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

// ---------------------------------------------------------------------- world file

fn load_world(path: &Path, seed: u64) -> Result<World, SandboxError> {
    let bytes = std::fs::read(path).map_err(|source| SandboxError::ReadWorld {
        path: path.to_owned(),
        source,
    })?;
    World::from_json(&bytes, seed).map_err(|e| SandboxError::BadWorld {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Write the world atomically (temp file + rename), readable by the owner only: it holds test
/// PANs and CVVs. Unless `force`, only when something changed since the last save.
fn save_world(shared: &Shared, path: &Path, force: bool) -> std::io::Result<()> {
    let _one_at_a_time = shared.saving.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = {
        let mut w = shared.world();
        w.advance(shared.clock.now_micros());
        if !w.take_dirty() && !force {
            return Ok(());
        }
        w.to_json().map_err(std::io::Error::other)?
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

async fn save_periodically(shared: Arc<Shared>, path: PathBuf, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SAVE_INTERVAL) => {}
            _ = stop.changed() => return,
        }
        let (shared, path) = (shared.clone(), path.clone());
        let result = tokio::task::spawn_blocking(move || save_world(&shared, &path, false)).await;
        if let Ok(Err(e)) = result {
            eprintln!("sandbox: could not save the world file: {e}");
        }
    }
}

/// A duration in the world's unit, µs (saturating far beyond any sensible latency).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 4)
}
