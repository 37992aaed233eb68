//! Plans as text: the human (Terraform-like) view, markdown for pull-request comments, and JSON.
//! Large plans stay readable: past [`GROUP_THRESHOLD`] actions of a kind, they are grouped by product
//! and only the first keys are listed.

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Style, safe};
use crate::model::ResourceKind;
use crate::plan::outline::{Outline, Section};
use crate::plan::{Action, ActionKind, EstimateSource, PlanDocument, Totals};

pub use crate::plan::outline::{GROUP_SAMPLE, GROUP_THRESHOLD};

/// Sections in the order a reader wants them: what is in flight first, then what costs money.
const ORDER: [ActionKind; 13] = [
    ActionKind::Resume,
    ActionKind::Move,
    ActionKind::CreateUser,
    ActionKind::CreateCardholder,
    ActionKind::Issue,
    ActionKind::Reissue,
    ActionKind::Replace,
    ActionKind::Topup,
    ActionKind::Freeze,
    ActionKind::Unfreeze,
    ActionKind::UpdateLabels,
    ActionKind::Prune,
    ActionKind::Undeclared,
];

pub fn money(d: Decimal) -> String {
    format!("{:.2}", d)
}

/// An amount with its currency (`5.00 USDT`); bare when the currency is not known.
pub fn amount(d: Decimal, currency: &str) -> String {
    if currency.is_empty() {
        money(d)
    } else {
        // The currency is the provider's word for it.
        format!("{} {}", money(d), safe(&currency.to_uppercase()))
    }
}

fn heading(kind: ActionKind) -> &'static str {
    match kind {
        ActionKind::Resume => "resume open orders",
        ActionKind::Issue => "issue",
        ActionKind::Reissue => "re-issue",
        ActionKind::Replace => "replace (issue a new card, then freeze the old one)",
        ActionKind::Freeze => "freeze",
        ActionKind::Unfreeze => "unfreeze",
        ActionKind::UpdateLabels => "update labels",
        ActionKind::Prune => "prune (freeze)",
        ActionKind::Undeclared => "undeclared (left untouched)",
        ActionKind::Move => "move (rename in state: no order, no fee)",
        ActionKind::Topup => "top up",
        ActionKind::CreateUser => "create user",
        ActionKind::CreateCardholder => "create cardholder (KYC runs at the provider)",
    }
}

fn paint_symbol(style: Style, kind: ActionKind) -> String {
    let s = format!("{:>3}", kind.symbol());
    match kind {
        ActionKind::Issue
        | ActionKind::Reissue
        | ActionKind::Topup
        | ActionKind::CreateUser
        | ActionKind::CreateCardholder => style.green(&s),
        ActionKind::Replace | ActionKind::Prune => style.red(&s),
        ActionKind::Resume | ActionKind::Move => style.cyan(&s),
        ActionKind::Undeclared => style.dim(&s),
        _ => style.yellow(&s),
    }
}

fn estimate_text(a: &Action, cur: &str) -> String {
    match a.estimate.source {
        EstimateSource::None => String::new(),
        EstimateSource::Unknown => "fee unknown".into(),
        EstimateSource::Pricing | EstimateSource::Observed => {
            let fee = amount(a.estimate.fee.unwrap_or_default(), cur);
            let observed = if a.estimate.source == EstimateSource::Observed {
                " (observed)"
            } else {
                ""
            };
            format!("fee {fee}{observed}")
        }
    }
}

fn detail(a: &Action, product_width: usize, cur: &str) -> String {
    let mut parts = Vec::new();
    if let Some(person) = &a.person() {
        parts.push(format!("({person})"));
    }
    if let Some(to) = &a.moved_to() {
        parts.push(format!("-> {to}"));
    }
    if let (Some(t), ActionKind::Topup) = (a.amount(), a.kind) {
        parts.push(format!("top-up {}", amount(t, cur)));
    }
    // A top-up's relabel says what its labels become (a card's shows in its attributes' diff).
    if a.resource == ResourceKind::Topup && a.kind == ActionKind::UpdateLabels {
        let labels: Vec<String> = a.labels().iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(match labels.is_empty() {
            true => "labels -".into(),
            false => format!("labels {}", labels.join(", ")),
        });
    }
    if let Some(after) = &a.after
        && a.kind.issues_card()
    {
        parts.push(format!("{:<product_width$}", after.product_code));
        parts.push(format!("user {}", after.external_user_id));
        if let Some(t) = after.initial_topup {
            parts.push(format!("top-up {}", amount(t, cur)));
        }
        if after.status == crate::decl::DesiredStatus::Frozen {
            parts.push("then frozen".into());
        }
    }
    // A card leaving the declarations is known by what it was: which product, whose.
    if let Some(before) = &a.before
        && matches!(a.kind, ActionKind::Undeclared | ActionKind::Prune)
    {
        parts.push(format!("{:<product_width$}", before.product_code));
        parts.push(format!("user {}", before.external_user_id));
    }
    let est = estimate_text(a, cur);
    if !est.is_empty() {
        parts.push(est);
    }
    // Product codes, user ids, labels, people: declarations' and state's text.
    safe(&parts.join("  ")).into_owned()
}

/// For a plan `--target` restricted: that it is partial and what it leaves out.
pub fn partial_notice(doc: &PlanDocument) -> Option<String> {
    let p = doc.plan.partial.as_ref()?;
    Some(format!(
        "partial plan (--target {}): {} change{} of the full plan {} left out; plan without \
         --target to see everything",
        p.targets.join(", --target "),
        p.left_out,
        if p.left_out == 1 { "" } else { "s" },
        if p.left_out == 1 { "is" } else { "are" },
    ))
}

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
                by_kind.entry(a.kind).or_default().push(a);
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
        out.push_str(&super::state::refreshed_section(r, style, &doc.currency));
    }
    let refresh_only = doc.refresh.as_ref().filter(|r| r.refresh_only);
    if let Some(r) = refresh_only {
        let _ = writeln!(out, "{}", super::state::refresh_only_summary(r));
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
        let Some(section) = outline.kinds.get(&kind) else {
            continue;
        };
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
        match listed.get(&kind) {
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
            None => grouped(&mut out, kind, section, style, &doc.currency),
        }
        out.push('\n');
    }

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

/// `Plan: 3 to issue, 1 to freeze; 2 undeclared; 12 unchanged.`
pub fn summary_line(t: &Totals) -> String {
    let verb = |k: ActionKind| match k {
        ActionKind::Issue => "to issue",
        ActionKind::Reissue => "to re-issue",
        ActionKind::Replace => "to replace",
        ActionKind::Resume => "to resume",
        ActionKind::Freeze => "to freeze",
        ActionKind::Unfreeze => "to unfreeze",
        ActionKind::UpdateLabels => "to relabel",
        ActionKind::Prune => "to prune",
        ActionKind::Undeclared => "undeclared",
        ActionKind::Move => "to move",
        ActionKind::Topup => "to top up",
        ActionKind::CreateUser => "user",
        ActionKind::CreateCardholder => "cardholder",
    };
    let changes: Vec<String> = ORDER
        .iter()
        .filter(|k| k.is_change())
        .filter_map(|k| {
            let n = t.counts.get(k)?;
            Some(match k {
                // People are counted as what they are: "2 users to create".
                ActionKind::CreateUser | ActionKind::CreateCardholder => format!(
                    "{n} {}{} to create",
                    verb(*k),
                    if *n == 1 { "" } else { "s" }
                ),
                _ => format!("{n} {}", verb(*k)),
            })
        })
        .collect();
    let mut s = String::from("Plan: ");
    if changes.is_empty() {
        s.push_str("no changes");
    } else {
        s.push_str(&changes.join(", "));
    }
    if let Some(n) = t.counts.get(&ActionKind::Undeclared) {
        s.push_str(&format!("; {n} undeclared"));
    }
    s.push_str(&format!("; {} unchanged.", t.unchanged));
    s
}

/// `Money: estimated charge 71.05 USDT = fees 21.05 + top-ups 50.00; balance 10000.00 → 9928.95`
pub fn money_line(t: &Totals, currency: &str) -> String {
    let at_least = if t.unknown_fees > 0 { "at least " } else { "" };
    let unknown = if t.unknown_fees > 0 {
        format!(
            " + unknown fees for {} card{}",
            t.unknown_fees,
            if t.unknown_fees == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    let cur = if currency.is_empty() {
        String::new()
    } else {
        format!(" {currency}")
    };
    let balance = match (t.balance_before, t.balance_after) {
        (Some(b), Some(a)) => {
            let le = if t.unknown_fees > 0 { "at most " } else { "" };
            format!(
                "; balance {} → {le}{}",
                amount(b, currency),
                amount(a, currency)
            )
        }
        _ => "; balance unknown".into(),
    };
    format!(
        "Money: estimated charge {at_least}{}{cur} = fees {}{unknown} + top-ups {}{balance}",
        money(t.charge),
        amount(t.fees, currency),
        amount(t.topups, currency)
    )
}

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
    let _ = writeln!(out, "### cardform plan\n");
    let status = if !plan.is_applicable() {
        "❌ **cannot be applied**"
    } else if doc.has_changes {
        "📝 **changes**"
    } else {
        "✅ **no changes**"
    };
    let summary = match doc.refresh.as_ref().filter(|r| r.refresh_only) {
        Some(r) => super::state::refresh_only_summary(r),
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
    let shown = doc
        .refresh
        .as_ref()
        .map(super::state::shown_updates)
        .unwrap_or_default();
    if !shown.is_empty() {
        let _ = writeln!(out, "**Changed outside cardform ({})**\n", shown.len());
        for line in shown
            .iter()
            .take(50)
            .flat_map(|u| super::state::update_lines(u, &doc.currency))
        {
            let _ = writeln!(out, "- `~` {}", md_escape(&line));
        }
        if shown.len() > 50 {
            let _ = writeln!(out, "- … and {} more (see the JSON plan)", shown.len() - 50);
        }
        out.push('\n');
    }
    let footer = format!(
        "\n<sub>state {} · declarations {}</sub>\n",
        md_escape(&doc.state.fingerprint),
        md_escape(&doc.declarations.fingerprint)
    );
    // Everything below is cut to the budget, keeping room for the footer and a closing note.
    let budget = MARKDOWN_BUDGET - footer.len() - 400;
    let messages = |title: &str, items: Vec<String>, out: &mut String| {
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
    };
    messages(
        "Problems",
        plan.problems.iter().map(|p| p.message()).collect(),
        &mut out,
    );
    messages(
        "Look twice",
        plan.warnings.iter().map(|w| w.message()).collect(),
        &mut out,
    );
    let changes: Vec<&Action> = plan.actions.iter().collect();
    if changes.len() > GROUP_THRESHOLD {
        totals_tables(&mut out, &changes, budget, &doc.currency);
    }
    if !changes.is_empty() {
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
        for a in &changes {
            if listed >= MARKDOWN_ROWS || out.len() > budget {
                break;
            }
            let charge = match a.estimate.source {
                EstimateSource::None => String::new(),
                EstimateSource::Unknown => "unknown".into(),
                _ => amount(a.estimate.total().unwrap_or_default(), &doc.currency),
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
                a.kind.symbol(),
                key,
                a.kind.as_str(),
                md_escape(&a.product_code),
                charge,
                md_escape(&truncate(&a.reason, 120))
            );
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
    out.push_str(&footer);
    out
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
        if let Some(attrs) = a.after.as_ref().or(a.before.as_ref()) {
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

/// `cardform products`: one line per product, what a declaration may name and what it costs.
pub fn products_table(facts: &crate::plan::ProviderFacts, style: Style) -> String {
    let opt = |d: Option<Decimal>| d.map(money).unwrap_or_else(|| "-".into());
    let mut rows = vec![[
        "PRODUCT".to_owned(),
        "CURRENCY".into(),
        "ISSUE FEE".into(),
        "TOP-UP FEE".into(),
        "TOP-UP LIMITS".into(),
        "ACTIVE".into(),
        "NAME".into(),
    ]];
    // Codes and names are the provider's text.
    for p in facts.products.values() {
        let topup_fee = match (p.topup_fee_percent, p.topup_fee_fixed) {
            (None, None) => "-".to_owned(),
            (pct, fixed) => format!(
                "{}% + {}",
                pct.unwrap_or_default().normalize(),
                money(fixed.unwrap_or_default())
            ),
        };
        rows.push([
            safe(&p.product_code).into_owned(),
            // Upper case, as every amount cardform prints names its currency.
            p.currency.to_uppercase(),
            opt(p.issue_fee),
            topup_fee,
            format!("{} .. {}", opt(p.min_topup), opt(p.max_topup)),
            if p.is_active { "yes" } else { "no" }.into(),
            safe(&p.name).into_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let line = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        let line = line.trim_end();
        let _ = writeln!(
            out,
            "{}",
            if n == 0 {
                style.bold(line)
            } else {
                line.to_owned()
            }
        );
    }
    let _ = writeln!(
        out,
        "\n{} products. Fees are charged in the master balance's currency ({}).",
        facts.products.len(),
        if facts.currency.is_empty() {
            "?".to_owned()
        } else {
            facts.currency.to_uppercase()
        }
    );
    out
}

pub fn products_json(facts: &crate::plan::ProviderFacts) -> String {
    let products: Vec<&crate::wire::Product> = facts.products.values().collect();
    let mut s = serde_json::to_string_pretty(&products).unwrap_or_default();
    s.push('\n');
    s
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
