//! `cardform state history`: one line per run, with the counts its summary recorded, the top-up
//! orders and the money the orders it sent were charged.
//!
//! Reads the summaries as loose JSON, because runs of every command (and of older builds) write
//! different fields; it must not fail on a field it does not know, only leave it out.

use rust_decimal::Decimal;

use super::tables::table;
use super::{Style, amount, money};
use crate::state::{Approval, RunRecord};

/// What a run's summary says, as "issued 3, failed 1".
fn summary_text(summary: &serde_json::Value) -> String {
    const COUNTS: [&str; 16] = [
        "issued",
        "taken_back",
        "changed",
        "resumed",
        "topped_up",
        "people",
        "waiting_for_kyc",
        "failed",
        "skipped",
        "removed",
        "imported",
        "drift",
        "cards_checked",
        "orders_checked",
        // The upgrade to schema 7, which recomputed what cards cost from their orders.
        "recomputed_charged",
        "refunds_learned",
    ];
    let mut counts = Vec::new();
    for name in COUNTS {
        match summary.get(name) {
            Some(serde_json::Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
                counts.push(format!("{} {n}", name.replace('_', " ")));
            }
            Some(serde_json::Value::Array(a)) if !a.is_empty() => {
                counts.push(format!("{name} {}", a.len()));
            }
            _ => {}
        }
    }
    // `state replace-provider`: the state moved to another provider.
    if let Some(to) = summary.get("provider_to").and_then(|p| p.as_str()) {
        let from = summary
            .get("provider_from")
            .and_then(|p| p.as_str())
            .unwrap_or("none recorded");
        counts.push(format!("provider {from} → {to}"));
    }
    // `state mv` records the move itself: one card, from one key to another.
    if let Some([from, to]) = summary
        .get("moved")
        .and_then(|m| m.as_array())
        .map(Vec::as_slice)
        && let (Some(from), Some(to)) = (from.as_str(), to.as_str())
    {
        counts.push(format!("moved {from} → {to}"));
    }
    // `serve` carried out a plan someone approved.
    if let Some(id) = summary.get("approval").and_then(|a| a.as_str()) {
        counts.push(format!("approval {id}"));
    }
    if let Some(e) = summary.get("error").and_then(|e| e.as_str()) {
        counts.push(format!("error: {e}"));
    }
    if summary.get("interrupted").and_then(|v| v.as_bool()) == Some(true) {
        counts.push("interrupted".into());
    }
    if counts.is_empty() {
        "no changes".to_owned()
    } else {
        counts.join(", ")
    }
}

/// The money a run spent: what the orders it sent were charged (from the journal, so a killed
/// run's money is its own and a resuming run does not claim it), beside its estimate.
fn money_text(run: &RunRecord, cur: &str) -> String {
    let estimated = run
        .summary
        .get("estimated")
        .and_then(|c| c.as_str())
        .and_then(|c| c.parse::<Decimal>().ok());
    // A run that could have charged (apply estimates) says so even when it charged nothing.
    match (run.charged, estimated) {
        (c, Some(e)) => format!(
            "charged {} (est. {})",
            amount(c.unwrap_or_default(), cur),
            money(e)
        ),
        (Some(c), None) => format!("charged {}", amount(c, cur)),
        (None, None) => String::new(),
    }
}

/// One line per serial: when, who, command, counts, money.
pub fn history_human(runs: &[RunRecord], style: Style, cur: &str) -> String {
    if runs.is_empty() {
        return "No runs recorded yet.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let mut counts = match r.finished_at {
                Some(_) => summary_text(&r.summary),
                None => "unfinished (killed or still running)".to_owned(),
            };
            // What the journal says it sent, when the summary does not say as much already (a
            // killed run, a failed or resumed top-up).
            let topped_up = r.summary.get("topped_up").and_then(|n| n.as_u64());
            if let Some(n) = r.topups_sent.filter(|n| Some(*n) != topped_up) {
                counts = match counts.as_str() {
                    "no changes" => format!("top-ups sent {n}"),
                    _ => format!("{counts}, top-ups sent {n}"),
                };
            }
            let money = money_text(r, cur);
            vec![
                r.serial.to_string(),
                r.at.clone(),
                format!("{}@{}", r.user, r.host),
                r.command.clone(),
                counts,
                money,
            ]
        })
        .collect();
    table(
        &["SERIAL", "WHEN", "WHO", "COMMAND", "COUNTS", "MONEY"],
        &rows,
        style,
    )
}

/// The runs, oldest first, then one `{"approval": {...}}` per plan that waited for approval
/// (`serve`), oldest first: none when no plan ever waited, so the runs-only shape of states
/// without approvals is unchanged.
pub fn history_json(runs: &[RunRecord], approvals: &[Approval]) -> String {
    let mut entries: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| serde_json::to_value(r).unwrap_or_default())
        .collect();
    entries.extend(
        approvals
            .iter()
            .map(|a| serde_json::json!({ "approval": a })),
    );
    let mut s = serde_json::to_string_pretty(&entries).unwrap_or_default();
    s.push('\n');
    s
}

/// [`history_human`], then the plans that waited for approval, when any did.
pub fn history_with_approvals(
    runs: &[RunRecord],
    approvals: &[Approval],
    style: Style,
    cur: &str,
) -> String {
    let mut text = history_human(runs, style, cur);
    if let Some(table) = super::approvals_human(approvals, style) {
        text.push_str("\nPlans that waited for approval (newest first):\n");
        text.push_str(&table);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provider_move_is_named() {
        let moved =
            serde_json::json!({"provider_from": "sandbox", "provider_to": "https://a.example"});
        assert_eq!(summary_text(&moved), "provider sandbox → https://a.example");
        let adopted = serde_json::json!({"provider_from": null, "provider_to": "sandbox"});
        assert_eq!(summary_text(&adopted), "provider none recorded → sandbox");
    }
}
