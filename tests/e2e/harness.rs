//! The small harness every CLI test uses: a temp dir with an initialised state (a SQLite file, or
//! with [`Env::postgres`] a named state in the test PostgreSQL server), the built-in sandbox
//! running in-process on a loopback port, and the real `cardform` binary pointed at both.

#![allow(dead_code)]

use assert_cmd::Command;
use cardform::sandbox::{Inspection, SandboxConfig, SandboxHandle};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

pub struct Env {
    pub dir: TempDir,
    /// Where the state lives: `None` for the SQLite file `state/cardform.db` in `dir`.
    pub pg_state: Option<String>,
    pub sandbox: Option<SandboxHandle>,
    pub rt: tokio::runtime::Runtime,
    pub api_key: String,
    pub api_secret: String,
}

/// Where a test's state lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named test body (`fn NAME(Backend)`) once per state backend, as `NAME::sqlite` and
/// `NAME::postgres`: the promises hold on every backend, or they do not hold.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => { $(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(crate::harness::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name(crate::harness::Backend::Postgres)
            }
        }
    )* };
}
pub(crate) use on_both_backends;

pub fn fast_sandbox() -> SandboxConfig {
    SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        order_latency: Duration::from_millis(150),
        ..SandboxConfig::default()
    }
}

impl Env {
    pub fn new() -> Self {
        Self::with(fast_sandbox())
    }

    /// Like [`Env::new`], with the state in a fresh database of the test PostgreSQL server.
    pub fn postgres() -> Self {
        Self::with_state(fast_sandbox(), Some(Self::fresh_pg_state()))
    }

    /// An env with its state on `backend`.
    pub fn on(backend: Backend, config: SandboxConfig) -> Self {
        let state = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Self::fresh_pg_state()),
        };
        Self::with_state(config, state)
    }

    /// A named state in a fresh database, as `--state` takes it.
    pub fn fresh_pg_state() -> String {
        format!("{}?state=e2e", crate::pg::server().fresh_database())
    }

    pub fn with(config: SandboxConfig) -> Self {
        Self::with_state(config, None)
    }

    pub fn with_state(config: SandboxConfig, pg_state: Option<String>) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let api_key = config.api_key.clone();
        let api_secret = config.api_secret.expose().to_owned();
        let sandbox = rt.block_on(cardform::sandbox::spawn(config)).unwrap();
        let env = Env {
            dir: tempfile::tempdir().unwrap(),
            pg_state,
            sandbox: Some(sandbox),
            rt,
            api_key,
            api_secret,
        };
        // What `cardform init` does: a state exists before any command uses it.
        env.rt.block_on(async {
            cardform::state::Store::create(&env.location())
                .await
                .unwrap()
                .close()
                .await
        });
        env
    }

    /// An env whose state has not been created (no `cardform init` yet).
    pub fn uninitialised() -> Self {
        let env = Self::new();
        std::fs::remove_dir_all(env.path("state")).unwrap();
        env
    }

    /// What `--state` says for this env.
    pub fn state_arg(&self) -> String {
        match &self.pg_state {
            Some(url) => url.clone(),
            None => self.state().display().to_string(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state/cardform.db")
    }

    /// The state as cardform's library addresses it.
    pub fn location(&self) -> cardform::state::StateLocation {
        cardform::state::StateLocation::parse(&self.state_arg()).unwrap()
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn url(&self) -> String {
        self.sandbox.as_ref().unwrap().base_url()
    }

    /// A provider client for this env's sandbox, to act at the provider behind cardform's back.
    pub fn client(&self) -> cardform::client::Client {
        cardform::client::Client::new(cardform::client::ClientConfig {
            base_url: self.url(),
            api_key: cardform::wire::Secret::new(self.api_key.clone()),
            api_secret: cardform::wire::Secret::new(self.api_secret.clone()),
            ..Default::default()
        })
        .unwrap()
    }

    /// The raw bytes of the state database and its WAL/shared-memory files.
    pub fn state_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let p = PathBuf::from(format!("{}{suffix}", self.state().display()));
            if let Ok(b) = std::fs::read(p) {
                bytes.extend(b);
            }
        }
        bytes
    }

    pub fn inspect(&self) -> Inspection {
        self.sandbox.as_ref().unwrap().inspect()
    }

    /// Starts `cardform ARGS` in the background (no output) and waits until the sandbox has
    /// answered `creates` calls to `cards/create`: an apply caught mid-run, holding the lock.
    pub fn spawn_until_sent(&self, args: &[&str], creates: u64) -> std::process::Child {
        let child = self
            .process(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while self.inspect().calls_to("cards/create") < creates {
            assert!(t0.elapsed() < Duration::from_secs(30), "it never sent");
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }

    /// The same as [`Env::cardform`], as a plain process to spawn, signal or kill mid-run.
    pub fn process(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cardform"));
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("CARDFORM_API_URL", self.url())
            .env("CARDFORM_API_KEY", &self.api_key)
            .env("CARDFORM_API_SECRET", &self.api_secret)
            .arg("--state")
            .arg(self.state_arg())
            .args(args);
        cmd
    }

    /// `cardform ARGS` against the sandbox, with this env's state, no colour.
    pub fn cardform(&self, args: &[&str]) -> Command {
        self.cardform_at(&self.state_arg(), args)
    }

    /// `cardform ARGS` against the sandbox with `--state STATE`, no colour.
    pub fn cardform_at(&self, state: &str, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("cardform").unwrap();
        cmd.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("CARDFORM_API_URL", self.url())
            .env("CARDFORM_API_KEY", &self.api_key)
            .env("CARDFORM_API_SECRET", &self.api_secret)
            .arg("--state")
            .arg(state)
            .args(args)
            .timeout(Duration::from_secs(120));
        cmd
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(s) = self.sandbox.take() {
            self.rt.block_on(s.shutdown());
        }
    }
}

/// A card (user u-3001, VISA_USD_STD) whose issue order is in the journal as a killed apply
/// leaves it: journalled under `idempotency_key`, acknowledged when `order_id` is given.
pub fn journal_open_issue(env: &Env, key: &str, idempotency_key: &str, order_id: Option<&str>) {
    let now = "2025-01-01T00:00:00Z".to_owned();
    let card = cardform::state::CardRecord {
        key: key.into(),
        external_user_id: "u-3001".into(),
        product_code: "VISA_USD_STD".into(),
        initial_topup: None,
        desired_status: Default::default(),
        labels: cardform::decl::Labels::new(),
        card_id: None,
        phase: cardform::state::CardPhase::Pending,
        provider_status: None,
        last4: None,
        charged: rust_decimal::Decimal::ZERO,
        attempt: 1,
        replaced_by: None,
        balance: None,
        created_at: now.as_str().into(),
        updated_at: now.into(),
    };
    journal_by_hand(
        env,
        |_| {
            let mut order = issue_order(
                key,
                idempotency_key,
                r#"{"product_code":"VISA_USD_STD","external_user_id":"u-3001"}"#,
            );
            order.phase = if order_id.is_some() {
                cardform::state::OrderPhase::Open
            } else {
                cardform::state::OrderPhase::Prepared
            };
            order.order_id = order_id.map(str::to_owned);
            order
        },
        Some(card),
    );
}

/// Attempt 1 of card `key`'s issue order as journaled, before any answer.
pub fn issue_order(
    key: &str,
    idempotency_key: &str,
    request: &str,
) -> cardform::state::OrderRecord {
    let now = "2025-01-01T00:00:00Z".to_owned();
    cardform::state::OrderRecord {
        idempotency_key: idempotency_key.to_owned(),
        address: cardform::model::Address::card(key),
        kind: cardform::state::OrderKind::Issue,
        attempt: 1,
        request: request.into(),
        phase: cardform::state::OrderPhase::Prepared,
        order_id: None,
        provider_status: None,
        sub_status: None,
        error_slug: None,
        error_message: None,
        estimated_charge: None,
        charge: None,
        refunded: None,
        created_at: now.clone(),
        updated_at: now,
        sent_serial: None,
    }
}

/// Writes what a run of another cardform left behind: the order `order` makes from the state's
/// lineage, journaled and recorded with `card`, in a run of its own.
pub fn journal_by_hand(
    env: &Env,
    order: impl FnOnce(&str) -> cardform::state::OrderRecord,
    card: Option<cardform::state::CardRecord>,
) {
    env.rt.block_on(async {
        let store = cardform::state::Store::open(&env.location()).await.unwrap();
        let order = order(&store.lineage().await.unwrap());
        let serial = store
            .begin_run(cardform::state::RunInfo {
                command: "test setup".into(),
                user: "test".into(),
                host: "test".into(),
                at: "2025-01-01T00:00:00Z".into(),
            })
            .await
            .unwrap();
        store.journal_order(serial, &order).await.unwrap();
        store
            .record(serial, Some(&order), card.as_ref())
            .await
            .unwrap();
        store
            .finish_run(serial, &serde_json::json!({}))
            .await
            .unwrap();
        store.close().await;
    });
}

/// Exit code 0, or fail showing everything the command printed.
pub fn assert_success(out: &std::process::Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(out),
        stderr(out)
    );
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Replace the temp dir and anything time-, port- or id-dependent, for snapshots.
pub fn scrub(text: &str, dir: &Path) -> String {
    text.replace(&dir.display().to_string(), "[TMP]")
}

pub const ONBOARDING: &str = r#"version: 1
defaults:
  product_code: VISA_USD_STD
cards:
  - key: alice-travel
    external_user_id: u-1001
    initial_topup: "50.00"
    labels: {team: travel}
  - key: bob-ops
    external_user_id: u-1002
  - key: carol-premium
    external_user_id: u-1003
    product_code: MC_EUR_PREMIUM
    initial_topup: 100
    status: frozen
"#;
