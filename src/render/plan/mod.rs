//! Plans as text: the human (Terraform-like) view, markdown for pull-request comments, and JSON.
//! Large plans stay readable: past [`GROUP_THRESHOLD`] actions of a kind, they are grouped by product
//! and only the first keys are listed.

mod human;
mod markdown;
mod products;

use rust_decimal::Decimal;

use super::{Style, safe};
use crate::model::ResourceKind;
use crate::plan::{Action, ActionKind, EstimateSource, PlanDocument, Totals};

pub use crate::plan::outline::{GROUP_SAMPLE, GROUP_THRESHOLD};
pub use human::{human, human_outlined};
pub use markdown::{MARKDOWN_BUDGET, markdown};
pub use products::{products_json, products_table};

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
    if let (Some(t), ActionKind::Topup) = (a.amount(), a.kind()) {
        parts.push(format!("top-up {}", amount(t, cur)));
    }
    // A top-up's relabel says what its labels become (a card's shows in its attributes' diff).
    if a.resource() == ResourceKind::Topup && a.kind() == ActionKind::UpdateLabels {
        let labels: Vec<String> = a.labels().iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(match labels.is_empty() {
            true => "labels -".into(),
            false => format!("labels {}", labels.join(", ")),
        });
    }
    if let Some(after) = a.after()
        && a.kind().issues_card()
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
    if let Some(before) = a.before()
        && matches!(a.kind(), ActionKind::Undeclared | ActionKind::Prune)
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
