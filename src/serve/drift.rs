//! Noticing drift: every `--drift-interval`, the leader reads every card state manages back from
//! the provider (as `plan --refresh-only` does) and says what changed outside cardform, in its
//! log and in `counters.drifted_cards` (the metrics and the dashboard show it).
//!
//! Owns the look only. It writes nothing to state: recording drift is a reviewed step
//! (`cardform apply --refresh-only`, or `cardform refresh`), and a reconcile never acts on what a
//! look found. A look costs one provider read per card, so its interval is the user's to set.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::{Config, Shared, log};
use crate::exec::refresh::{Known, observe};

/// The most drifted card keys one log line names; the count is always whole.
const NAMED: usize = 20;

/// One look at the provider; what it found is counted and logged. A look that could not read
/// state leaves the last count as it was and logs why.
pub async fn look(shared: &Shared, config: &Config) {
    let known = match Known::read(&shared.store).await {
        Ok(known) => known,
        Err(e) => {
            log::warn("drift look failed", json!({"error": e.to_string()}));
            return;
        }
    };
    let observed = observe(
        &known,
        &shared.client,
        Arc::new(crate::wire::SystemClock),
        config.parallelism,
        Arc::new(|_| {}),
    )
    .await;
    let report = observed.report;
    let keys: BTreeSet<&str> = report.drift.iter().map(|d| d.key()).collect();
    shared
        .counters
        .drifted_cards
        .store(keys.len() as u64, Ordering::Relaxed);
    let fields = json!({
        "cards_checked": report.cards_checked,
        "drifted_cards": keys.len(),
        "keys": keys.iter().take(NAMED).map(|k| crate::render::safe(k)).collect::<Vec<_>>(),
        "cards_unread": report.cards_unread,
    });
    if keys.is_empty() {
        log::info("drift look: none", fields);
    } else {
        log::warn(
            "drift found: record it with `cardform apply --refresh-only` after review",
            fields,
        );
    }
}
