//! `cardform approve ID [--by NAME]` and `cardform approve --list`: the plans `cardform serve`
//! holds back because they are outside its policy (see `serve::policy`). Approving records who
//! approved and when; the next reconcile applies the plan if it plans the same changes again,
//! and supersedes the approval if not.
//!
//! Takes no state lock (the leading `serve` holds it) and sends nothing to the provider: it
//! writes one approval row. Listing is read-only.

use super::args::ApproveArgs;
use super::out::print;
use super::settings::Global;
use super::{CliError, Outcome, session};
use crate::render::state as view;
use crate::state::Store;

pub async fn run(args: &ApproveArgs, global: &Global) -> Result<Outcome, CliError> {
    match &args.id {
        Some(id) if !args.list => approve(id, args, global).await,
        _ => list(args.json, global).await,
    }
}

async fn list(json: bool, global: &Global) -> Result<Outcome, CliError> {
    let approvals = session::reading(global, async |store: Option<&Store>| match store {
        Some(store) => Ok(store.approvals().await?),
        None => Ok(Vec::new()),
    })
    .await?;
    if json {
        return print(&view::approvals_json(&approvals));
    }
    match view::approvals_human(&approvals, global.style) {
        Some(table) => print(&table),
        None => print("No plan has waited for approval.\n"),
    }
}

async fn approve(id: &str, args: &ApproveArgs, global: &Global) -> Result<Outcome, CliError> {
    let by = match &args.by {
        Some(by) => crate::serve::approvals::check_name(by)
            .map_err(|e| CliError::Usage(format!("--by: {e}")))?,
        None => super::who::run_info().user,
    };
    let store = session::open(global).await?;
    let approved = store.approve(id, &by).await;
    store.close().await;
    let approval = approved?;
    if args.json {
        let mut text = serde_json::to_string_pretty(&approval).unwrap_or_default();
        text.push('\n');
        return print(&text);
    }
    let s = &approval.summary;
    print(&format!(
        "Approved plan {} (+{} ~{} -{}) as {}: the next reconcile of `cardform serve` applies it \
         if it still plans the same changes (else it is superseded and a new plan waits).\n",
        approval.id,
        s.create,
        s.update,
        s.destroy,
        crate::render::safe(&by)
    ))
}
