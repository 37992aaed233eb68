//! The command line as clap sees it. These types never leave the cli layer: `settings` turns them
//! into plain typed settings first.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Provider settings come from the environment: CARDFORM_API_URL, CARDFORM_API_KEY,
CARDFORM_API_SECRET (never from declaration files; the URL may also be `api_url` in
cardform.toml, the project file found by walking up from the working directory, which can give
-f paths, the state and flag defaults too: flags > environment > cardform.toml > defaults;
`cardform config` shows what applies). Pass --sandbox to use the built-in
sandbox provider instead (its state is then state/sandbox.db unless --state says otherwise:
CARDFORM_STATE is for the real provider's state, and --sandbox ignores it). A state belongs to
the provider it was first written for; `cardform state replace-provider` moves it.

Exit codes: 0 success, 1 error, 2 changes present (with --detailed-exitcode), 130 interrupted.";

/// `cardform --version`: the release, the commit it was built from and the build date.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CARDFORM_GIT_COMMIT"),
    ", built ",
    env!("CARDFORM_BUILD_DATE"),
    ")"
);

#[derive(Debug, Parser)]
#[command(
    name = "cardform",
    version = VERSION,
    about = "Infrastructure-as-code for virtual payment cards",
    after_help = AFTER_HELP,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where the state is: a SQLite file path, or a postgres:// URL (?state=NAME picks one of
    /// several; the password comes from PGPASSWORD) [default: $CARDFORM_STATE, else `state` in
    /// cardform.toml, else state/cardform.db; with --sandbox always state/sandbox.db]
    #[arg(long, global = true, value_name = "PATH|URL")]
    pub state: Option<String>,
    /// The project file to use instead of the nearest cardform.toml [env: CARDFORM_CONFIG]
    #[arg(long, global = true, value_name = "PATH")]
    pub config_file: Option<PathBuf>,
    /// Use the built-in sandbox provider, started in-process on a free loopback port
    #[arg(long, global = true)]
    pub sandbox: bool,
    /// Never colour the output (also: NO_COLOR=1)
    #[arg(long, global = true)]
    pub no_color: bool,
    /// How long one provider call may go without any answer, across its retries, before the run
    /// fails naming the host (e.g. 30s, 2m)
    #[arg(long, global = true, value_name = "DURATION", default_value = "30s")]
    pub request_timeout: String,
    /// Log to stderr: -v each provider request and answer, -vv their bodies (secrets, card data
    /// and personal fields redacted) and state operations, -vvv everything [env: CARDFORM_LOG,
    /// RUST_LOG syntax; CARDFORM_LOG_FILE to log to a file]
    #[arg(short = 'v', long = "verbose", global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a state where none exists (never over a file), or upgrade one written by an older cardform
    #[command(
        after_help = "Examples:\n  cardform init\n  cardform init --state team.db\n  cardform init --upgrade   # bring an older state to this release's schema"
    )]
    Init(InitArgs),
    /// Parse and lint declarations only: no state, no network
    #[command(
        after_help = "Examples:\n  cardform validate -f cards/ -f extra.csv\n  cardform validate -f cards/ --json   # problems as JSON, for editors and bots"
    )]
    Validate(ValidateArgs),
    /// Diff declarations against state and show what would change and what it costs
    #[command(
        after_help = "Examples:\n  cardform plan -f cards/\n  cardform plan -f cards/ --format markdown --detailed-exitcode\n  cardform plan --sandbox -f examples/onboarding.yaml --out plan.json"
    )]
    Plan(PlanArgs),
    /// Issue the missing cards and carry out the plan (asks for approval)
    #[command(
        after_help = "Examples:\n  cardform apply -f cards/\n  cardform apply -f cards/ --auto-approve --rate 100\n  cardform apply plan.json"
    )]
    Apply(ApplyArgs),
    /// Show what state holds (one card in detail, or a table of all), or a saved plan
    #[command(
        after_help = "Examples:\n  cardform show\n  cardform show alice-travel\n  cardform show alice-travel --json\n  cardform show plan.json --format markdown   # a plan saved with `plan --out`"
    )]
    Show(ShowArgs),
    /// Audit and surgery on state: list, history, diff, export, rm, audit, replace-provider
    #[command(
        subcommand,
        after_help = "Examples:\n  cardform state list --status frozen\n  cardform state history\n  cardform state diff 3 5\n  cardform state export --format csv > cards.csv"
    )]
    State(StateCommand),
    /// The named states of a PostgreSQL database, like Terraform's workspaces: list, new, delete
    #[command(subcommand)]
    Workspace(WorkspaceCommand),
    /// Adopt a card issued outside cardform (read with cards/get; nothing is charged)
    #[command(after_help = "Example:\n  cardform import dave-sales card_8f2c41 --label team=sales")]
    Import(ImportArgs),
    /// Re-read cards and open orders from the provider and record drift
    #[command(after_help = "Examples:\n  cardform refresh\n  cardform refresh --json --rate 20")]
    Refresh(RefreshArgs),
    /// Remove a stale state lock (asks first; never one whose holder still runs on this host)
    #[command(
        after_help = "Examples:\n  cardform force-unlock 6f1c2d3e-…\n  cardform force-unlock 6f1c2d3e-… --force   # without a terminal (CI)"
    )]
    ForceUnlock {
        /// The lock id, as the error naming the lock holder printed it
        lock_id: String,
        /// Do not ask (needed without a terminal). A holder still running on this host is
        /// refused even so: stop that process instead
        #[arg(long)]
        force: bool,
    },
    /// The provider's card products: code, currency, fees and top-up limits
    #[command(after_help = "Examples:\n  cardform products --sandbox\n  cardform products --json")]
    Products {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// The resolved settings (paths, state, provider, flag defaults) and where each came from
    #[command(
        after_help = "Examples:\n  cardform config\n  cardform config --json\n\nPrecedence: flags > environment variables > cardform.toml > built-in defaults.\nSecrets are never shown, only whether they are set."
    )]
    Config {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Run the built-in provider stand-in on loopback
    #[command(
        after_help = "Examples:\n  cardform sandbox --listen 127.0.0.1:8080 --order-latency 2s --rate-limit 100\n  cardform sandbox --rate-limit 50 --rate-limit-shape fixed"
    )]
    Sandbox(SandboxArgs),
    /// Print shell completions
    #[command(
        after_help = "Example:\n  cardform completions bash > /etc/bash_completion.d/cardform"
    )]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args, Clone)]
pub struct InitArgs {
    /// Upgrade an existing state written by an older cardform (a copy of it is kept beside it)
    #[arg(long, conflicts_with = "config")]
    pub upgrade: bool,
    /// Write a commented starter cardform.toml in the working directory instead (never over an
    /// existing one); creates no state
    #[arg(long, alias = "write-config")]
    pub config: bool,
    /// How long to wait for another cardform holding the state lock (e.g. 30s, 5m)
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub lock_timeout: String,
}

#[derive(Debug, Args, Clone)]
pub struct FilesArgs {
    /// Declaration file or directory (every *.yaml, *.yml, *.csv inside); repeatable [default:
    /// `files` in cardform.toml]
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub files: FilesArgs,
    /// Accept declarations that hold no cards at all
    #[arg(long)]
    pub allow_empty: bool,
    /// Print the result (and every problem with file, line and column) as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Markdown,
}

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
    /// Re-read cards and open orders from the provider first (records drift in state)
    #[arg(long)]
    pub refresh: bool,
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
}

#[derive(Debug, Args, Clone)]
pub struct SandboxArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// The API key clients must send (the API-KEY header)
    #[arg(long, default_value = "sandbox-key")]
    pub api_key: String,
    /// The secret that encrypts every request and response body
    #[arg(long, default_value = "sandbox-secret")]
    pub api_secret: String,
    /// Starting master balance (USDT)
    #[arg(long, default_value = "10000.00")]
    pub balance: String,
    /// How long an order takes to finish (e.g. 2s, 500ms)
    #[arg(long, default_value = "2s")]
    pub order_latency: String,
    /// Order latency that changes during the run: LATENCY[@FROM],… with FROM counted from the
    /// first order (e.g. 1s,200ms@10s,1s@20s: slow, fast from 10 s, slow again from 20 s)
    #[arg(long, value_name = "SCHEDULE")]
    pub latency_schedule: Option<String>,
    /// What orders say of when they ended (completed_at/failed_at, optional in the reference)
    #[arg(long, value_enum, value_name = "MODE", default_value = "precise")]
    pub completed_at: CompletedAtArg,
    /// Requests per second before answering 429 (with Retry-After)
    #[arg(long, value_name = "N")]
    pub rate_limit: Option<u32>,
    /// How --rate-limit counts requests
    #[arg(long, value_enum, value_name = "SHAPE", default_value = "sliding")]
    pub rate_limit_shape: LimitShape,
    /// Fraction of issue orders that end failed
    #[arg(long, default_value_t = 0.0)]
    pub fail_rate: f64,
    /// Fraction of requests answered 5xx without doing anything
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction of cards/create, users/create and cardholders/create calls carried out, then
    /// answered with a dropped connection
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Seed of the fault decisions (fail, error and drop rates), so a run can be repeated
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// external_user_id whose cardholder is not ready: its KYC stays pending forever; repeatable
    #[arg(long, value_name = "ID", alias = "not-ready")]
    pub not_ready_user: Vec<String>,
    /// external_user_id the provider does not know until created (without --require-people);
    /// repeatable
    #[arg(long, value_name = "ID", alias = "unknown")]
    pub unknown_user: Vec<String>,
    /// How long a new cardholder's KYC stays pending before it is decided (e.g. 2s, 500ms; 0:
    /// decided at once)
    #[arg(long, value_name = "DURATION", default_value = "2s")]
    pub kyc_latency: String,
    /// external_user_id whose KYC ends rejected (registration failed) after --kyc-latency;
    /// repeatable
    #[arg(long, value_name = "ID", alias = "kyc-reject")]
    pub kyc_reject_user: Vec<String>,
    /// external_user_id whose KYC ends expired (approved once, lapsed since) after
    /// --kyc-latency; repeatable
    #[arg(long, value_name = "ID")]
    pub kyc_expire_user: Vec<String>,
    /// People mode: nobody is known until users/create, then cardholders/create at the product's
    /// subprovider (cards/create answers cardholder_not_found before)
    #[arg(long)]
    pub require_people: bool,
    /// Product whose issue orders all end failed (a product misconfigured at the provider);
    /// repeatable
    #[arg(long, value_name = "CODE")]
    pub fail_product: Vec<String>,
    /// Product whose top-up orders all end failed; repeatable
    #[arg(long, value_name = "CODE")]
    pub fail_topup_product: Vec<String>,
    /// What a failed order gives back: all of its charge, half of it, or nothing (then it
    /// carries no `refunded_amount`)
    #[arg(long, value_enum, default_value = "full")]
    pub refund: RefundArg,
    /// Hostile: every issue order names the first card id ever issued (a provider mixing its
    /// answers up), for testing that cardform binds no card id twice
    #[arg(long)]
    pub same_card_for_every_order: bool,
    /// Hostile: issue orders end `completed` without a `card_id`
    #[arg(long)]
    pub completed_without_card_id: bool,
    /// Hostile: issue and top-up orders charge their fee times this (10: ten times the fee;
    /// -1: a credit, the balance goes up)
    #[arg(long, value_name = "FACTOR", allow_hyphen_values = true)]
    pub charge_multiplier: Option<String>,
    /// Keep the sandbox's world in this JSON file across runs
    #[arg(long, value_name = "PATH")]
    pub world: Option<std::path::PathBuf>,
}

/// The policies of `crate::sandbox::RefundPolicy`, as `--refund` spells them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum RefundArg {
    Full,
    Partial,
    None,
}

/// The shapes of `crate::sandbox::RateLimitShape`, as `--rate-limit-shape` spells them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LimitShape {
    /// At most N requests in any one-second window (the strictest; refused requests count too)
    Sliding,
    /// At most N requests per wall-clock second; the count resets on each second boundary
    Fixed,
    /// A token bucket: N tokens, refilled at N per second (one second of burst)
    Bucket,
}

/// The modes of `crate::sandbox::CompletedAt`, as `--completed-at` spells them.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CompletedAtArg {
    /// The real time the order ended
    Precise,
    /// Never sent
    Omitted,
    /// The time of the first read that saw the order ended, not the real end
    OnRead,
    /// The real time, truncated to whole seconds
    Seconds,
}

#[derive(Debug, Args, Clone)]
pub struct ShowArgs {
    /// The card to show (or a person, by external_user_id: their user and cardholders), or a
    /// plan saved with `cardform plan --out` (a .json file); all cards when omitted
    #[arg(value_name = "KEY|PLANFILE")]
    pub key: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Output format (markdown: for a saved plan only)
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
}

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
    /// Wait this long for the state lock (e.g. 30s) instead of failing at once
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
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
    /// Wait this long for the state lock (e.g. 30s) instead of failing at once
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
}

#[derive(Debug, Args, Clone)]
pub struct MigrateArgs {
    /// Where to copy the state: a file path, or a postgres:// URL (?state=NAME picks the state)
    #[arg(long, value_name = "PATH|URL")]
    pub to: String,
    /// Wait this long for the source state's lock (e.g. 30s) instead of failing at once
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
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
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub struct DiffArgs {
    /// The older serial [default: the one before TO]
    pub from: Option<u64>,
    /// The newer serial [default: the latest]
    pub to: Option<u64>,
    /// Print a structured diff (added, removed, changed with before/after)
    #[arg(long)]
    pub json: bool,
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
    /// Wait this long for the state lock (e.g. 30s) instead of failing at once
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
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
    /// Wait this long for the state lock (e.g. 30s) instead of failing at once
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
}

#[derive(Debug, Args, Clone)]
pub struct RefreshArgs {
    /// Cards read at once (the rate limit still applies) [default: 128, or R when --rate R is
    /// higher]
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
    /// Provider requests per second
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
    /// Wait this long for the state lock (e.g. 30s) instead of failing at once
    #[arg(long, value_name = "DURATION", default_value = "0s")]
    pub lock_timeout: String,
    /// Without a terminal: how often to print a progress line (cards read of total, cards/s, ETA)
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub progress_interval: String,
}
