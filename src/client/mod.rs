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

mod error;
mod limiter;
mod log;
pub mod redact;
mod retry;
mod stats;

pub use error::ClientError;
pub use retry::{BACKOFF_CAP, Jitter, RETRY_AFTER_CAP};
pub use stats::{CallResult, ClientStats};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::wire::body::BodyError;
use crate::wire::error::slug;
use crate::wire::{
    self, Balance, BalanceRequest, Call, Card, CheckOrderRequest, Decoded, Endpoint, EnvelopeError,
    GetCardRequest, Key, Order, Product, ProductsRequest, ProviderError, Secret, TimestampSource,
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

/// What one attempt got back over HTTP, before its body is judged.
#[derive(Clone, Copy)]
struct Answered {
    endpoint: Endpoint,
    attempt: u32,
    /// When the request was sent: what the logs measure from.
    started: tokio::time::Instant,
    /// The limiter's slot the attempt went out in.
    slot: tokio::time::Instant,
    status: StatusCode,
    retry_after: Option<Duration>,
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

    async fn attempt<C: Call>(
        &self,
        endpoint: Endpoint,
        url: &str,
        fields: &Value,
        idempotency_key: Option<&str>,
        attempt: u32,
        budget: Duration,
    ) -> Result<C::Response, Failure> {
        let inner = &*self.inner;
        let path = endpoint.path();
        let queued = tokio::time::Instant::now();
        let slot = inner.limiter.acquire().await;
        log::limiter_wait(path, queued.elapsed());
        let (resp, started) = self
            .send(endpoint, url, fields, idempotency_key, attempt, budget)
            .await?;
        inner.reached.store(true, Ordering::Relaxed);
        let status = resp.status();
        let retry_after = retry_after(resp.headers());
        // A connection closed or reset mid-body is as transient as one that never answered.
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.transport_failure(e, endpoint, attempt, started))?;
        let answer = Answered {
            endpoint,
            attempt,
            started,
            slot,
            status,
            retry_after,
        };
        self.retry_on_status(&answer, &bytes)?;
        self.decode::<C>(&answer, &bytes)
    }

    /// Sends one attempt's request and waits for the head of its answer, telling the listener
    /// when the provider is silent for longer than [`WAIT_NOTICE_AFTER`]. Returns when it was
    /// sent, which the logs measure from.
    async fn send(
        &self,
        endpoint: Endpoint,
        url: &str,
        fields: &Value,
        idempotency_key: Option<&str>,
        attempt: u32,
        budget: Duration,
    ) -> Result<(reqwest::Response, tokio::time::Instant), Failure> {
        let inner = &*self.inner;
        let path = endpoint.path();
        // Taken after the limiter so a long wait cannot push it out of the provider's window;
        // fresh per attempt because the provider rejects a repeated timestamp as a replay.
        let ts = TimestampSource::global().next();
        let body = wire::encode_request(&inner.key, fields, ts)
            .map_err(|e| Failure::Final(ClientError::Fatal(format!("{path}: {e}"))))?;
        let mut rb = inner
            .http
            .post(url)
            // At least a moment, so a call whose budget is spent still makes its one attempt.
            .timeout(
                inner
                    .request_timeout
                    .min(budget)
                    .max(Duration::from_millis(100)),
            )
            .header(CONTENT_TYPE, "application/json")
            .header(API_KEY_HEADER, inner.api_key.expose())
            .body(body);
        if let Some(k) = idempotency_key {
            rb = rb.header(IDEMPOTENCY_KEY_HEADER, k);
        }
        inner.counters.sent(endpoint);
        log::request(&inner.shown_url, path, attempt, idempotency_key, fields);
        let started = tokio::time::Instant::now();
        let send = rb.send();
        tokio::pin!(send);
        let sent = tokio::select! {
            r = &mut send => r,
            () = tokio::time::sleep(WAIT_NOTICE_AFTER) => {
                self.tell(&Wait::NoAnswer {
                    host: inner.shown_url.clone(),
                    endpoint: path,
                    attempt,
                    elapsed: started.elapsed(),
                    gives_up_in: budget.saturating_sub(started.elapsed()),
                });
                send.await
            }
        };
        let resp = sent.map_err(|e| self.transport_failure(e, endpoint, attempt, started))?;
        Ok((resp, started))
    }

    /// A 429, a 5xx or a 408 is worth another attempt (a 429 also slows the limiter down); any
    /// other answer tells the limiter its slot went through.
    fn retry_on_status(&self, answer: &Answered, bytes: &[u8]) -> Result<(), Failure> {
        let inner = &*self.inner;
        let Answered {
            endpoint,
            attempt,
            started,
            slot,
            status,
            retry_after,
        } = *answer;
        let path = endpoint.path();
        if status == StatusCode::TOO_MANY_REQUESTS
            || status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
        {
            let slug = describe_error_body(bytes);
            let answer = log::Answer::Plain(slug.trim());
            log::answer(path, attempt, status.as_u16(), started.elapsed(), &answer);
        }

        if status == StatusCode::TOO_MANY_REQUESTS {
            inner.counters.ended(endpoint, CallResult::RateLimited);
            bump(&inner.counters.rate_limited);
            inner.limiter.on_throttled(slot, retry_after);
            return Err(Failure::Retry {
                reason: format!("HTTP 429 (rate limited){}", describe_error_body(bytes)),
                after: retry_after,
                answered: true,
            });
        }
        inner.limiter.on_success(slot);
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            if status.is_server_error() {
                bump(&inner.counters.server_errors);
                inner.counters.ended(endpoint, CallResult::ServerError);
            } else {
                inner.counters.ended(endpoint, CallResult::Other);
            }
            return Err(Failure::Retry {
                reason: format!("HTTP {}{}", status.as_u16(), describe_error_body(bytes)),
                after: retry_after,
                answered: true,
            });
        }
        Ok(())
    }

    /// The provider's answer, decrypted and read as the call's response; a provider error is
    /// final, except `rate_limited`, which is retried.
    fn decode<C: Call>(&self, answer: &Answered, bytes: &[u8]) -> Result<C::Response, Failure> {
        let inner = &*self.inner;
        let Answered {
            endpoint,
            attempt,
            started,
            slot,
            status,
            retry_after,
        } = *answer;
        let path = endpoint.path();
        let decoded = wire::decode_response(&inner.key, bytes);
        let logged = match &decoded {
            Ok(d) => log::Answer::Decoded(d),
            Err(_) => log::Answer::Undecodable,
        };
        log::answer(path, attempt, status.as_u16(), started.elapsed(), &logged);
        inner.counters.ended(endpoint, result_of(status, &decoded));
        let fatal = |message: String| Failure::Final(ClientError::Fatal(message));
        match decoded {
            Ok(Decoded::Error(e)) if e.error_slug == slug::RATE_LIMITED => {
                bump(&inner.counters.rate_limited);
                inner.limiter.on_throttled(slot, retry_after);
                Err(Failure::Retry {
                    reason: format!("rate_limited: {}", e.error),
                    after: retry_after,
                    answered: true,
                })
            }
            Ok(Decoded::Error(e)) => Err(Failure::Final(ClientError::Provider(ProviderError {
                slug: e.error_slug,
                message: e.error,
                http_status: status.as_u16(),
                kyc_status: e.kyc_status,
            }))),
            Ok(Decoded::Success(v)) if status.is_success() => {
                serde_json::from_value(v).map_err(|e| {
                    fatal(format!(
                        "{path}: the provider's response does not have the expected shape: {e}"
                    ))
                })
            }
            Err(BodyError::Envelope(EnvelopeError::Decrypt)) => Err(fatal(format!(
                "{}: {path} (HTTP {}): wrong api secret or corrupted response",
                error::UNDECRYPTABLE,
                status.as_u16()
            ))),
            Err(e) if status.is_success() => Err(fatal(format!(
                "{path}: undecodable response (HTTP {}): {e}",
                status.as_u16()
            ))),
            Ok(Decoded::Success(_)) | Err(_) => Err(fatal(format!(
                "{path}: HTTP {} without a provider error body: check CARDFORM_API_URL",
                status.as_u16()
            ))),
        }
    }

    fn transport_failure(
        &self,
        e: reqwest::Error,
        endpoint: Endpoint,
        attempt: u32,
        started: tokio::time::Instant,
    ) -> Failure {
        let path = endpoint.path();
        // The endpoint is reported separately; the URL could carry userinfo from the config.
        let e = e.without_url();
        log::no_answer(path, attempt, started.elapsed(), &error_chain(&e));
        let c = &self.inner.counters;
        if e.is_builder() {
            return Failure::Final(ClientError::Fatal(format!(
                "cannot build the request: {}",
                error_chain(&e)
            )));
        }
        bump(&c.connection_errors);
        c.ended(endpoint, CallResult::Transport);
        if e.is_timeout() {
            bump(&c.timeouts);
        }
        // Refused, unresolvable, TLS handshake failed: before any answer, that is the setup.
        if e.is_connect() && !self.inner.reached.load(Ordering::Relaxed) {
            return Failure::Final(ClientError::Unreachable {
                url: self.inner.shown_url.clone(),
                reason: error_chain(&e),
            });
        }
        Failure::Retry {
            reason: error_chain(&e),
            after: None,
            answered: false,
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

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(wire::assumed::RETRY_AFTER_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| retry::parse_retry_after(v, wire::Clock::now_micros(&wire::SystemClock)))
}

/// reqwest's top-level message is often just "error sending request"; the cause is below it.
fn error_chain(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

/// The slug of a plain-JSON error body, for the `last` of an exhausted call. Encrypted bodies are
/// not opened here: a retryable answer's details are not worth a decryption.
fn describe_error_body(bytes: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<Value>(bytes) else {
        return String::new();
    };
    match v.get("error_slug").and_then(Value::as_str) {
        Some(s) if !s.is_empty() => format!(" {s}"),
        _ => String::new(),
    }
}

/// How an attempt with an HTTP answer that was not a 429, a 5xx or a 408 ended, for the stats.
fn result_of(status: StatusCode, decoded: &Result<Decoded, BodyError>) -> CallResult {
    match decoded {
        Ok(Decoded::Error(e)) if e.error_slug == slug::RATE_LIMITED => CallResult::RateLimited,
        Ok(Decoded::Error(_)) => CallResult::ProviderError,
        Ok(Decoded::Success(_)) if status.is_success() => CallResult::Ok,
        _ => CallResult::Other,
    }
}
