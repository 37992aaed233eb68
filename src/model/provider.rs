//! Which provider a state belongs to, and the rule that keeps it there. A state's cards, orders
//! and money only mean something at the provider that issued them, so a state records the
//! provider it was first written for: the built-in sandbox ([`ProviderId::SANDBOX`]), or the
//! origin of the API URL (`scheme://host[:port]`, lower-cased, the default port left out; never
//! a path, userinfo, query or anything else that might hold a credential). A run against another
//! provider is refused ([`Binding::Other`]); a state that records none adopts the first writer's.

use std::fmt;

/// A provider's identity, as a state records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProviderId(String);

/// Why an API URL gives no provider identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderIdError {
    #[error("expected an http:// or https:// URL")]
    Scheme,
    #[error("the URL names no host")]
    NoHost,
}

impl ProviderId {
    /// The built-in sandbox (`--sandbox`), whatever port it happens to listen on.
    pub const SANDBOX: &'static str = "sandbox";

    pub fn sandbox() -> Self {
        ProviderId(Self::SANDBOX.to_owned())
    }

    /// The origin of an API URL: `HTTPS://Key:Secret@API.Example.com:443/v1?k=s` is
    /// `https://api.example.com`. Userinfo, path, query and fragment are dropped, never kept.
    pub fn from_api_url(url: &str) -> Result<Self, ProviderIdError> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or(ProviderIdError::Scheme)?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => "443",
            "http" => "80",
            _ => return Err(ProviderIdError::Scheme),
        };
        let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
        // Userinfo ends at the last '@' of the authority: everything before it is dropped.
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        // A port follows the last ':' unless that ':' is inside an IPv6 literal ([::1]).
        let (host, port) = match host_port.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (host_port, None),
        };
        if host.is_empty() {
            return Err(ProviderIdError::NoHost);
        }
        let host = host.to_ascii_lowercase();
        Ok(ProviderId(match port {
            Some(p) if !p.is_empty() && p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a run's provider stands to the one its state records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    /// The state belongs to this provider.
    Same,
    /// The state records none yet (new, or written before providers were recorded): it adopts
    /// this run's provider at the run's first write.
    Adopt,
    /// The state belongs to another provider, named here: the run must be refused.
    Other(String),
}

/// The rule: a run may use a state that records its provider, or none.
pub fn binding(recorded: Option<&str>, current: &ProviderId) -> Binding {
    match recorded {
        None => Binding::Adopt,
        Some(r) if r == current.as_str() => Binding::Same,
        Some(r) => Binding::Other(r.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(url: &str) -> String {
        ProviderId::from_api_url(url).unwrap().to_string()
    }

    #[test]
    fn the_origin_of_an_api_url() {
        assert_eq!(id("https://api.example.com"), "https://api.example.com");
        assert_eq!(id("HTTPS://API.Example.COM/v1/"), "https://api.example.com");
        assert_eq!(
            id("https://api.example.com:443/x"),
            "https://api.example.com"
        );
        assert_eq!(id("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
        assert_eq!(id("http://localhost:80"), "http://localhost");
        assert_eq!(id("http://[::1]:9000/api"), "http://[::1]:9000");
        assert_eq!(id("http://[::1]"), "http://[::1]");
        assert_eq!(id(" https://h.example?x=1#f "), "https://h.example");
    }

    #[test]
    fn never_a_credential() {
        let got = id("https://key:s3cr3t@api.example.com:8443/path?api_secret=s3cr3t");
        assert_eq!(got, "https://api.example.com:8443");
        assert!(!got.contains("s3cr3t") && !got.contains("key"));
    }

    #[test]
    fn not_an_api_url() {
        assert_eq!(
            ProviderId::from_api_url("api.example.com"),
            Err(ProviderIdError::Scheme)
        );
        assert_eq!(
            ProviderId::from_api_url("ftp://api.example.com"),
            Err(ProviderIdError::Scheme)
        );
        assert_eq!(
            ProviderId::from_api_url("https:///v1"),
            Err(ProviderIdError::NoHost)
        );
    }

    #[test]
    fn the_rule() {
        let sandbox = ProviderId::sandbox();
        assert_eq!(binding(None, &sandbox), Binding::Adopt);
        assert_eq!(binding(Some("sandbox"), &sandbox), Binding::Same);
        let real = ProviderId::from_api_url("https://api.example.com").unwrap();
        assert_eq!(
            binding(Some("sandbox"), &real),
            Binding::Other("sandbox".into())
        );
        assert_eq!(
            binding(Some("https://api.example.com"), &real),
            Binding::Same
        );
        // Another port is another provider (two sandboxes side by side are two worlds).
        let other_port = ProviderId::from_api_url("https://api.example.com:8443").unwrap();
        assert!(matches!(
            binding(Some(real.as_str()), &other_port),
            Binding::Other(_)
        ));
    }
}
