//! One attempt of a call: wait for the limiter, send the request, and judge what came back
//! (retry, final error, or the response). How many attempts a call makes and how long it waits
//! between them is [`Client::call`]'s.
//!
//! Same rules as the rest of [`super`]: transport only, no printing, no secret in a message.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::stats::{CallResult, bump};
use super::{
    API_KEY_HEADER, Client, ClientError, Failure, IDEMPOTENCY_KEY_HEADER, WAIT_NOTICE_AFTER, Wait,
    error, log, retry,
};
use crate::wire::body::BodyError;
use crate::wire::error::slug;
use crate::wire::{self, Call, Decoded, Endpoint, EnvelopeError, ProviderError, TimestampSource};

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

impl Client {
    pub(super) async fn attempt<C: Call>(
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
