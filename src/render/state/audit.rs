//! `cardform audit`: the provider calls that changed something, as a table, CSV or JSON.
//!
//! The three forms carry the same columns in the same order, so a CSV and a table of one audit
//! can be compared line by line; a column added to one must be added to all.

use rust_decimal::Decimal;
use serde::Serialize;
use std::fmt::Write as _;

use super::tables::table;
use super::{Style, amount, opt_money};
use crate::state::{CallRecord, money};

const AUDIT_COLUMNS: [&str; 8] = [
    "at",
    "endpoint",
    "idempotency_key",
    "order_id",
    "card_key",
    "result",
    "charge",
    // Last, so a CSV read by column position before it was added reads as it did.
    "address",
];

/// The card a call was about: the `card_key` column every audit format has had.
fn card_key(c: &CallRecord) -> Option<&str> {
    c.address.as_ref().and_then(|a| a.card_key())
}

fn audit_row(c: &CallRecord) -> Vec<String> {
    vec![
        c.at.clone(),
        c.endpoint.clone(),
        c.idempotency_key.clone().unwrap_or_default(),
        c.order_id.clone().unwrap_or_default(),
        card_key(c).unwrap_or_default().to_owned(),
        c.result.clone(),
        opt_money(c.charge).unwrap_or_default(),
        c.address
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ]
}

pub fn audit_csv(calls: &[CallRecord]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(AUDIT_COLUMNS);
    for c in calls {
        let _ = w.write_record(audit_row(c));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

pub fn audit_table(calls: &[CallRecord], style: Style, cur: &str) -> String {
    if calls.is_empty() {
        return "No provider calls that changed something were recorded.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            audit_row(c)
                .into_iter()
                .map(|s| if s.is_empty() { "-".into() } else { s })
                .collect()
        })
        .collect();
    let header: Vec<String> = AUDIT_COLUMNS
        .iter()
        .map(|c| c.replace('_', " ").to_uppercase())
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = table(&header, &rows, style);
    // A refund is a row of its own with a negative charge, so the column nets to what the
    // orders cost; the total says both halves.
    let is_refund = |c: &&CallRecord| c.result == money::REFUND_RESULT;
    let total: Decimal = calls.iter().filter_map(|c| c.charge).sum();
    let refunded: Decimal = -calls
        .iter()
        .filter(is_refund)
        .filter_map(|c| c.charge)
        .sum::<Decimal>();
    let n = calls.iter().filter(|c| !is_refund(c)).count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    if refunded.is_zero() {
        let _ = writeln!(
            out,
            "\n{n} call{}, {} charged.",
            plural(n),
            amount(total, cur)
        );
    } else {
        let refunds = calls.len() - n;
        let _ = writeln!(
            out,
            "\n{n} call{}, {} charged; {refunds} refund{}, {} given back: {} net.",
            plural(n),
            amount(total + refunded, cur),
            plural(refunds),
            amount(refunded, cur),
            amount(total, cur)
        );
    }
    out
}

pub fn audit_json(calls: &[CallRecord]) -> String {
    #[derive(Serialize)]
    struct Row<'a> {
        at: &'a str,
        endpoint: &'a str,
        idempotency_key: Option<&'a str>,
        order_id: Option<&'a str>,
        card_key: Option<&'a str>,
        result: &'a str,
        charge: Option<String>,
        address: Option<String>,
    }
    let rows: Vec<Row> = calls
        .iter()
        .map(|c| Row {
            at: &c.at,
            endpoint: &c.endpoint,
            idempotency_key: c.idempotency_key.as_deref(),
            order_id: c.order_id.as_deref(),
            card_key: card_key(c),
            result: &c.result,
            charge: opt_money(c.charge),
            address: c.address.as_ref().map(ToString::to_string),
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&rows).unwrap_or_default();
    s.push('\n');
    s
}
