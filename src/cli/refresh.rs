//! `cardform refresh` (also run by `plan --refresh`): re-read every managed card and open order
//! and record drift, as its own serial under the lock.

use std::sync::Arc;

use super::args::RefreshArgs;
use super::out::print;
use super::provider::Provider;
use super::session::{self, Session};
use super::settings::{self, Global};
use super::{CliError, Outcome};
use crate::exec::refresh::{self, RefreshEvent, RefreshReport};
use crate::render::state as view;
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
    let wait = settings::lock_wait(&args.lock_timeout)?;
    let rate = global.rate(args.rate)?.map(|(r, _)| r);
    // As for apply: enough in flight to keep a `--rate R` provider busy.
    let parallelism = global.parallelism(args.parallelism, rate)?.0;
    let provider = Provider::connect(global, rate).await?;
    let interval = settings::parse_duration("--progress-interval", &args.progress_interval)?;
    let result = refresh_state(global, &provider, parallelism, wait, interval).await;
    provider.shutdown().await;
    let report = result?;
    print(&if args.json {
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
