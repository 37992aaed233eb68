//! The one path every mutation takes: journal (committed) → send under its idempotency key →
//! acknowledge (order id committed) → track to a terminal status → settle (order and resource in
//! one transaction). Resuming a journaled order enters the same path where it left off. Nothing
//! else in cardform sends a mutation. Must not decide which mutations to make (that is `card`).
//! The path is generic over the kind of resource ([`super::sends::Sends`]): a card's mutation is
//! acknowledged and tracked as an order until terminal, a person's is answered at once and that
//! answer counts as terminal. What a refusal or an order's end does to the record is the kind's
//! own ([`super::settles::Settles`]).

use rust_decimal::Decimal;

pub(crate) use super::bindings::Bindings;
use super::events::ChargeWarning;
use super::mutation::{CardMutation, Journaled};
use super::poll::{FirstCheck, Seen};
use super::sends::{Refused, Sends, Tries};
use super::settles::Settles;
use super::{Charges, Ctx, Ended, Event, ExecError, slugs};
use crate::client::ClientError;
use crate::model::Address;
use crate::state::{
    CallRecord, CardPhase, CardRecord, OrderKind, OrderPhase, OrderRecord, ResourceRecord, money,
};
use crate::wire::{CardStatus, CheckOrderRequest, Order, OrderStatus};

impl Ctx {
    /// A journal entry for `mutation` on `address`, committed before anything is sent. The same
    /// key with the same request again is a no-op, so a re-run journals the very same entry.
    /// `record` is the declared record of a resource that is not a card, committed with it.
    pub(super) async fn journal(
        &self,
        idempotency_key: String,
        address: Address,
        mutation: &impl Journaled,
        attempt: u32,
        estimated_charge: Option<Decimal>,
        record: Option<&ResourceRecord>,
    ) -> Result<OrderRecord, ExecError> {
        let mut order = OrderRecord::prepared(
            idempotency_key,
            address,
            mutation.kind(),
            attempt,
            mutation.journal_form(&self.journal_key),
            estimated_charge,
            &self.now(),
        );
        // An entry journaled by an earlier run: a card taken out of state with `state rm` and
        // declared again asks for its first issue order again. Whatever that order was charged
        // is that run's money, not this one's.
        order.sent_serial = match record {
            Some(r) => {
                self.store
                    .journal_order_with(self.serial, &order, r)
                    .await?
            }
            None => self.store.journal_order(self.serial, &order).await?,
        };
        if order.sent_serial.is_some() && order.kind == OrderKind::Issue {
            // Look before re-sending: the provider keeps idempotency keys only so long
            // [assumed: `IDEMPOTENCY_KEY_TTL_SECS`], and past that the same key would issue (and
            // charge for) a second card. An order the journal knows the id of is checked instead.
            if let Some(stored) = self
                .store
                .orders_of(&order.address)
                .await?
                .into_iter()
                .find(|o| o.idempotency_key == order.idempotency_key && o.order_id.is_some())
            {
                return Ok(stored);
            }
        }
        Ok(order)
    }

    /// Carries a journaled order to its end, for every kind of resource: sends it (again, under
    /// the same key) when it was never acknowledged, else asks after it; follows it to a terminal
    /// answer; then settles it and `record` together.
    pub(super) async fn perform<R: Sends>(
        &self,
        mut order: OrderRecord,
        mutation: &R::Mutation,
        record: &mut R,
    ) -> Result<Ended, ExecError> {
        let first = match R::resume(self, &order).await {
            None => match self.send(&mut order, mutation, record).await? {
                Ok(a) => a,
                Err(ended) => return Ok(ended),
            },
            Some(Ok(a)) => a,
            Some(Err(e)) => return Ok(still_tracked(&order, e)),
        };
        let last = match R::follow(self, &order, first).await {
            Ok(a) => a,
            Err(e) => return Ok(still_tracked(&order, e)),
        };
        if let Some(why) = record.contradiction(self, &order, mutation, &last) {
            return self.refuse_binding(&order, mutation, why).await;
        }
        record.commit(self, order, mutation, &last).await
    }

    /// Sends a journaled order never acknowledged, and acknowledges the provider's answer; a
    /// refusal the kind asks to retry is sent again under the same key. `Err` of how the change
    /// ended when no answer came of it.
    async fn send<R: Sends>(
        &self,
        order: &mut OrderRecord,
        mutation: &R::Mutation,
        record: &mut R,
    ) -> Result<Result<R::Answer, Ended>, ExecError> {
        let mut tries = Tries::new();
        loop {
            let e = match R::send(mutation, &self.client, &order.idempotency_key).await {
                Ok(reply) => return record.answered(self, order, mutation, reply).await,
                Err(e) => e,
            };
            match record
                .refused_send(self, order, mutation, e, &mut tries)
                .await?
            {
                Refused::Retry => continue,
                Refused::Answer(a) => return Ok(Ok(a)),
                Refused::Ended(ended) => return Ok(Err(ended)),
            }
        }
    }

    /// Settles a terminal order and its card in one transaction, under the card's lock, and
    /// says what it cost.
    pub(super) async fn settle_card(
        &self,
        mut order: OrderRecord,
        card: &mut CardRecord,
        last: &Order,
    ) -> Result<Ended, ExecError> {
        // The card as it is now, not as this order found it: another order of the same card may
        // have settled meanwhile, and a top-up changes nothing of the card it must not keep. What
        // the card cost is not ours to add to: the store derives it from the journal.
        let lock = self.cards.lock(&card.key);
        let held = lock.lock().await;
        if let Some(now) = self.store.get_card(&card.key).await?
            && order.kind == OrderKind::Topup
        {
            *card = now;
        }
        let now = self.now();
        card.updated_at = now.as_str().into();
        card.settle(&mut order, last, &now);
        self.store
            .record(self.serial, Some(&order), Some(card))
            .await?;
        // The figure the store derived, so the caller's copy agrees with state.
        if let Some(now) = self.store.get_card(&card.key).await? {
            card.charged = now.charged;
        }
        drop(held);
        self.cards.unlock(&card.key, lock);
        if let Some(warning) = unexpected_charge(&order) {
            self.warn_charge(warning).await;
        }
        let charges = Charges::of(
            order.sent_serial.unwrap_or(self.serial),
            money::order_cost(&order),
        );
        if order.phase == OrderPhase::Failed {
            // A failed order that kept (part of) its charge still cost that much.
            self.book(charges).await;
            return Ok(Ended::Failed {
                slug: order.error_slug.clone().unwrap_or_default(),
                message: last
                    .last_error
                    .clone()
                    .unwrap_or_else(|| format!("the {} order failed", order.kind.as_str())),
            });
        }
        Ok(Ended::Done {
            card_id: card.card_id.as_deref().map(str::to_owned),
            // No `sent_serial`: this run journaled the entry, so what it cost is this run's.
            charges,
        })
    }

    /// Why the provider's answer `o` cannot be bound to `order` and `card` (see
    /// [`CardMutation::mismatch`]): a card id that is not the card's own, or one an issue order
    /// names that is bound to another card (in state, or earlier in this run). Only reads the
    /// bindings: [`Ctx::claim_card_id`] takes one.
    pub(super) fn mismatch(
        &self,
        order: &OrderRecord,
        mutation: &CardMutation,
        card: &CardRecord,
        o: &Order,
    ) -> Option<String> {
        if let Some(why) = mutation.mismatch(order, o) {
            return Some(why);
        }
        if let Some(why) = another_card(order, card, o) {
            return Some(why);
        }
        if mutation.kind() != OrderKind::Issue {
            return None;
        }
        let theirs = o.card_id.as_deref()?;
        let other = self
            .cards
            .bound
            .bound_to(theirs)
            .filter(|key| *key != card.key)?;
        Some(taken(o, theirs, &other))
    }

    /// Counts and reports an order charged other than the plan expected. The charge itself
    /// stays as observed: it is what the provider took, and every report reads it.
    async fn warn_charge(&self, warning: ChargeWarning) {
        self.summary.lock().await.warn_charge(warning.clone());
        self.events.emit(Event::ChargeDiffers(warning));
    }

    /// An answer that contradicts the journal binds nothing: the journal entry stays as it was
    /// (so nothing is lost), the call is audited, and the change fails with the reason.
    pub(super) async fn refuse_binding(
        &self,
        order: &OrderRecord,
        mutation: &impl Journaled,
        why: String,
    ) -> Result<Ended, ExecError> {
        self.audit(order, mutation.endpoint(), slugs::ORDER_MISMATCH, None)
            .await?;
        Ok(Ended::Failed {
            slug: slugs::ORDER_MISMATCH.into(),
            message: format!("{why}; nothing was recorded for it"),
        })
    }

    /// The provider gave us the order: commit its id (and charge) at once.
    pub(super) async fn acknowledge(
        &self,
        order: &mut OrderRecord,
        o: &Order,
        endpoint: &str,
    ) -> Result<(), ExecError> {
        order.order_id = Some(o.order_id.clone());
        order.phase = OrderPhase::Open;
        order.provider_status = Some(o.status.to_string());
        order.sub_status = o.issue_status.as_ref().map(|s| s.to_string());
        order.charge = o.charge();
        order.updated_at = self.now();
        let call = self.call_record(order, endpoint, "ok", order.charge);
        self.store.record_answer(self.serial, order, &call).await?;
        self.events.emit(Event::OrderCreated {
            key: order.address.key.clone(),
            kind: order.kind.as_str(),
            order_id: o.order_id.clone(),
            idempotency_key: order.idempotency_key.clone(),
            charge: order.charge,
        });
        Ok(())
    }

    /// The audit trail of mutations (`state audit`): one row per answer to a mutation, refusals
    /// and unknown outcomes included.
    pub(super) async fn audit(
        &self,
        order: &OrderRecord,
        endpoint: &str,
        result: &str,
        charge: Option<Decimal>,
    ) -> Result<(), ExecError> {
        let call = self.call_record(order, endpoint, result, charge);
        self.store.record_call(&call).await?;
        Ok(())
    }

    pub(super) fn call_record(
        &self,
        order: &OrderRecord,
        endpoint: &str,
        result: &str,
        charge: Option<Decimal>,
    ) -> CallRecord {
        CallRecord {
            at: self.now(),
            endpoint: endpoint.to_owned(),
            idempotency_key: Some(order.idempotency_key.clone()),
            order_id: order.order_id.clone(),
            address: Some(order.address.clone()),
            result: result.to_owned(),
            charge,
        }
    }

    /// Poll `orders/check` until the order is terminal, checking near its expected finish, and
    /// tell the latency model what the checks showed (an interval, see [`Seen`]).
    pub(super) async fn track(
        &self,
        order: &OrderRecord,
        mut last: Order,
    ) -> Result<Order, ClientError> {
        let started = tokio::time::Instant::now();
        let id = order.order_id.as_deref().unwrap_or_default();
        if let Some(inbox) = self.inbox.as_ref().filter(|_| !last.status.is_terminal()) {
            // A delivery is an order that passed the envelope check, nothing more: it is
            // settled through the same checks as a polled one. None by the deadline (late or
            // lost): poll as without webhooks, from the first check on.
            let deadline =
                (self.latency.first_check(0.0) * WEBHOOK_WAIT_FACTOR).max(WEBHOOK_WAIT_FLOOR);
            if let Some(delivered) = inbox.wait(id, deadline).await {
                let t = started.elapsed().as_secs_f64();
                let seen = Seen {
                    open_at: None,
                    done_sent: t,
                    done_by: t,
                    provider: provider_span(&delivered),
                };
                self.latency.observe(seen, false);
                return Ok(delivered);
            }
        }
        let mut n = 0u32;
        // Held until the order is observed below: if its checks fail first, and it was the
        // scout, dropping it hands the role on.
        let mut first_check = None;
        let (mut open_at, mut sent) = (None, 0.0);
        while !last.status.is_terminal() {
            if n == 0 {
                first_check = Some(self.latency.until_first_check(started, self.jitter()).await);
            } else if n == 1 && first_check.as_ref().is_some_and(FirstCheck::explores) {
                // An explorer found it open, as most do: check again when an ordinary first
                // check would, not in re-check steps from its early start.
                tokio::time::sleep_until(started + self.latency.first_check(self.jitter())).await;
            } else {
                tokio::time::sleep(self.latency.recheck(n, self.jitter())).await;
            }
            n += 1;
            let req = CheckOrderRequest {
                order_id: order
                    .order_id
                    .clone()
                    .expect("tracked orders are acknowledged"),
            };
            sent = started.elapsed().as_secs_f64();
            last = self.client.call(&req, None).await?;
            if !last.status.is_terminal() {
                open_at = Some(sent);
            }
        }
        let seen = Seen {
            open_at,
            done_sent: sent,
            done_by: started.elapsed().as_secs_f64(),
            provider: provider_span(&last),
        };
        let explorer = first_check.as_ref().is_some_and(FirstCheck::explores);
        self.latency.observe(seen, explorer);
        if let Some(inbox) = &self.inbox {
            inbox.settled(id);
        }
        Ok(last)
    }
}

/// How long `track` waits for an order's webhook before polling: this many times the expected
/// finish, and never less than the floor (a first estimate may be far too short).
const WEBHOOK_WAIT_FACTOR: u32 = 3;
const WEBHOOK_WAIT_FLOOR: std::time::Duration = std::time::Duration::from_secs(2);

/// Why `o` is not about `card`: a top-up or status order is about the card it was sent for, and
/// an issue order resumed for a card that has an id already must name that one. Another id is
/// another card, perhaps another person's.
pub(super) fn another_card(order: &OrderRecord, card: &CardRecord, o: &Order) -> Option<String> {
    let theirs = o.card_id.as_deref()?;
    let ours = card.card_id.as_deref().filter(|ours| *ours != theirs)?;
    Some(format!(
        "the provider's {} order {} names card {theirs}, but {} is card {ours}",
        order.kind.as_str(),
        o.order_id,
        card.key
    ))
}

/// Why an issue order the provider calls `completed` issued nothing we can bind: it names no
/// card. Its journal entry stays open (it is not settled), so the next run checks it again.
pub(super) fn not_issued(order: &OrderRecord, card: &CardRecord, o: &Order) -> Option<String> {
    let unissued = order.kind == OrderKind::Issue
        && o.status == OrderStatus::Completed
        && o.card_id.is_none()
        && card.card_id.is_none();
    unissued.then(|| {
        format!(
            "order {} completed without a card id: the card is not issued (its order stays \
             open; the next run checks it again)",
            o.order_id
        )
    })
}

/// Why card id `card_id`, named by `o`, cannot be bound: `other` holds it.
pub(super) fn taken(o: &Order, card_id: &str, other: &str) -> String {
    format!(
        "order {} names card {card_id}, which is already bound to {other}",
        o.order_id
    )
}

/// Beyond this, a charge differs from the plan's estimate (not a rounding of it).
const CHARGE_TOLERANCE: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// A settled order charged other than the plan expected: more or less than its estimate beyond
/// rounding, or a credit (a negative charge) where it was to cost something. `None` when the
/// estimate or the charge is unknown.
fn unexpected_charge(order: &OrderRecord) -> Option<ChargeWarning> {
    let (expected, charged) = (order.estimated_charge?, order.charge?);
    let credit = charged < Decimal::ZERO && expected > Decimal::ZERO;
    ((charged - expected).abs() > CHARGE_TOLERANCE || credit).then(|| ChargeWarning {
        key: order.address.key.to_string(),
        kind: order.kind.as_str(),
        order_id: order.order_id.clone().unwrap_or_default(),
        expected,
        charged,
    })
}

/// An acknowledged order whose end could not be seen: it stays open in the journal.
fn still_tracked(order: &OrderRecord, e: ClientError) -> Ended {
    Ended::Failed {
        slug: slugs::of(&e),
        message: format!(
            "{e} (order {} is still tracked: re-run apply to resume)",
            order.order_id.as_deref().unwrap_or("?")
        ),
    }
}

/// The bookkeeping when an order is seen terminal, for exec and refresh alike: the order's final
/// status, real charge and error, and what it did to the card.
pub(crate) fn settle(order: &mut OrderRecord, card: &mut CardRecord, o: &Order, now: &str) {
    order.provider_status = Some(o.status.to_string());
    if order.kind == OrderKind::Issue {
        order.sub_status = o.issue_status.as_ref().map(|s| s.to_string());
    }
    order.charge = o.charge().or(order.charge);
    order.refunded = o.refunded();
    order.updated_at = now.to_owned();
    if o.status == OrderStatus::Failed {
        order.phase = OrderPhase::Failed;
        order.error_slug = o
            .last_error_slug
            .clone()
            .or(Some(slugs::ORDER_FAILED.into()));
        order.error_message = o.last_error.clone();
        if order.kind == OrderKind::Issue {
            card.phase = CardPhase::Failed;
        }
        return;
    }
    order.phase = OrderPhase::Completed;
    match order.kind {
        OrderKind::Issue => {
            card.card_id = o.card_id.as_deref().map(Into::into).or(card.card_id.take());
            card.phase = CardPhase::Active;
            card.provider_status = o.provider_card_status.as_deref().map(Into::into);
        }
        OrderKind::Freeze => {
            card.phase = CardPhase::Frozen;
            card.provider_status = o
                .provider_card_status
                .as_deref()
                .map(Into::into)
                .or(Some(CardStatus::Frozen.to_string().into()));
        }
        OrderKind::Unfreeze => {
            card.phase = CardPhase::Active;
            card.provider_status = o
                .provider_card_status
                .as_deref()
                .map(Into::into)
                .or(Some(CardStatus::Active.to_string().into()));
        }
        OrderKind::Topup | OrderKind::CreateUser | OrderKind::CreateCardholder => {}
    }
}

/// How long the provider says the order took (`completed_at`/`failed_at` − `created_at`), in
/// seconds, as a span widened by the timestamps' resolution: a provider that stamps whole seconds
/// says only "between d − 1 s and d + 1 s".
fn provider_span(o: &Order) -> Option<(f64, f64)> {
    let end = o.completed_at.as_deref().or(o.failed_at.as_deref())?;
    let start: jiff::Timestamp = o.created_at.parse().ok()?;
    let end: jiff::Timestamp = end.parse().ok()?;
    // Negative only where truncation put the end in the second before the start.
    let d = end.duration_since(start).as_secs_f64();
    let span = ((d - resolution(start)).max(0.0), d + resolution(end));
    (span.1 >= 0.0).then_some(span)
}

/// The finest unit a timestamp seems to be given in, in seconds (from its fraction's trailing
/// zeros; a precise one that happens to fall on a whole second is only taken as coarser).
fn resolution(t: jiff::Timestamp) -> f64 {
    match t.subsec_nanosecond() {
        0 => 1.0,
        n if n % 1_000_000 == 0 => 1e-3,
        n if n % 1_000 == 0 => 1e-6,
        _ => 1e-9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::CardPhase;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn card(key: &str, card_id: Option<&str>) -> CardRecord {
        CardRecord {
            key: key.into(),
            external_user_id: "u-1".into(),
            product_code: "VISA_USD_STD".into(),
            initial_topup: None,
            desired_status: Default::default(),
            labels: Default::default(),
            card_id: card_id.map(Into::into),
            phase: CardPhase::Pending,
            provider_status: None,
            last4: None,
            charged: Decimal::ZERO,
            attempt: 1,
            replaced_by: None,
            balance: None,
            created_at: Default::default(),
            updated_at: Default::default(),
        }
    }

    fn order(key: &str, kind: OrderKind, estimate: Option<&str>) -> OrderRecord {
        let mut o = OrderRecord::prepared(
            format!("cf-{key}"),
            Address::card(key),
            kind,
            1,
            "{}".into(),
            estimate.map(d),
            "",
        );
        o.order_id = Some(format!("ord-{key}"));
        o
    }

    fn answer(order_type: &str, card_id: Option<&str>) -> Order {
        serde_json::from_value(serde_json::json!({
            "order_id": "ord-x", "order_type": order_type, "status": "completed",
            "card_id": card_id, "data": {}, "created_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap()
    }

    #[test]
    fn a_card_id_is_bound_to_one_key_only() {
        let bound = Bindings::of([&card("old", Some("card_0"))]);
        let issue = |key| order(key, OrderKind::Issue, None);
        // State's card keeps its id; the first key to finish binds a new one, the next is refused.
        let why = bound.refuse(
            &issue("a"),
            &card("a", None),
            &answer("card_issue", Some("card_0")),
        );
        assert!(why.unwrap().contains("already bound to old"));
        assert_eq!(
            bound.refuse(
                &issue("a"),
                &card("a", None),
                &answer("card_issue", Some("card_1"))
            ),
            None
        );
        assert_eq!(
            bound.refuse(
                &issue("a"),
                &card("a", None),
                &answer("card_issue", Some("card_1"))
            ),
            None,
            "the same key again"
        );
        let why = bound.refuse(
            &issue("b"),
            &card("b", None),
            &answer("card_issue", Some("card_1")),
        );
        assert!(why.unwrap().contains("already bound to a"));
        // Completed naming no card: nothing issued, nothing bound.
        let why = bound.refuse(&issue("c"), &card("c", None), &answer("card_issue", None));
        assert!(why.unwrap().contains("completed without a card id"));
        // A top-up or status order for another card than the card's own.
        let topup = order("a", OrderKind::Topup, None);
        let why = bound.refuse(
            &topup,
            &card("a", Some("card_1")),
            &answer("card_topup", Some("card_0")),
        );
        assert!(
            why.unwrap()
                .contains("names card card_0, but a is card card_1")
        );
        let freeze = order("a", OrderKind::Freeze, None);
        assert_eq!(
            bound.refuse(
                &freeze,
                &card("a", Some("card_1")),
                &answer("card_freeze", Some("card_1"))
            ),
            None
        );
    }

    #[test]
    fn charges_beyond_rounding_or_credits_are_unexpected() {
        let charged = |estimate: Option<&str>, charge: Option<&str>| {
            let mut o = order("a", OrderKind::Issue, estimate);
            o.charge = charge.map(d);
            unexpected_charge(&o).map(|w| (w.expected, w.charged))
        };
        assert_eq!(charged(Some("5.00"), Some("5.00")), None);
        assert_eq!(charged(Some("5.00"), Some("5.01")), None, "rounding");
        assert_eq!(charged(Some("5.00"), Some("4.99")), None, "rounding");
        assert_eq!(
            charged(Some("5.00"), Some("50.00")),
            Some((d("5.00"), d("50.00")))
        );
        assert_eq!(
            charged(Some("5.00"), Some("-5.00")),
            Some((d("5.00"), d("-5.00")))
        );
        assert_eq!(
            charged(Some("0.01"), Some("-0.01")),
            Some((d("0.01"), d("-0.01"))),
            "a credit"
        );
        assert_eq!(
            charged(None, Some("50.00")),
            None,
            "no estimate: nothing to compare"
        );
        assert_eq!(charged(Some("5.00"), None), None);
        assert_eq!(charged(Some("0"), Some("0.00")), None, "a status order");
    }

    #[test]
    fn the_providers_span_is_as_wide_as_its_timestamps_are_coarse() {
        let stamped = |created: &str, completed: Option<&str>| {
            let mut o = answer("card_issue", None);
            o.created_at = created.into();
            o.completed_at = completed.map(Into::into);
            provider_span(&o)
        };
        let near =
            |(a, b): (f64, f64), (x, y): (f64, f64)| (a - x).abs() < 1e-9 && (b - y).abs() < 1e-9;
        let span = stamped(
            "2026-01-01T00:00:00.1Z",
            Some("2026-01-01T00:00:00.300001Z"),
        )
        .unwrap();
        assert!(near(span, (0.199_001, 0.200_002)), "{span:?}");
        // Whole seconds: the end truncated into the second the order started in.
        let span = stamped("2026-01-01T00:00:00.8Z", Some("2026-01-01T00:00:00Z")).unwrap();
        assert!(near(span, (0.0, 0.2)), "{span:?}");
        assert_eq!(stamped("2026-01-01T00:00:00.8Z", None), None);
        assert_eq!(stamped("2026-01-01T00:00:00.8Z", Some("soon")), None);
    }
}
