//! `cardform products`: the provider's products as a table or JSON. Must not read plans.

use rust_decimal::Decimal;
use std::fmt::Write;

use super::money;
use crate::render::{Style, safe};

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
