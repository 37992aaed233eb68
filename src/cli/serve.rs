//! `cardform serve`: its settings, resolved once from the flags, the environment and
//! `cardform.toml`'s `[serve]` table (flags win) and checked before anything starts; then the
//! state, the provider and the token handed to `crate::serve`, which runs until SIGTERM.
//!
//! Owns the refusals that keep `serve` from starting wrong (no or a short token, a SQLite
//! state); owns nothing of the service itself.

use std::time::Duration;

use super::args::ServeArgs;
use super::project::ServeTable;
use super::provider::Provider;
use super::settings::{self, Global, Source, parse_amount};
use super::{CliError, Outcome};
use crate::serve::{self, Config, MIN_TOKEN_CHARS, Shared};
use crate::state::StateLocation;
use crate::wire::Secret;

/// The token every protected route wants.
pub const ENV_TOKEN: &str = "CARDFORM_SERVE_TOKEN";

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_INTERVAL: &str = "5m";
const DEFAULT_DRAIN_TIMEOUT: &str = "30s";
/// A look at every card costs one provider read each: often enough to notice drift within the
/// quarter hour, rarely enough to leave most of the rate to reconciles.
const DEFAULT_DRIFT_INTERVAL: &str = "15m";
/// How often a standby asks for the lock: a dead leader's successor takes over within ~10 s.
const LOCK_EVERY: Duration = Duration::from_secs(2);
/// How often the declarations are looked at for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// Everything `serve` runs with, resolved and checked.
struct Settings {
    config: Config,
    token: Secret,
    rate: Option<f64>,
}

impl Settings {
    fn resolve(args: &ServeArgs, global: &Global) -> Result<Self, CliError> {
        let token = token(settings::env_var(ENV_TOKEN))?;
        if let StateLocation::File(path) = &global.state {
            return Err(CliError::Usage(format!(
                "serve needs a PostgreSQL state (--state postgres://…), not the SQLite file {}: \
                 replicas coordinate through PostgreSQL's lock, and a SQLite file is one host's",
                path.display()
            )));
        }
        let own = Own::resolve(args, global)?;
        let files = global.files(&args.files).map_err(|_| {
            CliError::Usage(
                "nothing to reconcile: pass -f DIR (repeatable), or list the declarations as \
                 `files = [\"cards/\"]` in cardform.toml"
                    .into(),
            )
        })?;
        let rate = global.rate(args.rate)?.map(|(r, _)| r);
        let config = Config {
            listen: own.listen,
            files,
            public_url: own.public_url,
            interval: own.interval,
            drift_every: own.drift_every,
            drain_timeout: own.drain_timeout,
            watch_every: WATCH_EVERY,
            lock_every: LOCK_EVERY,
            prune: args.prune,
            max_prune: global.max_prune(args.max_prune.as_deref())?.0,
            max_fees: parse_amount("--max-fees", args.max_fees.as_deref())?,
            max_fees_per_day: own.max_fees_per_day,
            max_failure_rate: global.max_failure_rate(args.max_failure_rate.as_deref())?.0,
            parallelism: global.parallelism(args.parallelism, rate)?.0,
            lock_request: super::who::lock_request(),
            run_info: super::who::run_info(),
            provider_id: super::provider::identity(global)?,
        };
        Ok(Settings {
            config,
            token,
            rate,
        })
    }
}

/// The settings only `serve` has: flag, else `[serve]` in cardform.toml, else the default.
struct Own {
    listen: std::net::SocketAddr,
    interval: Duration,
    drain_timeout: Duration,
    drift_every: Option<Duration>,
    public_url: Option<String>,
    max_fees_per_day: Option<rust_decimal::Decimal>,
}

/// `serve`'s own settings: the key in `[serve]` (also the name `cardform config` shows), the
/// flag, the default ("": none).
const OWN: [(&str, &str, &str); 6] = [
    ("listen", "--listen", DEFAULT_LISTEN),
    ("public_url", "--public-url", ""),
    ("interval", "--interval", DEFAULT_INTERVAL),
    ("drain_timeout", "--drain-timeout", DEFAULT_DRAIN_TIMEOUT),
    ("drift_interval", "--drift-interval", DEFAULT_DRIFT_INTERVAL),
    ("max_fees_per_day", "--max-fees-per-day", ""),
];

/// The flag of each of [`OWN`], as `args` gives it.
fn flag_of<'a>(args: &'a ServeArgs, key: &str) -> Option<&'a String> {
    match key {
        "listen" => args.listen.as_ref(),
        "public_url" => args.public_url.as_ref(),
        "interval" => args.interval.as_ref(),
        "drain_timeout" => args.drain_timeout.as_ref(),
        "drift_interval" => args.drift_interval.as_ref(),
        _ => args.max_fees_per_day.as_ref(),
    }
}

fn in_table(table: &ServeTable, key: &str) -> Option<String> {
    match key {
        "listen" => table.listen.clone(),
        "public_url" => table.public_url.clone(),
        "interval" => table.interval.clone(),
        "drain_timeout" => table.drain_timeout.clone(),
        "drift_interval" => table.drift_interval.clone(),
        _ => table.max_fees_per_day.clone(),
    }
}

/// Setting `key` of [`OWN`] as given, with where it came from: the flag, else `[serve]` in
/// cardform.toml, else the default ("" when there is none).
fn own_setting(flag: Option<&String>, key: &str, global: &Global) -> (String, Source) {
    let (_, flag_name, default) = OWN
        .iter()
        .find(|(k, ..)| *k == key)
        .copied()
        .unwrap_or(("", "", ""));
    if let Some(v) = flag {
        return (v.clone(), Source::Flag(flag_name));
    }
    let project = global.project.as_ref();
    match project.and_then(|p| in_table(&p.serve, key).map(|v| (p, v))) {
        Some((p, v)) => (v, Source::File(p.at(key))),
        None => (default.to_owned(), Source::Default),
    }
}

/// `serve`'s own settings as `cardform config` shows them: key, value, source.
pub(super) fn shown(global: &Global) -> Vec<(&'static str, String, Source)> {
    OWN.iter()
        .map(|(key, ..)| {
            let (raw, source) = own_setting(None, key, global);
            let value = match (raw.is_empty(), *key) {
                (false, _) => raw,
                (true, "max_fees_per_day") => "(no budget)".to_owned(),
                (true, _) => "(none)".to_owned(),
            };
            (*key, value, source)
        })
        .collect()
}

impl Own {
    fn resolve(args: &ServeArgs, global: &Global) -> Result<Self, CliError> {
        // The value, and the name an error should give it (the flag, or the file and key).
        let pick = |key: &str| {
            let (raw, source) = own_setting(flag_of(args, key), key, global);
            let from = match &source {
                Source::File(at) => format!("{at}: [serve] {key}"),
                _ => format!("--{}", key.replace('_', "-")),
            };
            (raw, from)
        };
        let (raw, from) = pick("listen");
        let listen = raw.parse().map_err(|_| {
            CliError::Usage(format!(
                "{from} {raw:?}: expected an address and port, e.g. 0.0.0.0:8080"
            ))
        })?;
        let (raw, from) = pick("interval");
        let interval = settings::parse_duration(&from, &raw)?;
        if interval < Duration::from_secs(1) {
            return Err(CliError::Usage(format!("{from}: must be at least 1s")));
        }
        let (raw, from) = pick("drain_timeout");
        let drain_timeout = settings::parse_duration(&from, &raw)?;
        let (raw, from) = pick("drift_interval");
        let drift_every = match raw.trim() {
            "off" | "0" => None,
            raw => Some(settings::parse_duration(&from, raw)?),
        };
        let (public_url, from) = pick("public_url");
        let public_url = (!public_url.is_empty()).then_some(public_url);
        if let Some(url) = &public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(CliError::Usage(format!(
                "{from} {url:?}: expected an http:// or https:// URL"
            )));
        }
        let (raw, from) = pick("max_fees_per_day");
        let max_fees_per_day = parse_amount(&from, (!raw.is_empty()).then_some(raw.as_str()))?;
        Ok(Own {
            listen,
            interval,
            drain_timeout,
            drift_every,
            public_url,
            max_fees_per_day,
        })
    }
}

/// `CARDFORM_SERVE_TOKEN`, required and long enough.
fn token(value: Option<String>) -> Result<Secret, CliError> {
    let Some(token) = value.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else {
        return Err(CliError::Usage(format!(
            "{ENV_TOKEN} is not set: serve refuses to answer HTTP without a token (set it to a \
             random string of at least {MIN_TOKEN_CHARS} characters, e.g. `openssl rand -hex 32`)"
        )));
    };
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(CliError::Usage(format!(
            "{ENV_TOKEN} is too short ({} characters): use at least {MIN_TOKEN_CHARS}, e.g. \
             `openssl rand -hex 32`",
            token.chars().count()
        )));
    }
    Ok(Secret::new(token))
}

pub async fn run(args: &ServeArgs, global: &Global) -> Result<Outcome, CliError> {
    let Settings {
        config,
        token,
        rate,
    } = Settings::resolve(args, global)?;
    let store = super::session::open(global).await?;
    let provider = Provider::connect(global, rate).await?;
    let check = serve::webhook::Check::of_client(&provider.client);
    let shared = std::sync::Arc::new(
        Shared::new(store, provider.client.clone(), token).with_webhooks(check),
    );
    let result = serve::run(shared.clone(), config).await;
    provider.shutdown().await;
    if let Ok(shared) = std::sync::Arc::try_unwrap(shared) {
        shared.store.close().await;
    }
    result.map_err(|e| CliError::refused(e.to_string()))?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_required_and_long() {
        assert!(token(None).is_err());
        assert!(token(Some("  ".into())).is_err());
        let short = token(Some("short-token".into())).unwrap_err().to_string();
        assert!(
            short.contains("too short") && !short.contains("short-token"),
            "{short}"
        );
        assert!(token(Some("0123456789abcdef".into())).is_ok());
    }
}
