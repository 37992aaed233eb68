//! The audit and surgery commands: `show`, `state list|history|diff|export|rm|audit`, `import`
//! and `refresh` (also run by `plan --refresh`).
//!
//! Wiring only: state answers, `exec::refresh` talks to the provider, `render::state` writes the
//! text. Every command that writes state (rm, import, refresh) holds the state lock and runs as
//! its own serial, so `state history` shows it. Read-only commands never create a state file.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::args::{
    AuditArgs, AuditFormat, DiffArgs, ExportArgs, ExportFormat, ImportArgs, ListArgs, RefreshArgs,
    RmArgs, ShowArgs, StateCommand,
};
use super::provider::Provider;
use super::settings::{Global, parse_duration};
use super::{CliError, Outcome};
use crate::decl::{DesiredStatus, Labels};
use crate::exec::refresh::{self, RefreshEvent, RefreshReport};
use crate::render::state as view;
use crate::state::{CardPhase, CardRecord, OrderKind, Store};
use crate::wire::{CardStatus, Clock, SystemClock, timestamp::now_rfc3339};

pub async fn state(command: &StateCommand, global: &Global) -> Result<Outcome, CliError> {
    match command {
        StateCommand::List(a) => list(a, global).await,
        StateCommand::History { json } => history(*json, global).await,
        StateCommand::Diff(a) => diff(a, global).await,
        StateCommand::Export(a) => export(a, global).await,
        StateCommand::Rm(a) => rm(a, global).await,
        StateCommand::Audit(a) => audit(a, global).await,
    }
}

fn print(text: &str) -> Result<Outcome, CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::io("stdout", e))?;
    Ok(Outcome::Success)
}

async fn existing(global: &Global) -> Result<Option<Store>, CliError> {
    Ok(Store::open_existing(&global.state).await?)
}

async fn required(global: &Global) -> Result<Store, CliError> {
    existing(global).await?.ok_or_else(|| {
        CliError::Other(format!(
            "no state at {}: nothing has been applied or imported yet (pass --state PATH to use another)",
            global.state.display()
        ))
    })
}

fn no_such_card(key: &str, global: &Global) -> CliError {
    CliError::Other(format!(
        "no card {key:?} in state {} (see `cardform show` for the keys it holds)",
        global.state.display()
    ))
}

// ------------------------------------------------------------------ show / list

pub async fn show(args: &ShowArgs, global: &Global) -> Result<Outcome, CliError> {
    let Some(store) = existing(global).await? else {
        return match &args.key {
            Some(key) => Err(no_such_card(key, global)),
            None if args.json => print("[]\n"),
            None => print(&view::cards_table([], global.style)),
        };
    };
    match &args.key {
        Some(key) => {
            let card = store
                .get_card(key)
                .await?
                .ok_or_else(|| no_such_card(key, global))?;
            let orders = store.orders_for_card(key).await?;
            print(&if args.json {
                view::card_detail_json(&card, &orders)
            } else {
                view::card_detail(&card, &orders, global.style)
            })
        }
        None => {
            let snapshot = store.snapshot().await?;
            print(&if args.json {
                view::cards_json(snapshot.cards.values())
            } else {
                view::cards_table(snapshot.cards.values(), global.style)
            })
        }
    }
}

fn parse_labels(flag: &str, raw: &[String]) -> Result<Labels, CliError> {
    raw.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(CliError::Usage(format!(
                "{flag} {kv:?}: expected NAME=VALUE, e.g. team=ops"
            ))),
        })
        .collect()
}

fn parse_phase(s: &str) -> Result<CardPhase, CliError> {
    [
        CardPhase::Active,
        CardPhase::Frozen,
        CardPhase::Pending,
        CardPhase::Failed,
        CardPhase::Closed,
    ]
    .into_iter()
    .find(|p| p.as_str() == s.trim())
    .ok_or_else(|| {
        CliError::Usage(format!(
            "--status {s:?}: expected one of active, frozen, pending, failed, closed"
        ))
    })
}

async fn list(args: &ListArgs, global: &Global) -> Result<Outcome, CliError> {
    let status = args.status.as_deref().map(parse_phase).transpose()?;
    let labels = parse_labels("--label", &args.label)?;
    let cards = match existing(global).await? {
        Some(store) => store.snapshot().await?.cards,
        None => BTreeMap::new(),
    };
    let chosen = cards.values().filter(|c| {
        status.is_none_or(|s| c.phase == s)
            && args.product.as_ref().is_none_or(|p| &c.product_code == p)
            && labels.iter().all(|(k, v)| c.labels.get(k) == Some(v))
    });
    print(&if args.json {
        view::cards_json(chosen)
    } else {
        view::cards_table(chosen, global.style)
    })
}

// ------------------------------------------------------------------ history / diff / export

async fn history(json: bool, global: &Global) -> Result<Outcome, CliError> {
    let runs = match existing(global).await? {
        Some(store) => store.history().await?,
        None => Vec::new(),
    };
    print(&if json {
        view::history_json(&runs)
    } else {
        view::history_human(&runs, global.style)
    })
}

async fn diff(args: &DiffArgs, global: &Global) -> Result<Outcome, CliError> {
    let store = required(global).await?;
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
    let before = store.cards_at(from).await?;
    let after = store.cards_at(to).await?;
    let d = view::StateDiff::new(from, to, &before, &after);
    print(&if args.json {
        view::diff_json(&d)
    } else {
        view::diff_human(&d, &before, &after, global.style)
    })
}

async fn export(args: &ExportArgs, global: &Global) -> Result<Outcome, CliError> {
    let store = required(global).await?;
    let lineage = store.lineage().await?;
    let latest = store.serial().await?;
    let serial = args.at.unwrap_or(latest);
    if serial > latest {
        return Err(CliError::Usage(format!(
            "--at {serial}: the latest serial is {latest}"
        )));
    }
    let cards = if serial == latest {
        store.snapshot().await?.cards
    } else {
        store.cards_at(serial).await?
    };
    print(&match args.format {
        ExportFormat::Yaml => view::export_yaml(&lineage, serial, &cards),
        ExportFormat::Json => view::export_json(&lineage, serial, &cards),
        ExportFormat::Csv => view::export_csv(&cards),
    })
}

async fn audit(args: &AuditArgs, global: &Global) -> Result<Outcome, CliError> {
    let calls = match existing(global).await? {
        Some(store) => store.calls(args.since.as_deref()).await?,
        None => Vec::new(),
    };
    print(&match args.format {
        AuditFormat::Csv => view::audit_csv(&calls),
        AuditFormat::Json => view::audit_json(&calls),
        AuditFormat::Table => view::audit_table(&calls, global.style),
    })
}

// ------------------------------------------------------------------ writers

/// Runs `work` holding the state lock, releasing it however `work` ends.
async fn with_lock<T>(
    store: &Store,
    wait: Duration,
    work: impl AsyncFnOnce() -> Result<T, CliError>,
) -> Result<T, CliError> {
    let lock = store.acquire_lock(super::who::lock_request(), wait).await?;
    let result = work().await;
    store.release_lock(&lock.lock_id).await?;
    result
}

async fn rm(args: &RmArgs, global: &Global) -> Result<Outcome, CliError> {
    let wait = parse_duration("--lock-timeout", &args.lock_timeout)?;
    let store = required(global).await?;
    let key = args.key.as_str();
    let text = with_lock(&store, wait, async || {
        let card = store
            .get_card(key)
            .await?
            .ok_or_else(|| no_such_card(key, global))?;
        let open: Vec<_> = store
            .orders_for_card(key)
            .await?
            .into_iter()
            .filter(|o| o.phase.is_open())
            .collect();
        if !open.is_empty() && !args.force {
            let which: Vec<String> = open
                .iter()
                .map(|o| {
                    format!(
                        "{} order {}",
                        o.kind.as_str(),
                        o.order_id.as_deref().unwrap_or("(not yet acknowledged)")
                    )
                })
                .collect();
            return Err(CliError::Other(format!(
                "refusing to forget {key}: its {} still open and would no longer be tracked; run `cardform apply` (or `cardform refresh`) until it finishes, or pass --force",
                if which.len() == 1 {
                    format!("{} is", which[0])
                } else {
                    format!("{} are", which.join(", "))
                }
            )));
        }
        let serial = store.begin_run(super::who::run_info()).await?;
        store.remove_card(serial, key).await?;
        store
            .finish_run(
                serial,
                &serde_json::json!({
                    "removed": [key],
                    "card_id": card.card_id,
                    "forced_open_orders": open.len(),
                }),
            )
            .await?;
        Ok(format!(
            "Removed {key} from state (serial {serial}). Card {} was not touched at the provider.\n",
            card.card_id.as_deref().unwrap_or("(none)")
        ))
    })
    .await?;
    print(&text)
}

/// An imported key must be declarable: the same rule as declarations.
fn check_key(key: &str) -> Result<(), CliError> {
    crate::model::check_key(key).map_err(|e| {
        CliError::Usage(format!(
            "invalid card key {key:?}: {e}; {}",
            crate::model::KeyError::RULE
        ))
    })
}

pub async fn import(args: &ImportArgs, global: &Global) -> Result<Outcome, CliError> {
    check_key(&args.key)?;
    let labels = parse_labels("--label", &args.label)?;
    let wait = parse_duration("--lock-timeout", &args.lock_timeout)?;
    let store = Store::open(&global.state).await?;
    let provider = Provider::connect(global, None).await?;
    let result = with_lock(&store, wait, async || {
        import_locked(args, labels, &store, &provider).await
    })
    .await;
    provider.shutdown().await;
    print(&result?)
}

async fn import_locked(
    args: &ImportArgs,
    labels: Labels,
    store: &Store,
    provider: &Provider,
) -> Result<String, CliError> {
    let key = args.key.as_str();
    let snapshot = store.snapshot().await?;
    if snapshot.cards.contains_key(key) {
        return Err(CliError::Other(format!(
            "{key} is already in state: pick another key, or `cardform state rm {key}` first"
        )));
    }
    if let Some(other) = snapshot
        .cards
        .values()
        .find(|c| c.card_id.as_deref() == Some(args.card_id.as_str()))
    {
        return Err(CliError::Other(format!(
            "card {} is already managed as {}",
            args.card_id, other.key
        )));
    }
    let seen = provider.client.get_card(&args.card_id).await?;
    // Keep what state may hold and let the Card (PAN, CVV) go at once.
    let status = seen.status.clone();
    let last4 = seen.last4();
    let user = seen.external_user_id.clone();
    let product = seen.product_code.clone();
    drop(seen);
    let (Some(user), Some(product)) = (user, product) else {
        return Err(CliError::Other(format!(
            "the provider's card {} has no external_user_id or product_code: cannot manage it",
            args.card_id
        )));
    };
    let phase = refresh::phase_of(&status.to_string()).unwrap_or(CardPhase::Active);
    // A key forgotten with `state rm` keeps its journal: start past its attempts so a later
    // re-issue never reuses one of its idempotency keys.
    let attempt = store
        .orders_for_card(key)
        .await?
        .iter()
        .filter(|o| o.kind == OrderKind::Issue)
        .map(|o| o.attempt)
        .max()
        .unwrap_or(1);
    let now = now_rfc3339(&SystemClock);
    let card = CardRecord {
        key: key.to_owned(),
        external_user_id: user,
        product_code: product,
        initial_topup: None,
        desired_status: if status == CardStatus::Frozen {
            DesiredStatus::Frozen
        } else {
            DesiredStatus::Active
        },
        labels,
        card_id: Some(args.card_id.clone()),
        phase,
        provider_status: Some(status.to_string()),
        last4,
        charged: rust_decimal::Decimal::ZERO,
        attempt,
        replaced_by: None,
        created_at: now.clone(),
        updated_at: now,
    };
    let serial = store.begin_run(super::who::run_info()).await?;
    store.put_card(serial, &card).await?;
    store
        .finish_run(
            serial,
            &serde_json::json!({"imported": [key], "card_id": args.card_id}),
        )
        .await?;
    Ok(format!(
        "Imported card {} as {key} ({}, {}, user {}; serial {serial}). Nothing was charged.\n",
        args.card_id,
        card.phase.as_str(),
        card.product_code,
        card.external_user_id
    ))
}

// ------------------------------------------------------------------ refresh

/// Refresh under the lock as its own serial; the report goes to history as the run summary.
pub async fn refresh_state(
    store: &Store,
    provider: &Provider,
    parallelism: usize,
    wait: Duration,
) -> Result<RefreshReport, CliError> {
    with_lock(store, wait, async || {
        let serial = store.begin_run(super::who::run_info()).await?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let bar = Arc::new(crate::render::progress::RefreshBar::new(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ));
        let drawer = bar.clone();
        let result = refresh::refresh(
            store,
            &provider.client,
            clock,
            serial,
            parallelism,
            Arc::new(move |e: RefreshEvent| drawer.handle(&e)),
        )
        .await;
        bar.finish();
        let report = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = store
                    .finish_run(serial, &serde_json::json!({"error": e.to_string()}))
                    .await;
                return Err(CliError::Other(e.to_string()));
            }
        };
        let summary = serde_json::json!({
            "cards_checked": report.cards_checked,
            "orders_checked": report.orders_checked,
            "drift": report.drift.iter().map(view::drift_line).collect::<Vec<_>>(),
            "unread": report.unread.len(),
            "charged": view::money(report.charged),
        });
        store.finish_run(serial, &summary).await?;
        Ok(report)
    })
    .await
}

pub async fn refresh(args: &RefreshArgs, global: &Global) -> Result<Outcome, CliError> {
    let wait = parse_duration("--lock-timeout", &args.lock_timeout)?;
    if let Some(rate) = args.rate.filter(|r| !r.is_finite() || *r <= 0.0) {
        return Err(CliError::Usage(format!(
            "--rate {rate}: expected requests per second > 0"
        )));
    }
    let Some(store) = existing(global).await? else {
        return print(&format!(
            "No state at {}: nothing to refresh.\n",
            global.state.display()
        ));
    };
    let provider = Provider::connect(global, args.rate).await?;
    let result = refresh_state(&store, &provider, args.parallelism, wait).await;
    provider.shutdown().await;
    let report = result?;
    print(&if args.json {
        let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
        s.push('\n');
        s
    } else {
        view::refresh_human(&report, global.style)
    })?;
    if report.unread.is_empty() {
        Ok(Outcome::Success)
    } else {
        // Some cards could not be read: state is partly stale, which a script must notice.
        Err(CliError::Reported)
    }
}
