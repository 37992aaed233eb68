//! The sandbox's world and the provider's rules: balance, orders, cards, users, idempotency
//! records, replay protection, fault injection, counters. Every API request is decided here, in one
//! synchronous call under the world's lock, from the raw headers and body to a [`Reply`].
//!
//! It must not do I/O or look at the wall clock: "now" is passed in (from `wire::Clock`), and
//! randomness comes from the seeded RNG it owns. Encryption of the reply is left to the caller.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::catalog::{self, ProductDef};
use super::{Inspection, IssueOrderCount};
use crate::wire::assumed::{self, round_money};
use crate::wire::error::slug;
use crate::wire::{
    Balance, Card, CardStatus, Cardholder, Endpoint, Envelope, ErrorBody, IssueStatus, Key,
    KycLevel, KycStatus, Order, OrderStatus, OrderType, ProductList, RegistrationStatus, Sensitive,
    TopupStatus, User,
};

/// What the sandbox was told at start; fixed for its lifetime.
pub(crate) struct Settings {
    pub api_key: String,
    pub key: Key,
    pub latency_us: u64,
    pub rate_limit: Option<u32>,
    pub fail_rate: f64,
    pub error_rate: f64,
    pub drop_rate: f64,
    pub not_ready: HashSet<String>,
    pub unknown: HashSet<String>,
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
        Reply {
            status: e.status,
            payload: Payload::Error(ErrorBody::new(e.slug, e.message)),
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
}

fn err(slug: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status: status_for(slug),
        slug,
        message: message.into(),
    }
}

/// The sandbox's HTTP status per slug. The reference only asks for "semantically correct" codes,
/// so clients must go by the slug; these are the sandbox's own choices.
fn status_for(s: &str) -> u16 {
    match s {
        slug::PROJECT_NOT_FOUND => 401,
        slug::CARD_NOT_FOUND | slug::ORDER_NOT_FOUND => 404,
        slug::IDEMPOTENCY_KEY_CONFLICT | slug::EXTERNAL_USER_ID_EXISTS => 409,
        slug::RATE_LIMITED => 429,
        _ => 400,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Issue,
    Topup,
    Freeze,
    Unfreeze,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Failure {
    slug: String,
    message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderRec {
    id: String,
    kind: Kind,
    created: u64,
    latency: u64,
    /// For an issue order: the id the card will get once created (hidden until then).
    card_id: String,
    external_user_id: String,
    product_code: String,
    amount: Option<Decimal>,
    charge: Decimal,
    balance_before: Decimal,
    balance_after: Decimal,
    /// Decided at creation (seeded RNG), revealed when the card would have been created.
    fail: Option<Failure>,
    /// How many of the order's timed side effects have been applied.
    stage: u8,
}

impl OrderRec {
    /// When the next side effect is due, if any is left.
    fn next_event(&self) -> Option<u64> {
        match (self.kind, self.stage) {
            (Kind::Issue, 0) => Some(self.created + self.latency / 3),
            (Kind::Issue, 1) if self.fail.is_none() => Some(self.created + self.latency),
            (Kind::Topup | Kind::Freeze | Kind::Unfreeze, 0) => Some(self.created + self.latency),
            _ => None,
        }
    }

    fn is_open(&self) -> bool {
        self.next_event().is_some()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CardRec {
    card_id: String,
    external_user_id: String,
    product_code: String,
    currency: String,
    balance: Decimal,
    status: CardStatus,
    status_before_freeze: Option<CardStatus>,
    pan: String,
    cvv: String,
    expiry_month: u32,
    expiry_year: i32,
    issue_completed: bool,
    /// A freeze/unfreeze order in flight; a second one is refused until it completes.
    pending_change: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct IdemRec {
    endpoint: String,
    fields: Value,
    response: Value,
    created: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counters {
    rate_limited: u64,
    dropped: u64,
    injected_errors: u64,
    idempotent_replays: u64,
}

/// A token bucket of `rate` tokens per second and a burst of one second's worth.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: u64,
}

const WORLD_FORMAT: u32 = 1;

fn fresh_rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// Everything the provider remembers. Serialized as the world file.
#[derive(Serialize, Deserialize)]
pub(crate) struct World {
    format: u32,
    balance: Decimal,
    total_charged: Decimal,
    total_refunded: Decimal,
    next_id: u64,
    orders: HashMap<String, OrderRec>,
    cards: HashMap<String, CardRec>,
    users: HashMap<String, User>,
    cardholders: HashMap<String, Cardholder>,
    idempotency: HashMap<String, IdemRec>,
    /// Keys in the order they were stored, for expiry.
    idempotency_queue: VecDeque<(u64, String)>,
    calls: BTreeMap<String, u64>,
    counters: Counters,
    /// Replay protection only needs the last minute; a restarted sandbox starts it afresh.
    #[serde(skip)]
    seen: BTreeSet<u64>,
    #[serde(skip, default = "fresh_rng")]
    rng: StdRng,
    #[serde(skip)]
    events: BinaryHeap<Reverse<(u64, String)>>,
    #[serde(skip)]
    bucket: Option<Bucket>,
    #[serde(skip)]
    dirty: bool,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("not a sandbox world file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("world file format {0} is not supported (this build reads format {WORLD_FORMAT})")]
    Format(u32),
}

impl World {
    pub fn new(balance: Decimal, seed: u64) -> Self {
        World {
            format: WORLD_FORMAT,
            balance: money(balance),
            total_charged: Decimal::new(0, 2),
            total_refunded: Decimal::new(0, 2),
            next_id: 0,
            orders: HashMap::new(),
            cards: HashMap::new(),
            users: HashMap::new(),
            cardholders: HashMap::new(),
            idempotency: HashMap::new(),
            idempotency_queue: VecDeque::new(),
            calls: BTreeMap::new(),
            counters: Counters::default(),
            seen: BTreeSet::new(),
            rng: StdRng::seed_from_u64(seed),
            events: BinaryHeap::new(),
            bucket: None,
            dirty: true,
        }
    }

    /// A world saved by [`World::to_json`]. The RNG is re-seeded past what the saved world used,
    /// so a reloaded sandbox does not repeat its fault pattern from the start.
    pub fn from_json(bytes: &[u8], seed: u64) -> Result<Self, LoadError> {
        let mut w: World = serde_json::from_slice(bytes)?;
        if w.format != WORLD_FORMAT {
            return Err(LoadError::Format(w.format));
        }
        w.rng = StdRng::seed_from_u64(seed ^ w.next_id.rotate_left(32));
        let due: Vec<(u64, String)> = w
            .orders
            .values()
            .filter_map(|o| o.next_event().map(|t| (t, o.id.clone())))
            .collect();
        w.events.extend(due.into_iter().map(Reverse));
        w.dirty = false;
        Ok(w)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Whether something worth saving changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    // ------------------------------------------------------------------ time

    /// Apply every side effect due by `now` (cards created, statuses changed, refunds), in the
    /// order they fall due. Orders are otherwise computed lazily from their creation time.
    pub fn advance(&mut self, now: u64) {
        while let Some(Reverse((t, _))) = self.events.peek() {
            if *t > now {
                break;
            }
            let Some(Reverse((_, id))) = self.events.pop() else {
                break;
            };
            self.apply_next_stage(&id);
            if let Some(next) = self.orders.get(&id).and_then(OrderRec::next_event) {
                self.events.push(Reverse((next, id)));
            }
        }
    }

    fn apply_next_stage(&mut self, id: &str) {
        let Some(o) = self.orders.get_mut(id) else {
            return;
        };
        let (kind, stage) = (o.kind, o.stage);
        o.stage += 1;
        let o = o.clone();
        self.dirty = true;
        match (kind, stage) {
            (Kind::Issue, 0) => match &o.fail {
                Some(_) => {
                    if assumed::FAILED_ISSUE_ORDER_REFUNDED {
                        self.balance += o.charge;
                        self.total_refunded += o.charge;
                    }
                }
                None => {
                    let card = self.new_card(&o);
                    self.cards.insert(card.card_id.clone(), card);
                }
            },
            (Kind::Issue, _) => {
                if let Some(c) = self.cards.get_mut(&o.card_id) {
                    c.issue_completed = true;
                    c.balance += o.amount.unwrap_or_default();
                    // Closing is final, even when the issue order finishes after it.
                    if c.status != CardStatus::Closed {
                        c.status = match o.amount {
                            Some(_) => CardStatus::Active,
                            None => CardStatus::WaitForTopupActivationByUser,
                        };
                    }
                }
            }
            (Kind::Topup, _) => {
                if let Some(c) = self.cards.get_mut(&o.card_id) {
                    c.balance += o.amount.unwrap_or_default();
                    if c.status == CardStatus::WaitForTopupActivationByUser {
                        c.status = CardStatus::Active;
                    }
                }
            }
            (Kind::Freeze, _) => {
                if let Some(c) = self.cards.get_mut(&o.card_id) {
                    c.pending_change = None;
                    // A freeze accepted before the card was closed must not reopen it.
                    if c.status != CardStatus::Closed {
                        c.status_before_freeze = Some(c.status.clone());
                        c.status = CardStatus::Frozen;
                    }
                }
            }
            (Kind::Unfreeze, _) => {
                if let Some(c) = self.cards.get_mut(&o.card_id) {
                    c.pending_change = None;
                    if c.status != CardStatus::Closed {
                        c.status = c.status_before_freeze.take().unwrap_or(CardStatus::Active);
                    }
                }
            }
        }
    }

    fn new_card(&mut self, o: &OrderRec) -> CardRec {
        let mut digits: Vec<u8> = vec![4, 0, 0, 0, 0, 0];
        digits.extend((0..9).map(|_| self.rng.random_range(0..10u8)));
        digits.push(luhn_check_digit(&digits));
        let pan: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        let cvv = format!("{:03}", self.rng.random_range(0..1000u32));
        let year = jiff::Timestamp::from_microsecond(o.created as i64)
            .map(|t| jiff::tz::TimeZone::UTC.to_datetime(t).year() as i32)
            .unwrap_or(2025);
        let currency = catalog::by_code(&o.product_code)
            .map(|p| p.currency)
            .unwrap_or("usd");
        CardRec {
            card_id: o.card_id.clone(),
            external_user_id: o.external_user_id.clone(),
            product_code: o.product_code.clone(),
            currency: currency.to_owned(),
            balance: Decimal::new(0, 2),
            status: CardStatus::PendingActivation,
            status_before_freeze: None,
            pan,
            cvv,
            expiry_month: self.rng.random_range(1..=12),
            expiry_year: year + 3,
            issue_completed: false,
            pending_change: None,
        }
    }

    fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        let salt: u32 = self.rng.random();
        format!("{prefix}_{:06}{salt:08x}", self.next_id)
    }

    // ------------------------------------------------------------------ requests

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
            && let Err(wait) = self.take_token(now, rate)
        {
            self.counters.rate_limited += 1;
            return Reply {
                retry_after: Some(wait),
                ..Reply::plain_error(err(
                    slug::RATE_LIMITED,
                    format!("rate limit of {rate} requests/s exceeded; retry after {wait} s"),
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

    fn take_token(&mut self, now: u64, rate: u32) -> Result<(), u64> {
        let rate = f64::from(rate);
        let b = self.bucket.get_or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        let elapsed = now.saturating_sub(b.last) as f64 / 1e6;
        b.tokens = (b.tokens + elapsed * rate).min(rate);
        b.last = now.max(b.last);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - b.tokens) / rate).ceil() as u64).max(1))
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

        if !endpoint.is_mutation() {
            return self.dispatch(s, now, endpoint, &fields).map(Reply::ok);
        }
        let key = idempotency_key.map(str::trim).unwrap_or_default();
        if key.is_empty() {
            return Err(err(
                slug::IDEMPOTENCY_KEY_REQUIRED,
                format!("{} requires an Idempotency-Key header", endpoint.path()),
            ));
        }
        if key.len() > 255 {
            return Err(err(
                slug::INVALID_REQUEST,
                "Idempotency-Key is longer than 255 characters",
            ));
        }
        let fields_value = Value::Object(fields.clone());
        if let Some(rec) = self.idempotency.get(key) {
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
        let response = self.dispatch(s, now, endpoint, &fields)?;
        self.remember_key(now, key, endpoint, fields_value, response.clone());
        let mut reply = Reply::ok(response);
        if endpoint == Endpoint::CardsCreate
            && s.drop_rate > 0.0
            && self.rng.random::<f64>() < s.drop_rate
        {
            self.counters.dropped += 1;
            reply.drop = true;
        }
        Ok(reply)
    }

    fn check_timestamp(&mut self, now: u64, ts: u64) -> Result<(), ApiError> {
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

    fn remember_key(&mut self, now: u64, key: &str, e: Endpoint, fields: Value, response: Value) {
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
                let o = self
                    .orders
                    .get(&id)
                    .ok_or_else(|| err(slug::ORDER_NOT_FOUND, format!("no order {id}")))?;
                to_value(&self.order_view(o, now))
            }
            Endpoint::CardsGet => {
                let id = card_id(f)?;
                let c = self.card(&id)?;
                to_value(&card_view(c))
            }
            Endpoint::CardsTopup => self.topup(s, now, f),
            Endpoint::CardsFreeze => self.change_status(s, now, f, Kind::Freeze),
            Endpoint::CardsUnfreeze => self.change_status(s, now, f, Kind::Unfreeze),
        }
    }

    fn card(&self, id: &str) -> Result<&CardRec, ApiError> {
        self.cards
            .get(id)
            .ok_or_else(|| err(slug::CARD_NOT_FOUND, format!("no card {id}")))
    }

    fn is_known_user(&self, s: &Settings, uid: &str) -> bool {
        !s.unknown.contains(uid)
            || self.users.contains_key(uid)
            || self.cardholders.contains_key(uid)
    }

    fn create_user(&mut self, now: u64, f: &Map<String, Value>) -> Result<Value, ApiError> {
        let uid = user_id(f)?;
        if self.users.contains_key(&uid) {
            return Err(err(
                slug::EXTERNAL_USER_ID_EXISTS,
                format!("user {uid} already exists"),
            ));
        }
        let user = User {
            user_id: Some(self.new_id("usr")),
            external_user_id: uid.clone(),
            created_at: Some(iso(now)),
        };
        self.users.insert(uid, user.clone());
        self.dirty = true;
        to_value(&user)
    }

    fn create_cardholder(
        &mut self,
        s: &Settings,
        now: u64,
        f: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let uid = user_id(f)?;
        let required = |name: &str| {
            text(f, name).ok_or_else(|| err(slug::INVALID_REQUEST, format!("{name} is required")))
        };
        let subprovider = required("subprovider_code")?;
        required("first_name")?;
        required("last_name")?;
        let birth = required("birth_date")?;
        if jiff::civil::Date::strptime("%Y-%m-%d", &birth).is_err() || birth.len() != 10 {
            return Err(err(
                slug::INVALID_REQUEST,
                format!("birth_date {birth:?} is not a YYYY-MM-DD date"),
            ));
        }
        let email = required("email")?;
        if !email.contains('@') {
            return Err(err(
                slug::INVALID_REQUEST,
                format!("email {email:?} is not an email address"),
            ));
        }
        required("phone_number_full")?;
        let country = required("country_iso")?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(
                slug::INVALID_REQUEST,
                format!("country_iso {country:?} is not an ISO 3166-1 alpha-2 code"),
            ));
        }
        if self.cardholders.contains_key(&uid) {
            return Err(err(
                slug::EXTERNAL_USER_ID_EXISTS,
                format!("a cardholder for {uid} already exists"),
            ));
        }
        let ready = !s.not_ready.contains(&uid);
        let holder = Cardholder {
            cardholder_id: self.new_id("ch"),
            subprovider_code: Some(subprovider),
            registration_status: if ready {
                RegistrationStatus::Active
            } else {
                RegistrationStatus::Pending
            },
            kyc_status: if ready {
                KycStatus::Approved
            } else {
                KycStatus::Pending
            },
            kyc_level: if ready {
                KycLevel::Basic
            } else {
                KycLevel::None
            },
            created_at: Some(iso(now)),
            updated_at: Some(iso(now)),
        };
        self.cardholders.insert(uid, holder.clone());
        self.dirty = true;
        to_value(&holder)
    }

    fn create_card(
        &mut self,
        s: &Settings,
        now: u64,
        f: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let uid = user_id(f)?;
        let product = find_product(f)?;
        if !product.active {
            return Err(err(
                slug::PRODUCT_NOT_ACTIVE,
                format!("product {} is not active", product.code),
            ));
        }
        if !self.is_known_user(s, &uid) {
            return Err(err(
                slug::CARDHOLDER_NOT_FOUND,
                format!("no cardholder for external_user_id {uid}"),
            ));
        }
        if s.not_ready.contains(&uid) {
            return Err(err(
                slug::CARDHOLDER_NOT_READY,
                format!("cardholder {uid} has not completed KYC"),
            ));
        }
        let topup = match f.get(assumed::INITIAL_TOPUP_FIELD) {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if t.trim().is_empty() => None,
            Some(v) => Some(amount_within(v, product)?),
        };
        let charge = assumed::issue_charge(
            Some(product.issue_fee),
            topup,
            Some(product.topup_fee_percent),
            Some(product.topup_fee_fixed),
        )
        .ok_or_else(|| err(slug::INVALID_PRICING, "the product has no pricing"))?;
        self.charge(charge)?;
        let fail = (s.fail_rate > 0.0 && self.rng.random::<f64>() < s.fail_rate).then(|| Failure {
            slug: slug::PROVIDER_ERROR.to_owned(),
            message: "sandbox: the card network declined to create the card (--fail-rate)"
                .to_owned(),
        });
        let card_id = self.new_id("card");
        let o = self.new_order(
            s,
            now,
            Kind::Issue,
            card_id,
            uid,
            product,
            topup,
            charge,
            fail,
        );
        self.order_response(o, now)
    }

    fn topup(&mut self, s: &Settings, now: u64, f: &Map<String, Value>) -> Result<Value, ApiError> {
        let id = card_id(f)?;
        let raw = f
            .get("amount")
            .ok_or_else(|| err(slug::INVALID_AMOUNT, "amount is required"))?;
        let card = self.card(&id)?;
        let product = catalog::by_code(&card.product_code)
            .ok_or_else(|| err(slug::INVALID_PRICING, "the card's product has no pricing"))?;
        let amount = amount_within(raw, product)?;
        if !matches!(
            card.status,
            CardStatus::Active | CardStatus::WaitForTopupActivationByUser
        ) {
            return Err(err(
                slug::CARD_NOT_ACTIVE,
                format!("card {id} is {}", card.status),
            ));
        }
        if let Some(cur) = text(f, "currency")
            && !cur.eq_ignore_ascii_case(&card.currency)
        {
            return Err(err(
                slug::CURRENCY_MISMATCH,
                format!("card {id} is in {}, not {cur}", card.currency),
            ));
        }
        let uid = card.external_user_id.clone();
        let charge = assumed::topup_charge(
            amount,
            Some(product.topup_fee_percent),
            Some(product.topup_fee_fixed),
        )
        .ok_or_else(|| err(slug::INVALID_PRICING, "the product has no pricing"))?;
        self.charge(charge)?;
        let o = self.new_order(
            s,
            now,
            Kind::Topup,
            id,
            uid,
            product,
            Some(amount),
            charge,
            None,
        );
        self.order_response(o, now)
    }

    fn change_status(
        &mut self,
        s: &Settings,
        now: u64,
        f: &Map<String, Value>,
        kind: Kind,
    ) -> Result<Value, ApiError> {
        let id = card_id(f)?;
        let uid = user_id(f)?;
        let card = self.card(&id)?;
        if card.external_user_id != uid {
            return Err(err(
                slug::CARDHOLDER_NOT_FOUND,
                format!("card {id} does not belong to external_user_id {uid}"),
            ));
        }
        if !card.issue_completed {
            return Err(err(
                slug::CARD_ISSUE_NOT_COMPLETED,
                format!("the issue order of card {id} has not completed"),
            ));
        }
        let allowed = card.pending_change.is_none()
            && match kind {
                Kind::Freeze => !matches!(card.status, CardStatus::Frozen | CardStatus::Closed),
                _ => card.status == CardStatus::Frozen,
            };
        if !allowed {
            let what = if card.pending_change.is_some() {
                "has a status change in progress".to_owned()
            } else {
                format!("is {}", card.status)
            };
            let verb = if kind == Kind::Freeze {
                "frozen"
            } else {
                "unfrozen"
            };
            return Err(err(
                slug::INVALID_CARD_STATUS,
                format!("card {id} {what} and cannot be {verb}"),
            ));
        }
        let product = catalog::by_code(&card.product_code)
            .ok_or_else(|| err(slug::PROVIDER_ERROR, "the card's product is gone"))?;
        let zero = Decimal::new(0, 2);
        let o = self.new_order(s, now, kind, id.clone(), uid, product, None, zero, None);
        if let Some(c) = self.cards.get_mut(&id) {
            c.pending_change = Some(o.clone());
        }
        self.order_response(o, now)
    }

    fn charge(&mut self, charge: Decimal) -> Result<(), ApiError> {
        if charge > self.balance {
            return Err(err(
                slug::INSUFFICIENT_FUNDS,
                format!(
                    "the order costs {charge} but the master balance is {}",
                    self.balance
                ),
            ));
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn new_order(
        &mut self,
        s: &Settings,
        now: u64,
        kind: Kind,
        card_id: String,
        external_user_id: String,
        product: &ProductDef,
        amount: Option<Decimal>,
        charge: Decimal,
        fail: Option<Failure>,
    ) -> String {
        let id = self.new_id("ord");
        let before = self.balance;
        self.balance -= charge;
        self.total_charged += charge;
        let rec = OrderRec {
            id: id.clone(),
            kind,
            created: now,
            latency: s.latency_us,
            card_id,
            external_user_id,
            product_code: product.code.to_owned(),
            amount,
            charge,
            balance_before: before,
            balance_after: self.balance,
            fail,
            stage: 0,
        };
        if let Some(t) = rec.next_event() {
            self.events.push(Reverse((t, id.clone())));
        }
        self.orders.insert(id.clone(), rec);
        self.dirty = true;
        id
    }

    /// The order as the creating call answers it, after applying whatever is already due
    /// (everything, with a zero latency).
    fn order_response(&mut self, id: String, now: u64) -> Result<Value, ApiError> {
        self.advance(now);
        let o = self
            .orders
            .get(&id)
            .ok_or_else(|| err(slug::PROVIDER_ERROR, "order vanished"))?;
        to_value(&self.order_view(o, now))
    }

    /// An order as `orders/check` shows it at `now`.
    fn order_view(&self, o: &OrderRec, now: u64) -> Order {
        let elapsed = now.saturating_sub(o.created);
        let l = o.latency;
        let done = elapsed >= l;
        let card = self.cards.get(&o.card_id);
        let mut data = Map::new();
        let mut v = Order {
            order_id: o.id.clone(),
            order_type: match o.kind {
                Kind::Issue => OrderType::CardIssue,
                Kind::Topup => OrderType::CardTopup,
                Kind::Freeze => OrderType::CardFreeze,
                Kind::Unfreeze => OrderType::CardUnfreeze,
            },
            status: OrderStatus::New,
            card_id: None,
            balance_before: Some(o.balance_before),
            balance_after: Some(o.balance_after),
            last_error: None,
            last_error_slug: None,
            data: Value::Null,
            created_at: iso(o.created),
            completed_at: done.then(|| iso(o.created + l)),
            failed_at: None,
            issue_status: None,
            is_issued: None,
            provider_card_status: None,
            topup_status: None,
        };
        match o.kind {
            Kind::Issue => {
                data.insert("product_code".into(), json!(o.product_code));
                data.insert("external_user_id".into(), json!(o.external_user_id));
                if let Some(a) = o.amount {
                    data.insert(assumed::INITIAL_TOPUP_FIELD.into(), json!(a.to_string()));
                }
                let created = elapsed >= l / 3;
                let (status, issue) = match (&o.fail, o.amount) {
                    _ if !created => (OrderStatus::New, IssueStatus::CardCreatePending),
                    (Some(f), _) => {
                        v.completed_at = None;
                        v.failed_at = Some(iso(o.created + l / 3));
                        v.last_error = Some(f.message.clone());
                        v.last_error_slug = Some(f.slug.clone());
                        if assumed::FAILED_ISSUE_ORDER_REFUNDED {
                            data.insert(
                                assumed::REFUNDED_AMOUNT_FIELD.into(),
                                json!(o.charge.to_string()),
                            );
                        }
                        (OrderStatus::Failed, IssueStatus::CardCreateError)
                    }
                    (None, _) if done => (
                        OrderStatus::Completed,
                        if o.amount.is_some() {
                            IssueStatus::Completed
                        } else {
                            IssueStatus::InitialTopupSkipped
                        },
                    ),
                    (None, None) => (OrderStatus::Processing, IssueStatus::CardCreateDone),
                    (None, Some(_)) => (
                        OrderStatus::Processing,
                        if elapsed < l / 2 {
                            IssueStatus::CardCreateDone
                        } else if elapsed < l / 6 * 5 {
                            IssueStatus::InitialTopupInProgress
                        } else {
                            IssueStatus::InitialTopupDone
                        },
                    ),
                };
                let issued = created && o.fail.is_none();
                v.status = status;
                v.issue_status = Some(issue);
                v.is_issued = Some(issued);
                if issued {
                    v.card_id = Some(o.card_id.clone());
                    v.provider_card_status = card.map(|c| c.status.to_string());
                }
            }
            Kind::Topup => {
                data.insert("card_id".into(), json!(o.card_id));
                data.insert(
                    "amount".into(),
                    json!(o.amount.unwrap_or_default().to_string()),
                );
                v.card_id = Some(o.card_id.clone());
                let (status, topup) = if done {
                    (OrderStatus::Completed, TopupStatus::Completed)
                } else if elapsed < l / 3 {
                    (OrderStatus::New, TopupStatus::New)
                } else if elapsed < l / 3 * 2 {
                    (OrderStatus::Processing, TopupStatus::ProviderInProgress)
                } else {
                    (OrderStatus::Processing, TopupStatus::ProviderVerification)
                };
                v.status = status;
                v.topup_status = Some(topup);
            }
            Kind::Freeze | Kind::Unfreeze => {
                data.insert("card_id".into(), json!(o.card_id));
                data.insert("external_user_id".into(), json!(o.external_user_id));
                v.card_id = Some(o.card_id.clone());
                v.provider_card_status = card.map(|c| c.status.to_string());
                v.status = if done {
                    OrderStatus::Completed
                } else if elapsed < l / 2 {
                    OrderStatus::New
                } else {
                    OrderStatus::Processing
                };
            }
        }
        v.data = Value::Object(data);
        v
    }

    // ------------------------------------------------------------------ operator actions

    /// Close a card as the provider would on its own (fraud, expiry, a support request): the one
    /// thing no API call can do, so tests can reach cardform's closed-card handling. Closing is
    /// final and closing a closed card again is a no-op. `false` if the card is unknown.
    pub fn close_card(&mut self, now: u64, card_id: &str) -> bool {
        // Cards whose issue order is already due must exist before they can be looked up.
        self.advance(now);
        let Some(c) = self.cards.get_mut(card_id) else {
            return false;
        };
        if c.status != CardStatus::Closed {
            c.status = CardStatus::Closed;
            c.status_before_freeze = None;
            self.dirty = true;
        }
        true
    }

    // ------------------------------------------------------------------ inspection

    pub fn inspect(&mut self, now: u64) -> Inspection {
        self.advance(now);
        let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let (mut failed, mut open) = (0, 0);
        for o in self.orders.values() {
            if o.kind == Kind::Issue {
                *counts
                    .entry((&o.external_user_id, &o.product_code))
                    .or_default() += 1;
                if o.fail.is_some() && o.stage > 0 {
                    failed += 1;
                }
            }
            if o.is_open() {
                open += 1;
            }
        }
        Inspection {
            balance: self.balance,
            total_charged: self.total_charged,
            total_refunded: self.total_refunded,
            issue_orders: counts
                .into_iter()
                .map(|((u, p), count)| IssueOrderCount {
                    external_user_id: u.to_owned(),
                    product_code: p.to_owned(),
                    count,
                })
                .collect(),
            calls: self.calls.clone(),
            orders: self.orders.len() as u64,
            open_orders: open,
            failed_orders: failed,
            cards: self.cards.len() as u64,
            users: self.users.len() as u64,
            cardholders: self.cardholders.len() as u64,
            rate_limited: self.counters.rate_limited,
            dropped: self.counters.dropped,
            injected_errors: self.counters.injected_errors,
            idempotent_replays: self.counters.idempotent_replays,
        }
    }
}

// ---------------------------------------------------------------------- helpers

fn to_value<T: Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(|e| err(slug::PROVIDER_ERROR, e.to_string()))
}

fn money(v: Decimal) -> Decimal {
    let mut v = round_money(v);
    v.rescale(2);
    v
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

fn user_id(f: &Map<String, Value>) -> Result<String, ApiError> {
    text(f, "external_user_id").ok_or_else(|| {
        err(
            slug::EXTERNAL_USER_ID_REQUIRED,
            "external_user_id is required",
        )
    })
}

/// A card id present and shaped like one (`[A-Za-z0-9_-]{1,64}`); unknown ones are a separate slug.
fn card_id(f: &Map<String, Value>) -> Result<String, ApiError> {
    match f.get("card_id") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(s.clone())
        }
        None | Some(Value::Null) => Err(err(slug::INVALID_CARD_ID, "card_id is required")),
        Some(other) => Err(err(
            slug::INVALID_CARD_ID,
            format!("card_id {other} is not a card id"),
        )),
    }
}

fn find_product(f: &Map<String, Value>) -> Result<&'static ProductDef, ApiError> {
    if let Some(code) = text(f, "product_code") {
        return catalog::by_code(&code)
            .ok_or_else(|| err(slug::PRODUCT_NOT_FOUND, format!("no product {code}")));
    }
    let Some(raw) = f.get("product_id").filter(|v| !v.is_null()) else {
        return Err(err(
            slug::PRODUCT_NOT_FOUND,
            "product_code (or product_id) is required",
        ));
    };
    let found = match raw {
        Value::Number(n) => n.as_u64().and_then(catalog::by_id),
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(catalog::by_id)
            .or_else(|| catalog::by_code(s.trim())),
        _ => None,
    };
    found.ok_or_else(|| err(slug::PRODUCT_NOT_FOUND, format!("no product {raw}")))
}

/// An amount that is a positive decimal with at most two decimals, within the product's limits.
fn amount_within(raw: &Value, p: &ProductDef) -> Result<Decimal, ApiError> {
    let text = match raw {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let amount = text
        .parse::<Decimal>()
        .ok()
        .filter(|a| *a > Decimal::ZERO && a.normalize().scale() <= 2)
        .ok_or_else(|| {
            err(
                slug::INVALID_AMOUNT,
                format!("amount {raw} is not a positive decimal with at most 2 decimals"),
            )
        })?;
    if amount < p.min_topup {
        return Err(err(
            slug::AMOUNT_BELOW_MINIMUM,
            format!(
                "amount {amount} is below the minimum {} of {}",
                p.min_topup, p.code
            ),
        ));
    }
    if amount > p.max_topup {
        return Err(err(
            slug::AMOUNT_ABOVE_MAXIMUM,
            format!(
                "amount {amount} is above the maximum {} of {}",
                p.max_topup, p.code
            ),
        ));
    }
    Ok(amount)
}

fn card_view(c: &CardRec) -> Card {
    Card {
        card_id: c.card_id.clone(),
        status: c.status.clone(),
        external_user_id: Some(c.external_user_id.clone()),
        product_code: Some(c.product_code.clone()),
        currency: Some(c.currency.clone()),
        balance: Some(c.balance),
        expiry_month: Some(json!(c.expiry_month)),
        expiry_year: Some(json!(c.expiry_year)),
        card_number: Some(Sensitive::new(c.pan.clone())),
        cvv: Some(Sensitive::new(c.cvv.clone())),
    }
}

/// The digit that makes `payload` + digit pass the Luhn check.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Whether a digit string passes the Luhn check.
pub fn luhn_valid(number: &str) -> bool {
    let digits: Option<Vec<u8>> = number
        .chars()
        .map(|c| c.to_digit(10).map(|d| d as u8))
        .collect();
    match digits {
        Some(d) if d.len() >= 2 => {
            let (payload, check) = d.split_at(d.len() - 1);
            luhn_check_digit(payload) == check[0]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("4000000000000002"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("41x1"));
    }
}
