//! The command line as clap sees it. These types never leave the cli layer: `settings` turns them
//! into plain typed settings first.

mod apply;
mod approve;
mod sandbox;
mod serve;
mod state;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

pub use apply::{ApplyArgs, PlanArgs};
pub use approve::ApproveArgs;
pub use sandbox::{CompletedAtArg, LimitShape, RefundArg, SandboxArgs};
pub use serve::ServeArgs;
pub use state::{
    AuditArgs, AuditFormat, BackupArgs, DiffArgs, ExportArgs, ExportFormat, ExportKind, ImportArgs,
    ListArgs, MigrateArgs, MvArgs, ReplaceProviderArgs, RmArgs, StateCommand, WorkspaceCommand,
};

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
        after_help = "Examples:\n  cardform plan -f cards/\n  cardform plan -f cards/ --format markdown --detailed-exitcode\n  cardform plan --sandbox -f examples/onboarding.yaml --out plan.json\n  cardform plan --refresh-only --out drift.json   # then: cardform apply drift.json\n  cardform plan -f cards/ --replace alice-travel"
    )]
    Plan(PlanArgs),
    /// Issue the missing cards and carry out the plan (asks for approval)
    #[command(
        after_help = "Examples:\n  cardform apply -f cards/\n  cardform apply -f cards/ --auto-approve --rate 100\n  cardform apply plan.json\n  cardform apply -f cards/ --replace alice-travel   # re-issue a lost card\n  cardform apply --refresh-only"
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
    /// Reconcile continuously: lead through the state lock (PostgreSQL), apply the declarations
    /// when they change, every --interval and on POST /api/reconcile; answer HTTP (health, API)
    #[command(
        after_help = "Examples:\n  CARDFORM_SERVE_TOKEN=... cardform serve --listen 0.0.0.0:8080 -f cards/ --state postgres://db/cards\n  cardform serve -f cards/ --interval 10m --drain-timeout 60s\n\nCARDFORM_SERVE_TOKEN (at least 16 characters) is required: every route but /healthz, /login\nand the provider's webhook wants it as `Authorization: Bearer TOKEN` or the login cookie.\nRun several replicas on one PostgreSQL state: one leads, the others stand by.\nSIGTERM stops starting orders, lets those in flight finish (--drain-timeout), exits 0."
    )]
    Serve(ServeArgs),
    /// Approve a plan `cardform serve` holds back (outside its policy), or list them with --list
    #[command(
        visible_alias = "approvals",
        after_help = "Examples:\n  cardform approve --list\n  cardform approve 7 --by alice\n\nThe next reconcile applies the approved plan only if it plans the same changes again;\notherwise the approval is superseded and the new plan waits."
    )]
    Approve(ApproveArgs),
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
    /// Write the man pages (cardform.1 and one per subcommand) into DIR, for packaging
    #[command(hide = true)]
    GenerateMan { dir: PathBuf },
    /// Write the bash, zsh and fish completions into DIR, for packaging
    #[command(hide = true)]
    GenerateCompletions { dir: PathBuf },
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
