//! One reconcile, and what asks for one: read the declarations (as `plan -f DIR` does), plan
//! against state, ask the approvals policy, and apply through the same code path as
//! `cardform apply` ([`super::apply`]), recorded in history as a run. Triggers (changed files,
//! the interval, `POST /api/reconcile`) are coalesced by [`Trigger`].
//!
//! Runs only under the state lock, which the leadership loop holds; never takes or releases it.
//! A reconcile that cannot read the declarations logs every problem and applies nothing.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;

use super::policy::{self, Decision, Policy};
use super::{Config, Counters, Shared, log};
use crate::decl;
use crate::exec::{EventSink, ExecOptions, StopFlag, Summary};
use crate::plan::PlanOptions;
use crate::state::StateError;

/// Asks for a reconcile. Any number of asks while one runs (or before the loop looks) come to
/// exactly one more run after it: `Notify` keeps one permit.
#[derive(Debug, Default)]
pub struct Trigger(tokio::sync::Notify);

impl Trigger {
    /// One more reconcile, soon.
    pub fn ask(&self) {
        self.0.notify_one();
    }

    /// Waits for an ask.
    pub async fn asked(&self) {
        self.0.notified().await;
    }
}

/// How a reconcile ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The plan had no changes: nothing recorded, nothing sent.
    NoChanges,
    /// Run `serial` carried the plan out; `succeeded` as its summary says.
    Applied { serial: u64, succeeded: bool },
    /// The approvals policy holds the plan back.
    Waiting,
}

/// Why a reconcile did not apply.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("{0}")]
    Declarations(decl::DeclReport),
    #[error("the plan has {0} problem(s) and cannot be applied")]
    Problems(usize),
    #[error("state: {0}")]
    State(#[from] StateError),
    #[error("approvals: {0}")]
    Policy(#[from] policy::PolicyError),
    #[error("provider: {0}")]
    Provider(#[from] crate::client::ClientError),
    #[error("{0}")]
    Exec(#[from] crate::exec::parts::PartsError),
}

impl ReconcileError {
    /// This replica's lock is gone: it must step down and spend nothing more.
    pub fn lock_lost(&self) -> bool {
        use crate::exec::{ExecError, parts::PartsError};
        match self {
            ReconcileError::State(StateError::LockLost)
            | ReconcileError::Policy(policy::PolicyError::State(StateError::LockLost)) => true,
            ReconcileError::Exec(PartsError::Exec(e)) => {
                matches!(**e, ExecError::State(StateError::LockLost))
            }
            _ => false,
        }
    }
}

/// One reconcile with its counters and log lines around it.
pub async fn counted(
    shared: &Shared,
    config: &Config,
    stop: StopFlag,
) -> Result<(), ReconcileError> {
    let c = &shared.counters;
    Counters::bump(&c.reconciles);
    let started = Instant::now();
    log::info("reconcile started", json!({}));
    let result = once(shared, config, stop).await;
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    c.last_reconcile_millis.store(millis, Ordering::Relaxed);
    match &result {
        Ok(outcome) => {
            let ok = !matches!(
                outcome,
                Outcome::Applied {
                    succeeded: false,
                    ..
                }
            );
            if ok {
                let now = jiff::Timestamp::now().as_second();
                c.last_success_unix.store(now, Ordering::Relaxed);
            } else {
                Counters::bump(&c.reconcile_failures);
            }
            let mut fields = match outcome {
                Outcome::NoChanges => json!({"outcome": "no_changes"}),
                Outcome::Waiting => json!({"outcome": "waiting_for_approval"}),
                Outcome::Applied { serial, succeeded } => {
                    json!({"outcome": "applied", "serial": serial, "succeeded": succeeded})
                }
            };
            fields["millis"] = json!(millis);
            fields["ok"] = json!(ok);
            log::info("reconcile finished", fields);
        }
        Err(e) => {
            Counters::bump(&c.reconcile_failures);
            log::error(
                "reconcile failed",
                json!({"error": crate::render::safe(&e.to_string()), "millis": millis}),
            );
        }
    }
    result.map(|_| ())
}

/// Reads, plans and applies once.
async fn once(shared: &Shared, config: &Config, stop: StopFlag) -> Result<Outcome, ReconcileError> {
    let decls = match decl::load(&config.files) {
        Ok(d) => d,
        Err(report) => {
            log_problems(&report);
            return Err(ReconcileError::Declarations(report));
        }
    };
    let store = &shared.store;
    let snapshot = store.snapshot().await?;
    let facts = super::apply::facts(&shared.client).await?;
    let policy = Policy {
        max_prune: config.max_prune,
        max_fees_per_day: config.max_fees_per_day,
    };
    let options = PlanOptions {
        prune: config.prune,
        max_fees: config.max_fees,
        // The policy judges prunes: a plan over `--max-prune` waits for approval, not refused.
        max_prune: Policy::plan_prune_limit(),
        targets: Vec::new(),
        replace: Default::default(),
    };
    let journal_key = shared.client.journal_key();
    let mut doc = super::apply::document(&decls, &snapshot, &facts, &options, journal_key);
    if !doc.applicable {
        for problem in &doc.plan.problems {
            log::warn(
                "plan problem",
                json!({"problem": crate::render::safe(&format!("{problem:?}"))}),
            );
        }
        return Err(ReconcileError::Problems(doc.plan.problems.len()));
    }
    // Asked even without changes: a plan gone back within what state holds supersedes the
    // approvals still open.
    let approval = match policy::decide(shared, &doc, &policy).await? {
        _ if !doc.has_changes => return Ok(Outcome::NoChanges),
        Decision::Wait(id) => {
            log::info("waiting for approval", json!({"approval": id}));
            return Ok(Outcome::Waiting);
        }
        Decision::Apply => None,
        Decision::ApplyApproved(id) => Some(id),
    };
    let forms = crate::exec::declared::forms(&decls);
    drop(decls);
    let serial = store.begin_run(config.run_info.clone()).await?;
    let summary = apply_run(shared, config, serial, snapshot, &mut doc, forms, stop).await;
    let mut recorded = match &summary {
        Ok(s) => serde_json::to_value(s).unwrap_or_default(),
        Err(e) => json!({"error": e.to_string()}),
    };
    if let Some(id) = &approval {
        // History names the approval the run carried out.
        recorded["approval"] = json!(id);
    }
    // A lost lock refuses this write too: the run then shows as unfinished, as a killed one does.
    let _ = store.finish_run(serial, &recorded).await;
    if let Some(id) = &approval {
        policy::applied(shared, id, serial).await?;
    }
    let summary = summary?;
    Ok(Outcome::Applied {
        serial,
        succeeded: summary.succeeded(),
    })
}

/// Carries `doc` out as run `serial`, logging the executor's events.
async fn apply_run(
    shared: &Shared,
    config: &Config,
    serial: u64,
    snapshot: crate::state::Snapshot,
    doc: &mut crate::plan::PlanDocument,
    forms: std::collections::BTreeMap<String, crate::wire::CreateCardholderRequest>,
    stop: StopFlag,
) -> Result<Summary, ReconcileError> {
    if shared.store.provider().await?.is_none() {
        shared
            .store
            .set_provider(config.provider_id.as_str())
            .await?;
    }
    if !doc.currency.is_empty() {
        shared.store.set_currency(&doc.currency).await?;
    }
    let options = ExecOptions {
        parallelism: config.parallelism,
        max_fees: config.max_fees,
        max_failure_rate: config.max_failure_rate,
        subproviders: super::apply::subproviders(&shared.client, &forms, &snapshot).await,
        cardholder_forms: forms,
        ..ExecOptions::default()
    };
    let summary = super::apply::carry_out(super::apply::Carry {
        store: shared.store.clone(),
        client: shared.client.clone(),
        serial,
        snapshot,
        actions: std::mem::take(&mut doc.plan.actions),
        parts: None,
        options,
        sink: EventSink::new(|e| log::event(&e)),
        stop,
    })
    .await?;
    Ok(summary)
}

/// Every problem of a declarations read, one line each, with file, line, column and field.
fn log_problems(report: &decl::DeclReport) {
    for p in report.problems() {
        log::error(
            "declaration problem",
            json!({
                "file": crate::render::safe(p.file()),
                "line": p.line(),
                "column": p.column(),
                "code": p.kind().code().to_string(),
                "problem": p.shown_message(),
            }),
        );
    }
}

/// Asks for a reconcile whenever what `files` names changes: names, sizes and modification
/// times, looked at every `every` (cheap: no file is read).
pub async fn watch_files(shared: super::State, files: Vec<PathBuf>, every: Duration) {
    let mut last = digest(&files);
    loop {
        tokio::time::sleep(every).await;
        let files = files.clone();
        let now = tokio::task::spawn_blocking(move || digest(&files))
            .await
            .unwrap_or_default();
        if now != last {
            last = now;
            log::info("declarations changed", json!({}));
            shared.trigger.ask();
        }
    }
}

/// A digest of the names, sizes and modification times under `paths` (directories walked a few
/// levels deep, in name order).
pub fn digest(paths: &[PathBuf]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for path in paths {
        add(&mut hasher, path, 0);
    }
    hasher.finalize().into()
}

fn add(hasher: &mut sha2::Sha256, path: &Path, depth: u32) {
    use sha2::Digest;
    hasher.update(path.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    let Ok(meta) = std::fs::metadata(path) else {
        hasher.update(b"missing");
        return;
    };
    if meta.is_dir() {
        if depth >= 4 {
            return;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        entries.sort();
        for entry in entries {
            add(hasher, &entry, depth + 1);
        }
        return;
    }
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    hasher.update(meta.len().to_le_bytes());
    hasher.update(mtime.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_changes_with_a_file_and_not_without() {
        let dir = tempfile::tempdir().unwrap();
        let paths = vec![dir.path().to_path_buf()];
        std::fs::write(dir.path().join("a.yaml"), "cards: []\n").unwrap();
        let first = digest(&paths);
        assert_eq!(first, digest(&paths));
        std::fs::write(dir.path().join("a.yaml"), "cards: [] # longer\n").unwrap();
        assert_ne!(first, digest(&paths));
        let second = digest(&paths);
        std::fs::write(dir.path().join("b.csv"), "").unwrap();
        assert_ne!(second, digest(&paths));
    }

    #[tokio::test]
    async fn asks_during_a_run_come_to_one_more_run() {
        let t = Trigger::default();
        t.ask();
        t.ask();
        t.ask();
        // One permit: the first wait returns at once, the second does not.
        tokio::time::timeout(Duration::from_millis(50), t.asked())
            .await
            .expect("one ask is kept");
        assert!(
            tokio::time::timeout(Duration::from_millis(50), t.asked())
                .await
                .is_err()
        );
    }
}
