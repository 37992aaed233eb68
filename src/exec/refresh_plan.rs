//! A look at the provider as a plan carries it, and as `apply` of that plan records it: which of
//! what [`observe`](super::refresh::observe) found belongs in a plan file (no card's last four
//! digits, nothing that was only those), and recording a saved plan's look in the run that
//! applies it. Never prints, and writes only through `refresh::record`.

use super::refresh::{self, Observed};
use crate::plan::PlanDocument;
use crate::plan::drift::Refreshed;
use crate::state::{CardRecord, Snapshot, StateError, Store};

/// What a plan carries of a look at `snapshot`. Plan files travel (CI artifacts, pull
/// requests): a card's last four digits stay out of them, kept as state has them, and a card
/// whose only news was those digits has none left.
pub fn carried(observed: Observed, refresh_only: bool, snapshot: &Snapshot) -> Refreshed {
    let mut updates = observed.updates;
    updates.retain_mut(|u| {
        let Some(card) = u.card.as_mut() else {
            return true;
        };
        let Some(before) = snapshot.cards.get(&card.key) else {
            return true;
        };
        card.last4 = before.last4.clone();
        let same = CardRecord {
            updated_at: before.updated_at.clone(),
            ..card.clone()
        } == *before;
        if same {
            u.card = None;
        }
        u.card.is_some() || !u.drift.is_empty() || u.refund.is_some() || !u.orders.is_empty()
    });
    Refreshed {
        refresh_only,
        cards_checked: observed.report.cards_checked,
        orders_checked: observed.report.orders_checked,
        cards_unread: observed.report.cards_unread,
        updates,
    }
}

/// Before `apply` of a saved plan made with `--refresh` carries out its changes: what its look
/// found, recorded in the same run (as Terraform's apply does), and the state as it is then,
/// which the plan was made against. With the look recorded, when it found anything.
pub async fn record_saved<'d>(
    store: &Store,
    serial: u64,
    doc: &'d PlanDocument,
    snapshot: Snapshot,
) -> Result<(Snapshot, Option<&'d Refreshed>), StateError> {
    match doc.refresh.as_ref().filter(|r| !r.updates.is_empty()) {
        Some(r) => {
            refresh::record(store, serial, &r.updates).await?;
            Ok((store.snapshot().await?, Some(r)))
        }
        None => Ok((snapshot, None)),
    }
}
