//! What a call can end in, and what the user should do about it.
//!
//! Owns the classification vocabulary (provider refusal / retries exhausted / fatal) and the hints
//! that name the environment variable or setting to fix. It must not decide whether to retry a
//! given HTTP exchange (that is `mod.rs`), nor know about plans or orders.

use crate::wire::ProviderError;
use crate::wire::error::{hint_for_slug, slug};

/// Marks the fatal message for a response the api secret could not open, so [`ClientError::hint`]
/// can point at the secret without a separate variant.
pub(crate) const UNDECRYPTABLE: &str = "the provider's response could not be decrypted";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The provider refused the request (slug + message + HTTP status). Not retried, except
    /// `rate_limited`, which only ends up here when it is not recognisable as a 429.
    #[error("provider refused the request: {0} (HTTP {status})", status = .0.http_status)]
    Provider(ProviderError),
    /// Every attempt failed in a way that could have been transient (5xx, 429, timeouts, closed
    /// connections). For a mutation the outcome is unknown; retrying later under the same
    /// Idempotency-Key is safe.
    #[error("{endpoint}: gave up after {attempts} attempts; last failure: {last}")]
    Exhausted {
        endpoint: &'static str,
        attempts: u32,
        last: String,
    },
    /// The very first contact failed to connect (refused, unresolvable host, TLS handshake):
    /// almost always a wrong URL or an unreachable provider, so it is reported at once rather
    /// than retried. `url` is shown without userinfo or query.
    #[error("cannot reach the provider at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The provider accepted the connection but said nothing for `waited` seconds, across
    /// `attempts` attempts (`--request-timeout`). For a mutation the outcome is unknown;
    /// retrying later under the same Idempotency-Key is safe.
    #[error("{host} did not answer {endpoint} for {waited}s ({attempts} attempts)")]
    NoAnswer {
        host: String,
        endpoint: &'static str,
        waited: u64,
        attempts: u32,
    },
    /// Retrying cannot help: bad configuration, an undecodable or undecryptable response, a
    /// programming error such as a mutation without an Idempotency-Key.
    #[error("{0}")]
    Fatal(String),
}

impl ClientError {
    /// The provider's error slug, when the provider gave one.
    pub fn slug(&self) -> Option<&str> {
        match self {
            ClientError::Provider(e) if !e.slug.is_empty() => Some(&e.slug),
            _ => None,
        }
    }

    /// One sentence saying what to do next.
    pub fn hint(&self) -> String {
        match self {
            ClientError::Provider(e) => provider_hint(e).to_owned(),
            ClientError::Exhausted { .. } => "the provider kept failing or throttling; check \
                 CARDFORM_API_URL and the network, lower --rate, and re-run (mutations are retried \
                 under the same Idempotency-Key, so nothing is issued or charged twice)"
                .to_owned(),
            ClientError::NoAnswer { .. } => "the host takes connections but does not answer: \
                 is CARDFORM_API_URL the provider's API (not a proxy or another service on that \
                 port)? is the provider up? Raise --request-timeout only for a provider known to \
                 be slow; re-running is safe (same Idempotency-Key)"
                .to_owned(),
            ClientError::Unreachable { .. } => "is CARDFORM_API_URL right (scheme, host, port)? \
                 is the provider reachable from here (network, VPN, proxy, firewall)?"
                .to_owned(),
            ClientError::Fatal(m) if m.starts_with(UNDECRYPTABLE) => SECRET_HINT.to_owned(),
            ClientError::Fatal(_) => "this is not transient; check CARDFORM_API_URL, \
                 CARDFORM_API_KEY and CARDFORM_API_SECRET, or report a cardform bug"
                .to_owned(),
        }
    }

    /// Whether trying again later (same request, same key) could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Provider(e) => e.slug == slug::RATE_LIMITED || e.http_status >= 500,
            ClientError::Exhausted { .. } | ClientError::NoAnswer { .. } => true,
            ClientError::Unreachable { .. } | ClientError::Fatal(_) => false,
        }
    }
}

const SECRET_HINT: &str = "the api secret does not match the provider's: check CARDFORM_API_SECRET";
const CLOCK_HINT: &str = "the provider rejected the request timestamp: the system clock must be \
     within ±30 s of real time (check NTP / time sync)";

/// The hint travels as miette's `help`, the way every error's does at the edge; the provider's
/// slug is the code.
impl miette::Diagnostic for ClientError {
    fn code<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        match self {
            ClientError::Provider(e) => Some(Box::new(format!("provider::{}", e.slug))),
            _ => None,
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        let hint = self.hint();
        (!hint.is_empty()).then(|| Box::new(hint) as Box<dyn std::fmt::Display>)
    }
}

fn provider_hint(e: &ProviderError) -> &'static str {
    let msg = e.message.to_ascii_lowercase();
    match e.slug.as_str() {
        slug::PROJECT_NOT_FOUND => {
            "the provider does not know this API key: check CARDFORM_API_KEY"
        }
        // The reference does not name the slug for an undecryptable request; a message about
        // decryption under any slug points at the secret.
        _ if msg.contains("decrypt") => SECRET_HINT,
        slug::INVALID_REQUEST if msg.contains("timestamp") || msg.contains("clock") => CLOCK_HINT,
        other => hint_for_slug(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(slug: &str, message: &str, status: u16) -> ClientError {
        ClientError::Provider(ProviderError {
            slug: slug.into(),
            message: message.into(),
            http_status: status,
            kyc_status: None,
        })
    }

    #[test]
    fn hints_name_the_setting_to_fix() {
        assert!(
            provider("project_not_found", "no such project", 401)
                .hint()
                .contains("CARDFORM_API_KEY")
        );
        assert!(
            provider("invalid_request", "request_timestamp outside window", 400)
                .hint()
                .contains("NTP")
        );
        assert!(
            !provider("invalid_request", "missing field card_id", 400)
                .hint()
                .contains("NTP")
        );
        assert!(
            provider("invalid_request", "body could not be decrypted", 400)
                .hint()
                .contains("CARDFORM_API_SECRET")
        );
        assert!(
            ClientError::Fatal(format!("{UNDECRYPTABLE}: x"))
                .hint()
                .contains("CARDFORM_API_SECRET")
        );
        assert!(
            !ClientError::Fatal("bad url".into())
                .hint()
                .starts_with("the api secret")
        );
        assert_eq!(
            provider("insufficient_funds", "", 402).hint(),
            hint_for_slug("insufficient_funds")
        );
    }

    #[test]
    fn slug_and_retryability() {
        let e = provider("card_not_found", "gone", 404);
        assert_eq!(e.slug(), Some("card_not_found"));
        assert!(!e.is_retryable());
        assert!(provider("rate_limited", "", 429).is_retryable());
        assert!(provider("provider_error", "", 502).is_retryable());
        assert_eq!(provider("", "x", 400).slug(), None);
        let ex = ClientError::Exhausted {
            endpoint: "cards/create",
            attempts: 3,
            last: "HTTP 503".into(),
        };
        assert!(ex.is_retryable());
        assert_eq!(ex.slug(), None);
        assert!(!ClientError::Fatal("x".into()).is_retryable());
    }
}
