//! The one way a command uses state. Writers go through [`write`], like a transaction guard: open
//! (upgrading an older schema and saying so; creating a state only with `--sandbox`) → lock → runs
//! → release, however the work ends (apply, refresh, import, state rm, state migrate); no command
//! takes or releases the lock by hand. Readers go through [`reading`], which closes the state
//! after, so a file is left whole. Only `init` creates a state (and upgrades one) by itself.
//! Whatever is at the state's location and is not a state (an empty file, another database) is
//! refused by both, before anything is sent.
//! Writers that talk to a provider go through [`write_for`], which refuses a state recorded for
//! another provider and records the provider in a state that has none yet.

use std::time::Duration;

use super::CliError;
use super::settings::Global;
use crate::model::provider::{Binding, ProviderId};
use crate::state::{LockInfo, StateError, Store};

/// A locked, open state. Lives only inside [`write`].
pub struct Session {
    store: Store,
    lock: LockInfo,
    /// The provider a state that records none adopts at this session's first run: not before,
    /// so a first apply that never reached its provider (a mistyped URL) binds the state to
    /// nothing.
    adopt: std::sync::Mutex<Option<ProviderId>>,
}

impl Session {
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn lock(&self) -> &LockInfo {
        &self.lock
    }

    /// One serial: begin a run, do `work`, finish the run with the summary `work` returns, or with
    /// its error (so history shows a failed run as such, never as unfinished).
    pub async fn run<T>(
        &self,
        work: impl AsyncFnOnce(u64) -> Result<(T, serde_json::Value), CliError>,
    ) -> Result<T, CliError> {
        let serial = self.store.begin_run(super::who::run_info()).await?;
        tracing::debug!(target: "cardform::state", serial, "run begun");
        let adopt = self.adopt.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(provider) = adopt {
            self.store.set_provider(provider.as_str()).await?;
        }
        match work(serial).await {
            Ok((value, summary)) => {
                self.store.finish_run(serial, &summary).await?;
                tracing::debug!(target: "cardform::state", serial, "run finished");
                Ok(value)
            }
            Err(e) => {
                let _ = self
                    .store
                    .finish_run(serial, &serde_json::json!({"error": e.to_string()}))
                    .await;
                Err(e)
            }
        }
    }
}

/// Opens the state for writing, takes its lock (waiting up to `wait`), runs `work`, and releases
/// the lock whatever `work` returned.
pub async fn write<T>(
    global: &Global,
    wait: Duration,
    work: impl AsyncFnOnce(&Session) -> Result<T, CliError>,
) -> Result<T, CliError> {
    write_inner(global, wait, None, work).await
}

/// Like [`write`], for a command that talks to `provider`: under the lock, and before `work`
/// sends anything, a state recorded for another provider is refused; a state that records none
/// (new, or older than provider records) adopts `provider` when its first run begins.
pub async fn write_for<T>(
    global: &Global,
    wait: Duration,
    provider: &ProviderId,
    work: impl AsyncFnOnce(&Session) -> Result<T, CliError>,
) -> Result<T, CliError> {
    write_inner(global, wait, Some(provider), work).await
}

async fn write_inner<T>(
    global: &Global,
    wait: Duration,
    provider: Option<&ProviderId>,
    work: impl AsyncFnOnce(&Session) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let store = open(global).await?;
    let lock = super::who::acquire_lock(&store, wait).await?;
    tracing::debug!(target: "cardform::state", lock_id = %lock.lock_id, "lock taken");
    let mut session = Session {
        store,
        lock,
        adopt: Default::default(),
    };
    let result = match provider {
        Some(provider) => bind(&session.store, provider).await,
        None => Ok(None),
    };
    let result = match result {
        Ok(adopt) => {
            session.adopt = std::sync::Mutex::new(adopt);
            work(&session).await
        }
        Err(e) => Err(e),
    };
    let released = session.store.release_lock(&session.lock.lock_id).await;
    tracing::debug!(
        target: "cardform::state",
        lock_id = %session.lock.lock_id,
        ok = released.is_ok(),
        "lock released"
    );
    session.store.close().await;
    let value = result?;
    released?;
    Ok(value)
}

/// Checked under the lock, so the provider read is the one the run writes against. The provider
/// to adopt, when the state records none.
async fn bind(store: &Store, provider: &ProviderId) -> Result<Option<ProviderId>, CliError> {
    let recorded = store.provider().await?;
    Ok(
        (super::provider::check(recorded.as_deref(), provider)? == Binding::Adopt)
            .then(|| provider.clone()),
    )
}

/// Opens (upgrading if it must) the state for a writing command; an upgrade is reported on
/// stderr, where it cannot corrupt machine-readable output. A missing state is created only with
/// `--sandbox` (a demo initialises its own); otherwise only `cardform init` creates one, so a
/// runner pointed at the wrong place never starts a new lineage and pays for every card again.
/// Something there that is not a state (an empty file, say) is refused even with `--sandbox`.
pub async fn open(global: &Global) -> Result<Store, CliError> {
    tracing::debug!(target: "cardform::state", location = %global.state, "opening state for writing");
    let store = match Store::open(&global.state).await {
        Err(StateError::Missing { .. }) if global.sandbox => {
            match Store::create(&global.state).await {
                // Another sandbox run created it a moment ago.
                Err(StateError::Exists { .. }) => Store::open(&global.state).await?,
                created => created?,
            }
        }
        Err(StateError::Missing { .. }) => return Err(missing(global)),
        opened => opened?,
    };
    if let Some(up) = store.upgraded() {
        eprintln!("note: {}: {up}.", global.state);
    }
    Ok(store)
}

/// Runs a read-only command's `work` on the state (`None` only with `--sandbox` before its first
/// write) and closes the state after, so a SQLite file is left whole, its WAL checkpointed away.
pub async fn reading<T>(
    global: &Global,
    work: impl AsyncFnOnce(Option<&Store>) -> Result<T, CliError>,
) -> Result<T, CliError> {
    let store = read(global).await?;
    let result = work(store.as_ref()).await;
    if let Some(store) = store {
        store.close().await;
    }
    result
}

/// Like [`reading`], for commands that need a state even with `--sandbox`.
pub async fn reading_required<T>(
    global: &Global,
    work: impl AsyncFnOnce(&Store) -> Result<T, CliError>,
) -> Result<T, CliError> {
    reading(global, async |store: Option<&Store>| match store {
        Some(store) => work(store).await,
        None => Err(CliError::refused(format!(
            "no state at {}: nothing has been applied or imported yet",
            global.state
        ))
        .hint("pass --state PATH to use another")),
    })
    .await
}

/// Opens the state for a read-only command. `None` only with `--sandbox` before its first write
/// (an empty state); otherwise a missing state is an error that says how to make one. The caller
/// closes it: prefer [`reading`].
async fn read(global: &Global) -> Result<Option<Store>, CliError> {
    tracing::debug!(target: "cardform::state", location = %global.state, "opening state for reading");
    match Store::open_existing(&global.state).await? {
        Some(store) => Ok(Some(store)),
        None if global.sandbox => Ok(None),
        None => Err(missing(global)),
    }
}

fn missing(global: &Global) -> CliError {
    CliError::NoState {
        location: global.state.to_string(),
    }
}
