//! One card's action: a declared card against its record in state (issue, re-issue, replace,
//! freeze, unfreeze, relabel, resume, or nothing), and a card in state no longer declared.
//! Whole-plan rules (ordering, top-ups, people, checks) are not here.
//!
//! Part of the pure diff (see [`super`]): no I/O, no clock.

use std::borrow::Cow;

use super::{Action, Attributes, Change, Edit, Estimate, PlanOptions};
use crate::decl::{DesiredCard, DesiredStatus};
use crate::state::{CardPhase, CardRecord, OrderPhase, Snapshot};

/// The issue attempt, and why, of a declared card state has no record of. A key that left state
/// (`state rm`, a move) may have issue orders journaled under it: its latest one is taken back
/// when it asked for what is declared now (the order is checked, not sent again, so the same card
/// returns at no charge); otherwise the card is new under the next attempt, whose idempotency key
/// was never sent. Re-sending an old key with another request could only fail, and past the
/// provider's key retention would issue and charge for a card nobody tracks.
fn comeback(card: &DesiredCard, state: &Snapshot) -> (u32, Cow<'static, str>) {
    let Some(last) = state.removed_issues(&card.key).max_by_key(|o| o.attempt) else {
        return (
            1,
            if state.removed_cards.contains_key(card.key.as_str()) {
                "declared, not in state: the card this key had left with no issue order of its \
                 own (it moved to another key, or was imported), so this is a new card"
            } else {
                "declared, not in state"
            }
            .into(),
        );
    };
    let asked_the_same = serde_json::from_str::<crate::wire::CreateCardRequest>(&last.request)
        .is_ok_and(|r| {
            r.product_code.as_deref() == Some(card.product_code.as_str())
                && r.external_user_id == card.external_user_id.as_str()
                && r.initial_topup_amount == card.initial_topup
        });
    let order = last.order_id.as_deref().unwrap_or("(not yet acknowledged)");
    match last.phase {
        OrderPhase::Failed => (
            last.attempt + 1,
            format!(
                "declared again after it left state; its last issue order (attempt {}) failed",
                last.attempt
            )
            .into(),
        ),
        _ if asked_the_same => (
            last.attempt,
            format!(
                "taken out of state earlier: its issue order {order} is checked, not sent again{}",
                if last.order_id.is_some() {
                    " (no new charge)"
                } else {
                    ""
                }
            )
            .into(),
        ),
        _ => (
            last.attempt + 1,
            format!(
                "declared again with another product, user or top-up than the card that left \
                 state (issue order {order}): a new card; `cardform import {} CARD_ID` takes the \
                 old one back instead",
                card.key
            )
            .into(),
        ),
    }
}

/// What to do for one declared card, whose record in state is `record`; `None` when state
/// already matches.
///
/// `replace`: `--replace` named this card, so an issued one (active or frozen) is replaced even
/// though nothing declared changed. A card with an open order is resumed first, and a closed or
/// failed one is re-issued anyway: either way no second new card is planned.
pub(super) fn decide(
    card: &DesiredCard,
    record: Option<&CardRecord>,
    state: &Snapshot,
    replace: bool,
) -> Option<Action> {
    // Built only for cards that get an action: most cards of a large fleet are unchanged, and
    // copying their attributes (labels included) just to drop them would cost 100,000 copies.
    let after = || Box::new(Attributes::from_desired(card));
    let action = |change, reason: Cow<'static, str>, attempt| Action {
        key: card.key.clone(),
        reason,
        product_code: card.product_code.clone(),
        attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change,
    };

    if let Some(order) = state.open_card_orders(&card.key).first() {
        let change = Change::ResumeCard {
            before: record.map(|r| Box::new(Attributes::from_record(r))),
            after: Some(after()),
        };
        return Some(action(change, still_open(order), order.attempt));
    }

    let Some(record) = record else {
        let (attempt, reason) = comeback(card, state);
        return Some(action(Change::Issue { after: after() }, reason, attempt));
    };
    let (variant, reason, attempt) = card_edit(card, record, replace)?;
    let change = variant(Edit {
        before: Box::new(Attributes::from_record(record)),
        after: after(),
    });
    Some(action(change, reason, attempt))
}

/// Why a card with an open order is resumed rather than planned afresh.
fn still_open(order: &crate::state::OrderRecord) -> Cow<'static, str> {
    format!(
        "{} order {} is still {}",
        order.kind.as_str(),
        order
            .order_id
            .as_deref()
            .unwrap_or("(not yet acknowledged)"),
        order.phase.as_str()
    )
    .into()
}

/// The edit a recorded card needs, why, and under which attempt; `None` when it matches.
fn card_edit(
    card: &DesiredCard,
    record: &CardRecord,
    replace: bool,
) -> Option<(EditKind, Cow<'static, str>, u32)> {
    match record.phase {
        CardPhase::Failed | CardPhase::Pending => {
            return Some((
                Change::Reissue,
                "the last issue order failed".into(),
                record.attempt + 1,
            ));
        }
        CardPhase::Closed => {
            return Some((
                Change::Reissue,
                "the card was closed at the provider".into(),
                record.attempt + 1,
            ));
        }
        CardPhase::Active | CardPhase::Frozen => {}
    }
    if let Some(reason) = replacement(card, record, replace) {
        return Some((Change::Replace, reason, record.attempt + 1));
    }
    let (variant, reason) = in_place(card, record)?;
    Some((variant, reason, record.attempt))
}

/// Why an issued card is replaced by a new one: what cannot change in place changed, or
/// `--replace` asked for it.
fn replacement(
    card: &DesiredCard,
    record: &CardRecord,
    replace: bool,
) -> Option<Cow<'static, str>> {
    let mut immutable = Vec::new();
    if record.product_code != card.product_code {
        immutable.push(format!(
            "product_code {} → {}",
            record.product_code, card.product_code
        ));
    }
    if record.external_user_id != card.external_user_id {
        immutable.push(format!(
            "external_user_id {} → {}",
            record.external_user_id, card.external_user_id
        ));
    }
    if replace && immutable.is_empty() {
        return Some(
            "replacement asked for (--replace): a new card under a new key, the old one frozen"
                .into(),
        );
    }
    if !immutable.is_empty() {
        return Some(format!("{} (cannot change in place)", immutable.join(", ")).into());
    }
    None
}

/// What changes in place on an issued card: its status (freeze, unfreeze), its labels (state
/// only), or both.
fn in_place(card: &DesiredCard, record: &CardRecord) -> Option<(EditKind, Cow<'static, str>)> {
    let actual = phase_status(record.phase);
    let labels_differ = record.labels != card.labels;
    let kind_reason: Option<(EditKind, _)> = match (actual, card.status) {
        (DesiredStatus::Active, DesiredStatus::Frozen) => {
            Some((Change::Freeze, "declared frozen, card is active"))
        }
        (DesiredStatus::Frozen, DesiredStatus::Active) => {
            Some((Change::Unfreeze, "declared active, card is frozen"))
        }
        _ => None,
    };
    match (kind_reason, labels_differ) {
        (Some((kind, reason)), labels) => {
            let reason = if labels {
                format!("{reason}; labels changed").into()
            } else {
                reason.into()
            };
            Some((kind, reason))
        }
        (None, true) => Some((
            Change::RelabelCard,
            "labels changed (state only, no provider call)".into(),
        )),
        (None, false) => None,
    }
}

pub(super) fn undeclared(record: &CardRecord, state: &Snapshot, options: &PlanOptions) -> Action {
    let before = || Box::new(Attributes::from_record(record));
    let base = |change, reason: Cow<'static, str>| Action {
        key: record.key.as_str().into(),
        reason,
        product_code: record.product_code.as_str().into(),
        attempt: record.attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change,
    };
    if let Some(order) = state.open_card_orders(&record.key).first() {
        let change = Change::ResumeCard {
            before: Some(before()),
            after: None,
        };
        return base(
            change,
            format!(
                "no longer declared, but its {} order is still open",
                order.kind.as_str()
            )
            .into(),
        );
    }
    match (options.prune, record.phase) {
        (true, CardPhase::Active) => {
            let mut after = before();
            after.status = DesiredStatus::Frozen;
            let change = Change::Prune(Edit {
                before: before(),
                after,
            });
            base(change, "no longer declared; --prune freezes it".into())
        }
        (true, _) => base(
            Change::UndeclaredCard { before: before() },
            "no longer declared; nothing to freeze".into(),
        ),
        (false, _) => base(
            Change::UndeclaredCard { before: before() },
            "no longer declared; left untouched (use --prune to freeze it)".into(),
        ),
    }
}

/// A card superseded by a replacement is frozen once the new card exists. A run killed between the
/// two steps leaves it active; this finishes the job (and never before the new card is issued).
pub(super) fn retired(record: &CardRecord, new_key: &str, state: &Snapshot) -> Option<Action> {
    let replacement_issued = state
        .cards
        .get(new_key)
        .is_some_and(|n| matches!(n.phase, CardPhase::Active | CardPhase::Frozen));
    if record.phase != CardPhase::Active || !replacement_issued {
        return None;
    }
    let before = Box::new(Attributes::from_record(record));
    let mut after = before.clone();
    after.status = DesiredStatus::Frozen;
    Some(Action {
        key: record.key.as_str().into(),
        reason: format!("replaced by {new_key}; the old card is frozen").into(),
        product_code: record.product_code.as_str().into(),
        attempt: record.attempt,
        estimate: Estimate::none(),
        depends_on: Vec::new(),
        change: Change::Freeze(Edit { before, after }),
    })
}

/// Which change of a card in state an [`Edit`] is (`Change::Freeze`, ...).
type EditKind = fn(Edit) -> Change;

/// The status a recorded card is in, in declaration terms.
fn phase_status(phase: CardPhase) -> DesiredStatus {
    match phase {
        CardPhase::Frozen => DesiredStatus::Frozen,
        _ => DesiredStatus::Active,
    }
}
