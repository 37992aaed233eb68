//! The end-of-run summary of `apply`: counts, failures by slug with a hint each, and money
//! estimated against charged. Text only: printing it is the caller's.

use std::fmt::Write as _;

use super::super::plan::money;
use super::super::{Style, safe};
use crate::exec::Summary;

/// The end-of-run table: counts, failures by slug with a hint each, money estimated vs actual.
pub fn summary(s: &Summary, style: Style, currency: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{}", style.bold("Apply summary"));
    write_counts(&mut out, s, style);
    write_money(&mut out, s, currency);
    write_charge_warnings(&mut out, s, style, currency);
    if let Some(why) = &s.stopped {
        let _ = writeln!(out, "{} stopped early: {}", style.red("!"), safe(why));
    }
    if s.interrupted {
        let _ = writeln!(
            out,
            "{} interrupted: in-flight orders were tracked and saved; run the same apply again to finish.",
            style.yellow("!")
        );
    } else if s.failed > 0 {
        let _ = writeln!(
            out,
            "{} re-running apply is safe: it resumes open orders and never re-creates them.",
            style.yellow("!")
        );
    }
    out
}

/// How many changes of each kind were carried out, failed or skipped; the failures by slug, each
/// with its keys and a hint.
fn write_counts(out: &mut String, s: &Summary, style: Style) {
    let _ = writeln!(out, "  issued   {:>6}", s.issued);
    if s.taken_back > 0 {
        let _ = writeln!(
            out,
            "  taken back {:>4}  (cards that left state, given back by their issue order: none issued)",
            s.taken_back
        );
    }
    let _ = writeln!(out, "  changed  {:>6}", s.changed);
    let _ = writeln!(out, "  resumed  {:>6}", s.resumed);
    if s.topped_up > 0 {
        let _ = writeln!(out, "  topped up {:>5}", s.topped_up);
    }
    if s.people > 0 {
        let _ = writeln!(
            out,
            "  people   {:>6}  (users and cardholders created or adopted)",
            s.people
        );
    }
    let _ = writeln!(out, "  failed   {:>6}", s.failed);
    if s.waiting_for_kyc > 0 {
        let more = s.waiting_for_kyc.saturating_sub(s.waiting_keys.len());
        let more = if more > 0 {
            format!(", … {more} more")
        } else {
            String::new()
        };
        let mut keys = s.waiting_keys.clone();
        keys.sort();
        let _ = writeln!(
            out,
            "  waiting for KYC {:>3}: {}{more}\n      hint: {}",
            s.waiting_for_kyc,
            safe(&keys.join(", ")),
            crate::exec::slugs::hint(crate::exec::slugs::KYC_PENDING)
        );
    }
    if s.skipped > 0 {
        let _ = writeln!(out, "  skipped  {:>6}", s.skipped);
    }
    for (slug, g) in &s.failures {
        let more = if g.count > g.keys.len() {
            format!(", … {} more", g.count - g.keys.len())
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {} {} × {}: {}{more}\n      hint: {}",
            style.red("✗"),
            safe(slug),
            g.count,
            safe(&g.keys.join(", ")),
            g.hint
        );
    }
}

/// What the run was estimated to charge against what it charged, and what earlier runs' orders
/// finished here charged.
fn write_money(out: &mut String, s: &Summary, currency: &str) {
    let cur = safe(&currency.to_uppercase()).into_owned();
    let estimated = |amount: rust_decimal::Decimal, unknown: usize| {
        if unknown > 0 {
            // The currency belongs to the amount; the unknown part is a count of cards.
            format!(
                "{} {cur} + unknown fees for {unknown} card{}",
                money(amount),
                plural(unknown)
            )
        } else {
            format!("{} {cur}", money(amount))
        }
    };
    match &s.carried_out {
        // Part of the plan was left: what was charged is set against the estimate of what was
        // done, never the whole plan's.
        Some(done) => {
            let _ = writeln!(
                out,
                "Money: estimated {} for the {} change{} carried out, actually charged {} {cur}; \
                 {} change{} (estimated {}) left for the next run",
                estimated(done.estimated, done.estimated_unknown),
                done.changes,
                plural(done.changes),
                money(s.charged),
                s.left.changes,
                plural(s.left.changes),
                estimated(s.left.estimated, s.left.estimated_unknown),
            );
        }
        None => {
            let _ = writeln!(
                out,
                "Money: estimated {}, actually charged {} {cur}",
                estimated(s.estimated, s.estimated_unknown),
                money(s.charged)
            );
        }
    }
    if !s.charged_earlier.is_empty() {
        // Orders a killed or interrupted run sent: their money is that run's, not this one's.
        let earlier: Vec<String> = s
            .charged_earlier
            .iter()
            .map(|(serial, amount)| {
                format!("{} {cur} charged earlier by run {serial}", money(*amount))
            })
            .collect();
        let _ = writeln!(
            out,
            "       plus {} (orders it sent, finished here)",
            earlier.join(", ")
        );
    }
}

/// The orders charged other than the plan expected.
fn write_charge_warnings(out: &mut String, s: &Summary, style: Style, currency: &str) {
    if s.charge_warnings > 0 {
        let more = s.charge_warnings - s.charge_warning_orders.len();
        let _ = writeln!(
            out,
            "{} {} order{} charged other than the plan expected (recorded as charged):",
            style.yellow("!"),
            s.charge_warnings,
            plural(s.charge_warnings)
        );
        for w in &s.charge_warning_orders {
            let _ = writeln!(out, "    {}", charge_warning(w, currency));
        }
        if more > 0 {
            let _ = writeln!(out, "    … {more} more");
        }
    }
}

/// One order charged other than planned: which, what was expected, what it took.
pub(super) fn charge_warning(w: &crate::exec::ChargeWarning, currency: &str) -> String {
    let cur = currency.to_uppercase();
    format!(
        "{}: {} order {} charged {} {cur}, the plan expected {} {cur}{}",
        w.key,
        w.kind,
        w.order_id,
        money(w.charged),
        money(w.expected),
        if w.charged < rust_decimal::Decimal::ZERO {
            " (a credit: the balance went up)"
        } else {
            ""
        }
    )
}

/// "s" after a count that is not one.
fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
