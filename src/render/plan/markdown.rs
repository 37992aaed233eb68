//! The plan as a pull-request comment, kept under [`MARKDOWN_BUDGET`] characters. Must not
//! let declaration or state text break out of a table cell (see `md_escape`).

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt::Write;

use super::{GROUP_THRESHOLD, amount, money_line, partial_notice, summary_line};
use crate::plan::{Action, EstimateSource, PlanDocument};
use crate::render::safe;

/// The plan as a pull-request comment.
/// What a pull-request comment may hold: GitHub refuses comments over 65,536 characters, and the
/// plan must fit with room to spare whatever the fleet's size.
pub const MARKDOWN_BUDGET: usize = 55_000;

/// How many changes the markdown plan lists one by one before it says how many more there are.
const MARKDOWN_ROWS: usize = 200;

/// The plan for a pull-request comment: status, money, problems and warnings, totals by product
/// and label, then the changes up to a limit ("and N more", with where to see them all). Always
/// under [`MARKDOWN_BUDGET`] characters.
pub fn markdown(doc: &PlanDocument) -> String {
    let plan = &doc.plan;
    let mut out = String::new();
    head(&mut out, doc);
    outside_changes(&mut out, doc);
    let footer = format!(
        "\n<sub>state {} · declarations {}</sub>\n",
        md_escape(&doc.state.fingerprint),
        md_escape(&doc.declarations.fingerprint)
    );
    // Everything below is cut to the budget, keeping room for the footer and a closing note.
    let budget = MARKDOWN_BUDGET - footer.len() - 400;
    messages(
        &mut out,
        "Problems",
        plan.problems.iter().map(|p| p.message()).collect(),
        budget,
    );
    messages(
        &mut out,
        "Look twice",
        plan.warnings.iter().map(|w| w.message()).collect(),
        budget,
    );
    let changes: Vec<&Action> = plan.actions.iter().collect();
    if changes.len() > GROUP_THRESHOLD {
        totals_tables(&mut out, &changes, budget, &doc.currency);
    }
    if !changes.is_empty() {
        changes_table(&mut out, &changes, budget, &doc.currency);
    }
    out.push_str(&footer);
    out
}

/// The title, the status with its summary, the partial and in-progress notices, and the money.
fn head(out: &mut String, doc: &PlanDocument) {
    let plan = &doc.plan;
    let _ = writeln!(out, "### cardform plan\n");
    let status = if !plan.is_applicable() {
        "❌ **cannot be applied**"
    } else if doc.has_changes {
        "📝 **changes**"
    } else {
        "✅ **no changes**"
    };
    let summary = match doc.refresh.as_ref().filter(|r| r.refresh_only) {
        Some(r) => crate::render::state::refresh_only_summary(r),
        None => summary_line(&plan.totals),
    };
    let _ = writeln!(out, "{status} · {summary}\n");
    if let Some(notice) = partial_notice(doc) {
        let _ = writeln!(out, "🎯 {}\n", md_escape(&notice));
    }
    if let Some(p) = &doc.in_progress {
        let _ = writeln!(
            out,
            "⏳ another cardform is applying right now (`{}` by {} since {}): its open orders are \
             in progress, not waiting to be resumed.\n",
            md_escape(&p.command),
            md_escape(&p.by),
            md_escape(&p.since)
        );
    }
    let _ = writeln!(out, "{}\n", money_line(&plan.totals, &doc.currency));
}

/// What a refresh found changed at the provider outside cardform, the first 50 listed.
fn outside_changes(out: &mut String, doc: &PlanDocument) {
    let shown = doc
        .refresh
        .as_ref()
        .map(crate::render::state::shown_updates)
        .unwrap_or_default();
    if shown.is_empty() {
        return;
    }
    let _ = writeln!(out, "**Changed outside cardform ({})**\n", shown.len());
    for line in shown
        .iter()
        .take(50)
        .flat_map(|u| crate::render::state::update_lines(u, &doc.currency))
    {
        let _ = writeln!(out, "- `~` {}", md_escape(&line));
    }
    if shown.len() > 50 {
        let _ = writeln!(out, "- … and {} more (see the JSON plan)", shown.len() - 50);
    }
    out.push('\n');
}

/// A titled list of `items`, the first 50 and within a third of `budget`.
fn messages(out: &mut String, title: &str, items: Vec<String>, budget: usize) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "**{title}**\n");
    let total = items.len();
    for (i, m) in items.into_iter().enumerate() {
        if i >= 50 || out.len() > budget / 3 {
            let _ = writeln!(out, "- … and {} more (see the JSON plan)", total - i);
            break;
        }
        let _ = writeln!(out, "- {}", md_escape(&m));
    }
    out.push('\n');
}

/// The changes, one row each up to [`MARKDOWN_ROWS`] or `budget`, then how many more there are;
/// folded away in a large plan.
fn changes_table(out: &mut String, changes: &[&Action], budget: usize, cur: &str) {
    let collapsed = changes.len() > GROUP_THRESHOLD;
    if collapsed {
        let _ = writeln!(
            out,
            "<details><summary>{} actions</summary>\n",
            changes.len()
        );
    }
    let _ = writeln!(
        out,
        "| | key | action | product | estimated charge | reason |"
    );
    let _ = writeln!(out, "|---|---|---|---|---:|---|");
    let mut listed = 0;
    for a in changes {
        if listed >= MARKDOWN_ROWS || out.len() > budget {
            break;
        }
        change_row(out, a, cur);
        listed += 1;
    }
    if listed < changes.len() {
        let _ = writeln!(
            out,
            "\n… and {} more changes, not listed here: every change is in the JSON plan \
             (`cardform plan --out plan.json`) and on a terminal with `cardform plan --detail`.",
            changes.len() - listed
        );
    }
    if collapsed {
        let _ = writeln!(out, "\n</details>");
    }
}

/// One change as a table row.
fn change_row(out: &mut String, a: &Action, cur: &str) {
    let charge = match a.estimate.source {
        EstimateSource::None => String::new(),
        EstimateSource::Unknown => "unknown".into(),
        _ => amount(a.estimate.total().unwrap_or_default(), cur),
    };
    let key = match (&a.moved_to(), &a.person()) {
        (Some(to), _) => format!("`{}` → `{}`", md_escape(&a.key), md_escape(to)),
        // A person shows as their id with initials and country, never a field.
        (None, Some(person)) => format!("`{}` ({})", md_escape(&a.key), md_escape(person)),
        (None, None) => format!("`{}`", md_escape(&a.key)),
    };
    let _ = writeln!(
        out,
        "| `{}` | {} | {} | {} | {} | {} |",
        a.kind().symbol(),
        key,
        a.kind().as_str(),
        md_escape(&a.product_code),
        charge,
        md_escape(&truncate(&a.reason, 120))
    );
}

/// Totals by product, and by each label's values, of a large plan's changes: what a reviewer
/// reads instead of thousands of rows.
fn totals_tables(out: &mut String, changes: &[&Action], budget: usize, cur: &str) {
    let mut by_product: BTreeMap<&str, (usize, Decimal, Decimal)> = BTreeMap::new();
    let mut by_label: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for a in changes {
        let e = by_product.entry(a.product_code.as_str()).or_default();
        e.0 += 1;
        e.1 += a.estimate.fee.unwrap_or_default();
        e.2 += a.estimate.topup;
        if let Some(attrs) = a.after().or(a.before()) {
            for (k, v) in attrs.labels.iter() {
                *by_label.entry((k.as_str(), v.as_str())).or_default() += 1;
            }
        }
    }
    let _ = writeln!(out, "**By product**\n");
    let _ = writeln!(out, "| product | changes | fees | top-ups |");
    let _ = writeln!(out, "|---|---:|---:|---:|");
    for (product, (n, fees, topups)) in &by_product {
        let product = if product.is_empty() { "-" } else { product };
        let _ = writeln!(
            out,
            "| {} | {n} | {} | {} |",
            md_escape(product),
            amount(*fees, cur),
            amount(*topups, cur)
        );
    }
    out.push('\n');
    if by_label.is_empty() {
        return;
    }
    let _ = writeln!(out, "**By label**\n");
    let _ = writeln!(out, "| label | changes |");
    let _ = writeln!(out, "|---|---:|");
    let total = by_label.len();
    for (i, ((k, v), n)) in by_label.into_iter().enumerate() {
        if i >= 30 || out.len() > budget / 2 {
            let _ = writeln!(out, "| … and {} more label values | |", total - i);
            break;
        }
        let _ = writeln!(out, "| `{}={}` | {n} |", md_escape(k), md_escape(v));
    }
    out.push('\n');
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// Text for a markdown table cell or list item: control characters escaped (a PR comment is
/// also read in terminals and CI logs), and `|` so it cannot end a cell.
fn md_escape(s: &str) -> String {
    safe(s).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_escape_control_characters_and_pipes() {
        assert_eq!(md_escape("a|b"), "a\\|b");
        assert_eq!(md_escape("\x1b[2Jx\x07|y"), "\\u{1b}[2Jx\\u{7}\\|y");
    }
}
