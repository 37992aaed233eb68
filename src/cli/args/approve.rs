//! The clap definition of `approve`: approve a plan `cardform serve` holds back, or list them.

use clap::Args;

#[derive(Debug, Args, Clone)]
pub struct ApproveArgs {
    /// The approval to approve, as `cardform approve --list` (or GET /api/approvals) shows it;
    /// without it, the list
    #[arg(value_name = "ID", conflicts_with = "list")]
    pub id: Option<String>,
    /// Who approves, as history records it [default: your user name]
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// List the plans that waited for approval, newest first (also: `cardform approvals`)
    #[arg(long)]
    pub list: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}
