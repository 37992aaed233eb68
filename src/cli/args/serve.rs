//! The clap definition of `serve`. Flags `cardform.toml` may set stay `Option`, so that the
//! settings can layer flags over the project file's `[serve]` table.

use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Where to answer HTTP [default: `listen` in cardform.toml's [serve], else 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Declaration file or directory to reconcile; repeatable [default: `files` in cardform.toml]
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub files: Vec<PathBuf>,
    /// The URL this service is reached at, for links and the provider's webhook [default:
    /// `public_url` in [serve]]
    #[arg(long, value_name = "URL")]
    pub public_url: Option<String>,
    /// Reconcile at least this often, whether or not the declarations changed [default:
    /// `interval` in [serve], else 5m]
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// On SIGTERM, how long orders in flight may take to finish before the process leaves
    /// (they stay open in the journal; the next leader resumes them) [default: `drain_timeout`
    /// in [serve], else 30s]
    #[arg(long, value_name = "DURATION")]
    pub drain_timeout: Option<String>,
    /// Read every card back from the provider this often to notice drift (one provider read per
    /// card; logged and counted, never recorded: `apply --refresh-only` records it); `off`
    /// never [default: `drift_interval` in [serve], else 15m]
    #[arg(long, value_name = "DURATION|off")]
    pub drift_interval: Option<String>,
    /// Freeze cards that are in state but no longer declared
    #[arg(long)]
    pub prune: bool,
    /// The most cards --prune may freeze: a count, or a share of the cards in state [default:
    /// `max_prune` in cardform.toml, else 10%]
    #[arg(long, value_name = "N|P%")]
    pub max_prune: Option<String>,
    /// Stop starting orders in one reconcile once the fees charged would pass this amount
    #[arg(long, value_name = "AMOUNT")]
    pub max_fees: Option<String>,
    /// Apply a plan on its own only while what the state's runs were charged today (UTC, as
    /// `state history` shows it) plus the plan's estimate stays within this amount; a plan past
    /// it waits for `cardform approve` [default: no budget]
    #[arg(long, value_name = "AMOUNT")]
    pub max_fees_per_day: Option<String>,
    /// Stop starting new work once at least 20 orders finished and more than this share failed
    /// [default: `max_failure_rate` in cardform.toml, else 20%]
    #[arg(long, value_name = "P%")]
    pub max_failure_rate: Option<String>,
    /// Provider requests per second, shared by all calls [default: unlimited]
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Cards in flight at once [default: 128, or R when --rate R is higher]
    #[arg(long, value_name = "N")]
    pub parallelism: Option<usize>,
}
