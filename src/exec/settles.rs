//! What a resource's record does when its mutation ends, whatever the kind: [`Settles`] is
//! implemented for a card's record and for a person's, so a refusal or an unknown outcome takes
//! one path ([`Ctx::send_failed`]) for every kind: the same audit row, the same journal phase, the
//! same message rules. Must not send or decide anything: `perform` sends, `card` and `people`
//! decide.

use rust_decimal::Decimal;

use super::mutation::{CardMutation, Journaled, PersonAnswer, PersonMutation};
use super::{Ctx, Ended, ExecError, slugs};
use crate::client::ClientError;
use crate::state::{CardPhase, CardRecord, OrderPhase, OrderRecord, ResourceRecord};
use crate::wire::Order;

/// A resource record that settles from its order's outcome.
pub(super) trait Settles {
    /// The mutations that change this kind of resource.
    type Mutation: Journaled;
    /// The provider's last word on such a mutation: a card's terminal order, a person's answer.
    type Answer;

    /// The bookkeeping of a mutation seen to its end: the order's final phase, status and charge,
    /// and what it did to the record. Writes nothing: the caller commits both together.
    fn settle(&mut self, order: &mut OrderRecord, answer: &Self::Answer, now: &str);

    /// The record's side of a refusal (no order exists at the provider, so none was made):
    /// whether it changed, and so is written with the order.
    fn refused(&mut self, now: &str) -> bool;

    /// What is kept and shown of refusal `e` of `mutation`.
    fn refusal_message(mutation: &Self::Mutation, e: &ClientError) -> String {
        let _ = mutation;
        e.to_string()
    }

    /// The card record to write with a settled order, when this is one: a card's record is
    /// derived (its cost) in the order's transaction, a person's was committed with the journal
    /// entry and changes only through its orders.
    fn as_card(&self) -> Option<&CardRecord>;
}

impl Settles for CardRecord {
    type Mutation = CardMutation;
    type Answer = Order;

    fn settle(&mut self, order: &mut OrderRecord, answer: &Order, now: &str) {
        super::perform::settle(order, self, answer, now);
    }

    /// A card that was never issued fails with its issue order; an issued one is as it was.
    fn refused(&mut self, now: &str) -> bool {
        if self.phase != CardPhase::Pending {
            return false;
        }
        self.phase = CardPhase::Failed;
        self.updated_at = now.into();
        true
    }

    fn as_card(&self) -> Option<&CardRecord> {
        Some(self)
    }
}

/// How a person's create ended well: created now, or found at the provider already.
pub(super) enum PersonOutcome {
    Created(PersonAnswer),
    /// The provider has them already ("exists"): nothing was created, nothing is wrong.
    Adopted,
}

impl Settles for ResourceRecord {
    type Mutation = PersonMutation;
    type Answer = PersonOutcome;

    /// A person costs nothing, and is answered at once: completed with what the provider said.
    fn settle(&mut self, order: &mut OrderRecord, answer: &PersonOutcome, now: &str) {
        order.phase = OrderPhase::Completed;
        order.charge = Some(Decimal::ZERO);
        order.updated_at = now.to_owned();
        if let PersonOutcome::Created(a) = answer {
            order.order_id = a.id.clone();
            order.provider_status = a.registration_status.clone();
            order.sub_status = a.kyc_status.clone();
        }
    }

    /// A person's record holds what was declared: a refusal is told by its order alone.
    fn refused(&mut self, _now: &str) -> bool {
        false
    }

    fn refusal_message(mutation: &PersonMutation, e: &ClientError) -> String {
        super::people::refusal_message(mutation, e)
    }

    fn as_card(&self) -> Option<&CardRecord> {
        None
    }
}

impl Ctx {
    /// The provider refused, or the outcome is unknown (retries exhausted): record which, for
    /// any kind of resource.
    pub(super) async fn send_failed<R: Settles>(
        &self,
        mut order: OrderRecord,
        mutation: &R::Mutation,
        record: &mut R,
        e: ClientError,
    ) -> Result<Ended, ExecError> {
        let slug = slugs::of(&e);
        if !matches!(e, ClientError::Provider(_)) {
            // The order may exist at the provider: it stays `prepared`, and a re-run re-sends the
            // same key to find out, never a new one.
            self.audit(&order, mutation.endpoint(), &slug, None).await?;
            return Ok(Ended::Failed {
                slug,
                message: format!("{e} (outcome unknown: re-run apply to resume it safely)"),
            });
        }
        // A refusal creates no order: the change can be made again with the next attempt.
        let message = R::refusal_message(mutation, &e);
        order.phase = OrderPhase::Failed;
        order.error_slug = Some(slug.clone());
        order.error_message = Some(message.clone());
        order.updated_at = self.now();
        let changed = record.refused(&order.updated_at);
        let call = self.call_record(&order, mutation.endpoint(), &slug, None);
        match record.as_card() {
            // A card's record is written with the order, its cost derived from it.
            Some(card) => {
                self.store.record_call(&call).await?;
                self.store
                    .record(self.serial, Some(&order), changed.then_some(card))
                    .await?;
            }
            None => self.store.record_answer(self.serial, &order, &call).await?,
        }
        Ok(Ended::Failed { slug, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(phase: CardPhase) -> CardRecord {
        CardRecord {
            key: "a".into(),
            external_user_id: "u-1".into(),
            product_code: "VISA_USD_STD".into(),
            initial_topup: None,
            desired_status: Default::default(),
            labels: Default::default(),
            card_id: None,
            phase,
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

    #[test]
    fn a_refusal_fails_only_a_card_never_issued() {
        let mut pending = card(CardPhase::Pending);
        assert!(pending.refused("t1"));
        assert_eq!(pending.phase, CardPhase::Failed);
        assert_eq!(pending.updated_at, "t1");
        // A refused top-up or freeze of an issued card leaves the card as it was.
        let mut active = card(CardPhase::Active);
        assert!(!active.refused("t1"));
        assert_eq!(active.phase, CardPhase::Active);
        assert_eq!(active.updated_at, "");
    }
}
