//! What a change ended as, and the run's account of it: the summary's counts and money, the
//! events that report it, the failure-rate brake. Must not carry anything out (that is `card`,
//! `people` and `perform`).

use rust_decimal::Decimal;

use super::{BRAKE_MIN_FINISHED, Ctx, Event, Summary, slugs};
use crate::plan::{Action, ActionKind};

/// What one action (or one mutation of it) ended as.
pub(super) enum Ended {
    Done {
        card_id: Option<String>,
        charges: Charges,
    },
    Failed {
        slug: String,
        message: String,
    },
    /// A card still waiting for its cardholder's KYC when `--kyc-wait` ran out: nothing was
    /// charged, the next run sends it again.
    WaitingForKyc {
        message: String,
    },
}

/// What a change was charged, by the run that sent each order: money belongs to the run that
/// spent it, so a resumed order's charge is reported as the earlier run's, not this one's.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Charges(std::collections::BTreeMap<u64, Decimal>);

impl Charges {
    pub(super) fn none() -> Self {
        Self::default()
    }

    pub(super) fn of(sent_serial: u64, charge: Option<Decimal>) -> Self {
        let mut c = Self::none();
        if let Some(charge) = charge {
            c.0.insert(sent_serial, charge);
        }
        c
    }

    pub(super) fn add(mut self, other: Charges) -> Self {
        for (serial, charge) in other.0 {
            *self.0.entry(serial).or_default() += charge;
        }
        self
    }

    pub(super) fn total(&self) -> Decimal {
        self.0.values().copied().sum()
    }
}

impl Summary {
    /// Counts what a change cost: this run's money, or, for an order an earlier run sent, that
    /// run's.
    fn book(&mut self, serial: u64, charges: Charges) {
        for (sent, amount) in charges.0 {
            if sent == serial {
                self.charged += amount;
            } else {
                *self.charged_earlier.entry(sent).or_default() += amount;
            }
        }
    }
}

impl Ctx {
    /// [`Summary::book`] for a change that ends without [`Ended::Done`] (a failed order that
    /// kept some of its charge).
    pub(super) async fn book(&self, charges: Charges) {
        self.summary.lock().await.book(self.serial, charges);
    }

    /// The failure-rate brake: once enough changes finished, too many failures stop new work
    /// (a misconfigured product costs a handful of failed orders, not thousands).
    fn brake(&self, s: &mut Summary) {
        let Some(max) = self.guards.max_failure_rate else {
            return;
        };
        // Changes the provider took part in: a relabel or a move always succeeds and would dilute
        // the share of failures.
        let finished = s.issued + s.taken_back + s.changed - s.state_only
            + s.resumed
            + s.topped_up
            + s.people
            + s.failed;
        if finished < BRAKE_MIN_FINISHED
            || Decimal::from(s.failed) <= max * Decimal::from(finished)
            || s.stopped.is_some()
        {
            return;
        }
        s.stopped = Some(format!(
            "{} of {finished} finished changes failed ({}), more than --max-failure-rate {}%: \
             nothing new was started; orders in flight were tracked to the end",
            s.failed,
            crate::plan::percent(s.failed, finished),
            (max * Decimal::ONE_HUNDRED).normalize()
        ));
        self.guards.stop.halt();
    }

    pub(super) async fn skip(&self, action: &Action, reason: String) {
        let mut s = self.summary.lock().await;
        s.skipped += 1;
        s.left.add(action.estimate.total());
        drop(s);
        self.events.emit(Event::Skipped {
            key: action.key.to_string(),
            action: action.kind(),
            reason,
        });
    }

    /// Counts and reports how `action` ended.
    pub(super) async fn report(&self, action: &Action, ended: Ended) {
        match ended {
            Ended::Done { card_id, charges } => self.done(action, card_id, charges).await,
            Ended::WaitingForKyc { message } => self.waiting(action, message).await,
            Ended::Failed { slug, message } => self.failed(action, slug, message).await,
        }
    }

    async fn done(&self, action: &Action, card_id: Option<String>, charges: Charges) {
        let mut s = self.summary.lock().await;
        match action.kind() {
            ActionKind::Issue
                if self
                    .snapshot
                    .removed_issue(&action.key, action.attempt)
                    .is_some() =>
            {
                s.taken_back += 1
            }
            ActionKind::Issue | ActionKind::Reissue | ActionKind::Replace => s.issued += 1,
            ActionKind::Resume => s.resumed += 1,
            ActionKind::Topup => s.topped_up += 1,
            ActionKind::CreateUser | ActionKind::CreateCardholder => s.people += 1,
            ActionKind::UpdateLabels | ActionKind::Move => {
                s.changed += 1;
                s.state_only += 1;
            }
            _ => s.changed += 1,
        }
        let charge = charges.total();
        s.book(self.serial, charges);
        drop(s);
        self.events.emit(Event::Done {
            key: action.key.to_string(),
            action: action.kind(),
            card_id,
            charge,
        });
    }

    async fn waiting(&self, action: &Action, message: String) {
        let mut s = self.summary.lock().await;
        s.waiting_for_kyc += 1;
        if s.waiting_keys.len() < 5 {
            s.waiting_keys.push(action.key.to_string());
        }
        drop(s);
        self.events.emit(Event::Failed {
            key: action.key.to_string(),
            action: action.kind(),
            slug: slugs::KYC_PENDING.into(),
            message,
            hint: slugs::hint(slugs::KYC_PENDING).into(),
        });
    }

    async fn failed(&self, action: &Action, slug: String, message: String) {
        let mut s = self.summary.lock().await;
        s.failed += 1;
        let hint = slugs::hint(&slug).to_owned();
        let g = s.failures.entry(slug.clone()).or_default();
        g.count += 1;
        g.hint = hint.clone();
        if g.keys.len() < 5 {
            g.keys.push(action.key.to_string());
        }
        self.brake(&mut s);
        drop(s);
        if self.guards.fail_fast {
            self.guards.stop.fail_fast();
        }
        self.events.emit(Event::Failed {
            key: action.key.to_string(),
            action: action.kind(),
            slug,
            message,
            hint,
        });
    }
}
