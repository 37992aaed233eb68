//! The HTTP client of the provider API (REFERENCE.md §1–§2): reqwest over rustls, one call at a
//! time per `call`, with retries, a shared adaptive rate limit and error classification.
//!
//! Owns transport concerns only: headers, timeouts, which failures are retried and how long to
//! wait, and turning HTTP exchanges into typed results or [`ClientError`]s. It must not know about
//! plans, state or orders' meaning, must not print, and never lets a secret out: the api key and
//! secret only reach the wire (header / envelope key), never a message, a log or `Debug`. Each
//! exchange is logged through `tracing` (`log`), its bodies only as `redact` masks them.
//!
//! Crypto, body shapes and types come from [`crate::wire`]; nothing here re-implements them.

mod attempt;
mod error;
mod limiter;
mod log;
pub mod redact;
mod retry;
mod stats;

pub use error::ClientError;
pub use retry::{BACKOFF_CAP, Jitter, RETRY_AFTER_CAP};
pub use stats::{CallResult, ClientStats};

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::wire::{
    self, Balance, BalanceRequest, Call, Card, CheckOrderRequest, Endpoint, GetCardRequest, Key,
    Order, Product, ProductsRequest, Secret,
};
use limiter::RateLimiter;
use stats::{Counters, bump};

/// [doc] §1: the project's api key travels in this header on every call.
pub const API_KEY_HEADER: &str = "API-KEY";
/// [doc] §1: required on mutations, reused verbatim on every retry of one call.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// e.g. `http://127.0.0.1:8080`, without `/api/v1` (a trailing `/api/v1` is tolerated).
    pub base_url: String,
    pub api_key: Secret,
    pub api_secret: Secret,
    /// Client-side requests/s shared by all calls of all clones; `None` = unlimited until the
    /// provider answers 429.
    pub rate: Option<f64>,
    pub connect_timeout: Duration,
    /// How long one attempt may take, connect to last body byte.
    pub request_timeout: Duration,
    /// How long one call may go without any answer from the provider, across all its attempts
    /// (`--request-timeout` on the command line): a host that accepts connections but never
    /// answers fails the call within this, naming the host. An answer of any kind (a 429, a
    /// 503) restarts it.
    pub give_up_after: Duration,
    /// Attempts after the first one; a call sends at most `max_retries + 1` requests.
    pub max_retries: u32,
    /// First backoff step; doubles per failure up to [`BACKOFF_CAP`], with full jitter.
    pub backoff_base: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:8080".to_owned(),
            api_key: Secret::new(""),
            api_secret: Secret::new(""),
            rate: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            give_up_after: Duration::from_secs(30),
            max_retries: 8,
            backoff_base: Duration::from_millis(100),
        }
    }
}

/// Cheap to clone; clones share the connection pool, the rate limit and the counters.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// `{base}/api/v1/`, ready for the endpoint path.
    prefix: String,
    api_key: Secret,
    key: Key,
    /// Keys the digests of personal request fields in the journal: derived from the api secret,
    /// so state alone never reveals (or lets anyone guess) the values behind them.
    journal_key: [u8; 32],
    max_retries: u32,
    /// See [`ClientConfig::request_timeout`].
    request_timeout: Duration,
    /// See [`ClientConfig::give_up_after`].
    give_up_after: Duration,
    /// Told of every wait longer than [`WAIT_NOTICE_AFTER`], so a run is never silent.
    on_wait: std::sync::RwLock<Option<WaitListener>>,
    backoff_base: Duration,
    limiter: RateLimiter,
    jitter: Jitter,
    counters: Counters,
    /// The base URL as it may be shown: no userinfo, query or fragment.
    shown_url: String,
    /// Whether the provider has ever answered. Until it has, a failure to connect means a wrong
    /// URL or an unreachable provider, not a hiccup worth a minute of retries.
    reached: AtomicBool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("prefix", &self.inner.prefix)
            .finish_non_exhaustive()
    }
}

/// A mutation must carry an Idempotency-Key, and a key must be one HTTP can send:
/// a missing or unsendable key is a bug of cardform's, caught before anything is sent.
fn check_idempotency_key(
    endpoint: Endpoint,
    idempotency_key: Option<&str>,
) -> Result<(), ClientError> {
    let path = endpoint.path();
    if endpoint.is_mutation() && idempotency_key.is_none() {
        return Err(ClientError::Fatal(format!(
            "{path} is a mutation and was called without an Idempotency-Key (cardform bug)"
        )));
    }
    if let Some(k) = idempotency_key
        && (k.is_empty() || reqwest::header::HeaderValue::from_str(k).is_err())
    {
        return Err(ClientError::Fatal(format!(
            "{path}: invalid Idempotency-Key {k:?} (cardform bug)"
        )));
    }
    Ok(())
}

/// How one attempt ended, when it did not produce the response.
enum Failure {
    /// Not worth another attempt.
    Final(ClientError),
    /// Possibly transient; `after` is the provider's `Retry-After`, if it gave one. `answered`
    /// when the provider sent an HTTP answer (a 429, a 5xx), not silence.
    Retry {
        reason: String,
        after: Option<Duration>,
        answered: bool,
    },
}

/// A wait worth telling the user about: nothing is silent for longer than
/// [`WAIT_NOTICE_AFTER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// A request has had no answer yet.
    NoAnswer {
        host: String,
        endpoint: &'static str,
        attempt: u32,
        elapsed: Duration,
        gives_up_in: Duration,
    },
    /// The provider said to come back later.
    RetryAfter {
        host: String,
        endpoint: &'static str,
        after: Duration,
    },
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Wait::NoAnswer {
                host,
                endpoint,
                attempt,
                elapsed,
                gives_up_in,
            } => write!(
                f,
                "waiting for {host}: {endpoint} has had no answer for {}s (attempt {attempt}); \
                 giving up in {}s (--request-timeout)",
                elapsed.as_secs(),
                gives_up_in.as_secs()
            ),
            Wait::RetryAfter {
                host,
                endpoint,
                after,
            } => write!(
                f,
                "waiting {}s: {host} rate-limited {endpoint} (Retry-After)",
                after.as_secs()
            ),
        }
    }
}

/// Who is told of waits (see [`Client::on_wait`]).
pub type WaitListener = Arc<dyn Fn(&Wait) + Send + Sync>;

/// How long a wait may last before the user is told what it is for.
pub const WAIT_NOTICE_AFTER: Duration = Duration::from_secs(5);

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        Self::with_jitter(config, Jitter::from_entropy())
    }

    /// Like [`Client::new`] with deterministic backoff jitter (tests).
    pub fn with_jitter(config: ClientConfig, jitter: Jitter) -> Result<Client, ClientError> {
        let base = config.base_url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/api/v1").unwrap_or(base);
        let url = reqwest::Url::parse(base)
            .map_err(|e| ClientError::Fatal(format!("invalid provider URL {base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::Fatal(format!(
                "invalid provider URL {base:?}: scheme must be http or https"
            )));
        }
        if config.api_key.expose().is_empty() {
            return Err(ClientError::Fatal(
                "no api key: set CARDFORM_API_KEY".to_owned(),
            ));
        }
        if config.api_secret.expose().is_empty() {
            return Err(ClientError::Fatal(
                "no api secret: set CARDFORM_API_SECRET".to_owned(),
            ));
        }
        if let Some(r) = config.rate
            && !(r.is_finite() && r > 0.0)
        {
            return Err(ClientError::Fatal(format!(
                "rate must be a positive number of requests per second, not {r}"
            )));
        }
        // The api key is a header value; a newline in it would be a header-injection vector and
        // reqwest would refuse it on every request anyway.
        if reqwest::header::HeaderValue::from_str(config.api_key.expose()).is_err() {
            return Err(ClientError::Fatal(
                "the api key contains characters not allowed in an HTTP header: check CARDFORM_API_KEY"
                    .to_owned(),
            ));
        }
        let http = reqwest::Client::builder()
            // A redirected POST may turn into a GET or lose its body; an API that redirects is a
            // misconfigured base URL, better reported than followed.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ClientError::Fatal(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                prefix: format!("{base}{}", wire::assumed::API_PREFIX),
                api_key: config.api_key,
                key: Key::from_secret(&config.api_secret),
                journal_key: wire::digest::hmac_sha256(
                    config.api_secret.expose().as_bytes(),
                    b"cardform journal digest v1",
                ),
                max_retries: config.max_retries,
                request_timeout: config.request_timeout,
                give_up_after: config.give_up_after,
                on_wait: std::sync::RwLock::new(None),
                backoff_base: config.backoff_base,
                limiter: RateLimiter::new(config.rate),
                jitter,
                counters: Counters::default(),
                shown_url: shown_url(&url),
                reached: AtomicBool::new(false),
            }),
        })
    }

    /// Sends one call. `idempotency_key` is required (Some) for mutations; the same key and the
    /// same body are reused on every retry; only request_timestamp changes per attempt.
    pub async fn call<C: Call>(
        &self,
        req: &C,
        idempotency_key: Option<&str>,
    ) -> Result<C::Response, ClientError> {
        let endpoint = C::ENDPOINT;
        let path = endpoint.path();
        check_idempotency_key(endpoint, idempotency_key)?;
        // Serialized once: every attempt carries exactly these fields, so a retried mutation can
        // never differ from the first attempt (which would be an idempotency_key_conflict).
        let fields = serde_json::to_value(req)
            .map_err(|e| ClientError::Fatal(format!("{path}: cannot serialize request: {e}")))?;
        let url = format!("{}{path}", self.inner.prefix);
        let mut attempts = 0u32;
        // Silence is bounded from the last answer of any kind, so a provider that throttles us
        // is waited for, and one that never answers is not.
        let mut last_answer = tokio::time::Instant::now();
        loop {
            attempts += 1;
            let budget = self
                .inner
                .give_up_after
                .saturating_sub(last_answer.elapsed());
            match self
                .attempt::<C>(endpoint, &url, &fields, idempotency_key, attempts, budget)
                .await
            {
                Ok(resp) => return Ok(resp),
                Err(Failure::Final(e)) => return Err(e),
                Err(Failure::Retry {
                    reason,
                    after,
                    answered,
                }) => {
                    if answered {
                        last_answer = tokio::time::Instant::now();
                    }
                    let delay =
                        self.retry_delay(path, attempts, reason, after, answered, last_answer)?;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// How long to wait before the next attempt of a call whose attempt `attempts` failed for
    /// `reason` (`answered` when the provider did answer), telling the listener of a long wait;
    /// the call's error when it gives up instead: its retries spent, or the provider silent
    /// since `last_answer` for longer than allowed.
    fn retry_delay(
        &self,
        path: &'static str,
        attempts: u32,
        reason: String,
        after: Option<Duration>,
        answered: bool,
        last_answer: tokio::time::Instant,
    ) -> Result<Duration, ClientError> {
        let inner = &*self.inner;
        if !answered && last_answer.elapsed() >= inner.give_up_after {
            return Err(ClientError::NoAnswer {
                host: inner.shown_url.clone(),
                endpoint: path,
                waited: last_answer.elapsed().as_secs(),
                attempts,
            });
        }
        if attempts > inner.max_retries {
            return Err(ClientError::Exhausted {
                endpoint: path,
                attempts,
                last: reason,
            });
        }
        bump(&inner.counters.retries);
        let mut delay =
            after.unwrap_or_else(|| retry::backoff(inner.backoff_base, attempts, &inner.jitter));
        if !answered {
            // Backing off from silence never outlasts the bound on it.
            delay = delay.min(inner.give_up_after.saturating_sub(last_answer.elapsed()));
        }
        log::retry(path, attempts, delay, &reason);
        if delay >= WAIT_NOTICE_AFTER {
            self.tell(&Wait::RetryAfter {
                host: inner.shown_url.clone(),
                endpoint: path,
                after: delay,
            });
        }
        Ok(delay)
    }

    /// Sets who is told of waits longer than [`WAIT_NOTICE_AFTER`] (the command line prints
    /// them); clones share it.
    pub fn on_wait(&self, listener: WaitListener) {
        *self
            .inner
            .on_wait
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(listener);
    }

    fn tell(&self, wait: &Wait) {
        tracing::info!(target: "cardform::client", "{wait}");
        let listener = self
            .inner
            .on_wait
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(l) = listener {
            l(wait);
        }
    }

    /// What a webhook delivery from this provider must carry: the project's API key (in its
    /// header) and the key of its secret (its envelope). For `serve`'s receiver only.
    pub fn delivery_credentials(&self) -> (&Secret, &Key) {
        (&self.inner.api_key, &self.inner.key)
    }

    /// The key for digests of personal request fields in the journal (never stored).
    pub fn journal_key(&self) -> &[u8; 32] {
        &self.inner.journal_key
    }

    pub fn stats(&self) -> ClientStats {
        self.inner
            .counters
            .snapshot(self.inner.limiter.current_rate())
    }

    /// `cards/products`, whichever shape the provider answers with.
    pub async fn products(&self) -> Result<Vec<Product>, ClientError> {
        Ok(self.call(&ProductsRequest {}, None).await?.products)
    }

    /// `project/balance`.
    pub async fn balance(&self) -> Result<Balance, ClientError> {
        self.call(&BalanceRequest {}, None).await
    }

    /// `orders/check`.
    pub async fn check_order(&self, order_id: &str) -> Result<Order, ClientError> {
        self.call(
            &CheckOrderRequest {
                order_id: order_id.to_owned(),
            },
            None,
        )
        .await
    }

    /// `cards/get`. The PAN and CVV arrive as [`wire::Sensitive`]; callers keep `last4` at most.
    pub async fn get_card(&self, card_id: &str) -> Result<Card, ClientError> {
        self.call(
            &GetCardRequest {
                card_id: card_id.to_owned(),
            },
            None,
        )
        .await
    }
}

/// `scheme://host[:port]/path` of the base URL: userinfo could hold a password and a query a
/// token, and neither belongs in a message.
fn shown_url(url: &reqwest::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.as_str().trim_end_matches('/').to_owned()
}
