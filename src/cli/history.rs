//! `cardform state history|diff|export|audit`: the record of what happened, for people and for
//! review. Read-only: never creates or changes a state.

use super::args::{AuditArgs, AuditFormat, DiffArgs, ExportArgs, ExportFormat, ExportKind};
use super::out::print;
use super::settings::Global;
use super::{CliError, Outcome, session};
use crate::render::state as view;
use crate::state::Store;

pub async fn history(json: bool, global: &Global) -> Result<Outcome, CliError> {
    let (runs, approvals, cur) =
        session::reading(global, async |store: Option<&Store>| match store {
            Some(store) => Ok((
                store.history().await?,
                store.approvals().await?,
                store.currency().await?,
            )),
            None => Ok((Vec::new(), Vec::new(), None)),
        })
        .await?;
    let cur = cur.as_deref().unwrap_or_default();
    print(&if json {
        view::history_json(&runs, &approvals)
    } else {
        view::history_with_approvals(&runs, &approvals, global.style, cur)
    })
}

pub async fn diff(args: &DiffArgs, global: &Global) -> Result<Outcome, CliError> {
    session::reading_required(global, async |store: &Store| {
        diff_in(args, global, store).await
    })
    .await
}

async fn diff_in(args: &DiffArgs, global: &Global, store: &Store) -> Result<Outcome, CliError> {
    let latest = store.serial().await?;
    let to = args.to.unwrap_or(latest);
    let from = args.from.unwrap_or(to.saturating_sub(1));
    for (name, s) in [("FROM", from), ("TO", to)] {
        if s > latest {
            return Err(CliError::Usage(format!(
                "{name} serial {s} does not exist yet: the latest serial is {latest} (see `cardform state history`)"
            )));
        }
    }
    let (before, before_resources) = (store.cards_at(from).await?, store.resources_at(from).await?);
    let (after, after_resources) = (store.cards_at(to).await?, store.resources_at(to).await?);
    let before = view::DiffSide {
        cards: &before,
        resources: &before_resources,
    };
    let after = view::DiffSide {
        cards: &after,
        resources: &after_resources,
    };
    let d = view::StateDiff::new(from, to, before, after);
    print(&if args.json {
        view::diff_json(&d)
    } else {
        view::diff_human(&d, before, after, global.style)
    })
}

pub async fn export(args: &ExportArgs, global: &Global) -> Result<Outcome, CliError> {
    session::reading_required(global, async |store: &Store| export_in(args, store).await).await
}

async fn export_in(args: &ExportArgs, store: &Store) -> Result<Outcome, CliError> {
    let lineage = store.lineage().await?;
    let latest = store.serial().await?;
    let serial = args.at.unwrap_or(latest);
    if serial > latest {
        return Err(CliError::Usage(format!(
            "--at {serial}: the latest serial is {latest}"
        )));
    }
    let (cards, resources) = if serial == latest {
        let snapshot = store.snapshot().await?;
        (snapshot.cards, snapshot.resources)
    } else {
        (
            store.cards_at(serial).await?,
            store.resources_at(serial).await?,
        )
    };
    let kinds = match args.kind {
        None => view::ExportKinds::All,
        Some(ExportKind::Card) => view::ExportKinds::Cards,
        Some(ExportKind::Topup) => view::ExportKinds::Topups,
        Some(ExportKind::Person) => view::ExportKinds::People,
    };
    print(&match (args.format, kinds) {
        (ExportFormat::Yaml, _) => view::export_yaml(&lineage, serial, &cards, &resources, kinds),
        (ExportFormat::Json, _) => view::export_json(&lineage, serial, &cards, &resources, kinds),
        (ExportFormat::Csv, view::ExportKinds::Topups) => view::export_topups_csv(&resources),
        (ExportFormat::Csv, view::ExportKinds::People) => view::export_people_csv(&resources),
        (ExportFormat::Csv, _) => view::export_csv(&cards),
    })
}

pub async fn audit(args: &AuditArgs, global: &Global) -> Result<Outcome, CliError> {
    let (calls, cur) = session::reading(global, async |store: Option<&Store>| match store {
        Some(store) => Ok((
            store.calls(args.since.as_deref()).await?,
            store.currency().await?,
        )),
        None => Ok((Vec::new(), None)),
    })
    .await?;
    let cur = cur.as_deref().unwrap_or_default();
    print(&match args.format {
        AuditFormat::Csv => view::audit_csv(&calls),
        AuditFormat::Json => view::audit_json(&calls),
        AuditFormat::Table => view::audit_table(&calls, global.style, cur),
    })
}
