//! The policy's judgement, on plans built from their totals (what it reads of them).

use super::*;
use crate::plan::{DeclarationsRef, Plan, StateRef, Totals};
use std::str::FromStr;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn doc(counts: &[(ActionKind, usize)], in_state: usize, fees: &str, charge: &str) -> PlanDocument {
    let totals = Totals {
        counts: counts.iter().copied().collect(),
        fees: dec(fees),
        charge: dec(charge),
        in_state,
        ..Default::default()
    };
    let plan = Plan {
        actions: Vec::new(),
        unchanged: 0,
        totals,
        problems: Vec::new(),
        warnings: Vec::new(),
        partial: None,
    };
    let decls = DeclarationsRef {
        fingerprint: "f".into(),
        files: Vec::new(),
    };
    PlanDocument::new(
        plan,
        StateRef::new("l", 1),
        decls,
        true,
        "usd",
        "2026-12-08T04:00:00Z".into(),
    )
}

fn run(serial: u64, at: &str, charged: Option<&str>, summary: serde_json::Value) -> RunRecord {
    RunRecord {
        serial,
        at: at.into(),
        finished_at: Some(at.into()),
        user: "u".into(),
        host: "h".into(),
        command: "cardform serve".into(),
        summary,
        charged: charged.map(dec),
        topups_sent: None,
    }
}

fn now() -> jiff::Timestamp {
    "2026-12-08T12:00:00Z".parse().unwrap()
}

#[test]
fn prunes_within_the_limit_apply_and_over_it_wait() {
    let policy = Policy {
        max_prune: MaxPrune::Count(2),
        max_fees_per_day: None,
    };
    let within = doc(&[(ActionKind::Prune, 2)], 10, "0", "0");
    assert!(reasons(&within, &policy, &Facts::default()).is_empty());
    let over = doc(&[(ActionKind::Prune, 3)], 10, "0", "0");
    assert_eq!(
        reasons(&over, &policy, &Facts::default()),
        vec!["prunes 3 of 10 cards in state, over --max-prune 2".to_owned()]
    );
    // The default limit is a share of the fleet: 10 %.
    let share = Policy::default();
    assert!(
        reasons(
            &doc(&[(ActionKind::Prune, 1)], 10, "0", "0"),
            &share,
            &Facts::default()
        )
        .is_empty()
    );
    assert_eq!(
        reasons(
            &doc(&[(ActionKind::Prune, 2)], 10, "0", "0"),
            &share,
            &Facts::default()
        )
        .len(),
        1
    );
}

#[test]
fn the_day_budget_counts_what_today_charged_and_what_the_plan_will() {
    let policy = Policy {
        max_fees_per_day: Some(dec("10.00")),
        ..Default::default()
    };
    let history = [
        // Yesterday's money is yesterday's budget.
        run(
            1,
            "2026-12-07T23:59:59Z",
            Some("100.00"),
            serde_json::json!({}),
        ),
        run(
            2,
            "2026-12-08T00:00:01Z",
            Some("6.00"),
            serde_json::json!({}),
        ),
    ];
    let facts = facts_at(&history, &[], now());
    assert_eq!(facts.charged_today, dec("6.00"));
    let fits = doc(&[(ActionKind::Issue, 2)], 0, "4.00", "4.00");
    assert!(reasons(&fits, &policy, &facts).is_empty());
    let over = doc(&[(ActionKind::Issue, 3)], 0, "4.01", "4.01");
    assert_eq!(
        reasons(&over, &policy, &facts),
        vec![
            "charged 6.00 today and 4.01 planned: 10.01 USD, over --max-fees-per-day 10.00"
                .to_owned()
        ]
    );
}

#[test]
fn a_brake_holds_until_an_approval_given_after_it() {
    let stopped = serde_json::json!({"stopped": "3 of 4 finished changes failed (75.0%), more than --max-failure-rate 20%: nothing new was started"});
    let history = [
        run(1, "2026-12-08T01:00:00Z", None, serde_json::json!({})),
        run(2, "2026-12-08T02:00:00Z", None, stopped),
        run(
            3,
            "2026-12-08T03:00:00Z",
            None,
            serde_json::json!({"stopped": "the canary failed"}),
        ),
    ];
    assert_eq!(facts_at(&history, &[], now()).braked, Some(2));
    let approval = |serial| Approval {
        id: "1".into(),
        status: ApprovalStatus::Applied,
        created: String::new(),
        updated: String::new(),
        digest: String::new(),
        summary: ApprovalSummary::default(),
        reasons: Vec::new(),
        approved_by: Some("ops".into()),
        approved_at: None,
        approved_serial: Some(serial),
        applied_serial: None,
    };
    assert_eq!(facts_at(&history, &[approval(1)], now()).braked, Some(2));
    assert_eq!(facts_at(&history, &[approval(2)], now()).braked, None);
    let plan = doc(&[(ActionKind::Issue, 1)], 0, "1", "1");
    let why = reasons(
        &plan,
        &Policy::default(),
        &Facts {
            braked: Some(2),
            ..Default::default()
        },
    );
    assert!(
        why[0].starts_with("run 2 stopped on --max-failure-rate"),
        "{why:?}"
    );
}

#[test]
fn the_summary_sorts_actions_into_create_update_destroy() {
    let plan = doc(
        &[
            (ActionKind::Issue, 2),
            (ActionKind::CreateUser, 1),
            (ActionKind::Freeze, 1),
            (ActionKind::Topup, 3),
            (ActionKind::Prune, 4),
            (ActionKind::Undeclared, 5),
        ],
        20,
        "7.50",
        "57.50",
    );
    let s = summary(&plan);
    assert_eq!((s.create, s.update, s.destroy), (3, 4, 4));
    assert_eq!(s.fees, dec("7.50"));
    assert_eq!(s.currency, "USD");
}

#[test]
fn the_digest_is_what_the_plan_does_not_when_it_was_made() {
    let a = doc(&[(ActionKind::Prune, 1)], 10, "0", "0");
    let mut later = a.clone();
    later.created_at = "2026-12-09T00:00:00Z".into();
    later.state = StateRef::new("l", 7);
    assert_eq!(digest(&a), digest(&later));
    let mut other = a.clone();
    other.prune = false;
    assert_ne!(digest(&a), digest(&other));
    assert!(digest(&a).starts_with("sha256:"));
}
