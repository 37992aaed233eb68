//! `serve`'s policy: whether a reconcile's plan applies on its own, or waits for someone to
//! approve it. Within policy a plan prunes no more than `--max-prune` allows, keeps what the
//! state is charged today (its runs' charges since midnight UTC, as `state history` shows them,
//! plus the plan's estimate) within `--max-fees-per-day`, and follows no run that braked on
//! `--max-failure-rate` unless someone approved since. Outside policy the plan is recorded as a
//! pending approval (`state::Approval`) with its reasons and the digest of its actions; an
//! approval applies only the plan it approved, re-planned unchanged (same digest).
//!
//! Decides and records approvals only: it never plans, applies or sends anything (the reconcile
//! loop does, on its [`Decision`]), and never prints.

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use std::sync::atomic::Ordering;

use crate::plan::{ActionKind, MaxPrune, PlanDocument};
use crate::state::{Approval, ApprovalStatus, ApprovalSummary, RunRecord, StateError, Store};

/// The limits a plan must keep to apply on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The most cards one plan may prune on its own (`--max-prune`). The reconcile loop plans
    /// with no prune limit of its own ([`Policy::plan_prune_limit`]): a plan over this one waits
    /// for approval instead of failing.
    pub max_prune: MaxPrune,
    /// What the state may be charged in one UTC day (`--max-fees-per-day`); `None`: no budget.
    pub max_fees_per_day: Option<Decimal>,
}

impl Policy {
    /// The prune limit the reconcile loop plans with: none (100 %), since this policy judges it.
    pub fn plan_prune_limit() -> MaxPrune {
        MaxPrune::Percent(Decimal::ONE_HUNDRED)
    }
}

/// What the reconcile loop does with its plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Within policy (or nothing to change): apply it.
    Apply,
    /// Outside policy, but approval `id` approved exactly this plan: apply it, then call
    /// [`applied`] with the run's serial.
    ApplyApproved(String),
    /// Outside policy: approval `id` waits; send nothing.
    Wait(String),
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum PolicyError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
}

/// What the policy judges a plan against, read from state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// What the state's runs begun today (UTC) were charged.
    pub charged_today: Decimal,
    /// The serial of the last run that braked on `--max-failure-rate`, when nobody approved a
    /// plan since.
    pub braked: Option<u64>,
}

/// The digest of what a plan would do: whether it prunes, and its actions in plan order, each in
/// its plan-file form, length-prefixed (as `exec::parts` digests a part). Not its serial, time,
/// balance or unchanged count: the same changes planned again have the same digest.
pub fn digest(doc: &PlanDocument) -> String {
    let mut digest = Sha256::new();
    digest.update([u8::from(doc.prune)]);
    digest.update(doc.currency.as_bytes());
    let mut buf = Vec::new();
    for action in &doc.plan.actions {
        buf.clear();
        serde_json::to_writer(&mut buf, action).expect("an action serializes");
        digest.update((buf.len() as u64).to_le_bytes());
        digest.update(&buf);
    }
    format!("sha256:{}", hex::encode(digest.finalize()))
}

/// The plan in a reviewer's figures: what it creates (cards, people), updates (status, labels,
/// moves, top-ups, resumed orders) and destroys (prunes), and its known fees.
pub fn summary(doc: &PlanDocument) -> ApprovalSummary {
    let mut s = ApprovalSummary {
        fees: doc.plan.totals.fees,
        currency: doc.currency.clone(),
        ..Default::default()
    };
    for (kind, n) in &doc.plan.totals.counts {
        match kind {
            ActionKind::Issue
            | ActionKind::Reissue
            | ActionKind::Replace
            | ActionKind::CreateUser
            | ActionKind::CreateCardholder => s.create += n,
            ActionKind::Prune => s.destroy += n,
            ActionKind::Undeclared => {}
            _ => s.update += n,
        }
    }
    s
}

/// Why `doc` may not apply on its own under `policy`, given `facts`; empty when it may.
pub fn reasons(doc: &PlanDocument, policy: &Policy, facts: &Facts) -> Vec<String> {
    let mut reasons = Vec::new();
    let totals = &doc.plan.totals;
    let prunes = totals.counts.get(&ActionKind::Prune).copied().unwrap_or(0);
    if prunes > 0 && !policy.max_prune.allows(prunes, totals.in_state) {
        reasons.push(format!(
            "prunes {prunes} of {} cards in state, over --max-prune {}",
            totals.in_state, policy.max_prune
        ));
    }
    if let Some(budget) = policy.max_fees_per_day {
        let total = facts.charged_today + totals.charge;
        if total > budget {
            reasons.push(format!(
                "charged {} today and {} planned: {total} {}, over --max-fees-per-day {budget}",
                facts.charged_today, totals.charge, doc.currency
            ));
        }
        if totals.unknown_fees > 0 {
            reasons.push(format!(
                "{} fees cannot be estimated, so --max-fees-per-day {budget} cannot be checked",
                totals.unknown_fees
            ));
        }
    }
    if let Some(serial) = facts.braked {
        reasons.push(format!(
            "run {serial} stopped on --max-failure-rate: nothing applies on its own until someone approves"
        ));
    }
    reasons
}

/// Whether a run's summary says it braked on `--max-failure-rate` (see `exec`'s brake).
fn braked(run: &RunRecord) -> bool {
    run.summary
        .get("stopped")
        .and_then(|s| s.as_str())
        .is_some_and(|s| s.contains("--max-failure-rate"))
}

/// The facts of `history` and `approvals` at `now`.
pub fn facts_at(history: &[RunRecord], approvals: &[Approval], now: jiff::Timestamp) -> Facts {
    let midnight = now
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(now);
    let charged_today = history
        .iter()
        .filter(|r| {
            r.at.parse::<jiff::Timestamp>()
                .is_ok_and(|at| at >= midnight)
        })
        .filter_map(|r| r.charged)
        .sum();
    let last_brake = history.iter().rev().find(|r| braked(r)).map(|r| r.serial);
    let lifted = |serial: u64| {
        approvals
            .iter()
            .any(|a| a.approved_serial.is_some_and(|s| s >= serial))
    };
    Facts {
        charged_today,
        braked: last_brake.filter(|s| !lifted(*s)),
    }
}

/// Whether the reconcile loop applies `doc` now, recording (or reusing) a pending approval when
/// it may not; keeps `pending_approvals` current. An approved plan whose re-plan changed, and any
/// open approval a newer plan replaces, is marked superseded.
pub async fn decide(
    shared: &super::Shared,
    doc: &PlanDocument,
    policy: &Policy,
) -> Result<Decision, PolicyError> {
    let decision = decide_in(&shared.store, doc, policy).await?;
    refresh_pending(shared).await?;
    Ok(decision)
}

async fn decide_in(
    store: &Store,
    doc: &PlanDocument,
    policy: &Policy,
) -> Result<Decision, PolicyError> {
    let approvals = store.approvals().await?;
    let planned = digest(doc);
    let open = |status| {
        approvals
            .iter()
            .find(|a: &&Approval| a.status == status && a.digest == planned)
    };
    if !doc.has_changes {
        if approvals.iter().any(Approval::is_open) {
            store.supersede_open(None).await?;
        }
        return Ok(Decision::Apply);
    }
    if let Some(a) = open(ApprovalStatus::Approved) {
        store.supersede_open(Some(&a.id)).await?;
        return Ok(Decision::ApplyApproved(a.id.clone()));
    }
    let now = crate::state::now()
        .parse()
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let facts = facts_at(&store.history().await?, &approvals, now);
    let reasons = reasons(doc, policy, &facts);
    if reasons.is_empty() {
        if approvals.iter().any(Approval::is_open) {
            store.supersede_open(None).await?;
        }
        return Ok(Decision::Apply);
    }
    if let Some(a) = open(ApprovalStatus::Pending) {
        if a.reasons != reasons {
            store.update_reasons(&a.id, &reasons).await?;
        }
        store.supersede_open(Some(&a.id)).await?;
        return Ok(Decision::Wait(a.id.clone()));
    }
    let recorded = store
        .record_pending(&planned, &summary(doc), &reasons)
        .await?;
    tracing::info!(
        target: "cardform::serve",
        approval = %recorded.id,
        reasons = ?recorded.reasons,
        "plan outside policy: waiting for approval"
    );
    Ok(Decision::Wait(recorded.id))
}

/// Records that run `serial` applied approval `id` (after [`Decision::ApplyApproved`]).
pub async fn applied(shared: &super::Shared, id: &str, serial: u64) -> Result<(), PolicyError> {
    shared.store.mark_applied(id, serial).await?;
    refresh_pending(shared).await
}

/// Sets `pending_approvals` to what state holds now (every replica reads the same).
pub async fn refresh_pending(shared: &super::Shared) -> Result<(), PolicyError> {
    let pending = shared
        .store
        .approvals()
        .await?
        .iter()
        .filter(|a| a.status == ApprovalStatus::Pending)
        .count();
    shared
        .counters
        .pending_approvals
        .store(pending as u64, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
