//! Carrying out a plan: the scheduler over its changes, concurrency, the order journal, polling to
//! completion. Reports progress as [`Event`]s and never prints.
//!
//! The money rules live here. Every mutation ([`CardMutation`], [`PersonMutation`]) goes through one path (`perform`):
//! committed to the journal (with its deterministic idempotency key and request) *before* it is
//! sent, its order id committed as soon as it is known, tracked to the end and settled, so a run
//! killed at any instant resumes the same orders instead of creating new ones. A change starts
//! only when the changes it depends on have completed ([`schedule`]).
//!
//! `mod.rs` owns the run (scheduling, stopping) and dispatches each change on its kind
//! ([`crate::plan::Change`]), every handler taking its kind's own payload; `outcome` what a
//! change ended as and the run's account of it; `canary` which changes go first; `perform` the
//! mutation path, `bindings` which card id is whose; `card` and `people` what each action means
//! in mutations. [`Ctx`]'s parts, and which file's `impl` uses each, are on its definition.

mod bindings;
mod canary;
mod card;
pub mod declared;
pub mod events;
pub mod inbox;
pub mod keys;
pub mod mutation;
mod outcome;
pub mod parts;
mod people;
mod perform;
pub mod poll;
mod ramp;
mod sends;
mod settles;

pub use ramp::SLOW_START;
pub mod refresh;
pub mod refresh_plan;
pub mod schedule;
pub mod slugs;
pub mod stale;

pub use events::{ChargeWarning, Event, EventSink, FailureGroup, Share, Stage, Summary};
pub use mutation::{CardMutation, PersonMutation};
use outcome::{Charges, Ended};
pub(crate) use perform::settle;

use rust_decimal::Decimal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::Mutex;

use crate::client::Client;
use crate::plan::{Action, Change, Edit};
use crate::state::OrderKind;
use crate::state::{Snapshot, StateError, Store};
use crate::wire::{Clock, timestamp::now_rfc3339};
use poll::LatencyModel;
use schedule::Schedule;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("state: {0}")]
    State(#[from] StateError),
}

/// Work in flight by default, for apply and refresh alike: enough for 100 requests/s with orders
/// taking 2.5 s (R/2 × latency), small enough that memory stays flat. The client's rate limit, not
/// this, sets the request pace.
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
    /// `--canary N`: carry out N changes (spread across products) first, and the rest only if
    /// none of them failed.
    pub canary: Option<usize>,
    /// `--max-failure-rate`, as a fraction: stop starting work once at least
    /// [`BRAKE_MIN_FINISHED`] changes finished and more than this share of them failed.
    pub max_failure_rate: Option<Decimal>,
    /// The declared people's KYC forms by `external_user_id` (subprovider left empty): the only
    /// place a cardholder's personal fields come from. Never journalled as values.
    pub cardholder_forms: std::collections::BTreeMap<String, crate::wire::CreateCardholderRequest>,
    /// `--kyc-wait`: how long a card whose cardholder is not ready yet keeps being retried.
    pub kyc_wait: Duration,
    /// Each product's subprovider: which of a person's cardholders a card's answer is about.
    pub subproviders: std::collections::BTreeMap<String, String>,
    /// Orders the provider's webhooks delivered (`serve`): tracking waits for an order's
    /// delivery before it polls. `None`: polling only.
    pub inbox: Option<Arc<inbox::Inbox>>,
}

/// How long a card waits for its cardholder's KYC by default: long enough for an automated KYC,
/// short enough that a CI job ends (the next run picks the card up).
pub const DEFAULT_KYC_WAIT: Duration = Duration::from_secs(300);

/// The failure-rate brake judges no run on fewer finished changes than this: two failures of the
/// first three say little about a product.
pub const BRAKE_MIN_FINISHED: usize = 20;

impl Default for ExecOptions {
    fn default() -> Self {
        Self {
            parallelism: DEFAULT_PARALLELISM,
            fail_fast: false,
            max_fees: None,
            initial_latency: Duration::from_secs(1),
            fetch_details: false,
            canary: None,
            max_failure_rate: None,
            cardholder_forms: Default::default(),
            kyc_wait: DEFAULT_KYC_WAIT,
            subproviders: Default::default(),
            inbox: None,
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
/// The canary failed, or the failure-rate brake fired: the reason is in the summary.
const HALTED: u8 = 3;

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
    fn halt(&self) {
        let _ = self
            .0
            .compare_exchange(RUNNING, HALTED, Ordering::SeqCst, Ordering::SeqCst);
    }
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst) != RUNNING
    }
    pub fn is_interrupted(&self) -> bool {
        self.0.load(Ordering::SeqCst) == INTERRUPTED
    }
}

/// What every task of a run shares, in parts each owned by one file: the run's identity and
/// settings (here: store, client, clock, lineage, serial, the part's snapshot, latency model,
/// events, what it fetches), the money guards and stopping ([`Guards`], here and `outcome`), the
/// per-card locks and bindings ([`bindings::CardGuards`], `perform` and `card`), people and KYC
/// ([`PeopleWork`], `people`) and the reporting (`summary` and `ramp`, `outcome`).
struct Ctx {
    store: Store,
    client: Client,
    clock: Arc<dyn Clock>,
    lineage: String,
    serial: u64,
    snapshot: Snapshot,
    latency: LatencyModel,
    events: EventSink,
    fetch_details: bool,
    /// Keys the digests of personal request fields in the journal.
    journal_key: [u8; 32],
    guards: Guards,
    cards: bindings::CardGuards,
    people: PeopleWork,
    summary: Mutex<Summary>,
    /// How many changes may be in flight now: slow start, growing as they succeed (across
    /// parts: a run ramps up once).
    ramp: std::sync::Mutex<ramp::Ramp>,
    /// See [`ExecOptions::inbox`].
    inbox: Option<Arc<inbox::Inbox>>,
}

/// When a run stops starting work: the stop flag, `--fail-fast`, and the money it may spend.
struct Guards {
    stop: StopFlag,
    fail_fast: bool,
    max_fees: Option<Decimal>,
    max_failure_rate: Option<Decimal>,
    /// Fees charged so far plus fees committed by started orders (for --max-fees).
    committed_fees: Mutex<Decimal>,
}

/// The declared people's forms, and what the run learns of their KYC.
struct PeopleWork {
    cardholder_forms: std::collections::BTreeMap<String, crate::wire::CreateCardholderRequest>,
    kyc_wait: Duration,
    subproviders: std::collections::BTreeMap<String, String>,
    /// Cardholders this run knows of, with the KYC status last recorded for each.
    kyc_learned: Mutex<std::collections::BTreeMap<crate::model::Address, Option<String>>>,
    /// Tasks sleeping until their cardholder's KYC may be done: they do not count against
    /// `parallelism`, so other people's work never waits behind one person's KYC.
    parked: std::sync::atomic::AtomicUsize,
    /// Wakes the scheduler when a task parks, so it can start another in its place.
    wake: tokio::sync::Notify,
}

impl Ctx {
    /// The changes that may be in flight now, at most `parallelism`.
    fn in_flight_limit(&self, parallelism: usize) -> usize {
        let ramp = self.ramp.lock().unwrap_or_else(|p| p.into_inner());
        ramp.window().min(parallelism)
    }
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
    let total = actions.iter().filter(|a| a.kind().is_change()).count();
    let mut run = Run::start(
        store, client, clock, serial, &snapshot, total, options, events, stop,
    )
    .await?;
    run.part(snapshot, actions).await?;
    Ok(run.finish().await)
}

/// One run, fed its changes a part at a time (see [`crate::model::Part`]): a very large plan is
/// carried out part by part, so only one part's changes are held at once. Everything a run
/// keeps across parts (its summary, fees committed, the failure-rate brake, the stop flag, what
/// it learned of order latency and KYC) lives in it; each part brings its changes and the part
/// of state they touch. A change may depend only on changes of its own part. With one part this
/// is exactly [`execute`].
pub struct Run {
    ctx: Arc<Ctx>,
    parallelism: usize,
    /// `--canary n`, until a part with changes has run it.
    canary: Option<usize>,
    /// The changes of every part: the canary's stage says how many follow it.
    total: usize,
    /// The changes of the parts carried out so far.
    fed: usize,
}

impl Run {
    /// Starts run `serial` of `total` changes. `snapshot` is all of state as the run starts: a
    /// provider card id stays bound to its one card whichever part it is met in.
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        store: Store,
        client: Client,
        clock: Arc<dyn Clock>,
        serial: u64,
        snapshot: &Snapshot,
        total: usize,
        options: ExecOptions,
        events: EventSink,
        stop: StopFlag,
    ) -> Result<Run, ExecError> {
        let lineage = store.lineage().await?;
        events.emit(Event::Started { total, serial });
        let journal_key = *client.journal_key();
        let bound = perform::Bindings::of(snapshot.cards.values());
        let ctx = Arc::new(Ctx {
            store,
            client,
            clock,
            lineage,
            serial,
            snapshot: Snapshot::default(),
            latency: LatencyModel::new(options.initial_latency),
            events,
            fetch_details: options.fetch_details,
            journal_key,
            guards: Guards {
                stop,
                fail_fast: options.fail_fast,
                max_fees: options.max_fees,
                max_failure_rate: options.max_failure_rate,
                committed_fees: Mutex::new(Decimal::ZERO),
            },
            cards: bindings::CardGuards {
                bound,
                card_locks: Default::default(),
            },
            people: PeopleWork {
                cardholder_forms: options.cardholder_forms,
                kyc_wait: options.kyc_wait,
                subproviders: options.subproviders,
                kyc_learned: Mutex::new(Default::default()),
                parked: Default::default(),
                wake: Default::default(),
            },
            summary: Mutex::new(Summary::default()),
            ramp: std::sync::Mutex::new(ramp::Ramp::new(options.parallelism)),
            inbox: options.inbox,
        });
        Ok(Run {
            ctx,
            parallelism: options.parallelism.max(1),
            canary: options.canary.filter(|&n| n > 0),
            total,
            fed: 0,
        })
    }

    /// Carries out one part's `actions` to the end, against `snapshot`, state's part holding
    /// their cards. Returns the state error that stopped it; a stopped run skips what is left
    /// (each change reported), part after part, as it would in one.
    pub async fn part(
        &mut self,
        snapshot: Snapshot,
        actions: Vec<Action>,
    ) -> Result<(), ExecError> {
        let work: Vec<Action> = actions
            .into_iter()
            .filter(|a| a.kind().is_change())
            .collect();
        self.fed += work.len();
        // The run reads the cards of its own changes only (what an issue keeps, what a replace
        // retires): the rest of a large state need not stay in memory while it runs.
        let mut snapshot = snapshot;
        {
            let touched: std::collections::HashSet<&str> =
                work.iter().map(|a| a.key.as_str()).collect();
            snapshot
                .cards
                .retain(|key, _| touched.contains(key.as_str()));
        }
        // Every task of the last part has ended (`run_schedule` waits for them all), so the run
        // holds the only reference and the part's state can take the last one's place.
        let Some(ctx) = Arc::get_mut(&mut self.ctx) else {
            unreachable!("a task of the previous part outlived it");
        };
        ctx.snapshot = snapshot;
        let ctx = &self.ctx;
        {
            let mut s = ctx.summary.lock().await;
            for a in &work {
                match a.estimate.total() {
                    Some(t) => s.estimated += t,
                    None => s.estimated_unknown += 1,
                }
            }
        }

        let (canary, rest) = match self.canary {
            Some(n) if !work.is_empty() => {
                self.canary = None;
                canary::split_canary(work, n)
            }
            _ => (Vec::new(), work),
        };
        let mut fatal = None;
        let canary_len = canary.len();
        if !canary.is_empty() {
            ctx.events.emit(Event::Stage {
                stage: Stage::Canary,
                changes: canary.len(),
            });
            fatal = run_schedule(ctx, canary, self.parallelism).await;
            let mut s = ctx.summary.lock().await;
            if s.failed > 0 {
                let why = format!(
                    "the canary failed ({} of its changes); nothing else was started",
                    s.failed
                );
                s.stopped.get_or_insert(why);
                ctx.guards.stop.halt();
            } else if !ctx.guards.stop.is_stopped() {
                ctx.events.emit(Event::Stage {
                    stage: Stage::Rollout,
                    changes: self.total.saturating_sub(canary_len),
                });
            }
        }
        if fatal.is_none() {
            fatal = run_schedule(ctx, rest, self.parallelism).await;
        }
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether the run starts nothing new any more (Ctrl-C, `--fail-fast`, the canary or the
    /// brake): the parts not carried out yet need not even be read.
    pub fn is_stopped(&self) -> bool {
        self.ctx.guards.stop.is_stopped()
    }

    /// Stops the run for `why` (kept as the summary's reason): nothing new starts.
    pub async fn halt(&self, why: String) {
        self.ctx.summary.lock().await.stopped.get_or_insert(why);
        self.ctx.guards.stop.halt();
    }

    /// Counts the changes of the parts never carried out as skipped, so the summary accounts
    /// for every change of the plan; `estimate` is what the plan estimated for them (they were
    /// never fed to the run, which cannot know it; the run counts them itself).
    pub async fn skip_rest(&mut self, estimate: Share) {
        let left = self.total.saturating_sub(self.fed);
        let mut s = self.ctx.summary.lock().await;
        s.skipped += left;
        s.left.changes += left;
        s.left.estimated += estimate.estimated;
        s.left.estimated_unknown += estimate.estimated_unknown;
        s.estimated += estimate.estimated;
        s.estimated_unknown += estimate.estimated_unknown;
        drop(s);
        self.fed = self.total;
    }

    /// Ends the run: its summary, also sent as the last event.
    pub async fn finish(self) -> Summary {
        let mut summary = self.ctx.summary.lock().await.clone();
        summary.interrupted = self.ctx.guards.stop.is_interrupted();
        if !summary.left.is_empty() {
            // What was done is measured against its own estimate, not the whole plan's.
            summary.carried_out = Some(Share {
                changes: self.total.saturating_sub(summary.left.changes),
                estimated: summary.estimated - summary.left.estimated,
                estimated_unknown: summary
                    .estimated_unknown
                    .saturating_sub(summary.left.estimated_unknown),
            });
        }
        self.ctx.events.emit(Event::Finished {
            summary: Box::new(summary.clone()),
        });
        summary
    }
}

/// Runs `work` to the end: starts each change when what it depends on completed, up to
/// `parallelism` at once, and records how each ended. Returns the state error that stopped it.
async fn run_schedule(ctx: &Arc<Ctx>, work: Vec<Action>, parallelism: usize) -> Option<ExecError> {
    let mut schedule = Schedule::new(work, Action::address, |a| &a.depends_on);
    let mut tasks = tokio::task::JoinSet::new();
    let mut fatal: Option<ExecError> = None;
    loop {
        while tasks.len()
            < ctx.in_flight_limit(parallelism) + ctx.people.parked.load(Ordering::SeqCst)
        {
            let Some((id, action)) = schedule.next_ready() else {
                break;
            };
            if let Some(reason) = ctx.why_not_start(&action).await {
                ctx.skip(&action, reason).await;
                for (blocked, _) in schedule.finish(id, false) {
                    ctx.skip(
                        &blocked,
                        format!("blocked: {} did not start", action.address()),
                    )
                    .await;
                }
                continue;
            }
            let ctx = ctx.clone();
            tasks.spawn(async move {
                let address = action.address();
                (id, address, ctx.run_action(action).await)
            });
        }
        if tasks.is_empty() {
            break;
        }
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            // A task parked for KYC: its slot may take other work now.
            () = ctx.people.wake.notified() => continue,
        };
        let Some(joined) = joined else {
            break;
        };
        let (id, address, result) = match joined {
            Ok(done) => done,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(join) => panic!("an action task was cancelled: {join}"),
        };
        let completed = match result {
            Ok(completed) => completed,
            // A state write failed: nothing new may start, since it could not be journaled.
            Err(e) => {
                fatal.get_or_insert(e);
                ctx.guards.stop.fail_fast();
                false
            }
        };
        ctx.ramp
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .finished(completed);
        for (blocked, _) in schedule.finish(id, completed) {
            ctx.skip(&blocked, format!("blocked: {address} did not complete"))
                .await;
        }
    }
    for stranded in schedule.stranded() {
        ctx.skip(&stranded, "blocked: its dependencies form a cycle".into())
            .await;
    }
    fatal
}

impl Ctx {
    fn now(&self) -> String {
        now_rfc3339(self.clock.as_ref())
    }

    fn jitter(&self) -> f64 {
        rand::random::<f64>() * 2.0 - 1.0
    }

    async fn why_not_start(&self, action: &Action) -> Option<String> {
        if self.guards.stop.is_stopped() {
            return Some(match self.guards.stop.0.load(Ordering::SeqCst) {
                INTERRUPTED => "interrupted before it started".into(),
                HALTED => self
                    .summary
                    .lock()
                    .await
                    .stopped
                    .clone()
                    .unwrap_or_else(|| "the run was stopped".into()),
                _ => "--fail-fast: an earlier card failed".into(),
            });
        }
        if let (Some(budget), true) = (self.guards.max_fees, action.kind().issues_card()) {
            let fee = action.estimate.fee.unwrap_or_default();
            let mut committed = self.guards.committed_fees.lock().await;
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

    /// Carries out one action; `Ok(true)` when it completed (what depends on it may start).
    async fn run_action(self: Arc<Self>, action: Action) -> Result<bool, ExecError> {
        let a = &action;
        let carried_out = match &action.change {
            Change::Issue { after } | Change::Reissue(Edit { after, .. }) => {
                self.issue(a, after, None).await
            }
            Change::Replace(e) => self.replace(a, &e.after).await,
            Change::ResumeCard { after, .. } => self.resume(a, after.as_deref()).await,
            Change::ResumeTopup => self.resume(a, None).await,
            Change::Freeze(e) | Change::Prune(e) => {
                self.change_status(a, OrderKind::Freeze, &e.after).await
            }
            Change::Unfreeze(e) => self.change_status(a, OrderKind::Unfreeze, &e.after).await,
            Change::RelabelCard(e) => self.relabel(a, &e.after).await,
            Change::RelabelTopup(t) => self.relabel_resource(a, &t.labels).await,
            Change::RelabelPerson { person, .. } => self.relabel_resource(a, &person.labels).await,
            Change::Move(m) => self.rename(a, &m.to).await,
            Change::Topup(t) => self.topup(a, t).await,
            Change::CreateUser(p) | Change::CreateCardholder(p) => {
                self.create_person(a, &p.labels).await
            }
            Change::UndeclaredCard { .. } | Change::UndeclaredTopup { .. } => return Ok(true),
        };
        let ended = match carried_out {
            Ok(ended) => ended,
            // The journal refused this change's entry: nothing of it was written or sent, so it
            // fails alone, where a broken store stops the run.
            Err(ExecError::State(StateError::JournalConflict { key })) => Ended::Failed {
                slug: slugs::JOURNAL_CONFLICT.into(),
                message: format!(
                    "idempotency key {key} is already journaled for a different request; \
                     nothing was sent"
                ),
            },
            Err(e) => return Err(e),
        };
        let completed = matches!(ended, Ended::Done { .. });
        self.report(&action, ended).await;
        Ok(completed)
    }
}
