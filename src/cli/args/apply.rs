//! The clap definitions of `plan` and `apply`. Must not default what `cardform.toml` may set:
//! those flags stay `Option` so that `settings` can layer flags over the project file.

use clap::Args;
use std::path::PathBuf;

use super::{FilesArgs, Format};

#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    #[command(flatten)]
    pub files: FilesArgs,
    /// Output format
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Same as --format json
    #[arg(long)]
    pub json: bool,
    /// Exit 2 when the plan has changes (0 when none, 1 on error)
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Save the plan to this file, for `cardform apply PLANFILE`
    #[arg(long, value_name = "PLANFILE")]
    pub out: Option<PathBuf>,
    /// Freeze cards that are in state but no longer declared
    #[arg(long)]
    pub prune: bool,
    /// The most cards --prune may freeze: a count, or a share of the cards in state [default:
    /// `max_prune` in cardform.toml, else 10%]
    #[arg(long, value_name = "N|P%")]
    pub max_prune: Option<String>,
    /// Plan even when the declarations hold no cards at all
    #[arg(long)]
    pub allow_empty: bool,
    /// Fail when the plan's fees exceed this amount
    #[arg(long, value_name = "AMOUNT")]
    pub max_fees: Option<String>,
    /// Re-read cards and open orders from the provider first and plan against what it says;
    /// writes nothing (drift is recorded by `refresh`, or by applying a --refresh-only plan)
    #[arg(long)]
    pub refresh: bool,
    /// Plan only what changed at the provider outside cardform (`~ drift`), to record in state
    /// by `apply PLANFILE`; plans nothing from the declarations (-f is not read)
    #[arg(long, conflicts_with_all = ["refresh", "replace", "prune", "target"])]
    pub refresh_only: bool,
    /// Replace this issued card (repeatable): a new card under the next attempt, then the old one
    /// frozen, e.g. for a lost or compromised card. The key must be declared and in state
    #[arg(long, value_name = "KEY")]
    pub replace: Vec<String>,
    /// List every change on a terminal, however many (large groups are summarised otherwise)
    #[arg(long)]
    pub detail: bool,
    /// Only these cards (repeatable): KEY, KEY-PREFIX*, NAME=VALUE (a label, e.g. team=ops),
    /// label=VALUE (any label with that value) or product=CODE. The plan says it is partial and
    /// how many changes it leaves out
    #[arg(long, value_name = "TARGET")]
    pub target: Vec<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ApplyArgs {
    /// A plan saved with `cardform plan --out`; applied without asking
    #[arg(value_name = "PLANFILE", conflicts_with = "files")]
    pub plan_file: Option<PathBuf>,
    /// Declaration file or directory; repeatable [default: `files` in cardform.toml]
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// Do not ask for approval (for CI)
    #[arg(long)]
    pub auto_approve: bool,
    /// Cards in flight at once. Most of a card's time is spent waiting for its order, so to use a
    /// rate limit R fully you need about R/2 × order latency (s) in flight [default: 128, or R
    /// when --rate R is higher]
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
    /// Provider requests per second, shared by all calls [default: unlimited, slowing down on 429]
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Stop starting new work after the first failure
    #[arg(long)]
    pub fail_fast: bool,
    /// Read each new card once to record its last four digits (one more call per card)
    #[arg(long)]
    pub fetch_details: bool,
    /// Freeze cards that are in state but no longer declared
    #[arg(long)]
    pub prune: bool,
    /// The most cards --prune may freeze: a count, or a share of the cards in state [default:
    /// `max_prune` in cardform.toml, else 10%]
    #[arg(long, value_name = "N|P%")]
    pub max_prune: Option<String>,
    /// Apply even when the declarations hold no cards at all
    #[arg(long)]
    pub allow_empty: bool,
    /// Only these cards (repeatable): KEY, KEY-PREFIX*, NAME=VALUE (a label, e.g. team=ops),
    /// label=VALUE (any label with that value) or product=CODE. The plan says it is partial and
    /// how many changes it leaves out
    #[arg(long, value_name = "TARGET")]
    pub target: Vec<String>,
    /// Carry out the first N changes (spread across products) and wait for them; go on only if
    /// none failed
    #[arg(long, value_name = "N")]
    pub canary: Option<usize>,
    /// Stop starting new work once at least 20 orders finished and more than this share failed
    /// (in-flight orders are still tracked to the end); 100% turns the brake off [default:
    /// `max_failure_rate` in cardform.toml, else 20%]
    #[arg(long, value_name = "P%")]
    pub max_failure_rate: Option<String>,
    /// Stop starting orders once the charged fees would pass this amount
    #[arg(long, value_name = "AMOUNT")]
    pub max_fees: Option<String>,
    /// Wait this long for the state lock (e.g. 30s, 2m) instead of failing at once
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
    /// Print progress as NDJSON events
    #[arg(long)]
    pub json: bool,
    /// Without a terminal: print one line per card as it finishes, instead of a progress line
    /// every --progress-interval (failures are always printed, each on its own line)
    #[arg(long)]
    pub log_cards: bool,
    /// Without a terminal: how often to print a progress line (done/total, failed, cards/s, ETA,
    /// money so far)
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub progress_interval: String,
    /// How long a card whose cardholder's KYC is not approved yet keeps being retried (other
    /// work goes on meanwhile); cards still waiting then are left for the next run
    #[arg(long, value_name = "DURATION", default_value = "5m")]
    pub kyc_wait: String,
    /// Once approved, carry out a fleet of more cards than this a part of about this many at a
    /// time, so memory stays flat while orders are in flight (not with moves or people declared)
    #[arg(long, value_name = "CARDS", default_value_t = crate::exec::parts::DEFAULT_PART_CARDS)]
    pub part_size: usize,
    /// Record in state what changed at the provider outside cardform, once approved, and
    /// nothing else (sends no change; -f is not read)
    #[arg(long, conflicts_with_all = ["plan_file", "replace", "prune", "target", "canary"])]
    pub refresh_only: bool,
    /// Replace this issued card (repeatable): a new card under the next attempt, then the old one
    /// frozen, e.g. for a lost or compromised card. The key must be declared and in state
    #[arg(long, value_name = "KEY", conflicts_with = "plan_file")]
    pub replace: Vec<String>,
}
