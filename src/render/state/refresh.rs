//! What `cardform refresh` found: one line per drift, and the report people read.
//!
//! Describes the [`RefreshReport`] it is given; what counts as drift is decided by
//! `exec::refresh`, never here.

use std::fmt::Write as _;

use super::{Style, amount};
use crate::exec::refresh::{Drift, RefreshReport};
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
    if !report.refunds_learned.is_empty() {
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
    out
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
