//! What the client tells `tracing` about each exchange with the provider: every request (info),
//! its body and its answer's body (debug, through [`super::redact`]), retries and waits (info).
//! Nothing is written anywhere unless the command line installed a subscriber (`-v`,
//! `CARDFORM_LOG`), and then only to stderr or the log file: a log is not output.
//!
//! Owns the events' names and fields. It must not log a header value, the envelope, or a body
//! that did not go through [`super::redact::redacted`]; the api key and secret are never passed
//! here at all.

use serde_json::Value;
use std::time::Duration;

use super::redact::redacted;
use crate::wire::Decoded;

/// The target every event of the client carries, for `CARDFORM_LOG=cardform::client=debug`.
const TARGET: &str = "cardform::client";

/// One attempt of a call is about to go out.
pub(super) fn request(
    host: &str,
    endpoint: &str,
    attempt: u32,
    idempotency_key: Option<&str>,
    fields: &Value,
) {
    tracing::info!(
        target: TARGET,
        method = "POST",
        endpoint,
        host,
        attempt,
        idempotency_key = idempotency_key.unwrap_or("-"),
        "request"
    );
    tracing::debug!(target: TARGET, endpoint, attempt, body = %redacted(fields), "request body");
}

/// An attempt's answer: its HTTP status, the provider's error slug if any, how long it took, and
/// (at debug) the decrypted body, redacted.
pub(super) fn answer(endpoint: &str, attempt: u32, status: u16, took: Duration, decoded: &Answer) {
    let slug = match decoded {
        Answer::Decoded(Decoded::Error(e)) => e.error_slug.as_str(),
        Answer::Decoded(Decoded::Success(_)) => "-",
        Answer::Plain(slug) => slug,
        Answer::Undecodable => "(undecodable)",
    };
    tracing::info!(
        target: TARGET,
        endpoint,
        attempt,
        status,
        slug,
        duration_ms = took.as_millis() as u64,
        "answer"
    );
    match decoded {
        Answer::Decoded(Decoded::Success(v)) => {
            tracing::debug!(target: TARGET, endpoint, attempt, body = %redacted(v), "answer body");
        }
        Answer::Decoded(Decoded::Error(e)) => tracing::debug!(
            target: TARGET,
            endpoint,
            attempt,
            slug = e.error_slug.as_str(),
            message = e.error.as_str(),
            "answer error"
        ),
        Answer::Plain(_) | Answer::Undecodable => {}
    }
}

/// What became of an answer's body, as far as the log cares.
pub(super) enum Answer<'a> {
    Decoded(&'a Decoded),
    /// Not opened (a 429 or 5xx): the slug of its plain JSON, if it had one.
    Plain(&'a str),
    Undecodable,
}

/// An attempt that got no HTTP answer (refused, reset, timed out).
pub(super) fn no_answer(endpoint: &str, attempt: u32, took: Duration, reason: &str) {
    tracing::info!(
        target: TARGET,
        endpoint,
        attempt,
        duration_ms = took.as_millis() as u64,
        reason,
        "no answer"
    );
}

/// The call goes out again after `delay`.
pub(super) fn retry(endpoint: &str, attempt: u32, delay: Duration, reason: &str) {
    tracing::info!(
        target: TARGET,
        endpoint,
        failed_attempt = attempt,
        delay_ms = delay.as_millis() as u64,
        reason,
        "retrying"
    );
}

/// How long the shared rate limit held an attempt back.
pub(super) fn limiter_wait(endpoint: &str, waited: Duration) {
    tracing::trace!(
        target: TARGET,
        endpoint,
        waited_ms = waited.as_millis() as u64,
        "rate limiter slot"
    );
}
