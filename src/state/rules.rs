//! The rules of a write, once for every backend, over the dialect primitives of [`Tx`]: the
//! journal-conflict rule, the money rule (a card's `charged` is what its orders say), a record
//! following its orders, a rename with its top-ups, fee lessons, and the fencing check. Each runs
//! inside the caller's transaction; the caller commits.
//!
//! Must hold no SQL and no backend type, and must not decide what to send (that is `exec`).

use super::codec::{self, resource_change_json};
use super::journal::{self, FeeLesson, record_after_order};
use super::model::{CardRecord, OrderRecord, ResourceRecord, Snapshot};
use super::seam::Tx;
use super::{RunInfo, RunRecord, StateDump, StateError, money, now};
use crate::model::{Address, ResourceKind};
use std::collections::BTreeMap;

/// Fencing: while a handle holds lock `token`, a write begins only if the lock row still names it.
pub(super) async fn fence<T: Tx + ?Sized>(
    tx: &mut T,
    token: Option<&str>,
) -> Result<(), StateError> {
    match token {
        Some(lock_id) if !tx.holds_lock(lock_id).await? => Err(StateError::LockLost),
        _ => Ok(()),
    }
}

/// Whether two journal entries are the same request: what makes resending a key safe.
fn same_request(a: &OrderRecord, b: &OrderRecord) -> bool {
    a.address == b.address && a.kind == b.kind && a.attempt == b.attempt && a.request == b.request
}

/// Journals an order before it is sent (see [`super::Store::journal_order`]): the serial of the
/// run that first journaled the same request, `None` when this call did, a
/// [`StateError::JournalConflict`] when the key holds another request.
pub(super) async fn journal_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    order: &OrderRecord,
    declared: Option<&ResourceRecord>,
) -> Result<Option<u64>, StateError> {
    let mut first_sent = None;
    if !tx.insert_order(serial, order).await? {
        match tx.order(&order.idempotency_key).await? {
            Some(stored) if same_request(&stored, order) => first_sent = stored.sent_serial,
            _ => {
                return Err(StateError::JournalConflict {
                    key: order.idempotency_key.clone(),
                });
            }
        }
    }
    follow_order_in(tx, serial, order, declared).await?;
    Ok(first_sent)
}

/// An order and/or its card written together (see [`super::Store::record`]).
pub(super) async fn record_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    order: Option<&OrderRecord>,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    if let Some(o) = order {
        write_order_in(tx, serial, o).await?;
    }
    if let Some(c) = card {
        put_card_costed_in(tx, serial, c).await?;
    }
    if let Some(o) = order {
        if let Some(key) = o.address.card_key()
            && card.is_none_or(|c| c.key != key)
        {
            recost_card_in(tx, serial, key).await?;
        }
        observe_issue_fee(tx, o, card).await?;
    }
    Ok(())
}

/// An order's progress and the audit row of the answer that moved it, together: a kill between
/// the two would drop the charge from the audit or, on resend, count it twice.
pub(super) async fn record_answer_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    order: &OrderRecord,
    call: &super::CallRecord,
) -> Result<(), StateError> {
    write_order_in(tx, serial, order).await?;
    if let Some(key) = order.address.card_key() {
        recost_card_in(tx, serial, key).await?;
    }
    tx.insert_call(call).await
}

/// Writes an order's progress with what follows from it in the same transaction: its resource's
/// record, and the audit row of a refund the provider just reported (once, however often the
/// order is settled). A late write (an older answer after a newer one) changes nothing.
pub(super) async fn write_order_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    o: &OrderRecord,
) -> Result<(), StateError> {
    let before = tx.order(&o.idempotency_key).await?;
    if journal::is_late_write(before.as_ref(), o)? {
        return Ok(());
    }
    upsert_order_in(tx, serial, o).await?;
    follow_order_in(tx, serial, o, None).await?;
    if let Some(amount) = money::new_refund(before.as_ref(), o) {
        tx.insert_call(&money::refund_call(o, amount, &o.updated_at))
            .await?;
    }
    Ok(())
}

/// Writes an order's progress; the identity of a journaled order never changes under its key.
pub(super) async fn upsert_order_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    o: &OrderRecord,
) -> Result<(), StateError> {
    if tx.update_order(serial, o).await? {
        Ok(())
    } else {
        Err(StateError::JournalConflict {
            key: o.idempotency_key.clone(),
        })
    }
}

/// Writes a card and logs its after-image under `serial`, as given (a load, a rename).
pub(super) async fn put_card_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    c: &CardRecord,
) -> Result<(), StateError> {
    tx.write_card(serial, c).await?;
    tx.log_change(
        serial,
        &Address::card(c.key.as_str()),
        Some(codec::card_image(c)?),
    )
    .await
}

/// Writes `card` with `charged` derived from its orders (see [`money`]): whatever the caller
/// computed, the journal decides what a card cost.
pub(super) async fn put_card_costed_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    card: &CardRecord,
) -> Result<(), StateError> {
    let cost = money::resource_cost(&tx.card_orders(&card.key).await?);
    if cost == card.charged {
        return put_card_in(tx, serial, card).await;
    }
    let mut costed = card.clone();
    costed.charged = cost;
    put_card_in(tx, serial, &costed).await
}

/// Brings the stored card `key`'s `charged` up to its orders, when one of them changed without
/// the card being written (a top-up's order, an acknowledged issue order).
pub(super) async fn recost_card_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    key: &str,
) -> Result<(), StateError> {
    let Some(card) = tx.card(key).await? else {
        return Ok(());
    };
    let cost = money::resource_cost(&tx.card_orders(key).await?);
    if cost != card.charged {
        let card = CardRecord {
            charged: cost,
            ..card
        };
        put_card_in(tx, serial, &card).await?;
    }
    Ok(())
}

/// Keeps `observed_fees` current (the rule is [`FeeLesson`]'s); reads the stored card only when
/// neither the request nor the batch says what the order was for.
async fn observe_issue_fee<T: Tx + ?Sized>(
    tx: &mut T,
    o: &OrderRecord,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    let lesson = match FeeLesson::of(o, card) {
        FeeLesson::NeedsStoredCard(key) => {
            let stored = tx.card(&key).await?;
            FeeLesson::with_stored(o, stored.as_ref())
        }
        lesson => lesson,
    };
    match lesson {
        FeeLesson::Fee { product, charge } => tx.observe_fee(&product, charge, o).await,
        _ => Ok(()),
    }
}

/// Brings the record of `order`'s resource up to the order, in the transaction writing the order:
/// a record and its order never disagree, whatever instant a run dies at. `declared` is the
/// record as the declarations say now, given when the order is journaled.
pub(super) async fn follow_order_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    order: &OrderRecord,
    declared: Option<&ResourceRecord>,
) -> Result<(), StateError> {
    if order.address.kind.is_card() {
        return Ok(());
    }
    let stored = tx.resource(&order.address).await?;
    // Only a top-up's record says what it cost.
    let orders = match order.address.kind {
        ResourceKind::Topup => tx.orders_of(&order.address).await?,
        _ => Vec::new(),
    };
    if let Some(record) = record_after_order(stored, declared, order, &orders) {
        put_resource_in(tx, serial, &record).await?;
    }
    Ok(())
}

/// Writes the record of a resource that is not a card and logs its after-image under `serial`.
pub(super) async fn put_resource_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    r: &ResourceRecord,
) -> Result<(), StateError> {
    if r.image.kind() != r.address.kind {
        return Err(StateError::Corrupt(format!(
            "a {} image for {}",
            r.image.kind(),
            r.address
        )));
    }
    tx.write_resource(serial, r).await?;
    tx.log_change(serial, &r.address, Some(resource_change_json(r)?))
        .await
}

/// Forgets the record at `address` (a card's or another resource's) and logs a tombstone;
/// `false` when there was none.
pub(super) async fn remove_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    address: &Address,
) -> Result<bool, StateError> {
    let gone = tx.delete(address).await?;
    if gone {
        tx.log_change(serial, address, None).await?;
    }
    Ok(gone)
}

/// Gives card `old` the key `new`, with its journal, charges, audit trail and top-ups; logged as
/// `old` removed and `new` added under `serial`. `false` without such a card.
pub(super) async fn rename_card_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    old: &str,
    new: &str,
) -> Result<bool, StateError> {
    let Some(mut card) = tx.card(old).await? else {
        return Ok(false);
    };
    if tx.card(new).await?.is_some() {
        return Err(StateError::KeyExists(new.to_owned()));
    }
    tx.delete(&Address::card(old)).await?;
    tx.log_change(serial, &Address::card(old), None).await?;
    card.key = new.into();
    card.updated_at = now().into();
    put_card_in(tx, serial, &card).await?;
    // The journal and the audit follow the card, its idempotency keys unchanged; so do its
    // top-ups (`OLD:ID` becomes `NEW:ID`): a top-up left under the old key would be sent again.
    tx.rekey_card(old, new).await?;
    rename_topups_in(tx, serial, old, new).await?;
    Ok(true)
}

/// Moves the records of card `old`'s top-ups to card `new`: each logged as removed under its old
/// address and added under its new one.
async fn rename_topups_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    old: &str,
    new: &str,
) -> Result<(), StateError> {
    for mut r in tx.topup_records(old).await? {
        remove_in(tx, serial, &r.address).await?;
        let Some(id) = r.address.topup_id().map(str::to_owned) else {
            continue;
        };
        r.address = Address::topup(new, &id);
        if let super::ResourceImage::Topup(t) = &mut r.image {
            t.card = new.to_owned();
        }
        r.updated_at = now();
        put_resource_in(tx, serial, &r).await?;
    }
    Ok(())
}

/// Starts a run: the serial goes up by one and the run is recorded under it.
pub(super) async fn begin_run_in<T: Tx + ?Sized>(
    tx: &mut T,
    info: &RunInfo,
) -> Result<u64, StateError> {
    let serial = tx.next_serial().await?;
    tx.insert_run(&RunRecord {
        serial,
        at: info.at.clone(),
        finished_at: None,
        user: info.user.clone(),
        host: info.host.clone(),
        command: info.command.clone(),
        summary: serde_json::json!({}),
        charged: None,
        topups_sent: None,
    })
    .await?;
    Ok(serial)
}

pub(super) async fn finish_run_in<T: Tx + ?Sized>(
    tx: &mut T,
    serial: u64,
    summary: &serde_json::Value,
) -> Result<(), StateError> {
    let summary = serde_json::to_string(summary)
        .map_err(|e| StateError::Corrupt(format!("run summary: {e}")))?;
    if tx.finish_run(serial, &now(), &summary).await? {
        Ok(())
    } else {
        Err(StateError::NotFound(format!("run with serial {serial}")))
    }
}

/// The upgrade to schema 7: every card's `charged` recomputed from its orders (a lost lock could
/// have added an order's charge twice; refunds were not counted). The cards whose figure changes
/// are written under a run of their own, so history and diff show the correction. Returns how
/// many changed.
pub(super) async fn recompute_charged_in<T: Tx + ?Sized>(tx: &mut T) -> Result<u64, StateError> {
    let costs = journal::card_costs(tx.charged_orders().await?)?;
    let wrong = journal::misstated(tx.stored_charges().await?, &costs)?;
    if wrong.is_empty() {
        return Ok(0);
    }
    let serial = tx.next_serial().await?;
    let at = now();
    tx.insert_run(&RunRecord {
        serial,
        at: at.clone(),
        finished_at: Some(at),
        user: "cardform".into(),
        host: super::local_host(),
        command: money::RECOMPUTE_COMMAND.into(),
        summary: serde_json::json!({ "recomputed_charged": wrong.len() }),
        charged: None,
        topups_sent: None,
    })
    .await?;
    for (key, charged) in &wrong {
        // A card in `wrong` was read from this transaction.
        if let Some(card) = tx.card(key).await? {
            let card = CardRecord {
                charged: *charged,
                ..card
            };
            put_card_in(tx, serial, &card).await?;
        }
    }
    Ok(wrong.len() as u64)
}

/// Fills a state just created (serial 0, no runs) with `dump`, every row under the serial it was
/// last written under; refuses one that holds anything.
pub(super) async fn load_in<T: Tx + ?Sized>(
    tx: &mut T,
    dump: &StateDump,
) -> Result<(), StateError> {
    let (serial, runs) = tx.load_target().await?;
    if serial != 0 || runs != 0 {
        return Err(StateError::NotEmpty(format!(
            "it already holds {runs} runs (serial {serial})"
        )));
    }
    let (currency, provider) = (dump.currency.as_deref(), dump.provider.as_deref());
    tx.set_identity(&dump.lineage, dump.serial, currency, provider)
        .await?;
    for r in &dump.runs {
        tx.insert_run(r).await?;
    }
    for (card, serial) in &dump.cards {
        put_card_in(tx, *serial, card).await?;
    }
    for (order, serial) in &dump.orders {
        upsert_order_in(tx, *serial, order).await?;
    }
    for (record, serial) in &dump.resources {
        put_resource_in(tx, *serial, record).await?;
    }
    // After the cards and resources: the change log as it was replaces what writing them logged.
    for (address, serial, image) in &dump.changes {
        tx.log_change(*serial, address, image.clone()).await?;
    }
    // After the orders: a call names the order it was made for.
    for c in &dump.calls {
        tx.insert_call(c).await?;
    }
    for f in &dump.observed_fees {
        tx.insert_observed_fee(f).await?;
    }
    tx.insert_approvals(&dump.approvals).await?;
    Ok(())
}

/// Everything plan needs, read in the caller's read transaction (one consistent picture).
pub(super) async fn snapshot_in<T: Tx + ?Sized>(tx: &mut T) -> Result<Snapshot, StateError> {
    let (lineage, serial) = tx.lineage_serial().await?;
    let cards = tx.all_cards().await?;
    let mut open_orders: BTreeMap<Address, Vec<OrderRecord>> = BTreeMap::new();
    for o in tx.open_orders().await? {
        open_orders.entry(o.address.clone()).or_default().push(o);
    }
    Ok(Snapshot {
        lineage,
        serial,
        cards,
        open_orders,
        observed_issue_fees: tx.observed_fees().await?,
        topups: tx.topups().await?,
        resources: tx.resources(None).await?,
        removed_cards: tx.removed_cards().await?,
    })
}

/// The rules through [`super::Store`] on a real SQLite file: what holds here holds for every
/// backend, since they share this code (the conformance suite runs both).
#[cfg(test)]
mod tests {
    use super::super::{CardPhase, LockRequest, OrderKind, OrderPhase, StateLocation, Store};
    use super::*;
    use rust_decimal::Decimal;
    use std::time::Duration;

    const T: &str = "2026-01-01T00:00:00Z";

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    async fn store(dir: &tempfile::TempDir) -> Store {
        Store::create(&StateLocation::File(dir.path().join("s.db")))
            .await
            .unwrap()
    }

    async fn run(s: &Store) -> u64 {
        let info = super::super::RunInfo {
            command: "test".into(),
            user: "u".into(),
            host: "h".into(),
            at: T.into(),
        };
        s.begin_run(info).await.unwrap()
    }

    fn order(key: &str, address: Address, kind: OrderKind, request: &str) -> OrderRecord {
        OrderRecord::prepared(key.into(), address, kind, 1, request.into(), None, T)
    }

    fn charged(mut o: OrderRecord, charge: &str) -> OrderRecord {
        o.phase = OrderPhase::Completed;
        o.charge = Some(d(charge));
        o.updated_at = "2026-01-01T00:00:01Z".into();
        o
    }

    fn card(key: &str) -> CardRecord {
        CardRecord {
            key: key.into(),
            external_user_id: "u-1".into(),
            product_code: "P".into(),
            initial_topup: None,
            desired_status: crate::decl::DesiredStatus::Active,
            labels: Default::default(),
            card_id: Some("c-1".into()),
            phase: CardPhase::Active,
            provider_status: None,
            last4: None,
            charged: Decimal::ZERO,
            attempt: 1,
            replaced_by: None,
            created_at: T.into(),
            updated_at: T.into(),
            balance: None,
        }
    }

    #[tokio::test]
    async fn a_key_journals_one_request_only() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let first = run(&s).await;
        let o = order("k1", Address::card("a"), OrderKind::Issue, "{}");
        assert_eq!(s.journal_order(first, &o).await.unwrap(), None);
        let second = run(&s).await;
        // Again, by a later run: the money stays the first run's.
        assert_eq!(s.journal_order(second, &o).await.unwrap(), Some(first));
        let other = order("k1", Address::card("a"), OrderKind::Issue, r#"{"x":1}"#);
        let err = s.journal_order(second, &other).await.unwrap_err();
        assert!(matches!(err, StateError::JournalConflict { .. }), "{err}");
        let elsewhere = order("k1", Address::card("b"), OrderKind::Issue, "{}");
        let err = s.journal_order(second, &elsewhere).await.unwrap_err();
        assert!(matches!(err, StateError::JournalConflict { .. }), "{err}");
        let err = s.record(second, Some(&charged(other, "1")), None).await;
        assert!(matches!(err, Err(StateError::JournalConflict { .. })));
        assert_eq!(s.get_order("k1").await.unwrap().unwrap().request, "{}");
    }

    #[tokio::test]
    async fn a_card_costs_what_its_orders_say() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let serial = run(&s).await;
        let mut c = card("a");
        c.charged = d("999");
        s.put_card(serial, &c).await.unwrap();
        assert_eq!(s.get_card("a").await.unwrap().unwrap().charged, d("0"));
        let issue = order("k1", Address::card("a"), OrderKind::Issue, "{}");
        s.journal_order(serial, &issue).await.unwrap();
        s.record(serial, Some(&charged(issue, "5.00")), None)
            .await
            .unwrap();
        let topup = order(
            "k2",
            Address::topup("a", "t1"),
            OrderKind::Topup,
            r#"{"amount":"20.00"}"#,
        );
        s.journal_order(serial, &topup).await.unwrap();
        s.record(serial, Some(&charged(topup, "20.50")), None)
            .await
            .unwrap();
        assert_eq!(s.get_card("a").await.unwrap().unwrap().charged, d("25.50"));
        let record = s.get_resource(&Address::topup("a", "t1")).await.unwrap();
        assert!(record.is_some(), "the top-up's record follows its order");
    }

    #[tokio::test]
    async fn a_renamed_card_takes_its_topups_along() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let serial = run(&s).await;
        s.put_card(serial, &card("a")).await.unwrap();
        s.put_card(serial, &card("b")).await.unwrap();
        let topup = order(
            "k2",
            Address::topup("a", "t1"),
            OrderKind::Topup,
            r#"{"amount":"20.00"}"#,
        );
        s.journal_order(serial, &topup).await.unwrap();
        let err = s.rename_card(serial, "a", "b").await.unwrap_err();
        assert!(matches!(err, StateError::KeyExists(_)), "{err}");
        assert!(!s.rename_card(serial, "nope", "c").await.unwrap());
        assert!(s.rename_card(serial, "a", "c").await.unwrap());
        assert!(s.get_card("a").await.unwrap().is_none());
        assert_eq!(s.get_card("c").await.unwrap().unwrap().key, "c");
        assert!(s.topup_orders_of("a").await.unwrap().is_empty());
        assert_eq!(s.topup_orders_of("c").await.unwrap().len(), 1);
        let records = s.topup_records_of("c").await.unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].address, Address::topup("c", "t1"));
        assert!(s.topup_records_of("a").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_write_after_the_lock_was_taken_over_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let serial = run(&s).await;
        let who = LockRequest {
            command: "apply".into(),
            pid: std::process::id(),
            host: "h".into(),
            user: "u".into(),
        };
        let held = s.acquire_lock(who, Duration::ZERO).await.unwrap();
        s.put_card(serial, &card("a")).await.unwrap();
        let other = Store::open(s.location()).await.unwrap();
        other.force_unlock(&held.lock_id).await.unwrap();
        let err = s.put_card(serial, &card("b")).await.unwrap_err();
        assert!(matches!(err, StateError::LockLost), "{err}");
        assert!(other.get_card("b").await.unwrap().is_none());
    }
}
