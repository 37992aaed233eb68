//! The clap definitions of `cardform workspace` and `cardform state` (list, diff, mv, rm, export,
//! import, audit, backup, migrate, replace-provider). Must not open a state: commands do.

use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;

use super::{JsonArgs, LockWaitArgs};

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// List the named states in the PostgreSQL database of --state: serial, cards, last run,
    /// which is selected (Terraform's workspaces)
    #[command(
        after_help = "Examples:\n  cardform --state 'postgres://ci@db/cardform' workspace list\n  cardform workspace list --json\n\nA SQLite file holds one state: list shows it."
    )]
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Create an empty named state beside the one --state names (what `init` does, for NAME)
    #[command(
        after_help = "Example:\n  cardform --state 'postgres://ci@db/cardform?state=prod' workspace new staging"
    )]
    New {
        /// The new state's name: 1 to 40 characters from a-z 0-9 _
        name: String,
    },
    /// Delete a named state of the database of --state, with its history (asks first; never the
    /// selected state, a locked one, or one with live cards unless --force)
    #[command(
        after_help = "Examples:\n  cardform --state 'postgres://ci@db/cardform?state=prod' workspace delete staging\n  cardform workspace delete old_test --force   # without a terminal (CI), or with live cards"
    )]
    Delete {
        /// The state to delete
        name: String,
        /// Do not ask (needed without a terminal), and delete it even with live cards (they
        /// stay at the provider, unmanaged)
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the cards in state (or, with --topup, their top-ups), optionally filtered
    #[command(
        after_help = "Examples:\n  cardform state list --status frozen\n  cardform state list --product VISA_USD_STD --label team=ops --json\n  cardform state list --topup 2026-11 --status failed\n  cardform state list --topup '*' --label run=payroll"
    )]
    List(ListArgs),
    /// One line per serial: when, who, command, counts, money
    #[command(after_help = "Example:\n  cardform state history --json")]
    History {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Unified diff of the cards and top-ups between two serials (default: previous → latest)
    #[command(
        after_help = "Examples:\n  cardform state diff\n  cardform state diff 3 7\n  cardform state diff 3 --json"
    )]
    Diff(DiffArgs),
    /// Canonical, sorted, deterministic export of the cards and top-ups (no secrets)
    #[command(
        after_help = "Examples:\n  cardform state export > state.yaml\n  cardform state export --format csv --at 4\n  cardform state export --format csv --kind topup > topups.csv"
    )]
    Export(ExportArgs),
    /// Rename a card in state: its card, orders, charges, history and audit trail come along
    #[command(
        after_help = "Example:\n  cardform state mv bob-ops bob-operations   # then declare it as bob-operations"
    )]
    Mv(MvArgs),
    /// Forget a card (state only: nothing is sent to the provider)
    #[command(after_help = "Example:\n  cardform state rm bob-ops")]
    Rm(RmArgs),
    /// Every provider call that changed something: time, endpoint, key, order, result, charge
    #[command(
        after_help = "Examples:\n  cardform state audit --since 2025-01-01\n  cardform state audit --format csv > audit.csv"
    )]
    Audit(AuditArgs),
    /// Copy the whole state (cards, journal, history, audit, lineage, serial) to another backend
    #[command(
        after_help = "Examples:\n  cardform state migrate --to 'postgres://ci@db.internal/cardform?state=prod'\n  cardform --state 'postgres://ci@db/cardform' state migrate --to laptop-copy.db\n\nThe password comes from the URL or PGPASSWORD and is never printed or stored."
    )]
    Migrate(MigrateArgs),
    /// Write a consistent copy of the whole state to a new SQLite file, even while an apply runs
    #[command(
        after_help = "Examples:\n  cardform state backup backups/cards-$(date +%F).db\n  cardform --state \"$CARDFORM_STATE\" state backup nightly.db   # a PostgreSQL state, as a file\n\nThe copy is a complete state: use it with --state FILE, or move it back with state migrate."
    )]
    Backup(BackupArgs),
    /// Record that the state now belongs to the provider this run talks to (asks first)
    #[command(
        after_help = "Examples:\n  CARDFORM_API_URL=https://api.new.example cardform state replace-provider\n  cardform state replace-provider --auto-approve   # in CI\n\nEvery other command refuses a state recorded for another provider. The move is a serial of\nits own: `cardform state history` shows it."
    )]
    ReplaceProvider(ReplaceProviderArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ReplaceProviderArgs {
    /// Do not ask (needed without a terminal)
    #[arg(long)]
    pub auto_approve: bool,
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

#[derive(Debug, Args, Clone)]
pub struct BackupArgs {
    /// The new file to write (refused if it exists)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args, Clone)]
pub struct MvArgs {
    /// The card's key now
    pub old: String,
    /// Its new key (as the declarations will name it)
    pub new: String,
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

#[derive(Debug, Args, Clone)]
#[command(mut_arg("lock_timeout", |a| a.help(
    "Wait this long for the source state's lock (e.g. 30s, 2m) instead of failing at once"
)))]
pub struct MigrateArgs {
    /// Where to copy the state: a file path, or a postgres:// URL (?state=NAME picks the state)
    #[arg(long, value_name = "PATH|URL")]
    pub to: String,
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ListArgs {
    /// Only cards in this status: active, frozen, pending, failed, closed (with --topup: only
    /// top-ups in this status: prepared, open, completed, failed)
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Only cards of this product code (with --topup: top-ups of such cards)
    #[arg(long, value_name = "CODE")]
    pub product: Option<String>,
    /// Only cards with this label (k=v); repeatable, all must match (with --topup: the top-up's
    /// own labels)
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    /// List top-ups instead of cards: those with this id (ID-PREFIX* for a prefix, '*' for all),
    /// one row per card that has one, with status, amount, charge and labels
    #[arg(long, value_name = "ID")]
    pub topup: Option<String>,
    /// List users and cardholders instead of cards, one row each, with their provider ids and
    /// KYC status (--status filters by KYC status: pending, approved, rejected, ...; --label by
    /// their labels)
    #[arg(long, conflicts_with_all = ["topup", "product"])]
    pub people: bool,
    #[command(flatten)]
    pub out: JsonArgs,
}

#[derive(Debug, Args, Clone)]
#[command(mut_arg("json", |a| a.help(
    "Print a structured diff (added, removed, changed with before/after)"
)))]
pub struct DiffArgs {
    /// The older serial [default: the one before TO]
    pub from: Option<u64>,
    /// The newer serial [default: the latest]
    pub to: Option<u64>,
    #[command(flatten)]
    pub out: JsonArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportFormat {
    Yaml,
    Json,
    Csv,
}

/// Which records an export holds.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ExportKind {
    Card,
    Topup,
    /// Users and cardholders.
    Person,
}

#[derive(Debug, Args, Clone)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value = "yaml")]
    pub format: ExportFormat,
    /// Export the cards as they were at this serial [default: the latest]
    #[arg(long, value_name = "SERIAL")]
    pub at: Option<u64>,
    /// Only this kind of record [default: YAML and JSON hold cards, top-ups and people; CSV holds
    /// one kind, cards unless --kind topup or --kind person]
    #[arg(long, value_enum)]
    pub kind: Option<ExportKind>,
}

#[derive(Debug, Args, Clone)]
pub struct RmArgs {
    /// The card key to forget
    pub key: String,
    /// Forget it even though an order of it is still open (the order is no longer tracked)
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub lock: LockWaitArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AuditFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, Args, Clone)]
pub struct AuditArgs {
    /// Only calls from this time on (RFC 3339, or a date meaning its start in UTC)
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: AuditFormat,
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// The key to manage the card under (must not be in state yet)
    pub key: String,
    /// The provider's card id
    pub card_id: String,
    /// A label to record (k=v); repeatable
    #[arg(long, value_name = "K=V")]
    pub label: Vec<String>,
    #[command(flatten)]
    pub lock: LockWaitArgs,
}
