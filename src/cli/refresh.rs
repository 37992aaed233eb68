//! `cardform refresh`: re-read every managed card and open order and record drift, as its own
//! serial under the lock. Also the look `plan --refresh` and `--refresh-only` take (which writes
//! nothing), and `apply` of a refresh-only plan (which records exactly what the plan found).
//! Wiring only: settings, the progress bar, the summary a run records and the output; what a
//! plan carries of a look and recording a saved one are `exec::refresh_plan`'s.

use std::sync::Arc;

use super::args::RefreshArgs;
use super::out::print;
use super::provider::Provider;
use super::session::{self, Session};
use super::settings::{self, Global};
use super::{CliError, Outcome};
use crate::exec::refresh::{self, Observed, RefreshEvent, RefreshReport};
use crate::exec::refresh_plan;
/// What a plan carries of a look (see `exec::refresh_plan::carried`).
pub use crate::exec::refresh_plan::carried as refreshed;
use crate::plan::drift::Refreshed;
use crate::render::state as view;
use crate::state::Snapshot;
use crate::wire::{Clock, SystemClock};

/// How often a refresh without a terminal prints a progress line, unless told otherwise.
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

pub async fn refresh_state(
    global: &Global,
    provider: &Provider,
    parallelism: usize,
    wait: std::time::Duration,
    progress_interval: std::time::Duration,
) -> Result<RefreshReport, CliError> {
    session::write_for(global, wait, &provider.id, async |s: &Session| {
        s.run(async |serial| {
            refresh_run(
                s,
                provider,
                parallelism,
                serial,
                global.err_style,
                progress_interval,
            )
            .await
        })
        .await
    })
    .await
}

async fn refresh_run(
    s: &Session,
    provider: &Provider,
    parallelism: usize,
    serial: u64,
    style: crate::render::Style,
    progress_interval: std::time::Duration,
) -> Result<(RefreshReport, serde_json::Value), CliError> {
    let store = s.store();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let bar = Arc::new(crate::render::progress::RefreshBar::new(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        style,
        progress_interval,
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
    let report = result?;
    let summary = serde_json::json!({
        "cards_checked": report.cards_checked,
        "orders_checked": report.orders_checked,
        "drift": report
            .drift
            .iter()
            .map(|d| view::drift_line(d, report.currency.as_deref().unwrap_or_default()))
            .collect::<Vec<_>>(),
        "unread": report.unread.len(),
        "cards_unread": report.cards_unread,
        "charged": view::money(report.charged),
        "refunds_learned": report.refunds_learned.len(),
    });
    Ok((report, summary))
}

pub async fn refresh(args: &RefreshArgs, global: &Global) -> Result<Outcome, CliError> {
    let wait = settings::lock_wait(&args.lock.lock_timeout)?;
    let rate = global.rate(args.rate)?.map(|(r, _)| r);
    // As for apply: enough in flight to keep a `--rate R` provider busy.
    let parallelism = global.parallelism(args.parallelism, rate)?.0;
    let provider = Provider::connect(global, rate).await?;
    let interval = settings::parse_duration("--progress-interval", &args.progress_interval)?;
    let result = refresh_state(global, &provider, parallelism, wait, interval).await;
    provider.shutdown().await;
    let report = result?;
    print(&if args.out.json {
        let mut s = serde_json::to_string_pretty(&report).unwrap_or_default();
        s.push('\n');
        s
    } else {
        global.with_flags(&view::refresh_human(&report, global.style))
    })?;
    if report.unread.is_empty() {
        Ok(Outcome::Success)
    } else {
        // Some cards could not be read: state is partly stale, which a script must notice.
        Err(CliError::Reported)
    }
}

/// Reads the provider for what `known` manages and says what changed, writing nothing: what
/// `plan --refresh` plans against and `--refresh-only` plans to record.
pub async fn look(global: &Global, provider: &Provider, known: &refresh::Known) -> Observed {
    let bar = Arc::new(crate::render::progress::RefreshBar::new(
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
        global.err_style,
        PROGRESS_INTERVAL,
    ));
    let drawer = bar.clone();
    let observed = refresh::observe(
        known,
        &provider.client,
        Arc::new(SystemClock),
        crate::exec::DEFAULT_PARALLELISM,
        Arc::new(move |e: RefreshEvent| drawer.handle(&e)),
    )
    .await;
    bar.finish();
    // Warnings go to stderr: a machine-readable plan owns stdout.
    for u in &observed.report.unread {
        eprintln!(
            "{} {}",
            global.err_style.red("warning:"),
            crate::render::safe(&format!(
                "{}: could not read {} ({}): {}",
                u.key, u.id, u.slug, u.message
            ))
        );
    }
    observed
}

/// Records what a plan's look found under `serial`, as `refresh` would have recorded it then
/// (the plan was checked to be made at this very serial): the run's summary for `state history`.
pub async fn record(
    store: &crate::state::Store,
    serial: u64,
    refreshed: &Refreshed,
    currency: &str,
) -> Result<serde_json::Value, CliError> {
    refresh::record(store, serial, &refreshed.updates).await?;
    Ok(recorded_summary(refreshed, currency))
}

/// A recorded look as the run's summary says it.
fn recorded_summary(refreshed: &Refreshed, currency: &str) -> serde_json::Value {
    serde_json::json!({
        "refresh_only": refreshed.refresh_only,
        "drift": refreshed.drift().map(|d| view::drift_line(d, currency)).collect::<Vec<_>>(),
        "state_updates": refreshed.updates.len(),
        "refunds_learned": refreshed.updates.iter().filter(|u| u.refund.is_some()).count(),
    })
}

/// Before `apply` of a saved plan made with `--refresh` carries out its changes: what its look
/// found, recorded in the same run (see `exec::refresh_plan::record_saved`), and the state as it
/// is then. The drift lines for the run's summary, when there were any.
pub async fn record_saved(
    store: &crate::state::Store,
    serial: u64,
    doc: &crate::plan::PlanDocument,
    snapshot: Snapshot,
) -> Result<(Snapshot, Option<serde_json::Value>), CliError> {
    let (snapshot, recorded) = refresh_plan::record_saved(store, serial, doc, snapshot).await?;
    let drift = recorded.map(|r| recorded_summary(r, &doc.currency)["drift"].clone());
    Ok((snapshot, drift))
}

/// `apply` of a refresh-only plan (saved, or made just now under the lock): its updates in one
/// run, nothing sent.
pub async fn apply_refreshed(
    s: &Session,
    doc: &crate::plan::PlanDocument,
    json: bool,
    global: &Global,
) -> Result<Outcome, CliError> {
    let Some(refreshed) = &doc.refresh else {
        return Ok(Outcome::Success);
    };
    let serial = s
        .run(async |serial| {
            let summary = record(s.store(), serial, refreshed, &doc.currency).await?;
            Ok((serial, summary))
        })
        .await?;
    let n = refreshed.updates.len();
    let text = format!(
        "Recorded {n} change{} outside cardform in state (serial {serial}); nothing was sent to \
         the provider.\n",
        if n == 1 { "" } else { "s" }
    );
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "refresh_only_applied", "state_updates": n, "serial": serial})
        );
    } else {
        print(&global.with_flags(&text))?;
    }
    Ok(Outcome::Success)
}

/// `apply --refresh-only`: look under the lock, show what changed, ask (as apply does), record.
pub async fn apply_refresh_only(
    args: &super::args::ApplyArgs,
    global: &Global,
) -> Result<Outcome, CliError> {
    let wait = settings::lock_wait(&args.lock_timeout)?;
    let rate = global.rate(args.rate)?.map(|(r, _)| r);
    let provider = Provider::connect(global, rate).await?;
    let result = session::write_for(global, wait, &provider.id, async |s: &Session| {
        let known = refresh::Known::read(s.store()).await?;
        let observed = look(global, &provider, &known).await;
        let currency = known.currency.clone().unwrap_or_default();
        let doc = super::plan::refresh_only_document(&known.snapshot, observed, &currency, None);
        if !args.json {
            print(&global.with_flags(&crate::render::plan::human(&doc, global.style, false)))?;
        }
        if !doc.has_changes {
            return Ok(Outcome::Success);
        }
        if !args.auto_approve {
            match super::apply::confirmed("Do you want to record these changes in state?")? {
                Some(true) => {}
                Some(false) => {
                    println!("Apply cancelled: nothing was recorded.");
                    return Ok(Outcome::Success);
                }
                None => {
                    return Err(CliError::Usage(
                        "apply --refresh-only needs approval, but standard input is not a \
                         terminal: pass --auto-approve, or save the plan (cardform plan \
                         --refresh-only --out PLANFILE; cardform apply PLANFILE)"
                            .into(),
                    ));
                }
            }
        }
        apply_refreshed(s, &doc, args.json, global).await
    })
    .await;
    provider.shutdown().await;
    result
}
