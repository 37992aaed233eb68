//! What `cardform refresh` found: one line per drift, and the report people read.
//!
//! Describes the [`RefreshReport`] it is given; what counts as drift is decided by
//! `exec::refresh`, never here.

use std::fmt::Write as _;

use super::{Style, amount};
use crate::exec::refresh::{Drift, RefreshReport};
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
    let _ = writeln!(
        out,
        "Refreshed {} card{} and {} open order{} from the provider.",
        report.cards_checked,
        if report.cards_checked == 1 { "" } else { "s" },
        report.orders_checked,
        if report.orders_checked == 1 { "" } else { "s" },
    );
    if report.drift.is_empty() {
        let _ = writeln!(
            out,
            "{} state matches the provider.",
            style.green("No drift:")
        );
    } else {
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
                drift_line(d, report.currency.as_deref().unwrap_or_default())
            );
        }
    }
    for u in &report.unread {
        let _ = writeln!(
            out,
            "{} {}: could not read {} ({}): {}",
            style.red("warning:"),
            u.key,
            u.id,
            u.slug,
            u.message
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
            report.unacknowledged.join(", "),
            if report.unacknowledged.len() == 1 {
                "it"
            } else {
                "them"
            },
        );
    }
    out
}
