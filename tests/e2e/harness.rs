//! The small harness every CLI test uses: a temp dir with a state file, the built-in sandbox
//! running in-process on a loopback port, and the real `cardform` binary pointed at it.

#![allow(dead_code)]

use assert_cmd::Command;
use cardform::sandbox::{Inspection, SandboxConfig, SandboxHandle};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tempfile::TempDir;

pub struct Env {
    pub dir: TempDir,
    pub sandbox: Option<SandboxHandle>,
    pub rt: tokio::runtime::Runtime,
    pub api_key: String,
    pub api_secret: String,
}

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

    pub fn with(config: SandboxConfig) -> Self {
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
            sandbox: Some(sandbox),
            rt,
            api_key,
            api_secret,
        };
        // What `cardform init` does: a state exists before any command uses it.
        env.rt.block_on(async {
            cardform::state::Store::open(&env.location())
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state/cardform.db")
    }

    /// The state as cardform's library addresses it.
    pub fn location(&self) -> cardform::state::StateLocation {
        cardform::state::StateLocation::file(self.state())
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

    /// The same as [`Env::cardform`], as a plain process to spawn, signal or kill mid-run.
    pub fn process(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cardform"));
        cmd.current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env("CARDFORM_API_URL", self.url())
            .env("CARDFORM_API_KEY", &self.api_key)
            .env("CARDFORM_API_SECRET", &self.api_secret)
            .arg("--state")
            .arg(self.state())
            .args(args);
        cmd
    }

    /// `cardform ARGS` against the sandbox, with this env's state file, no colour.
    pub fn cardform(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("cardform").unwrap();
        cmd.current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("NO_COLOR", "1")
            .env("CARDFORM_API_URL", self.url())
            .env("CARDFORM_API_KEY", &self.api_key)
            .env("CARDFORM_API_SECRET", &self.api_secret)
            .arg("--state")
            .arg(self.state())
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
