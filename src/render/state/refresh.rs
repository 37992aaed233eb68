//! What `cardform refresh` found: one line per drift, and the report people read; and the
//! `~ drift` section of a plan made against the provider's view (`--refresh`, `--refresh-only`).
//!
//! Describes the [`RefreshReport`] it is given; what counts as drift is decided by
//! `exec::refresh`, never here.

use std::fmt::Write as _;

use super::{Style, amount};
use crate::exec::refresh::{Drift, RefreshReport};
use crate::plan::drift::{Refreshed, StateUpdate};
use crate::render::safe;
use crate::state::CardPhase;

/// "bob-ops: frozen outside cardform (was active)".
pub fn drift_line(d: &Drift, cur: &str) -> String {
    match d {
        Drift::Status {
            key,
            was,
            now: CardPhase::Closed,
            ..
        } => format!("{key}: closed at the provider (was {})", was.as_str()),
        Drift::Status { key, was, now, .. } => format!(
            "{key}: {} outside cardform (was {})",
            now.as_str(),
            was.as_str()
        ),
        Drift::OrderFinished {
            key,
            kind,
            order_id,
            phase,
            error_slug,
            charge,
        } => {
            let mut s = format!(
                "{key}: {} order {order_id} {}",
                kind.as_str(),
                phase.as_str()
            );
            if let Some(slug) = error_slug {
                let _ = write!(s, " ({slug})");
            }
            if let Some(c) = charge {
                let _ = write!(s, ", charged {}", amount(*c, cur));
            }
            s
        }
    }
}

/// What a refresh found, for people.
pub fn refresh_human(report: &RefreshReport, style: Style) -> String {
    let mut out = String::new();
    write_reach(&mut out, report, style);
    write_drift(&mut out, report, style);
    write_refunds_learned(&mut out, report);
    write_loose_ends(&mut out, report, style);
    out
}

/// What the provider was asked about, and how many cards it could not be read for.
fn write_reach(out: &mut String, report: &RefreshReport, style: Style) {
    let counts = format!(
        "{} card{} and {} open order{}",
        report.cards_checked,
        if report.cards_checked == 1 { "" } else { "s" },
        report.orders_checked,
        if report.orders_checked == 1 { "" } else { "s" },
    );
    // Asked, not refreshed, when some answers never came.
    let _ = if report.cards_unread == 0 {
        writeln!(out, "Refreshed {counts} from the provider.")
    } else {
        writeln!(out, "Asked the provider about {counts}.")
    };
    if report.cards_unread > 0 {
        // Unread cards may have drifted: "no drift" would claim what was never seen.
        let _ = writeln!(
            out,
            "{} could not be read ({}): state keeps what it last recorded for {}, unchecked.",
            style.red(&format!(
                "{} card{}",
                report.cards_unread,
                if report.cards_unread == 1 { "" } else { "s" }
            )),
            safe(&unread_slugs(report)),
            if report.cards_unread == 1 {
                "it"
            } else {
                "them"
            },
        );
    }
}

/// The drift found, a line each; "no drift" only when every card was read.
fn write_drift(out: &mut String, report: &RefreshReport, style: Style) {
    if report.drift.is_empty() && report.cards_unread == 0 {
        let _ = writeln!(
            out,
            "{} state matches the provider.",
            style.green("No drift:")
        );
    } else if !report.drift.is_empty() {
        let _ = writeln!(
            out,
            "{} ({}):",
            style.yellow("Drift found"),
            report.drift.len()
        );
        for d in &report.drift {
            let _ = writeln!(
                out,
                "  {}",
                safe(&drift_line(
                    d,
                    report.currency.as_deref().unwrap_or_default()
                ))
            );
        }
    }
}

/// Refunds of failed orders read for the first time, and what they gave back.
fn write_refunds_learned(out: &mut String, report: &RefreshReport) {
    if report.refunds_learned.is_empty() {
        return;
    }
    let n = report.refunds_learned.len();
    let back: rust_decimal::Decimal = report.refunds_learned.iter().map(|r| r.refunded).sum();
    let _ = writeln!(
        out,
        "Read the refunds of {n} failed order{} settled before refunds were recorded: {} given \
         back, and what {} cards cost corrected.",
        if n == 1 { "" } else { "s" },
        amount(back, report.currency.as_deref().unwrap_or_default()),
        if n == 1 { "its" } else { "their" },
    );
}

/// What is left to look at: each card that could not be read, and the orders never acknowledged.
fn write_loose_ends(out: &mut String, report: &RefreshReport, style: Style) {
    for u in &report.unread {
        let _ = writeln!(
            out,
            "{} {}",
            style.red("warning:"),
            // Key, card id, slug and message are state's and the provider's text.
            safe(&format!(
                "{}: could not read {} ({}): {}",
                u.key, u.id, u.slug, u.message
            ))
        );
    }
    if !report.unacknowledged.is_empty() {
        let _ = writeln!(
            out,
            "{} order{} never acknowledged by the provider ({}): `cardform apply` resumes {}.",
            report.unacknowledged.len(),
            if report.unacknowledged.len() == 1 {
                ""
            } else {
                "s"
            },
            safe(&report.unacknowledged.join(", ")),
            if report.unacknowledged.len() == 1 {
                "it"
            } else {
                "them"
            },
        );
    }
}

/// "card_not_found: 5, rate_limited: 1": why cards could not be read.
pub fn unread_slugs(report: &RefreshReport) -> String {
    report
        .cards_unread_by_slug
        .iter()
        .map(|(slug, n)| format!("{slug}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What one update a plan carries says: its drift, a refund learned, or (a card whose only news
/// is its balance or last four digits) what was read. Never the last four digits themselves.
pub fn update_lines(u: &StateUpdate, cur: &str) -> Vec<String> {
    let mut lines: Vec<String> = u.drift.iter().map(|d| drift_line(d, cur)).collect();
    if let Some(r) = &u.refund {
        lines.push(format!(
            "{}: failed order {} was refunded {} by the provider",
            r.key,
            r.order_id,
            amount(r.refunded, cur)
        ));
    }
    if lines.is_empty() {
        lines.push(match u.card.as_ref().and_then(|c| c.balance) {
            Some(b) => format!(
                "{}: balance {} as the provider reports it",
                u.key,
                amount(b, cur)
            ),
            None => format!("{}: details as the provider reports them", u.key),
        });
    }
    lines
}

/// The updates a plan lists: what bears on it (drift, a refund learned). A balance read is news
/// only to a refresh-only plan, whose changes are exactly its updates.
pub fn shown_updates(r: &Refreshed) -> Vec<&StateUpdate> {
    r.updates
        .iter()
        .filter(|u| r.refresh_only || !u.drift.is_empty() || u.refund.is_some())
        .collect()
}

/// The `~ drift` section of a plan made against the provider's view (`plan --refresh`,
/// `plan --refresh-only`), with Terraform's wording for what a refresh-only plan does.
pub fn refreshed_section(r: &Refreshed, style: Style, cur: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Read {} card{} and {} open order{} from the provider.",
        r.cards_checked,
        if r.cards_checked == 1 { "" } else { "s" },
        r.orders_checked,
        if r.orders_checked == 1 { "" } else { "s" },
    );
    if r.cards_unread > 0 {
        let _ = writeln!(
            out,
            "{} could not be read: state keeps what it last recorded for them, unchecked.",
            style.red(&format!(
                "{} card{}",
                r.cards_unread,
                if r.cards_unread == 1 { "" } else { "s" }
            )),
        );
    }
    let shown = shown_updates(r);
    if shown.is_empty() {
        if r.refresh_only && r.cards_unread == 0 {
            let _ = writeln!(
                out,
                "{} State matches the provider: nothing to record.",
                style.green("No changes.")
            );
        }
        out.push('\n');
        return out;
    }
    let _ = writeln!(
        out,
        "{} ({}): changed outside cardform since state last recorded it",
        style.bold(&format!("{} drift", style.yellow("~"))),
        shown.len()
    );
    for u in shown {
        for line in update_lines(u, cur) {
            let _ = writeln!(out, "  {} {}", style.yellow("~"), safe(&line));
        }
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "{}",
        if r.refresh_only {
            "This is a refresh-only plan: cardform will not undo these changes. Apply it to \
             record them in state; nothing is sent to the provider."
        } else {
            "The plan below is made against what the provider says. `plan` records nothing: \
             `cardform refresh`, or applying `plan --refresh-only`, records it (as does applying \
             this plan, saved)."
        }
    );
    out.push('\n');
    out
}

/// `Plan: 2 changes outside cardform to record in state.`: a refresh-only plan's summary.
pub fn refresh_only_summary(r: &Refreshed) -> String {
    match r.updates.len() {
        0 => "Plan: nothing to record; no changes.".into(),
        n => format!(
            "Plan: {n} change{} outside cardform to record in state; nothing to send.",
            if n == 1 { "" } else { "s" }
        ),
    }
}
