//! What each kind of resource brings to the one send path of [`Ctx::perform`]: how its mutation
//! is sent, what an answer or a refusal means for it, how it is followed to its end and how the
//! end is committed. A card's mutation is answered with an order, acknowledged and tracked until
//! terminal; a person's is answered at once, and that answer counts as terminal. Must not journal
//! or choose the order of the steps: `perform` does, the same way for every kind.

use tokio::time::Instant;

use super::mutation::{CardMutation, Journaled, PersonAnswer, PersonMutation};
use super::people::{KycTries, KycWait};
use super::settles::{PersonOutcome, Settles};
use super::{Charges, Ctx, Ended, ExecError, slugs};
use crate::client::{Client, ClientError};
use crate::model::ResourceKind;
use crate::state::{CardRecord, OrderRecord, ResourceRecord};
use crate::wire::error::slug;
use crate::wire::{CheckOrderRequest, Order};

/// How a send that was not answered with a usable reply goes on.
pub(super) enum Refused<A> {
    /// Send the same request again, under the same key.
    Retry,
    /// The refusal is itself an answer (a person the provider has already).
    Answer(A),
    /// The change ended here; the failure is recorded.
    Ended(Ended),
}

/// One send's tries so far: when it started, and its KYC wait.
pub(super) struct Tries {
    started: Instant,
    kyc: KycTries,
}

impl Tries {
    pub(super) fn new() -> Self {
        Tries {
            started: Instant::now(),
            kyc: KycTries::default(),
        }
    }
}

/// A resource record the one send path can carry from journal entry to settled record.
pub(super) trait Sends: Settles + Sized {
    /// What the provider answers a send with.
    type Reply;

    /// Sends `mutation` under `key`: the provider acts once per key.
    async fn send(
        mutation: &Self::Mutation,
        client: &Client,
        key: &str,
    ) -> Result<Self::Reply, ClientError>;

    /// The provider's answer to an order acknowledged by an earlier run, when this kind leaves
    /// such orders (`None`: it is sent again, under the same key).
    async fn resume(ctx: &Ctx, order: &OrderRecord) -> Option<Result<Self::Answer, ClientError>>;

    /// Checks `reply` against the journal and commits what it acknowledges. `Err` of how the
    /// change ended when the reply binds nothing.
    async fn answered(
        &mut self,
        ctx: &Ctx,
        order: &mut OrderRecord,
        mutation: &Self::Mutation,
        reply: Self::Reply,
    ) -> Result<Result<Self::Answer, Ended>, ExecError>;

    /// What refusal (or unknown outcome) `e` means for this record.
    async fn refused_send(
        &mut self,
        ctx: &Ctx,
        order: &OrderRecord,
        mutation: &Self::Mutation,
        e: ClientError,
        tries: &mut Tries,
    ) -> Result<Refused<Self::Answer>, ExecError>;

    /// Follows `first` to its terminal answer.
    async fn follow(
        ctx: &Ctx,
        order: &OrderRecord,
        first: Self::Answer,
    ) -> Result<Self::Answer, ClientError>;

    /// Why the terminal answer `last` cannot be bound to this record (`None`: it can).
    fn contradiction(
        &self,
        ctx: &Ctx,
        order: &OrderRecord,
        mutation: &Self::Mutation,
        last: &Self::Answer,
    ) -> Option<String>;

    /// Settles the record from `last` and commits it with `order`: how the change ended.
    async fn commit(
        &mut self,
        ctx: &Ctx,
        order: OrderRecord,
        mutation: &Self::Mutation,
        last: &Self::Answer,
    ) -> Result<Ended, ExecError>;
}

impl Sends for CardRecord {
    type Reply = Order;

    async fn send(m: &CardMutation, client: &Client, key: &str) -> Result<Order, ClientError> {
        m.send(client, key).await
    }

    async fn resume(ctx: &Ctx, order: &OrderRecord) -> Option<Result<Order, ClientError>> {
        let order_id = order.order_id.clone()?;
        Some(ctx.client.call(&CheckOrderRequest { order_id }, None).await)
    }

    async fn answered(
        &mut self,
        ctx: &Ctx,
        order: &mut OrderRecord,
        mutation: &CardMutation,
        o: Order,
    ) -> Result<Result<Order, Ended>, ExecError> {
        if let Some(why) = ctx.mismatch(order, mutation, self, &o) {
            return ctx.refuse_binding(order, mutation, why).await.map(Err);
        }
        ctx.acknowledge(order, &o, mutation.endpoint()).await?;
        Ok(Ok(o))
    }

    /// An issue refused because its cardholder is not ready yet is sent again (a refusal binds
    /// no key at the provider [assumed]) until `--kyc-wait` runs out.
    async fn refused_send(
        &mut self,
        ctx: &Ctx,
        order: &OrderRecord,
        mutation: &CardMutation,
        e: ClientError,
        tries: &mut Tries,
    ) -> Result<Refused<Order>, ExecError> {
        let order = order.clone();
        let CardMutation::IssueCard(r) = mutation else {
            return Ok(Refused::Ended(
                ctx.send_failed(order, mutation, self, e).await?,
            ));
        };
        let product = r.product_code.as_deref().unwrap_or_default();
        let wait = ctx
            .wait_for_kyc(
                &e,
                &self.key,
                &r.external_user_id,
                product,
                tries.started,
                &mut tries.kyc,
            )
            .await?;
        let ended = match wait {
            KycWait::Retry => return Ok(Refused::Retry),
            KycWait::NotKyc => {
                return Ok(Refused::Ended(
                    ctx.send_failed(order, mutation, self, e).await?,
                ));
            }
            KycWait::TimedOut => Ended::WaitingForKyc {
                message: format!(
                    "{e}; still not ready after waiting {}s (--kyc-wait)",
                    tries.started.elapsed().as_secs()
                ),
            },
            KycWait::Refused(status) => Ended::Failed {
                slug: slugs::KYC_REJECTED.into(),
                message: format!("the cardholder of {}: KYC {status}", r.external_user_id),
            },
        };
        ctx.send_failed(order, mutation, self, e).await?;
        Ok(Refused::Ended(ended))
    }

    async fn follow(ctx: &Ctx, order: &OrderRecord, first: Order) -> Result<Order, ClientError> {
        ctx.track(order, first).await
    }

    /// Checked again at the end: the order id is journalled now, and the card id is known. The
    /// card id is claimed last, so an answer refused for another reason claims nothing.
    fn contradiction(
        &self,
        ctx: &Ctx,
        order: &OrderRecord,
        mutation: &CardMutation,
        last: &Order,
    ) -> Option<String> {
        ctx.mismatch(order, mutation, self, last)
            .or_else(|| ctx.cards.bound.refuse(order, self, last))
    }

    async fn commit(
        &mut self,
        ctx: &Ctx,
        order: OrderRecord,
        _: &CardMutation,
        last: &Order,
    ) -> Result<Ended, ExecError> {
        ctx.settle_card(order, self, last).await
    }
}

impl Sends for ResourceRecord {
    type Reply = PersonAnswer;

    async fn send(
        m: &PersonMutation,
        client: &Client,
        key: &str,
    ) -> Result<PersonAnswer, ClientError> {
        m.send(client, key).await
    }

    /// A person is answered at once: no order of theirs is left to resume.
    async fn resume(_: &Ctx, _: &OrderRecord) -> Option<Result<PersonOutcome, ClientError>> {
        None
    }

    /// The answer is the person's, and terminal: committed when settled.
    async fn answered(
        &mut self,
        _: &Ctx,
        _: &mut OrderRecord,
        _: &PersonMutation,
        a: PersonAnswer,
    ) -> Result<Result<PersonOutcome, Ended>, ExecError> {
        Ok(Ok(PersonOutcome::Created(a)))
    }

    /// "Exists" adopts the person the provider has; any other refusal is recorded as one.
    async fn refused_send(
        &mut self,
        ctx: &Ctx,
        order: &OrderRecord,
        mutation: &PersonMutation,
        e: ClientError,
        _: &mut Tries,
    ) -> Result<Refused<PersonOutcome>, ExecError> {
        if e.slug().is_some_and(|s| adopts(order.address.kind, s)) {
            return Ok(Refused::Answer(PersonOutcome::Adopted));
        }
        let ended = ctx.send_failed(order.clone(), mutation, self, e).await?;
        Ok(Refused::Ended(ended))
    }

    async fn follow(
        _: &Ctx,
        _: &OrderRecord,
        first: PersonOutcome,
    ) -> Result<PersonOutcome, ClientError> {
        Ok(first)
    }

    /// A person's answer names nothing the journal could contradict.
    fn contradiction(
        &self,
        _: &Ctx,
        _: &OrderRecord,
        _: &PersonMutation,
        _: &PersonOutcome,
    ) -> Option<String> {
        None
    }

    async fn commit(
        &mut self,
        ctx: &Ctx,
        mut order: OrderRecord,
        mutation: &PersonMutation,
        last: &PersonOutcome,
    ) -> Result<Ended, ExecError> {
        self.settle(&mut order, last, &ctx.now());
        if order.address.kind == ResourceKind::Cardholder {
            // Known to this run from now on, for the KYC status its cards' answers reveal.
            ctx.people
                .kyc_learned
                .lock()
                .await
                .entry(order.address.clone())
                .or_insert(order.sub_status.clone());
        }
        let result = match last {
            PersonOutcome::Adopted => "adopted",
            PersonOutcome::Created(_) => "ok",
        };
        let call = ctx.call_record(&order, mutation.endpoint(), result, None);
        ctx.store.record_answer(ctx.serial, &order, &call).await?;
        Ok(Ended::Done {
            card_id: None,
            charges: Charges::none(),
        })
    }
}

/// Whether refusal `slug` of a person's create means the provider has them already.
fn adopts(kind: ResourceKind, slug: &str) -> bool {
    match kind {
        ResourceKind::User => slug == slug::EXTERNAL_USER_ID_EXISTS,
        ResourceKind::Cardholder => slug == slug::CARDHOLDER_ALREADY_EXISTS,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_kinds_own_exists_refusal_adopts_a_person() {
        assert!(adopts(ResourceKind::User, slug::EXTERNAL_USER_ID_EXISTS));
        assert!(adopts(
            ResourceKind::Cardholder,
            slug::CARDHOLDER_ALREADY_EXISTS
        ));
        // A user's "exists" says nothing of a cardholder, and the reverse.
        assert!(!adopts(ResourceKind::User, slug::CARDHOLDER_ALREADY_EXISTS));
        assert!(!adopts(
            ResourceKind::Cardholder,
            slug::EXTERNAL_USER_ID_EXISTS
        ));
        assert!(!adopts(
            ResourceKind::Cardholder,
            slug::CARDHOLDER_NOT_READY
        ));
    }
}
