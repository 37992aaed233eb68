//! The sandbox's world and the provider's rules: balance, orders, cards, users, idempotency
//! records, replay protection, fault injection, counters. Every API request is decided here, in one
//! synchronous call under the world's lock, from the raw headers and body to a [`Reply`].
//!
//! It must not do I/O or look at the wall clock: "now" is passed in (from `wire::Clock`), and
//! randomness comes from the seeded RNG it owns. Encryption of the reply is left to the caller.
//!
//! This file owns the [`World`] itself, its public API and the request path (authentication,
//! fault injection, dispatch to an endpoint); the rules of each part of the world live in the
//! submodules: [`orders`], [`cards`], [`users`], [`money`], [`admission`] (rate limit, replay,
//! idempotency), [`rate_limit`] (the shapes of the rate limit), [`persist`] (the world file) and [`inspect`].

mod admission;
mod cards;
mod hooks;
mod inspect;
mod money;
mod orders;
mod persist;
mod rate_limit;
mod users;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::catalog::{self, ProductDef};
use super::{Inspection, IssueOrderCount, PersonCount};
use crate::wire::assumed;
use crate::wire::error::slug;
use crate::wire::{Balance, Endpoint, Envelope, ErrorBody, Key, KycStatus, ProductList, User};
use admission::IdemRec;
use cards::{CardRec, card_id, card_view};
use money::money;
use orders::{Kind, OrderRec};
use persist::WORLD_FORMAT;
use users::HolderRec;

pub use cards::luhn_valid;
pub(crate) use hooks::EndedOrder;
pub use money::RefundPolicy;
pub use rate_limit::RateLimitShape;
use rate_limit::RateWindow;

/// What orders say of when they ended (`completed_at`/`failed_at`, optional in the reference).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CompletedAt {
    /// The real time (the default).
    #[default]
    Precise,
    /// Never sent.
    Omitted,
    /// The time of the first read that saw the order ended, not the real end.
    OnRead,
    /// The real time, truncated to whole seconds.
    Seconds,
}

impl Settings {
    /// The latency of an order created at `now`: the schedule's step in force, counted from
    /// the first order, or the fixed latency.
    pub fn latency_at(&self, now: u64) -> u64 {
        if self.latency_schedule.is_empty() {
            return self.latency_us;
        }
        let t = now.saturating_sub(*self.schedule_origin.get_or_init(|| now));
        self.latency_schedule
            .iter()
            .rev()
            .find(|(from, _)| *from <= t)
            .map_or(self.latency_us, |(_, l)| *l)
    }
}

/// What the sandbox was told at start; fixed for its lifetime.
pub(crate) struct Settings {
    pub api_key: String,
    pub key: Key,
    pub latency_us: u64,
    /// Order latency changing during the run: (from, latency) in µs, from the first order on.
    pub latency_schedule: Vec<(u64, u64)>,
    /// When the first order was created: where the schedule's offsets count from.
    pub schedule_origin: std::sync::OnceLock<u64>,
    /// What orders say of when they ended.
    pub completed_at: CompletedAt,
    pub rate_limit: Option<u32>,
    pub rate_limit_shape: RateLimitShape,
    pub fail_rate: f64,
    pub error_rate: f64,
    pub drop_rate: f64,
    pub not_ready: HashSet<String>,
    pub unknown: HashSet<String>,
    /// How long a new cardholder's KYC stays pending.
    pub kyc_latency_us: u64,
    /// Whose KYC ends rejected.
    pub kyc_reject: HashSet<String>,
    /// Whose KYC ends expired.
    pub kyc_expire: HashSet<String>,
    /// People mode: nobody is known until created through users/create and cardholders/create.
    pub require_people: bool,
    pub fail_products: HashSet<String>,
    /// Products whose top-ups all end failed.
    pub fail_topup_products: HashSet<String>,
    /// What a failed order gives back.
    pub refund: RefundPolicy,
    /// Hostile: every issue order, once issued, names the first card id this world ever issued.
    pub same_card_for_every_order: bool,
    /// Hostile: issue orders complete without a `card_id`.
    pub completed_without_card_id: bool,
    /// Hostile: issue and top-up orders charge their fee times this (negative: a credit), so
    /// `balance_before − balance_after` differs from the fee the product publishes.
    pub charge_multiplier: Option<Decimal>,
}

/// The decided answer to one request; the HTTP layer encrypts it unless `plain`.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub payload: Payload,
    /// Failures before authentication travel in plain JSON (REFERENCE.md §2).
    pub plain: bool,
    pub retry_after: Option<u64>,
    /// Close the connection without any response (the lost-response fault).
    pub drop: bool,
}

#[derive(Debug)]
pub(crate) enum Payload {
    Success(Value),
    Error(ErrorBody),
}

impl Reply {
    fn ok(data: Value) -> Self {
        Reply {
            status: 200,
            payload: Payload::Success(data),
            plain: false,
            retry_after: None,
            drop: false,
        }
    }

    fn error(e: ApiError) -> Self {
        let mut body = ErrorBody::new(e.slug, e.message);
        body.kyc_status = e.kyc_status;
        Reply {
            status: e.status,
            payload: Payload::Error(body),
            plain: false,
            retry_after: None,
            drop: false,
        }
    }

    fn plain_error(e: ApiError) -> Self {
        Reply {
            plain: true,
            ..Reply::error(e)
        }
    }
}

#[derive(Debug)]
pub(crate) struct ApiError {
    status: u16,
    slug: &'static str,
    message: String,
    /// Only on `cardholder_not_ready` [assumed]: see `assumed::KYC_STATUS_ERROR_FIELD`.
    kyc_status: Option<KycStatus>,
}

fn err(slug: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: status_for(slug),
        slug,
        message: message.into(),
        kyc_status: None,
    }
}

/// The sandbox's HTTP status per slug. The reference only asks for "semantically correct" codes,
/// so clients must go by the slug; these are the sandbox's own choices.
fn status_for(s: &str) -> u16 {
    match s {
        slug::PROJECT_NOT_FOUND => 401,
        slug::CARD_NOT_FOUND | slug::ORDER_NOT_FOUND | slug::USER_NOT_FOUND => 404,
        slug::IDEMPOTENCY_KEY_CONFLICT
        | slug::EXTERNAL_USER_ID_EXISTS
        | slug::CARDHOLDER_ALREADY_EXISTS => 409,
        slug::RATE_LIMITED => 429,
        _ => 400,
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counters {
    rate_limited: u64,
    dropped: u64,
    injected_errors: u64,
    idempotent_replays: u64,
}

/// Everything the provider remembers. Serialized as the world file.
#[derive(Serialize, Deserialize)]
pub(crate) struct World {
    format: u32,
    balance: Decimal,
    total_charged: Decimal,
    total_refunded: Decimal,
    /// Paid in by the operator (`deposit_up_to`), not by any order: kept apart from the charges
    /// and refunds so the ledger still says what cardform's orders did.
    #[serde(default)]
    total_deposited: Decimal,
    next_id: u64,
    /// Drawn from the OS when the world is made: mixed into every id, so two worlds (a sandbox
    /// whose world was lost, a second sandbox) never hand out the same order or card id.
    #[serde(default = "persist::fresh_epoch")]
    epoch: u32,
    orders: HashMap<String, OrderRec>,
    cards: HashMap<String, CardRec>,
    /// The card id of the first issue order ever created (see `same_card_for_every_order`).
    #[serde(default)]
    first_card: Option<String>,
    users: HashMap<String, User>,
    /// external_user_id → subprovider_code → its one cardholder there.
    cardholders: BTreeMap<String, BTreeMap<String, HolderRec>>,
    idempotency: HashMap<String, IdemRec>,
    /// Keys in the order they were stored, for expiry.
    idempotency_queue: VecDeque<(u64, String)>,
    calls: BTreeMap<String, u64>,
    counters: Counters,
    /// Webhook subscriptions: id → URL (see [`hooks`]).
    #[serde(default)]
    subscriptions: BTreeMap<String, String>,
    /// Orders that reached a terminal status since the webhook dispatcher last looked, while
    /// someone was subscribed (no backfill: nothing is queued for nobody).
    #[serde(skip)]
    ended: Vec<String>,
    /// Replay protection only needs the last minute; a restarted sandbox starts it afresh.
    #[serde(skip)]
    seen: BTreeSet<u64>,
    #[serde(skip, default = "persist::fresh_rng")]
    rng: StdRng,
    #[serde(skip)]
    events: BinaryHeap<Reverse<(u64, String)>>,
    #[serde(skip)]
    rate_window: Option<RateWindow>,
    #[serde(skip)]
    dirty: bool,
}

impl World {
    pub fn new(balance: Decimal, seed: u64) -> Self {
        World {
            format: WORLD_FORMAT,
            balance: money(balance),
            total_charged: Decimal::new(0, 2),
            total_refunded: Decimal::new(0, 2),
            total_deposited: Decimal::new(0, 2),
            next_id: 0,
            epoch: persist::fresh_epoch(),
            orders: HashMap::new(),
            cards: HashMap::new(),
            first_card: None,
            users: HashMap::new(),
            cardholders: BTreeMap::new(),
            idempotency: HashMap::new(),
            idempotency_queue: VecDeque::new(),
            calls: BTreeMap::new(),
            counters: Counters::default(),
            subscriptions: BTreeMap::new(),
            ended: Vec::new(),
            seen: BTreeSet::new(),
            rng: StdRng::seed_from_u64(seed),
            events: BinaryHeap::new(),
            rate_window: None,
            dirty: true,
        }
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        let salt: u32 = self.rng.random::<u32>() ^ self.epoch;
        format!("{prefix}_{:06}{salt:08x}", self.next_id)
    }

    /// Decide one `POST /api/v1/<path>` request, counting it first, whatever happens to it.
    pub fn handle(
        &mut self,
        s: &Settings,
        now: u64,
        path: &str,
        api_key: Option<&str>,
        idempotency_key: Option<&str>,
        body: &[u8],
    ) -> Reply {
        self.advance(now);
        let endpoint = Endpoint::from_path(path);
        let counted = endpoint.map_or("(unknown)", Endpoint::path);
        *self.calls.entry(counted.to_owned()).or_default() += 1;

        if let Some(rate) = s.rate_limit.filter(|r| *r > 0)
            && let Err(wait) = self.admit(now, rate, s.rate_limit_shape)
        {
            self.counters.rate_limited += 1;
            return Reply {
                retry_after: Some(wait),
                ..Reply::plain_error(err(
                    slug::RATE_LIMITED,
                    format!(
                        "rate limit of {rate} requests/s ({}) exceeded; retry after {wait} s",
                        s.rate_limit_shape.describe()
                    ),
                ))
            };
        }
        if s.error_rate > 0.0 && self.rng.random::<f64>() < s.error_rate {
            self.counters.injected_errors += 1;
            let status = if self.rng.random::<bool>() { 500 } else { 503 };
            return Reply {
                status,
                ..Reply::plain_error(err(
                    slug::PROVIDER_ERROR,
                    "sandbox: injected server error (--error-rate); nothing was done",
                ))
            };
        }
        let Some(endpoint) = endpoint else {
            return Reply {
                status: 404,
                ..Reply::plain_error(err(
                    slug::INVALID_REQUEST,
                    format!("unknown endpoint /api/v1/{path}"),
                ))
            };
        };
        if api_key != Some(s.api_key.as_str()) {
            return Reply::plain_error(err(
                slug::PROJECT_NOT_FOUND,
                "no project with this API-KEY",
            ));
        }
        let Some(plaintext) = serde_json::from_slice::<Envelope>(body)
            .ok()
            .and_then(|env| s.key.open(&env.encrypted).ok())
        else {
            return Reply::plain_error(err(
                slug::INVALID_REQUEST,
                "could not decrypt request body: check CARDFORM_API_SECRET",
            ));
        };
        match self.authenticated(s, now, endpoint, idempotency_key, &plaintext) {
            Ok(reply) => reply,
            Err(e) => Reply::error(e),
        }
    }

    fn authenticated(
        &mut self,
        s: &Settings,
        now: u64,
        endpoint: Endpoint,
        idempotency_key: Option<&str>,
        plaintext: &[u8],
    ) -> Result<Reply, ApiError> {
        let mut fields = match serde_json::from_slice::<Value>(plaintext) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(err(
                    slug::INVALID_REQUEST,
                    "the decrypted request body must be a JSON object",
                ));
            }
        };
        let ts = fields
            .remove(crate::wire::body::TIMESTAMP_FIELD)
            .and_then(|v| v.as_u64())
            .ok_or_else(|| {
                err(
                    slug::INVALID_REQUEST,
                    "request_timestamp is missing or not an integer (microseconds since the Unix epoch)",
                )
            })?;
        self.check_timestamp(now, ts)?;

        // Mutations require a key; the two creates honour one when it is sent [assumed].
        let honours_key = endpoint.is_mutation()
            || matches!(
                endpoint,
                Endpoint::UsersCreate | Endpoint::CardholdersCreate
            );
        if !honours_key {
            return self.dispatch(s, now, endpoint, &fields).map(Reply::ok);
        }
        let key = idempotency_key.map(str::trim).filter(|k| !k.is_empty());
        if key.is_none() && endpoint.is_mutation() {
            return Err(err(
                slug::IDEMPOTENCY_KEY_REQUIRED,
                format!("{} requires an Idempotency-Key header", endpoint.path()),
            ));
        }
        if key.is_some_and(|k| k.len() > 255) {
            return Err(err(
                slug::INVALID_REQUEST,
                "Idempotency-Key is longer than 255 characters",
            ));
        }
        let fields_value = request_fingerprint(endpoint, &fields);
        if let Some(key) = key
            && let Some(rec) = self.idempotency.get(key)
        {
            if rec.created + assumed::IDEMPOTENCY_KEY_TTL_SECS * 1_000_000 >= now {
                if rec.endpoint == endpoint.path() && rec.fields == fields_value {
                    self.counters.idempotent_replays += 1;
                    return Ok(Reply::ok(rec.response.clone()));
                }
                return Err(err(
                    slug::IDEMPOTENCY_KEY_CONFLICT,
                    "this Idempotency-Key was already used with a different request",
                ));
            }
            self.idempotency.remove(key);
        }
        // A refusal returns here: only an answer that did something binds the key
        // (`assumed::IDEMPOTENCY_STORES_ERRORS`).
        let response = self.dispatch(s, now, endpoint, &fields)?;
        if let Some(key) = key {
            self.remember_key(now, key, endpoint, fields_value, response.clone());
        }
        let mut reply = Reply::ok(response);
        let droppable = matches!(
            endpoint,
            Endpoint::CardsCreate | Endpoint::UsersCreate | Endpoint::CardholdersCreate
        );
        if droppable && s.drop_rate > 0.0 && self.rng.random::<f64>() < s.drop_rate {
            self.counters.dropped += 1;
            reply.drop = true;
        }
        Ok(reply)
    }

    fn dispatch(
        &mut self,
        s: &Settings,
        now: u64,
        endpoint: Endpoint,
        f: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        match endpoint {
            Endpoint::Products => to_value(&ProductList {
                products: catalog::products()
                    .iter()
                    .map(ProductDef::published)
                    .collect(),
            }),
            Endpoint::Balance => to_value(&Balance {
                available: self.balance,
                currency: "usdt".to_owned(),
            }),
            Endpoint::UsersCreate => self.create_user(now, f),
            Endpoint::CardholdersCreate => self.create_cardholder(s, now, f),
            Endpoint::CardsCreate => self.create_card(s, now, f),
            Endpoint::OrdersCheck => {
                let id = text(f, assumed::ORDER_CHECK_FIELD).ok_or_else(|| {
                    err(
                        slug::INVALID_REQUEST,
                        format!("{} is required", assumed::ORDER_CHECK_FIELD),
                    )
                })?;
                self.read_order(s, &id, now)
            }
            Endpoint::CardsGet => {
                let id = card_id(f)?;
                let c = self.card(&id)?;
                to_value(&card_view(c))
            }
            Endpoint::CardsTopup => self.topup(s, now, f),
            Endpoint::CardsFreeze => self.change_status(s, now, f, Kind::Freeze),
            Endpoint::CardsUnfreeze => self.change_status(s, now, f, Kind::Unfreeze),
            Endpoint::WhSubscribe | Endpoint::WhUnsubscribe | Endpoint::WhSubscriptions => {
                self.subscriptions_call(endpoint, f)
            }
        }
    }
}

// ---------------------------------------------------------------------- helpers
// Here rather than in a submodule: every endpoint handler, whatever its seam, needs them.

/// What an idempotency record compares a retry against: the request's fields, except for
/// `cardholders/create`, whose personal fields are kept only as a SHA-256 of their canonical
/// JSON (keys sorted), so the world file holds no personal data.
fn request_fingerprint(endpoint: Endpoint, fields: &Map<String, Value>) -> Value {
    if endpoint != Endpoint::CardholdersCreate {
        return Value::Object(fields.clone());
    }
    let sorted: BTreeMap<&String, &Value> = fields.iter().collect();
    let canonical = serde_json::to_vec(&sorted).unwrap_or_default();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&canonical);
    serde_json::json!({ "sha256": hex::encode(digest) })
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| err(slug::PROVIDER_ERROR, e.to_string()))
}

fn iso(micros: u64) -> String {
    jiff::Timestamp::from_microsecond(micros as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A non-empty text field; numbers are taken as their text (ids are sometimes sent as numbers).
fn text(f: &Map<String, Value>, name: &str) -> Option<String> {
    match f.get(name)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
