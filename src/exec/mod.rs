//! Carrying out a plan: concurrency, the order journal, polling to completion. Reports progress as
//! [`Event`]s and never prints.
//!
//! The money rules live here. Every mutation is committed to the journal (with its deterministic
//! idempotency key and exact request) *before* it is sent, and its order id as soon as it is known,
//! so a run killed at any instant resumes the same orders instead of creating new ones.

pub mod events;
pub mod keys;
pub mod poll;
pub mod refresh;
pub mod slugs;

pub use events::{Event, EventSink, FailureGroup, Summary};

use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};

use crate::client::{Client, ClientError};
use crate::decl::DesiredStatus;
use crate::plan::{Action, ActionKind, Attributes};
use crate::state::{
    CallRecord, CardPhase, CardRecord, OrderKind, OrderPhase, OrderRecord, Snapshot, StateError,
    Store,
};
use crate::wire::{
    CardStatus, CheckOrderRequest, Clock, CreateCardRequest, FreezeRequest, Order, OrderStatus,
    UnfreezeRequest, timestamp::now_rfc3339,
};
use poll::LatencyModel;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("state: {0}")]
    State(#[from] StateError),
}

/// Cards in flight by default: enough for 100 requests/s with orders taking 2.5 s (R/2 × latency),
/// small enough that memory stays flat.
pub const DEFAULT_PARALLELISM: usize = 128;

/// How to run.
pub struct ExecOptions {
    pub parallelism: usize,
    pub fail_fast: bool,
    /// Stop starting orders once charged fees would pass this amount.
    pub max_fees: Option<Decimal>,
    /// First guess of how long an order takes, until real ones are observed.
    pub initial_latency: Duration,
    /// Read each newly issued card once (`cards/get`) to record its last four digits and status.
    /// Off by default: the provider's workflow makes it optional and it costs one call per card.
    pub fetch_details: bool,
}

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            parallelism: DEFAULT_PARALLELISM,
            fail_fast: false,
            max_fees: None,
            initial_latency: Duration::from_secs(1),
            fetch_details: false,
        }
    }
}

/// Set by the first Ctrl-C (or by `--fail-fast`): start nothing new, finish tracking what is in
/// flight.
#[derive(Clone, Default)]
pub struct StopFlag(Arc<std::sync::atomic::AtomicU8>);

const RUNNING: u8 = 0;
const INTERRUPTED: u8 = 1;
const FAILED_FAST: u8 = 2;

impl StopFlag {
    /// The user asked to stop (Ctrl-C).
    pub fn stop(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, INTERRUPTED, Ordering::SeqCst, Ordering::SeqCst);
    }
    fn fail_fast(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, FAILED_FAST, Ordering::SeqCst, Ordering::SeqCst);
    }
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst) != RUNNING
    }
    pub fn is_interrupted(&self) -> bool {
        self.0.load(Ordering::SeqCst) == INTERRUPTED
    }
}

struct Ctx {
    store: Store,
    client: Client,
    clock: Arc<dyn Clock>,
    lineage: String,
    serial: u64,
    snapshot: Snapshot,
    latency: LatencyModel,
    events: EventSink,
    stop: StopFlag,
    fail_fast: bool,
    fetch_details: bool,
    max_fees: Option<Decimal>,
    /// Fees charged so far plus fees committed by started orders (for --max-fees).
    committed_fees: Mutex<Decimal>,
    summary: Mutex<Summary>,
}

/// What one action ended as.
enum Outcome {
    Done {
        card_id: Option<String>,
        charge: Decimal,
    },
    Failed {
        slug: String,
        message: String,
    },
}

/// Carry out `actions` against the provider, recording everything in `store` under `serial`.
#[allow(clippy::too_many_arguments)]
pub async fn execute(
    store: Store,
    client: Client,
    clock: Arc<dyn Clock>,
    serial: u64,
    snapshot: Snapshot,
    actions: Vec<Action>,
    options: ExecOptions,
    events: EventSink,
    stop: StopFlag,
) -> Result<Summary, ExecError> {
    let lineage = store.lineage().await?;
    let work: Vec<Action> = actions.into_iter().filter(|a| a.kind.is_change()).collect();
    events.emit(Event::Started {
        total: work.len(),
        serial,
    });
    let ctx = Arc::new(Ctx {
        store,
        client,
        clock,
        lineage,
        serial,
        snapshot,
        latency: LatencyModel::new(options.initial_latency),
        events,
        stop,
        fail_fast: options.fail_fast,
        fetch_details: options.fetch_details,
        max_fees: options.max_fees,
        committed_fees: Mutex::new(Decimal::ZERO),
        summary: Mutex::new(Summary::default()),
    });
    {
        let mut s = ctx.summary.lock().await;
        for a in &work {
            match a.estimate.total() {
                Some(t) => s.estimated += t,
                None => s.estimated_unknown += 1,
            }
        }
    }

    let slots = Arc::new(Semaphore::new(options.parallelism.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut fatal: Option<ExecError> = None;
    for action in work {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            Some(res) = tasks.join_next(), if !tasks.is_empty() => {
                match res {
                    // A state write failed: nothing new may start, since it could not be journaled.
                    Ok(Err(e)) => {
                        fatal.get_or_insert(e);
                        ctx.stop.fail_fast();
                    }
                    Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                    _ => {}
                }
                slots.clone().acquire_owned().await.expect("semaphore is never closed")
            }
        };
        if let Some(reason) = ctx.why_not_start(&action).await {
            ctx.skip(&action, reason).await;
            continue;
        }
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let _permit = permit;
            ctx.run_action(action).await
        });
    }
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Err(e)) => {
                fatal.get_or_insert(e);
            }
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            _ => {}
        }
    }
    if let Some(e) = fatal {
        return Err(e);
    }
    let mut summary = ctx.summary.lock().await.clone();
    summary.interrupted = ctx.stop.is_interrupted();
    ctx.events.emit(Event::Finished {
        summary: summary.clone(),
    });
    Ok(summary)
}

impl Ctx {
    fn now(&self) -> String {
        now_rfc3339(self.clock.as_ref())
    }

    fn jitter(&self) -> f64 {
        rand::random::<f64>() * 2.0 - 1.0
    }

    async fn why_not_start(&self, action: &Action) -> Option<String> {
        if self.stop.is_stopped() {
            return Some(if self.stop.is_interrupted() {
                "interrupted before it started".into()
            } else {
                "--fail-fast: an earlier card failed".into()
            });
        }
        if let (Some(budget), true) = (self.max_fees, action.kind.issues_card()) {
            let fee = action.estimate.fee.unwrap_or_default();
            let mut committed = self.committed_fees.lock().await;
            if *committed + fee > budget {
                return Some(format!(
                    "--max-fees {budget}: {} committed, this card's fee {fee} would pass it",
                    *committed
                ));
            }
            *committed += fee;
        }
        None
    }

    async fn skip(&self, action: &Action, reason: String) {
        self.summary.lock().await.skipped += 1;
        self.events.emit(Event::Skipped {
            key: action.key.clone(),
            action: action.kind,
            reason,
        });
    }

    async fn run_action(self: Arc<Self>, action: Action) -> Result<(), ExecError> {
        let outcome = match action.kind {
            ActionKind::Issue | ActionKind::Reissue => self.issue(&action, None).await?,
            ActionKind::Replace => self.replace(&action).await?,
            ActionKind::Resume => self.resume(&action).await?,
            ActionKind::Freeze | ActionKind::Unfreeze | ActionKind::Prune => {
                self.change_status(&action).await?
            }
            ActionKind::UpdateLabels => self.relabel(&action).await?,
            ActionKind::Undeclared => return Ok(()),
        };
        let mut s = self.summary.lock().await;
        match outcome {
            Outcome::Done { card_id, charge } => {
                match action.kind {
                    ActionKind::Issue | ActionKind::Reissue | ActionKind::Replace => s.issued += 1,
                    ActionKind::Resume => s.resumed += 1,
                    _ => s.changed += 1,
                }
                s.charged += charge;
                drop(s);
                self.events.emit(Event::Done {
                    key: action.key.clone(),
                    action: action.kind,
                    card_id,
                    charge,
                });
            }
            Outcome::Failed { slug, message } => {
                s.failed += 1;
                let hint = slugs::hint(&slug).to_owned();
                let g = s.failures.entry(slug.clone()).or_default();
                g.count += 1;
                g.hint = hint.clone();
                if g.keys.len() < 5 {
                    g.keys.push(action.key.clone());
                }
                drop(s);
                if self.fail_fast {
                    self.stop.fail_fast();
                }
                self.events.emit(Event::Failed {
                    key: action.key.clone(),
                    action: action.kind,
                    slug,
                    message,
                    hint,
                });
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------------ issue

    /// Issue a card for `action` (attempt `action.attempt`). `retire` is the old record a
    /// replacement supersedes, frozen once the new card exists.
    async fn issue(
        &self,
        action: &Action,
        retire: Option<CardRecord>,
    ) -> Result<Outcome, ExecError> {
        let after = action
            .after
            .as_ref()
            .expect("issue actions always carry the declared attributes");
        let request = CreateCardRequest {
            product_code: Some(after.product_code.clone()),
            product_id: None,
            external_user_id: after.external_user_id.clone(),
            initial_topup_amount: after.initial_topup,
        };
        let idem = keys::issue(&self.lineage, &action.key, action.attempt);
        let now = self.now();
        let order = OrderRecord::prepared(
            idem,
            &action.key,
            OrderKind::Issue,
            action.attempt,
            serde_json::to_string(&request).expect("requests serialize"),
            action.estimate.total(),
            &now,
        );
        let previous = self.snapshot.cards.get(&action.key);
        let card = CardRecord {
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
            charged: match (&retire, previous) {
                (None, Some(p)) => p.charged,
                _ => Decimal::ZERO,
            },
            attempt: action.attempt,
            replaced_by: None,
            created_at: previous
                .filter(|_| retire.is_none())
                .map(|p| p.created_at.clone())
                .unwrap_or(now.clone()),
            updated_at: now,
        };
        // Journal first: the order and the pending card are durable before anything is sent.
        self.store.journal_order(self.serial, &order).await?;
        let mut items = vec![(None, Some(card.clone()))];
        if let Some(old) = &retire {
            items.push((None, Some(old.clone())));
        }
        self.store.record_batch(self.serial, &items).await?;
        self.send_and_track(order, card, &request, retire).await
    }

    /// Send (or re-send, same key, same body) a journaled create, then poll it to the end.
    async fn send_and_track(
        &self,
        mut order: OrderRecord,
        mut card: CardRecord,
        request: &CreateCardRequest,
        retire: Option<CardRecord>,
    ) -> Result<Outcome, ExecError> {
        let sent = self
            .client
            .call(request, Some(&order.idempotency_key))
            .await;
        let first = match sent {
            Ok(o) => o,
            Err(e) => return self.send_failed(order, Some(card), e).await,
        };
        self.acknowledge(&mut order, &first).await?;
        let done = self.track(&order, first).await;
        self.finish_issue(&mut order, &mut card, done, retire).await
    }

    /// The provider refused, or the outcome is unknown (retries exhausted): record which.
    async fn send_failed(
        &self,
        mut order: OrderRecord,
        card: Option<CardRecord>,
        e: ClientError,
    ) -> Result<Outcome, ExecError> {
        let slug = slugs::of(&e);
        let message = e.to_string();
        if order.order_id.is_none() {
            self.audit(&order, &slug, None).await?;
        }
        if matches!(e, ClientError::Provider(_)) {
            // A refusal creates no order: the card can be re-issued with the next attempt.
            order.phase = OrderPhase::Failed;
            order.error_slug = Some(slug.clone());
            order.error_message = Some(message.clone());
            order.updated_at = self.now();
            let card = card.map(|mut c| {
                if c.phase == CardPhase::Pending {
                    c.phase = CardPhase::Failed;
                }
                c.updated_at = order.updated_at.clone();
                c
            });
            self.store
                .record(self.serial, Some(&order), card.as_ref())
                .await?;
        }
        // Otherwise the order stays `prepared`: it may exist at the provider, and a re-run
        // re-sends the same key to find out, never a new one.
        Ok(Outcome::Failed {
            slug,
            message: if matches!(e, ClientError::Provider(_)) {
                message
            } else {
                format!("{message} (outcome unknown: re-run apply to resume it safely)")
            },
        })
    }

    /// The provider gave us the order: commit its id (and charge) at once.
    async fn acknowledge(&self, order: &mut OrderRecord, o: &Order) -> Result<(), ExecError> {
        order.order_id = Some(o.order_id.clone());
        order.phase = OrderPhase::Open;
        order.provider_status = Some(o.status.to_string());
        order.sub_status = o.issue_status.as_ref().map(|s| s.to_string());
        order.charge = o.charge();
        order.updated_at = self.now();
        self.store.record(self.serial, Some(order), None).await?;
        self.audit(order, "ok", order.charge).await?;
        self.events.emit(Event::OrderCreated {
            key: order.card_key.clone(),
            kind: order.kind.as_str(),
            order_id: o.order_id.clone(),
            idempotency_key: order.idempotency_key.clone(),
            charge: order.charge,
        });
        Ok(())
    }

    /// The audit trail of mutations (`state audit`): one row per answer to a create, freeze or
    /// unfreeze, refusals and unknown outcomes included.
    async fn audit(
        &self,
        order: &OrderRecord,
        result: &str,
        charge: Option<Decimal>,
    ) -> Result<(), ExecError> {
        self.store
            .record_call(&CallRecord {
                at: self.now(),
                endpoint: mutation_endpoint(order.kind).to_owned(),
                idempotency_key: Some(order.idempotency_key.clone()),
                order_id: order.order_id.clone(),
                card_key: Some(order.card_key.clone()),
                result: result.to_owned(),
                charge,
            })
            .await?;
        Ok(())
    }

    /// Poll `orders/check` until the order is terminal, checking near its expected finish.
    async fn track(&self, order: &OrderRecord, mut last: Order) -> Result<Order, ClientError> {
        let started = tokio::time::Instant::now();
        let mut n = 0u32;
        while !last.status.is_terminal() {
            let wait = if n == 0 {
                self.latency.first_check(self.jitter())
            } else {
                self.latency.recheck(n, self.jitter())
            };
            tokio::time::sleep(wait).await;
            n += 1;
            let req = CheckOrderRequest {
                order_id: order
                    .order_id
                    .clone()
                    .expect("tracked orders are acknowledged"),
            };
            last = self.client.call(&req, None).await?;
        }
        let took = provider_duration(&last).unwrap_or_else(|| started.elapsed());
        self.latency.observe(took);
        Ok(last)
    }

    async fn finish_issue(
        &self,
        order: &mut OrderRecord,
        card: &mut CardRecord,
        done: Result<Order, ClientError>,
        retire: Option<CardRecord>,
    ) -> Result<Outcome, ExecError> {
        let o = match done {
            Ok(o) => o,
            Err(e) => {
                // The order exists and stays open in the journal; a re-run resumes polling it.
                return Ok(Outcome::Failed {
                    slug: slugs::of(&e),
                    message: format!(
                        "{e} (order {} is still tracked: re-run apply to resume)",
                        order.order_id.as_deref().unwrap_or("?")
                    ),
                });
            }
        };
        if let Some(failed) = self.record_settled(order, card, &o).await? {
            return Ok(failed);
        }
        let charge = order.charge.unwrap_or_default();

        if self.fetch_details
            && let Some(card_id) = card.card_id.clone()
            && let Ok(details) = self.client.get_card(&card_id).await
        {
            // Only the last four digits are kept; the PAN and CVV are dropped with `details`.
            card.last4 = details.last4();
            card.provider_status = Some(details.status.to_string());
            self.store.put_card(self.serial, card).await?;
        }

        // A card declared frozen is issued, then frozen.
        if card.desired_status == DesiredStatus::Frozen
            && let Outcome::Failed { slug, message } =
                self.status_order(card, OrderKind::Freeze).await?
        {
            return Ok(Outcome::Failed { slug, message });
        }
        if let Some(mut old) = retire
            && old.phase == CardPhase::Active
            && let Outcome::Failed { slug, message } =
                self.status_order(&mut old, OrderKind::Freeze).await?
        {
            return Ok(Outcome::Failed {
                slug,
                message: format!("new card issued, but freezing the old one failed: {message}"),
            });
        }
        Ok(Outcome::Done {
            card_id: card.card_id.clone(),
            charge,
        })
    }

    async fn replace(&self, action: &Action) -> Result<Outcome, ExecError> {
        let Some(old) = self.snapshot.cards.get(&action.key).cloned() else {
            return self.issue(action, None).await;
        };
        // The old card keeps its own record under a retired key, pointing at its replacement.
        let mut retired = old.clone();
        retired.key = format!("{}~{}", old.key, old.attempt);
        retired.replaced_by = Some(action.key.clone());
        retired.updated_at = self.now();
        self.issue(action, Some(retired)).await
    }

    // ------------------------------------------------------------------ resume

    async fn resume(&self, action: &Action) -> Result<Outcome, ExecError> {
        let Some(mut order) = self.snapshot.open_orders.get(&action.key).cloned() else {
            return Ok(Outcome::Done {
                card_id: None,
                charge: Decimal::ZERO,
            });
        };
        let mut card = self
            .store
            .get_card(&order.card_key)
            .await?
            .unwrap_or_else(|| placeholder_card(&order, action, &self.now()));
        match order.kind {
            OrderKind::Issue => {
                let request: CreateCardRequest = match serde_json::from_str(&order.request) {
                    Ok(r) => r,
                    Err(e) => {
                        return Ok(Outcome::Failed {
                            slug: slugs::JOURNAL_CORRUPT.into(),
                            message: format!(
                                "journaled request of {} is unreadable: {e}",
                                order.idempotency_key
                            ),
                        });
                    }
                };
                match order.order_id.clone() {
                    // Never acknowledged: re-send with the same key; the provider answers with the
                    // order it already has, or creates it now (once).
                    None => self.send_and_track(order, card, &request, None).await,
                    Some(id) => {
                        let first = match self
                            .client
                            .call(&CheckOrderRequest { order_id: id }, None)
                            .await
                        {
                            Ok(o) => o,
                            Err(e) => {
                                return Ok(Outcome::Failed {
                                    slug: slugs::of(&e),
                                    message: e.to_string(),
                                });
                            }
                        };
                        let done = self.track(&order, first).await;
                        self.finish_issue(&mut order, &mut card, done, None).await
                    }
                }
            }
            OrderKind::Freeze | OrderKind::Unfreeze | OrderKind::Topup => {
                self.resume_status_order(order, &mut card).await
            }
        }
    }

    // ------------------------------------------------------------------ status changes

    async fn change_status(&self, action: &Action) -> Result<Outcome, ExecError> {
        let Some(mut card) = self.store.get_card(&action.key).await? else {
            return Ok(Outcome::Failed {
                slug: slugs::CARD_NOT_IN_STATE.into(),
                message: "the card is no longer in state".into(),
            });
        };
        if let Some(after) = &action.after {
            apply_attributes(&mut card, after);
        }
        let kind = match action.kind {
            ActionKind::Unfreeze => OrderKind::Unfreeze,
            _ => OrderKind::Freeze,
        };
        self.status_order(&mut card, kind).await
    }

    /// Journal, send and track one freeze/unfreeze order for `card`; record the card's new phase.
    async fn status_order(
        &self,
        card: &mut CardRecord,
        kind: OrderKind,
    ) -> Result<Outcome, ExecError> {
        let Some(card_id) = card.card_id.clone() else {
            return Ok(Outcome::Failed {
                slug: slugs::NO_CARD_ID.into(),
                message: "state has no card id for this card".into(),
            });
        };
        let seq = self
            .store
            .orders_for_card(&card.key)
            .await?
            .iter()
            .filter(|o| o.kind == kind)
            .count() as u32
            + 1;
        let now = self.now();
        let request =
            serde_json::json!({"card_id": card_id, "external_user_id": card.external_user_id});
        let order = OrderRecord::prepared(
            keys::status_change(&self.lineage, &card.key, kind, &card_id, seq),
            &card.key,
            kind,
            seq,
            request.to_string(),
            Some(Decimal::ZERO),
            &now,
        );
        self.store.journal_order(self.serial, &order).await?;
        self.resume_status_order(order, card).await
    }

    async fn resume_status_order(
        &self,
        mut order: OrderRecord,
        card: &mut CardRecord,
    ) -> Result<Outcome, ExecError> {
        let fields: serde_json::Value = serde_json::from_str(&order.request).unwrap_or_default();
        let card_id = fields["card_id"].as_str().unwrap_or_default().to_owned();
        let user = fields["external_user_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let first = match order.order_id.clone() {
            Some(id) => {
                self.client
                    .call(&CheckOrderRequest { order_id: id }, None)
                    .await
            }
            None => match order.kind {
                OrderKind::Unfreeze => {
                    self.client
                        .call(
                            &UnfreezeRequest {
                                card_id,
                                external_user_id: user,
                            },
                            Some(&order.idempotency_key),
                        )
                        .await
                }
                _ => {
                    self.client
                        .call(
                            &FreezeRequest {
                                card_id,
                                external_user_id: user,
                            },
                            Some(&order.idempotency_key),
                        )
                        .await
                }
            },
        };
        let first = match first {
            Ok(o) => o,
            Err(e) => return self.send_failed(order, None, e).await,
        };
        if order.order_id.is_none() {
            self.acknowledge(&mut order, &first).await?;
        }
        let o = match self.track(&order, first).await {
            Ok(o) => o,
            Err(e) => {
                return Ok(Outcome::Failed {
                    slug: slugs::of(&e),
                    message: e.to_string(),
                });
            }
        };
        if let Some(failed) = self.record_settled(&mut order, card, &o).await? {
            return Ok(failed);
        }
        let charge = order.charge.unwrap_or_default();
        Ok(Outcome::Done {
            card_id: card.card_id.clone(),
            charge,
        })
    }

    /// Settle a terminal order and its card in state; the failure to report, if it failed.
    async fn record_settled(
        &self,
        order: &mut OrderRecord,
        card: &mut CardRecord,
        o: &Order,
    ) -> Result<Option<Outcome>, ExecError> {
        let now = self.now();
        card.updated_at = now.clone();
        settle(order, card, o, &now);
        self.store
            .record(self.serial, Some(order), Some(card))
            .await?;
        if order.phase != OrderPhase::Failed {
            return Ok(None);
        }
        Ok(Some(Outcome::Failed {
            slug: order.error_slug.clone().unwrap_or_default(),
            message: o
                .last_error
                .clone()
                .unwrap_or_else(|| format!("the {} order failed", order.kind.as_str())),
        }))
    }

    async fn relabel(&self, action: &Action) -> Result<Outcome, ExecError> {
        let Some(mut card) = self.store.get_card(&action.key).await? else {
            return Ok(Outcome::Done {
                card_id: None,
                charge: Decimal::ZERO,
            });
        };
        if let Some(after) = &action.after {
            apply_attributes(&mut card, after);
        }
        card.updated_at = self.now();
        self.store.put_card(self.serial, &card).await?;
        Ok(Outcome::Done {
            card_id: card.card_id.clone(),
            charge: Decimal::ZERO,
        })
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
    order.updated_at = now.to_owned();
    card.charged += order.charge.unwrap_or_default();
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
            card.card_id = o.card_id.clone().or(card.card_id.take());
            card.phase = CardPhase::Active;
            card.provider_status = o.provider_card_status.clone();
        }
        OrderKind::Freeze => {
            card.phase = CardPhase::Frozen;
            card.provider_status = o
                .provider_card_status
                .clone()
                .or(Some(CardStatus::Frozen.to_string()));
        }
        OrderKind::Unfreeze => {
            card.phase = CardPhase::Active;
            card.provider_status = o
                .provider_card_status
                .clone()
                .or(Some(CardStatus::Active.to_string()));
        }
        OrderKind::Topup => {}
    }
}

fn apply_attributes(card: &mut CardRecord, after: &Attributes) {
    card.labels = after.labels.clone();
    card.desired_status = after.status;
}

fn placeholder_card(order: &OrderRecord, action: &Action, now: &str) -> CardRecord {
    let req: serde_json::Value = serde_json::from_str(&order.request).unwrap_or_default();
    let s = |k: &str| req[k].as_str().unwrap_or_default().to_owned();
    let after = action.after.as_ref();
    CardRecord {
        key: order.card_key.clone(),
        external_user_id: s("external_user_id"),
        product_code: s("product_code"),
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
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    }
}

/// The endpoint that creates an order of `kind`.
fn mutation_endpoint(kind: OrderKind) -> &'static str {
    use crate::wire::Call;
    match kind {
        OrderKind::Issue => CreateCardRequest::ENDPOINT.path(),
        OrderKind::Topup => crate::wire::TopupRequest::ENDPOINT.path(),
        OrderKind::Freeze => FreezeRequest::ENDPOINT.path(),
        OrderKind::Unfreeze => UnfreezeRequest::ENDPOINT.path(),
    }
}

/// How long the provider says the order took (`completed_at`/`failed_at` − `created_at`).
fn provider_duration(o: &Order) -> Option<Duration> {
    let end = o.completed_at.as_deref().or(o.failed_at.as_deref())?;
    let start: jiff::Timestamp = o.created_at.parse().ok()?;
    let end: jiff::Timestamp = end.parse().ok()?;
    let d = end.duration_since(start);
    Duration::try_from(d).ok()
}
