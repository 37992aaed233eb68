//! Leadership through the state lock: a standby asks for the lock every few seconds; the holder
//! leads (reconciles on every trigger, and as soon as it sees a plan newly approved from another
//! process) until it is told to stop or finds its lock gone, and then stands by again. PostgreSQL frees the lock with its holder's session, so a leader killed with
//! `kill -9` is replaced within a few seconds; fencing refuses any write of a leader whose lock
//! was taken over, and such a leader steps down at once, never spending more.
//!
//! Owns `counters.leader`; never reads the declarations or plans (that is `reconcile`).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use super::{Config, Shared, State, log, reconcile};
use crate::exec::StopFlag;
use crate::state::{LockInfo, StateError};

/// Stands by and leads, by turns, until `stopping` says so; the lock is released on the way out.
pub async fn run(shared: State, config: Config, mut stopping: watch::Receiver<bool>) {
    loop {
        shared.counters.leader.store(false, Ordering::Relaxed);
        let Some(lock) = stand_by(&shared, &config, &mut stopping).await else {
            return;
        };
        shared.counters.leader.store(true, Ordering::Relaxed);
        log::info("leading", json!({"lock_id": lock.lock_id}));
        let end = lead(&shared, &config, &lock, stopping.clone()).await;
        super::webhook::stop_leading(&shared).await;
        shared.counters.leader.store(false, Ordering::Relaxed);
        // Released whether lost or not: a lost lock's row belongs to the new holder and is left
        // alone (the release removes only this lock's row), and the fence is cleared.
        let _ = shared.store.release_lock(&lock.lock_id).await;
        match end {
            End::Stopping => {
                log::info("lock released", json!({"lock_id": lock.lock_id}));
                return;
            }
            End::LockLost => {
                log::warn(
                    "lock lost: standing by, spending nothing more",
                    json!({"lock_id": lock.lock_id}),
                );
                // A replica that just lost the lock asks again only after every standby (asking
                // each `lock_every`) had its turn: the one that took over, or the one that saw
                // our session die, leads, instead of this one taking the lock straight back.
                tokio::select! {
                    _ = tokio::time::sleep(config.lock_every * 2) => {}
                    _ = stopped(&mut stopping) => return,
                }
            }
        }
    }
}

/// Asks for the lock every `lock_every` until it is this replica's (`None`: told to stop first).
async fn stand_by(
    shared: &Shared,
    config: &Config,
    stopping: &mut watch::Receiver<bool>,
) -> Option<LockInfo> {
    let mut told = false;
    loop {
        if *stopping.borrow() {
            return None;
        }
        match shared
            .store
            .acquire_lock(config.lock_request.clone(), Duration::ZERO)
            .await
        {
            Ok(lock) => match check_provider(shared, config).await {
                Ok(()) => return Some(lock),
                Err(e) => {
                    let _ = shared.store.release_lock(&lock.lock_id).await;
                    log::error("cannot lead", json!({"error": e.to_string()}));
                }
            },
            Err(StateError::Locked(holder)) if !told => {
                told = true;
                log::info(
                    "standing by",
                    json!({"leader_lock_id": holder.lock_id, "leader_host": holder.host, "leader_pid": holder.pid}),
                );
            }
            Err(StateError::Locked(_)) => {}
            Err(e) => log::warn("cannot ask for the lock", json!({"error": e.to_string()})),
        }
        tokio::select! {
            _ = tokio::time::sleep(config.lock_every) => {}
            _ = stopped(stopping) => return None,
        }
    }
}

/// A state recorded for another provider is never led: its cards are not this provider's.
async fn check_provider(shared: &Shared, config: &Config) -> Result<(), StateError> {
    let recorded = shared.store.provider().await?;
    match crate::model::provider::binding(recorded.as_deref(), &config.provider_id) {
        crate::model::provider::Binding::Other(other) => Err(StateError::NotFound(format!(
            "the state belongs to provider {other}, not {}",
            config.provider_id
        ))),
        _ => Ok(()),
    }
}

enum End {
    Stopping,
    LockLost,
}

/// Leads under `lock`: reconciles at once (resuming open orders), then on every trigger and
/// interval, checking between runs that the lock is still this replica's.
async fn lead(
    shared: &Shared,
    config: &Config,
    lock: &LockInfo,
    mut stopping: watch::Receiver<bool>,
) -> End {
    let mut interval = tokio::time::interval(config.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut check = tokio::time::interval(config.lock_every);
    check.tick().await;
    let mut approved = std::collections::BTreeSet::new();
    // The first look one interval after leading: the reconcile a new leader owes comes first.
    let mut drift = config.drift_every.map(|every| {
        let mut i = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        i
    });
    // The first tick of `interval` is now: the reconcile a new leader owes.
    loop {
        tokio::select! {
            biased;
            _ = stopped(&mut stopping) => return End::Stopping,
            _ = check.tick() => {
                if !still_held(shared, lock).await {
                    return End::LockLost;
                }
                if newly_approved(shared, &mut approved).await {
                    shared.trigger.ask();
                }
                continue;
            }
            _ = async { match drift.as_mut() {
                Some(i) => { i.tick().await; }
                None => std::future::pending::<()>().await,
            } } => {
                tokio::select! {
                    _ = super::drift::look(shared, config) => {}
                    _ = stopped(&mut stopping) => return End::Stopping,
                }
                continue;
            }
            _ = interval.tick() => {}
            _ = shared.trigger.asked() => {}
        }
        let stop = StopFlag::default();
        let run = reconcile::counted(shared, config, stop.clone());
        tokio::pin!(run);
        let result = tokio::select! {
            r = &mut run => r,
            _ = stopped(&mut stopping) => {
                // Start nothing new; let what is in flight settle, for up to the drain timeout.
                // Orders still open then stay in the journal for the next leader to resume.
                stop.stop();
                if tokio::time::timeout(config.drain_timeout, run).await.is_err() {
                    log::warn(
                        "drain timed out: orders still in flight are left open in the journal",
                        json!({"drain_timeout_secs": config.drain_timeout.as_secs()}),
                    );
                }
                return End::Stopping;
            }
        };
        if result
            .as_ref()
            .is_err_and(reconcile::ReconcileError::lock_lost)
        {
            return End::LockLost;
        }
    }
}

/// The lock row still names `lock` (another replica that took the state over replaced it).
async fn still_held(shared: &Shared, lock: &LockInfo) -> bool {
    match shared.store.current_lock().await {
        Ok(Some(current)) => current.lock_id == lock.lock_id,
        Ok(None) => false,
        // The database is unreachable: keep the lock; a write that cannot prove it is refused.
        Err(_) => true,
    }
}

/// Whether a plan was approved since the last look (`cardform approve` in another process, which
/// cannot ask this one for a reconcile); `seen` is what was approved then. Only a new approval
/// counts: one a reconcile left approved (its plan could not be made) does not ask again and
/// again.
async fn newly_approved(shared: &Shared, seen: &mut std::collections::BTreeSet<String>) -> bool {
    // Unreadable now: the next look tells.
    let Ok(all) = shared.store.approvals().await else {
        return false;
    };
    let now: std::collections::BTreeSet<String> = all
        .into_iter()
        .filter(|a| a.status == crate::state::ApprovalStatus::Approved)
        .map(|a| a.id)
        .collect();
    let new = now.iter().any(|id| !seen.contains(id));
    *seen = now;
    new
}

/// Waits until `stopping` says stop (or its sender is gone, which means the same).
pub async fn stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}
