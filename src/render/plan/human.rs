//! The plan for a terminal (Terraform-like): changes by kind, large groups summarised by
//! product. Must not decide what is grouped: the outline does.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{
    GROUP_SAMPLE, GROUP_THRESHOLD, ORDER, amount, detail, heading, money_line, paint_symbol,
    partial_notice, summary_line,
};
use crate::plan::outline::{Outline, Section};
use crate::plan::{Action, ActionKind, PlanDocument};
use crate::render::{Style, safe};

/// The plan for a terminal. Large groups of one kind are summarised by product unless `detail`
/// asks for every change.
pub fn human(doc: &PlanDocument, style: Style, every_change: bool) -> String {
    // `--detail` lists straight from the plan: an outline of every action would copy them all.
    let mut outline = Outline::of(&doc.plan.actions, false);
    outline.finish();
    let listed = match every_change {
        true => {
            let mut by_kind: BTreeMap<ActionKind, Vec<&Action>> = BTreeMap::new();
            for a in &doc.plan.actions {
                by_kind.entry(a.kind()).or_default().push(a);
            }
            by_kind
        }
        false => listed(&outline),
    };
    view(doc, &outline, &listed, style, every_change)
}

/// The plan for a terminal from its outline: what a plan made a part at a time shows, the same
/// text [`human`] gives for the whole plan.
pub fn human_outlined(doc: &PlanDocument, outline: &Outline, style: Style) -> String {
    view(doc, outline, &listed(outline), style, false)
}

/// The actions each section of `outline` lists.
fn listed(outline: &Outline) -> BTreeMap<ActionKind, Vec<&Action>> {
    outline
        .kinds
        .iter()
        .filter(|(_, s)| s.count <= GROUP_THRESHOLD)
        .map(|(kind, s)| (*kind, s.listed.iter().collect()))
        .collect()
}

fn view(
    doc: &PlanDocument,
    outline: &Outline,
    listed: &BTreeMap<ActionKind, Vec<&Action>>,
    style: Style,
    every_change: bool,
) -> String {
    let mut out = String::new();
    let plan = &doc.plan;
    notices(&mut out, doc, style);
    let refresh_only = doc.refresh.as_ref().filter(|r| r.refresh_only);
    if let Some(r) = refresh_only {
        let _ = writeln!(out, "{}", crate::render::state::refresh_only_summary(r));
        return out;
    }
    if outline.is_empty() {
        let _ = writeln!(
            out,
            "{} Declarations and state match ({} card{} unchanged).",
            style.green("No changes."),
            plan.unchanged,
            if plan.unchanged == 1 { "" } else { "s" }
        );
    }
    for kind in ORDER {
        if let Some(section) = outline.kinds.get(&kind) {
            kind_section(&mut out, doc, kind, section, listed.get(&kind), style);
        }
    }
    problems_and_warnings(&mut out, doc, style);
    let _ = writeln!(out, "{}", summary_line(&plan.totals));
    let _ = writeln!(out, "{}", money_line(&plan.totals, &doc.currency));
    if !every_change && outline.len() > GROUP_THRESHOLD {
        let _ = writeln!(
            out,
            "{}",
            style.dim("(large groups are summarised: `cardform plan --detail` lists every change)")
        );
    }
    out
}

/// What comes before the changes: a partial plan's notice, another apply in progress, and what a
/// refresh found.
fn notices(out: &mut String, doc: &PlanDocument, style: Style) {
    if let Some(notice) = partial_notice(doc) {
        let _ = writeln!(out, "{} {}\n", style.yellow("!"), safe(&notice));
    }
    if let Some(p) = &doc.in_progress {
        let _ = writeln!(
            out,
            "{} another cardform is applying right now (`{}` by {} since {}): open orders below \
             are in progress under it, and are resumed only if it stops.\n",
            style.yellow("!"),
            safe(&p.command),
            safe(&p.by),
            safe(&p.since)
        );
    }
    if let Some(r) = &doc.refresh {
        out.push_str(&crate::render::state::refreshed_section(
            r,
            style,
            &doc.currency,
        ));
    }
}

/// One kind's changes: its heading with the count, then each change listed, or its groups.
fn kind_section(
    out: &mut String,
    doc: &PlanDocument,
    kind: ActionKind,
    section: &Section,
    listed: Option<&Vec<&Action>>,
    style: Style,
) {
    let plan = &doc.plan;
    let count = match kind {
        // How much of the fleet a prune stops, not just how many: 40 is a lot of 50.
        ActionKind::Prune => format!(
            "{}, {} of the {} cards in state",
            section.count,
            crate::plan::percent(section.count, plan.totals.in_state),
            plan.totals.in_state
        ),
        _ => section.count.to_string(),
    };
    let _ = writeln!(
        out,
        "{} ({count}):",
        style.bold(&format!("{} {}", kind.symbol(), heading(kind))),
    );
    match listed {
        Some(actions) => {
            let width = actions
                .iter()
                .map(|a| safe(&a.key).chars().count())
                .max()
                .unwrap_or(0);
            let product_width = actions
                .iter()
                .map(|a| a.product_code.len())
                .max()
                .unwrap_or(0);
            for a in actions {
                let d = detail(a, product_width, &doc.currency);
                let key = safe(&a.key);
                let line = format!("{} {key:<width$}  {d}", paint_symbol(style, kind));
                let _ = writeln!(out, "{}", line.trim_end());
                let _ = writeln!(out, "      {}", style.dim(&safe(&a.reason)));
            }
        }
        None => grouped(out, kind, section, style, &doc.currency),
    }
    out.push('\n');
}

/// The plan's problems (it cannot be applied) and its warnings.
fn problems_and_warnings(out: &mut String, doc: &PlanDocument, style: Style) {
    let plan = &doc.plan;
    if !plan.problems.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            style.red(&style.bold("Problems (the plan cannot be applied):"))
        );
        for p in &plan.problems {
            let _ = writeln!(out, "  {} {}", style.red("✗"), safe(&p.message()));
        }
        out.push('\n');
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "{}", style.bold("Look twice:"));
        for w in &plan.warnings {
            let _ = writeln!(out, "  ! {}", safe(&w.message()));
        }
        out.push('\n');
    }
}

fn grouped(out: &mut String, kind: ActionKind, section: &Section, style: Style, cur: &str) {
    for (product, group) in &section.groups {
        let product = if product.is_empty() { "-" } else { product };
        let product = safe(product);
        let mut money_part = String::new();
        if kind.issues_card() || kind == ActionKind::Topup {
            money_part = format!("  fees {}", amount(group.fees, cur));
            if group.unknown > 0 {
                money_part.push_str(&format!(
                    " + unknown for {} card{}",
                    group.unknown,
                    if group.unknown == 1 { "" } else { "s" }
                ));
            }
            if !group.topups.is_zero() {
                money_part.push_str(&format!(", top-ups {}", amount(group.topups, cur)));
            }
        }
        let what = match kind {
            ActionKind::CreateUser => "users".to_owned(),
            ActionKind::CreateCardholder => format!("cardholders at {product}"),
            _ => format!("cards of {product}"),
        };
        let _ = writeln!(
            out,
            "{} {} {what}{money_part}",
            paint_symbol(style, kind),
            group.count
        );
        let sample: Vec<&str> = group.sample.iter().map(|k| k.as_str()).collect();
        let more = group.count.saturating_sub(GROUP_SAMPLE);
        let tail = if more > 0 {
            format!(", … and {more} more")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "      {}",
            style.dim(&safe(&format!("{}{tail}", sample.join(", "))))
        );
    }
}
