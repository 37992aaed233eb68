//! What a person's actions mean in mutations: `users/create` and `cardholders/create`, each
//! answered at once (no order to track), each journalled under its deterministic key and sent,
//! refused or settled through the one path every kind takes (`Ctx::perform`, with what a person
//! brings to it in [`super::sends`]: an "exists" answer adopts what the provider has). And the
//! KYC wait: a card whose cardholder is not ready yet is parked (it holds no slot others could
//! use) and sent again under the same key until it is accepted or `--kyc-wait` runs out.
//!
//! The personal fields come from the declarations (`ExecOptions::cardholder_forms`) at the
//! moment of sending and go nowhere else: the journal keeps keyed digests.

use rust_decimal::Decimal;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::mutation::{Journaled, PersonMutation};
use super::{Ctx, Ended, Event, ExecError, keys, slugs};
use crate::client::ClientError;
use crate::model::{Address, Labels, ResourceKind};
use crate::plan::Action;
use crate::state::{OrderPhase, OrderRecord, ResourceImage, ResourceRecord};
use crate::wire::error::slug;
use crate::wire::{CreateCardholderRequest, CreateUserRequest};

/// The first wait before a card refused with `cardholder_not_ready` is sent again; doubled each
/// time up to [`KYC_RETRY_MAX`]. KYC takes seconds to days: polling faster only spends rate.
const KYC_RETRY_FIRST: Duration = Duration::from_secs(1);
const KYC_RETRY_MAX: Duration = Duration::from_secs(30);

impl Ctx {
    /// Creates the user or cardholder of `action` (or adopts the one the provider has).
    /// `labels` are the person's own, kept in their record.
    pub(super) async fn create_person(
        &self,
        action: &Action,
        labels: &Labels,
    ) -> Result<Ended, ExecError> {
        let address = action.address();
        let mutation = match self.person_mutation(&address) {
            Ok(m) => m,
            Err(ended) => return Ok(ended),
        };
        let key = keys::person(&self.lineage, &address, action.attempt);
        // Its record as declared (labels, and the KYC fields' digests), committed with the
        // journal entry.
        let now = self.now();
        let prepared = OrderRecord::prepared(
            key.clone(),
            address.clone(),
            mutation.kind(),
            action.attempt,
            mutation.journal_form(&self.journal_key),
            Some(Decimal::ZERO),
            &now,
        );
        let Some(mut image) = ResourceImage::from_order(&prepared) else {
            return Ok(corrupt(format!("{address}: no record for its request")));
        };
        *image.labels_mut() = labels.clone();
        let mut record = ResourceRecord {
            created_at: self
                .snapshot
                .resources
                .get(&address)
                .map_or(now.clone(), |r| r.created_at.clone()),
            updated_at: now,
            address: address.clone(),
            image,
        };
        let order = self
            .journal(
                key,
                address,
                &mutation,
                action.attempt,
                Some(Decimal::ZERO),
                Some(&record),
            )
            .await?;
        self.perform(order, &mutation, &mut record).await
    }

    fn person_mutation(&self, address: &Address) -> Result<PersonMutation, Ended> {
        let Some(uid) = address.person() else {
            return Err(corrupt(format!("{address} is not a person")));
        };
        if address.kind == ResourceKind::User {
            return Ok(PersonMutation::CreateUser(CreateUserRequest {
                external_user_id: uid.to_owned(),
            }));
        }
        let Some(form) = self.people.cardholder_forms.get(uid) else {
            return Err(Ended::Failed {
                slug: slugs::KYC_NOT_DECLARED.into(),
                message: format!(
                    "no declared cardholder {uid} to send: its KYC fields come only from the \
                     declarations"
                ),
            });
        };
        Ok(PersonMutation::CreateCardholder(CreateCardholderRequest {
            subprovider_code: address.subprovider().unwrap_or_default().to_owned(),
            ..form.clone()
        }))
    }

    /// Whether to send a card refused with `e` again after a wait: its cardholder's KYC is still
    /// running and `--kyc-wait` has time left. Parks the caller meanwhile (its slot is free for
    /// other people's work) and records what the refusal says of the cardholder.
    pub(super) async fn wait_for_kyc(
        &self,
        e: &ClientError,
        key: &str,
        external_user_id: &str,
        product_code: &str,
        started: tokio::time::Instant,
        tries: &mut KycTries,
    ) -> Result<KycWait, ExecError> {
        let ClientError::Provider(p) = e else {
            return Ok(KycWait::NotKyc);
        };
        if p.slug != slug::CARDHOLDER_NOT_READY {
            return Ok(KycWait::NotKyc);
        }
        if let Some(status) = kyc_status_of(p) {
            self.learn_kyc(external_user_id, product_code, &status)
                .await?;
            if KYC_DEAD_ENDS.contains(&status.as_str()) {
                return Ok(KycWait::Refused(status.to_owned()));
            }
        }
        let waited = started.elapsed();
        // A stopped run (Ctrl-C, --fail-fast, the brake) starts nothing new: a retry would be new.
        if waited >= self.people.kyc_wait || self.guards.stop.is_stopped() {
            return Ok(KycWait::TimedOut);
        }
        let backoff = KYC_RETRY_FIRST
            .saturating_mul(1u32 << tries.sent.min(5))
            .min(KYC_RETRY_MAX)
            .min(self.people.kyc_wait - waited)
            .mul_f64(1.0 + 0.2 * self.jitter().abs());
        tries.sent += 1;
        self.people.parked.fetch_add(1, Ordering::SeqCst);
        self.people.wake.notify_one();
        // In slices, so a stop is noticed within a second rather than after a long backoff, and
        // the wait is told when it is due rather than at the next retry.
        let until = tokio::time::Instant::now() + backoff;
        while tokio::time::Instant::now() < until && !self.guards.stop.is_stopped() {
            self.tell_kyc_wait(key, external_user_id, started.elapsed(), tries);
            tokio::time::sleep_until(
                until.min(tokio::time::Instant::now() + Duration::from_secs(1)),
            )
            .await;
        }
        self.people.parked.fetch_sub(1, Ordering::SeqCst);
        Ok(KycWait::Retry)
    }

    /// Says that `key` waits for its cardholder's KYC, once it has waited [`KYC_TELL_AFTER`] and
    /// then every [`KYC_TELL_EVERY`]: a wait of up to `--kyc-wait` is never silent. Only the
    /// card's key and the external_user_id (an id, shown in plans already) are named.
    fn tell_kyc_wait(
        &self,
        key: &str,
        external_user_id: &str,
        waited: Duration,
        tries: &mut KycTries,
    ) {
        let due = match tries.told {
            None => waited >= KYC_TELL_AFTER,
            Some(last) => waited >= last + KYC_TELL_EVERY,
        };
        if !due {
            return;
        }
        tries.told = Some(waited);
        self.events.emit(Event::WaitingForKyc {
            key: key.to_owned(),
            external_user_id: external_user_id.to_owned(),
            waited_secs: waited.as_secs(),
            gives_up_in_secs: self.people.kyc_wait.saturating_sub(waited).as_secs(),
        });
    }

    /// Records a KYC status learned from the answer to a card of `product_code` (a refusal, or
    /// an issue's success) on the person's cardholder at that product's subprovider, once per
    /// change, when state knows that cardholder.
    pub(super) async fn learn_kyc(
        &self,
        external_user_id: &str,
        product_code: &str,
        status: &str,
    ) -> Result<(), ExecError> {
        let Some(sub) = self.people.subproviders.get(product_code) else {
            return Ok(());
        };
        let holder = Address::cardholder(external_user_id, sub);
        let mut known = self.people.kyc_learned.lock().await;
        let in_state = self
            .snapshot
            .resources
            .get(&holder)
            .and_then(|r| r.image.as_cardholder());
        if !known.contains_key(&holder) && in_state.is_none() {
            return Ok(());
        }
        let before = known
            .get(&holder)
            .cloned()
            .flatten()
            .or_else(|| in_state.and_then(|c| c.kyc_status.clone()));
        if before.as_deref() == Some(status) {
            return Ok(());
        }
        let Some(mut order) = self.store.orders_of(&holder).await?.pop() else {
            return Ok(());
        };
        if order.phase != OrderPhase::Completed {
            return Ok(());
        }
        order.sub_status = Some(status.to_owned());
        order.provider_status = Some(registration_for_kyc(status).to_owned());
        order.updated_at = self.now();
        self.store.record(self.serial, Some(&order), None).await?;
        known.insert(holder, Some(status.to_owned()));
        Ok(())
    }
}

/// The `kyc_status` a `cardholder_not_ready` refusal carries [assumed], if any.
fn kyc_status_of(p: &crate::wire::ProviderError) -> Option<String> {
    p.kyc_status.as_ref().map(|k| k.as_str().to_owned())
}

/// KYC statuses after which the provider must act before a card can be issued.
const KYC_DEAD_ENDS: [&str; 2] = ["rejected", "expired"];

/// How long a card waits for KYC before the wait is told, and then how often it is told again.
const KYC_TELL_AFTER: Duration = Duration::from_secs(5);
const KYC_TELL_EVERY: Duration = Duration::from_secs(30);

/// One card's KYC wait so far: how many times it was sent, when the wait was last told.
#[derive(Debug, Default)]
pub(super) struct KycTries {
    sent: u32,
    /// How long it had waited when the wait was last told (`None`: not yet).
    told: Option<Duration>,
}

/// What a card refused for KYC does next.
pub(super) enum KycWait {
    /// Not a KYC refusal: handle it as any refusal.
    NotKyc,
    /// Send it again under the same key.
    Retry,
    /// `--kyc-wait` ran out: the card waits for the next run.
    TimedOut,
    /// KYC ended without approval (`rejected`, `expired`): the provider must act first.
    Refused(String),
}

/// What is kept and shown of a refusal of `mutation`. A provider's message about a cardholder
/// may quote the very fields it refused (`email "ada@…" is not valid`): it goes nowhere, only its
/// slug and the fields it names do.
pub(super) fn refusal_message(mutation: &PersonMutation, e: &ClientError) -> String {
    let PersonMutation::CreateCardholder(_) = mutation else {
        return e.to_string();
    };
    let ClientError::Provider(p) = e else {
        return e.to_string();
    };
    let named: Vec<&str> = super::mutation::CARDHOLDER_PERSONAL_FIELDS
        .iter()
        .chain(&["country_iso", "subprovider_code"])
        .copied()
        .filter(|f| p.message.contains(f))
        .collect();
    let about = if named.is_empty() {
        String::new()
    } else {
        format!(" about {}", named.join(", "))
    };
    format!(
        "the provider refused the cardholder{about} ({}, HTTP {}); its message is not kept: it \
         may quote personal data",
        p.slug, p.http_status
    )
}

/// The `registration_status` that goes with a `kyc_status` learned from a card's answer: the
/// provider says only the KYC side there.
fn registration_for_kyc(kyc: &str) -> &'static str {
    match kyc {
        "approved" => "active",
        "rejected" | "expired" => "failed",
        _ => "pending",
    }
}

fn corrupt(message: String) -> Ended {
    Ended::Failed {
        slug: slugs::JOURNAL_CORRUPT.into(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ProviderError;

    #[test]
    fn a_cardholder_refusal_keeps_no_word_of_the_providers_message() {
        let e = ClientError::Provider(ProviderError {
            slug: "invalid_request".into(),
            message: "email \"ada.secret@example.com\" is not an email address".into(),
            http_status: 400,
            kyc_status: None,
        });
        let holder = PersonMutation::CreateCardholder(crate::wire::CreateCardholderRequest {
            external_user_id: "u-1".into(),
            subprovider_code: "sp".into(),
            first_name: "Ada".into(),
            last_name: "Secret".into(),
            birth_date: "1990-01-01".into(),
            email: "ada.secret@example.com".into(),
            phone_number_full: "+4420000000".into(),
            country_iso: "GB".into(),
        });
        let kept = refusal_message(&holder, &e);
        assert!(!kept.contains("ada.secret"), "{kept}");
        assert!(kept.contains("about email"), "{kept}");
        assert!(kept.contains("invalid_request"), "{kept}");
        // A user's refusal says nothing personal: kept as the provider said it.
        let user = PersonMutation::CreateUser(crate::wire::CreateUserRequest {
            external_user_id: "u-1".into(),
        });
        assert!(refusal_message(&user, &e).contains("is not an email address"));
    }
}
