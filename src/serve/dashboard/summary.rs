//! `GET /api/summary`: the figures the dashboard draws, read from state (cached with the
//! fleet's TTL) and from this process's counters (always fresh).
//!
//! Everything personal is cut here, before serialization: runs show who ran them by initials
//! and what ran by its subcommand only (a command line can name files, keys or hosts).

use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::serve::metrics::Fleet;
use crate::serve::{Counters, Shared};
use crate::state::{RunRecord, StateError};

/// How many days of charges the money chart covers, today included.
pub const MONEY_DAYS: i64 = 30;
/// How many of the latest runs the run history shows.
pub const RUNS_SHOWN: usize = 15;

/// What state says, cut for the page.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    pub generated_at: String,
    pub currency: Option<String>,
    pub cards: Cards,
    pub orders_in_flight: BTreeMap<String, u64>,
    /// Net charges (refunds count negative) per UTC day, oldest first; days without any omitted.
    pub money_by_day: Vec<DayCharge>,
    /// Newest first.
    pub runs: Vec<RunView>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Cards {
    pub total: u64,
    /// As `state list` totals it.
    pub charged: Decimal,
    pub by_status: BTreeMap<String, u64>,
    pub by_product: BTreeMap<String, u64>,
    /// `NAME=VALUE` → cards.
    pub by_label: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DayCharge {
    pub day: String,
    pub charged: Decimal,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunView {
    pub serial: u64,
    pub at: String,
    pub finished_at: Option<String>,
    /// The initials of who ran it.
    pub by: String,
    /// The subcommand (`apply`, `state rm`), without its arguments.
    pub command: String,
    pub charged: Option<Decimal>,
}

/// What this process knows and state does not: read per request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Live {
    pub leader: bool,
    pub drifted_cards: u64,
    pub pending_approvals: u64,
    pub reconciles: u64,
    pub reconcile_failures: u64,
    /// Seconds, as a decimal string.
    pub last_reconcile_seconds: Decimal,
    /// RFC 3339; `None` before the first success.
    pub last_success_at: Option<String>,
    pub webhooks: BTreeMap<&'static str, u64>,
}

#[derive(Serialize)]
pub struct Page<'a> {
    #[serde(flatten)]
    pub state: &'a Summary,
    pub live: Live,
}

impl Summary {
    pub async fn read(shared: &Shared) -> Result<Summary, StateError> {
        let store = &shared.store;
        let fleet = Fleet::read(store).await?;
        let now = crate::state::now();
        let since = money_since(&now);
        let calls = store.calls(since.as_deref()).await?;
        let history = store.history().await?;
        Ok(Summary::from_parts(
            now,
            &fleet,
            calls.iter().map(|c| (c.at.as_str(), c.charge)),
            &history,
        ))
    }

    /// The summary of what was read, apart from reading it (for tests).
    pub fn from_parts<'a>(
        generated_at: String,
        fleet: &Fleet,
        charges: impl IntoIterator<Item = (&'a str, Option<Decimal>)>,
        history: &[RunRecord],
    ) -> Summary {
        let mut cards = Cards {
            charged: fleet.charged,
            by_label: fleet.labels.clone(),
            ..Cards::default()
        };
        for ((status, product), n) in &fleet.cards {
            cards.total += n;
            *cards.by_status.entry(status.clone()).or_default() += n;
            *cards.by_product.entry(product.clone()).or_default() += n;
        }
        let mut days: BTreeMap<String, Decimal> = BTreeMap::new();
        for (at, charge) in charges {
            if let (Some(day), Some(c)) = (at.get(..10), charge) {
                *days.entry(day.to_owned()).or_default() += c;
            }
        }
        Summary {
            generated_at,
            currency: fleet.currency.clone(),
            cards,
            orders_in_flight: fleet.orders_in_flight.clone(),
            money_by_day: days
                .into_iter()
                .map(|(day, charged)| DayCharge { day, charged })
                .collect(),
            runs: history
                .iter()
                .rev()
                .take(RUNS_SHOWN)
                .map(run_view)
                .collect(),
        }
    }
}

/// The first day the money chart covers, `MONEY_DAYS` back from `now` (RFC 3339).
fn money_since(now: &str) -> Option<String> {
    let now: jiff::Timestamp = now.parse().ok()?;
    let from = now
        .checked_sub(jiff::SignedDuration::from_hours(24 * (MONEY_DAYS - 1)))
        .ok()?;
    Some(from.to_string().get(..10)?.to_owned())
}

fn run_view(r: &RunRecord) -> RunView {
    RunView {
        serial: r.serial,
        at: r.at.clone(),
        finished_at: r.finished_at.clone(),
        by: initials(&r.user),
        command: subcommand(&r.command),
        charged: r.charged,
    }
}

/// cardform's commands as `cardform --help` lists them, and those with commands of their own. A
/// run's command line is shown as its command only (`state rm`, `serve`), never its arguments;
/// a command missing here shows as nothing, which is safe.
const COMMANDS: &[&str] = &[
    "init",
    "validate",
    "plan",
    "apply",
    "show",
    "state",
    "workspace",
    "import",
    "refresh",
    "force-unlock",
    "products",
    "config",
    "serve",
    "approve",
    "sandbox",
];
const GROUPS: &[&str] = &["state", "workspace"];

/// `cardform --state prod state rm web-1 --force` → `state rm`: the first word that is one of
/// cardform's commands, with the next word when that command has commands of its own.
fn subcommand(command: &str) -> String {
    let mut words = command.split_whitespace().skip(1);
    let Some(first) = words.find(|w| COMMANDS.contains(w)) else {
        return String::new();
    };
    match words.next() {
        Some(next)
            if GROUPS.contains(&first)
                && !next.starts_with('-')
                && next.chars().all(|c| c.is_ascii_lowercase() || c == '-') =>
        {
            format!("{first} {next}")
        }
        _ => first.to_owned(),
    }
}

#[cfg(test)]
pub(crate) fn subcommand_for_test(command: &str) -> String {
    subcommand(command)
}

/// `jane.doe` → `JD`, `Jane Q. Public` → `JQP`, `root` → `R`: the first letter of each part
/// (parts split on anything not alphanumeric), at most three; `?` when there is none.
pub fn initials(name: &str) -> String {
    let s: String = name
        .split(|c: char| !c.is_alphanumeric())
        .filter_map(|part| part.chars().next())
        .take(3)
        .flat_map(char::to_uppercase)
        .collect();
    if s.is_empty() { "?".to_owned() } else { s }
}

/// The summary with this process's counters beside it, as `/api/summary` answers.
pub fn with_live<'a>(state: &'a Summary, shared: &Shared) -> Page<'a> {
    Page {
        state,
        live: live(&shared.counters),
    }
}

fn live(c: &Counters) -> Live {
    let n = Counters::get;
    let last = c.last_success_unix.load(Ordering::Relaxed);
    Live {
        leader: c.leader.load(Ordering::Relaxed),
        drifted_cards: n(&c.drifted_cards),
        pending_approvals: n(&c.pending_approvals),
        reconciles: n(&c.reconciles),
        reconcile_failures: n(&c.reconcile_failures),
        last_reconcile_seconds: Decimal::from(n(&c.last_reconcile_millis)) / Decimal::from(1000),
        last_success_at: (last > 0)
            .then(|| jiff::Timestamp::from_second(last).ok())
            .flatten()
            .map(|t| t.to_string()),
        webhooks: [
            ("accepted", n(&c.webhooks_accepted)),
            ("duplicate", n(&c.webhooks_duplicate)),
            ("refused", n(&c.webhooks_refused)),
        ]
        .into(),
    }
}
