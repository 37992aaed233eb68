//! Which provider a command talks to: the real one from `CARDFORM_API_*`, or the built-in sandbox
//! started in-process (`--sandbox`), whose world persists beside the sandbox state. Also which
//! provider that is, as a state records it ([`identity`]), and the refusal of a state recorded
//! for another ([`check`]; the rule itself is `crate::model::provider`).

use rust_decimal::Decimal;

use super::CliError;
use super::sandbox_settings::{self, ENV_SANDBOX};
use super::settings::Global;
use crate::client::{Client, ClientConfig, ClientError};
use crate::model::provider::{self as rule, Binding, ProviderId};
use crate::plan::ProviderFacts;
use crate::sandbox::{self, SandboxConfig, SandboxHandle};
use crate::wire::Secret;

pub const ENV_URL: &str = "CARDFORM_API_URL";
pub const ENV_KEY: &str = "CARDFORM_API_KEY";
pub const ENV_SECRET: &str = "CARDFORM_API_SECRET";

pub struct Provider {
    pub client: Client,
    /// The identity a state records for it.
    pub id: ProviderId,
    sandbox: Option<SandboxHandle>,
}

/// The provider this run would talk to, as a state records it, without connecting: the sandbox
/// with `--sandbox`, else the origin of `CARDFORM_API_URL`.
pub fn identity(global: &Global) -> Result<ProviderId, CliError> {
    if global.sandbox {
        return Ok(ProviderId::sandbox());
    }
    // `CARDFORM_API_URL`, else `api_url` in cardform.toml (resolved in settings).
    let Some((url, source)) = &global.api_url else {
        return Err(CliError::NoProvider);
    };
    ProviderId::from_api_url(url).map_err(|e| {
        // The URL itself is not shown: a mistyped one may hold a key.
        CliError::Usage(format!(
            "{source} is not a provider's API URL: {e} (e.g. https://api.example.com)"
        ))
    })
}

/// Refuses a state that belongs to another provider than `current`, before anything is sent.
/// `recorded` is what the state says (`None`: nothing yet, the state adopts `current`).
pub fn check(recorded: Option<&str>, current: &ProviderId) -> Result<Binding, CliError> {
    match rule::binding(recorded, current) {
        Binding::Other(recorded) => Err(CliError::OtherProvider {
            recorded,
            current: current.to_string(),
        }),
        fine => Ok(fine),
    }
}

impl Provider {
    pub async fn connect(global: &Global, rate: Option<f64>) -> Result<Provider, CliError> {
        if global.sandbox {
            return Self::sandbox(global, rate).await;
        }
        sandbox_settings::tell_ignored();
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let url = global.api_url.as_ref().map(|(u, _)| u.clone());
        let (key, secret) = (var(ENV_KEY), var(ENV_SECRET));
        let missing: Vec<&str> = [(ENV_URL, &url), (ENV_KEY, &key), (ENV_SECRET, &secret)]
            .into_iter()
            .filter(|(_, v)| v.is_none())
            .map(|(name, _)| name)
            .collect();
        let (Some(url), Some(key), Some(secret)) = (url, key, secret) else {
            if missing.len() == 3 {
                return Err(CliError::NoProvider);
            }
            // Some are set: the user meant a real provider and forgot the rest.
            return Err(CliError::Usage(format!(
                "{} not set ({} set): a real provider needs all three of {ENV_URL}, {ENV_KEY} \
                 and {ENV_SECRET} (or pass --sandbox to try the built-in sandbox)",
                missing.join(" and "),
                [ENV_URL, ENV_KEY, ENV_SECRET]
                    .into_iter()
                    .filter(|n| !missing.contains(n))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            // Named where it was written: CARDFORM_API_URL, or api_url in cardform.toml.
            let from = global
                .api_url
                .as_ref()
                .map_or_else(|| ENV_URL.to_owned(), |(_, source)| source.to_string());
            return Err(CliError::Usage(format!(
                "{from}: {url:?} has no scheme: write it as https://{url} (or http:// for a \
                 local sandbox)"
            )));
        }
        let id = identity(global)?;
        let client = Client::new(ClientConfig {
            base_url: url.trim_end_matches('/').to_owned(),
            api_key: Secret::new(key),
            api_secret: Secret::new(secret),
            rate,
            give_up_after: global.request_timeout,
            ..ClientConfig::default()
        })?;
        tell_waits(&client);
        Ok(Provider {
            client,
            id,
            sandbox: None,
        })
    }

    async fn sandbox(global: &Global, rate: Option<f64>) -> Result<Provider, CliError> {
        let world = global.sandbox_world();
        if let Some(dir) = world.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir.display(), e))?;
        }
        // Balance and faults from CARDFORM_SANDBOX (defaults when unset); where it listens and
        // keeps its world are this run's to say.
        let settings = sandbox_settings::from_env()?;
        let config = SandboxConfig {
            listen: "127.0.0.1:0".parse().expect("valid loopback address"),
            world_file: Some(world),
            // It lives and dies with this cardform process: a kill -9 must lose nothing.
            durable: true,
            ..settings.config
        };
        let api_key = Secret::new(config.api_key.clone());
        let api_secret = config.api_secret.clone();
        let handle = sandbox::spawn(config)
            .await
            .map_err(|e| CliError::refused(format!("cannot start the sandbox: {e}")))?;
        // A saved world keeps its own balance; a larger --balance is paid in on top, so the
        // setting works on the world a user already has.
        let deposited = settings.balance.map(|b| handle.deposit_up_to(b));
        if !settings.shown.is_empty() {
            eprintln!(
                "note: {}",
                tell_settings(&settings.shown, deposited, &handle)
            );
        }
        let client = Client::new(ClientConfig {
            base_url: handle.base_url(),
            api_key,
            api_secret,
            rate,
            give_up_after: global.request_timeout,
            ..ClientConfig::default()
        })?;
        tell_waits(&client);
        Ok(Provider {
            client,
            id: ProviderId::sandbox(),
            sandbox: Some(handle),
        })
    }

    /// Products and balance, fetched once per plan (concurrently).
    pub async fn facts(&self) -> Result<ProviderFacts, ClientError> {
        crate::serve::apply::facts(&self.client).await
    }

    /// Stop the in-process sandbox (saving its world). A real provider needs nothing.
    pub async fn shutdown(self) {
        if let Some(h) = self.sandbox {
            h.shutdown().await;
        }
    }
}

/// The one line saying the in-process sandbox is not the default one: the flags of
/// `CARDFORM_SANDBOX`, and what `--balance` did to a saved world.
fn tell_settings(shown: &[String], deposited: Option<Decimal>, handle: &SandboxHandle) -> String {
    let balance = handle.inspect().balance;
    let money = match deposited {
        Some(d) if d > Decimal::ZERO => {
            format!(" (deposited {d} USDT: the master balance is now {balance} USDT)")
        }
        Some(_) => format!(" (the master balance is {balance} USDT)"),
        None => String::new(),
    };
    crate::render::safe(&format!(
        "the sandbox runs with {ENV_SANDBOX}=\"{}\"{money}",
        shown.join(" ")
    ))
    .into_owned()
}

/// Every wait of the client longer than a few seconds is a plain line on stderr, so a run is
/// never silent: a request with no answer yet, a provider's `Retry-After`.
fn tell_waits(client: &Client) {
    client.on_wait(std::sync::Arc::new(|wait: &crate::client::Wait| {
        eprintln!("note: {}", crate::render::safe(&wait.to_string()));
    }));
}
