//! What each card action means in mutations: issue (and re-issue), replace, freeze and unfreeze,
//! resume, relabel. Builds the typed requests and the card records; every request goes out
//! through `perform`. Must not send anything itself.

use rust_decimal::Decimal;

use super::mutation::CardMutation;
use super::{Charges, Ctx, Ended, ExecError, keys, slugs};
use crate::model::{Address, DesiredStatus, Labels};
use crate::plan::{Action, Attributes, TopupChange};
use crate::state::{
    CardPhase, CardRecord, OrderKind, OrderPhase, OrderRecord, ResourceImage, ResourceRecord,
    TopupRecord,
};
use crate::wire::{CreateCardRequest, FreezeRequest, TopupRequest, UnfreezeRequest};

impl Ctx {
    /// Issue a card for `action` (attempt `action.attempt`). `retire` is the old record a
    /// replacement supersedes, frozen once the new card exists.
    pub(super) async fn issue(
        &self,
        action: &Action,
        after: &Attributes,
        retire: Option<CardRecord>,
    ) -> Result<Ended, ExecError> {
        let mutation = CardMutation::IssueCard(CreateCardRequest {
            product_code: Some(after.product_code.to_string()),
            product_id: None,
            external_user_id: after.external_user_id.to_string(),
            initial_topup_amount: after.initial_topup,
        });
        let previous = self.snapshot.cards.get(action.key.as_str());
        // A key that left state and is declared again: its own order of this attempt is taken
        // back as it is (never journaled again: the declaration may word the same request
        // differently), and a new attempt skips every key already journaled under this key's
        // name (a card that moved to another key took its orders, and their keys, with it).
        let taken_back = match previous {
            None => self
                .snapshot
                .removed_issue(&action.key, action.attempt)
                .cloned(),
            Some(_) => None,
        };
        let attempt = match (previous, &taken_back) {
            (None, None) => {
                self.unused_attempt(&action.key, &action.address(), action.attempt, |n| {
                    keys::issue(&self.lineage, &action.key, n)
                })
                .await?
            }
            _ => action.attempt,
        };
        let mut card = self.pending_card(action, after, attempt, retire.is_some(), &taken_back);
        // Journal first: the order and the pending card are durable before anything is sent.
        let order = match taken_back {
            Some(order) => order,
            None => {
                self.journal(
                    keys::issue(&self.lineage, &action.key, attempt),
                    action.address(),
                    &mutation,
                    attempt,
                    action.estimate.total(),
                    None,
                )
                .await?
            }
        };
        let mut items = vec![(None, Some(card.clone()))];
        if let Some(old) = &retire {
            items.push((None, Some(old.clone())));
        }
        self.store.record_batch(self.serial, &items).await?;
        let ended = self.perform(order, &mutation, &mut card).await?;
        self.after_issue(ended, &mut card, retire).await
    }

    /// The pending record of the card `action` issues under `attempt`: a card taken back keeps
    /// what it cost and when it was created, a replacement starts afresh.
    fn pending_card(
        &self,
        action: &Action,
        after: &Attributes,
        attempt: u32,
        replaces: bool,
        taken_back: &Option<OrderRecord>,
    ) -> CardRecord {
        let now = self.now();
        let previous = self.snapshot.cards.get(action.key.as_str());
        CardRecord {
            key: action.key.clone(),
            external_user_id: after.external_user_id.clone(),
            product_code: after.product_code.clone(),
            initial_topup: after.initial_topup,
            desired_status: after.status,
            labels: after.labels.clone(),
            card_id: None,
            phase: CardPhase::Pending,
            provider_status: None,
            last4: None,
            charged: match (replaces, previous, taken_back) {
                (false, Some(p), _) => p.charged,
                (false, None, Some(order)) => self.charged_before_removal(&action.key, order),
                _ => Decimal::ZERO,
            },
            attempt,
            replaced_by: None,
            balance: None,
            // A card taken back was created when its issue order was journaled.
            created_at: previous
                .filter(|_| !replaces)
                .map(|p| p.created_at.clone())
                .or_else(|| taken_back.as_ref().map(|o| o.created_at.as_str().into()))
                .unwrap_or(now.as_str().into()),
            updated_at: now.into(),
        }
    }

    /// The first attempt from `attempt` on whose idempotency key (`key_of`) the journal holds no
    /// order of a resource other than `address`. Only a key that left state can meet one: a card
    /// that moved to another key took its orders with it, and the keys they were sent under
    /// (derived from the old key) are never sent again for a new card under the old key.
    async fn unused_attempt(
        &self,
        card_key: &str,
        address: &Address,
        mut attempt: u32,
        key_of: impl Fn(u32) -> String,
    ) -> Result<u32, ExecError> {
        if !self.snapshot.removed_cards.contains_key(card_key) {
            return Ok(attempt);
        }
        while let Some(other) = self.store.get_order(&key_of(attempt)).await?
            && other.address != *address
        {
            attempt += 1;
        }
        Ok(attempt)
    }

    /// What card `key` had been charged when it left state, besides the issue order `taken_back`
    /// that brings it back: its other orders and its top-ups, which the journal still holds.
    fn charged_before_removal(&self, key: &str, taken_back: &OrderRecord) -> Decimal {
        let orders: Decimal = self
            .snapshot
            .removed_cards
            .get(key)
            .into_iter()
            .flatten()
            .filter(|o| o.idempotency_key != taken_back.idempotency_key)
            .filter_map(|o| o.charge)
            .sum();
        let prefix = format!("{key}{}", crate::model::TOPUP_SEPARATOR);
        let topups: Decimal = self
            .snapshot
            .topups
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter_map(|(_, t)| t.charge)
            .sum();
        orders + topups
    }

    /// Once a card is issued: read its last four digits when asked, freeze it when it is declared
    /// frozen, and freeze the card it replaces.
    async fn after_issue(
        &self,
        ended: Ended,
        card: &mut CardRecord,
        retire: Option<CardRecord>,
    ) -> Result<Ended, ExecError> {
        let Ended::Done { charges, .. } = ended else {
            return Ok(ended);
        };
        if self
            .people
            .cardholder_forms
            .contains_key(card.external_user_id.as_str())
        {
            // A card was issued: the provider approved its cardholder's KYC.
            self.learn_kyc(&card.external_user_id, &card.product_code, "approved")
                .await?;
        }
        if self.fetch_details
            && let Some(card_id) = card.card_id.clone()
            && let Ok(details) = self.client.get_card(&card_id).await
        {
            if details
                .external_user_id
                .as_deref()
                .is_none_or(|u| u == card.external_user_id)
            {
                // Read already: a top-up of it need not read it again (see `not_theirs`).
                self.cards.bound.confirm(&card_id);
            }
            // Only the last four digits are kept; the PAN and CVV are dropped with `details`.
            card.last4 = details.last4().map(Into::into);
            card.provider_status = Some(details.status.to_string().into());
            self.store.put_card(self.serial, card).await?;
        }
        if card.desired_status == DesiredStatus::Frozen
            && let failed @ Ended::Failed { .. } =
                self.status_order(card, OrderKind::Freeze).await?
        {
            return Ok(failed);
        }
        if let Some(mut old) = retire
            && old.phase == CardPhase::Active
            && let Ended::Failed { slug, message } =
                self.status_order(&mut old, OrderKind::Freeze).await?
        {
            return Ok(Ended::Failed {
                slug,
                message: format!("new card issued, but freezing the old one failed: {message}"),
            });
        }
        Ok(Ended::Done {
            card_id: card.card_id.as_deref().map(str::to_owned),
            charges,
        })
    }

    pub(super) async fn replace(
        &self,
        action: &Action,
        after: &Attributes,
    ) -> Result<Ended, ExecError> {
        let Some(old) = self.snapshot.cards.get(action.key.as_str()).cloned() else {
            return self.issue(action, after, None).await;
        };
        // The old card keeps its own record under a retired key, pointing at its replacement.
        let mut retired = old.clone();
        retired.key = compact_str::format_compact!("{}~{}", old.key, old.attempt);
        retired.replaced_by = Some(action.key.clone());
        retired.updated_at = self.now().into();
        self.issue(action, after, Some(retired)).await
    }

    /// Every open order of the action's resource, oldest first, each carried to its end under
    /// its journaled key: never re-created. `after` is the card as declared, if it is.
    pub(super) async fn resume(
        &self,
        action: &Action,
        after: Option<&Attributes>,
    ) -> Result<Ended, ExecError> {
        let orders = self.snapshot.open_orders_of(&action.address()).to_vec();
        let mut result = Ended::Done {
            card_id: None,
            charges: Charges::none(),
        };
        for order in orders {
            let ended = self.resume_order(order, action, after).await?;
            result = match (result, ended) {
                (
                    Ended::Done { charges: a, .. },
                    Ended::Done {
                        card_id,
                        charges: b,
                    },
                ) => Ended::Done {
                    card_id,
                    charges: a.add(b),
                },
                // The first failure is the one reported; later orders are still tracked.
                (failed @ (Ended::Failed { .. } | Ended::WaitingForKyc { .. }), _)
                | (Ended::Done { .. }, failed) => failed,
            };
        }
        Ok(result)
    }

    async fn resume_order(
        &self,
        order: OrderRecord,
        action: &Action,
        after: Option<&Attributes>,
    ) -> Result<Ended, ExecError> {
        let key = order.address.card_key().unwrap_or(&action.key).to_owned();
        let mut card = match self.store.get_card(&key).await? {
            Some(c) => c,
            None => placeholder_card(&order, after, &self.now()),
        };
        let mutation = match CardMutation::from_journal(order.kind, &order.request) {
            Ok(m) => m,
            Err(e) => {
                return Ok(Ended::Failed {
                    slug: slugs::JOURNAL_CORRUPT.into(),
                    message: format!("{} ({})", e, order.idempotency_key),
                });
            }
        };
        let ended = self.perform(order, &mutation, &mut card).await?;
        match mutation {
            CardMutation::IssueCard(_) => self.after_issue(ended, &mut card, None).await,
            CardMutation::Freeze(_) | CardMutation::Unfreeze(_) | CardMutation::Topup(_) => {
                Ok(ended)
            }
        }
    }

    /// A freeze (`kind`) or an unfreeze of the card, which takes the attributes `after`.
    pub(super) async fn change_status(
        &self,
        action: &Action,
        kind: OrderKind,
        after: &Attributes,
    ) -> Result<Ended, ExecError> {
        let Some(mut card) = self.store.get_card(&action.key).await? else {
            return Ok(Ended::Failed {
                slug: slugs::CARD_NOT_IN_STATE.into(),
                message: "the card is no longer in state".into(),
            });
        };
        apply_attributes(&mut card, after);
        self.status_order(&mut card, kind).await
    }

    /// Journal, send and track one freeze/unfreeze order for `card`; record the card's new phase.
    async fn status_order(
        &self,
        card: &mut CardRecord,
        kind: OrderKind,
    ) -> Result<Ended, ExecError> {
        let Some(card_id) = card.card_id.clone() else {
            return Ok(Ended::Failed {
                slug: slugs::NO_CARD_ID.into(),
                message: "state has no card id for this card".into(),
            });
        };
        let address = Address::card(card.key.as_str());
        let seq = self
            .store
            .orders_of(&address)
            .await?
            .iter()
            .filter(|o| o.kind == kind)
            .count() as u32
            + 1;
        let external_user_id = card.external_user_id.to_string();
        let mutation = match kind {
            OrderKind::Unfreeze => CardMutation::Unfreeze(UnfreezeRequest {
                card_id: card_id.to_string(),
                external_user_id,
            }),
            _ => CardMutation::Freeze(FreezeRequest {
                card_id: card_id.to_string(),
                external_user_id,
            }),
        };
        let order = self
            .journal(
                keys::status_change(&self.lineage, &card.key, kind, &card_id, seq),
                address,
                &mutation,
                seq,
                Some(Decimal::ZERO),
                None,
            )
            .await?;
        self.perform(order, &mutation, card).await
    }

    /// A declared top-up: journaled under a key of (lineage, card, id, attempt), sent, tracked to
    /// `completed` or `failed`; its real charge is the card's too. The card is read now, not at
    /// plan time: one issued earlier in this run has its id by then.
    pub(super) async fn topup(
        &self,
        action: &Action,
        topup: &TopupChange,
    ) -> Result<Ended, ExecError> {
        let address = action.address();
        let amount = topup.amount;
        let (Some(card_key), Some(id)) = (address.card_key(), address.topup_id()) else {
            return Ok(Ended::Failed {
                slug: slugs::JOURNAL_CORRUPT.into(),
                message: format!("{address} is not a top-up the plan can send"),
            });
        };
        let Some(mut card) = self.store.get_card(card_key).await? else {
            return Ok(Ended::Failed {
                slug: slugs::CARD_NOT_IN_STATE.into(),
                message: format!("card {card_key} is not in state"),
            });
        };
        let Some(card_id) = card.card_id.clone() else {
            return Ok(Ended::Failed {
                slug: slugs::NO_CARD_ID.into(),
                message: format!("state has no provider card id for {card_key}"),
            });
        };
        if let Some(why) = self.not_theirs(&card, &card_id).await {
            return Ok(Ended::Failed {
                slug: slugs::ORDER_MISMATCH.into(),
                message: format!("{why}; the top-up was not sent"),
            });
        }
        let mutation = CardMutation::Topup(TopupRequest {
            card_id: card_id.to_string(),
            amount,
        });
        // Its record as declared, committed with the journal entry: the labels are kept from the
        // first instant the top-up exists at the provider.
        let now = self.now();
        let mut record = ResourceRecord {
            address: address.clone(),
            image: ResourceImage::Topup(TopupRecord {
                card: card_key.to_owned(),
                id: id.to_owned(),
                amount,
                labels: topup.labels.clone(),
                attempt: action.attempt,
                phase: OrderPhase::Prepared,
                charge: None,
                error_slug: None,
            }),
            created_at: self
                .snapshot
                .resources
                .get(&address)
                .map_or_else(|| now.clone(), |r| r.created_at.clone()),
            updated_at: now,
        };
        let attempt = self
            .unused_attempt(card_key, &address, action.attempt, |n| {
                keys::topup(&self.lineage, card_key, id, n)
            })
            .await?;
        if let ResourceImage::Topup(t) = &mut record.image {
            t.attempt = attempt;
        }
        let order = self
            .journal(
                keys::topup(&self.lineage, card_key, id, attempt),
                address.clone(),
                &mutation,
                attempt,
                action.estimate.total(),
                Some(&record),
            )
            .await?;
        self.perform(order, &mutation, &mut card).await
    }

    /// A declared move: the card, its journal, charges and audit trail take the new key in one
    /// transaction. Nothing is sent; a move whose old key is gone already did its work.
    pub(super) async fn rename(&self, action: &Action, to: &str) -> Result<Ended, ExecError> {
        let card_id = self
            .store
            .get_card(&action.key)
            .await?
            .and_then(|c| c.card_id)
            .map(String::from);
        match self.store.rename_card(self.serial, &action.key, to).await {
            Ok(_) => Ok(Ended::Done {
                card_id,
                charges: Charges::none(),
            }),
            Err(crate::state::StateError::KeyExists(_)) => Ok(Ended::Failed {
                slug: slugs::MOVE_CONFLICT.into(),
                message: format!("{to} is in state already; {} was not moved", action.key),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// A card's record takes its declared labels (`after`); nothing is sent.
    pub(super) async fn relabel(
        &self,
        action: &Action,
        after: &Attributes,
    ) -> Result<Ended, ExecError> {
        let Some(mut card) = self.store.get_card(&action.key).await? else {
            return Ok(Ended::Done {
                card_id: None,
                charges: Charges::none(),
            });
        };
        apply_attributes(&mut card, after);
        card.updated_at = self.now().into();
        self.store.put_card(self.serial, &card).await?;
        Ok(Ended::Done {
            card_id: card.card_id.as_deref().map(str::to_owned),
            charges: Charges::none(),
        })
    }
}

impl Ctx {
    /// Before money goes to a card this run bound, whose it is according to the provider
    /// (`cards/get`): only an issue order's answer said it was `card`'s, and of two orders a
    /// provider mixed up, the first to finish binds the card id, rightly or not. One read per
    /// top-up of a card issued in this run (cards from state are not read again). `Some` of why
    /// the card is not `card`'s. An unreadable card is left to the top-up itself.
    async fn not_theirs(&self, card: &CardRecord, card_id: &str) -> Option<String> {
        if !self.cards.bound.is_fresh(card_id) {
            return None;
        }
        let seen = self.client.get_card(card_id).await.ok()?;
        // The PAN and CVV are dropped with `seen`; only whose card it is, is kept.
        if let Some(user) = seen
            .external_user_id
            .as_deref()
            .filter(|u| *u != card.external_user_id)
        {
            return Some(format!(
                "card {card_id} belongs to user {user}, not {}",
                card.external_user_id
            ));
        }
        let Some(product) = seen
            .product_code
            .as_deref()
            .filter(|p| *p != card.product_code)
        else {
            self.cards.bound.confirm(card_id);
            return None;
        };
        Some(format!(
            "card {card_id} is a {product} card, not {}",
            card.product_code
        ))
    }

    /// The record of a resource that is not a card takes its declared labels; nothing is sent.
    pub(super) async fn relabel_resource(
        &self,
        action: &Action,
        labels: &Labels,
    ) -> Result<Ended, ExecError> {
        let done = Ended::Done {
            card_id: None,
            charges: Charges::none(),
        };
        let Some(mut record) = self.store.get_resource(&action.address()).await? else {
            return Ok(done);
        };
        *record.image.labels_mut() = labels.clone();
        record.updated_at = self.now();
        self.store.put_resource(self.serial, &record).await?;
        Ok(done)
    }
}

fn apply_attributes(card: &mut CardRecord, after: &Attributes) {
    card.labels = after.labels.clone();
    card.desired_status = after.status;
}

/// The record of a card state no longer holds while its order is still open (so the order can be
/// tracked to the end), rebuilt from the journaled request.
fn placeholder_card(order: &OrderRecord, after: Option<&Attributes>, now: &str) -> CardRecord {
    let req: serde_json::Value = serde_json::from_str(&order.request).unwrap_or_default();
    let s = |k: &str| req[k].as_str().unwrap_or_default().to_owned();
    CardRecord {
        key: order.address.key.as_str().into(),
        external_user_id: s("external_user_id").into(),
        product_code: s("product_code").into(),
        initial_topup: after.and_then(|a| a.initial_topup),
        desired_status: after.map(|a| a.status).unwrap_or_default(),
        labels: after.map(|a| a.labels.clone()).unwrap_or_default(),
        card_id: None,
        phase: CardPhase::Pending,
        provider_status: None,
        last4: None,
        charged: Decimal::ZERO,
        attempt: order.attempt,
        replaced_by: None,
        balance: None,
        created_at: now.into(),
        updated_at: now.into(),
    }
}
