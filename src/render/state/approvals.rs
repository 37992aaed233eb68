//! Plans that waited for approval (`cardform approve --list`, and the section `state history`
//! adds after its runs): one line each, newest first, and the JSON the HTTP API answers.
//!
//! Turns data into text and decides nothing. Approver names and reasons are shown through
//! `render::safe`: a name comes from whoever approved.

use super::tables::table;
use super::{Style, amount};
use crate::render::safe;
use crate::state::Approval;

/// What the plan does, as "+2 ~1 -3, fees 4.00 USD".
fn summary_text(a: &Approval) -> String {
    let s = &a.summary;
    format!(
        "+{} ~{} -{}, fees {}",
        s.create,
        s.update,
        s.destroy,
        amount(s.fees, &s.currency)
    )
}

/// Who approved it and when, and the run that applied it.
fn approved_text(a: &Approval) -> String {
    let mut text = match (&a.approved_by, &a.approved_at) {
        (Some(by), Some(at)) => format!("{} at {at}", safe(by)),
        (Some(by), None) => safe(by).into_owned(),
        _ => String::new(),
    };
    if let Some(serial) = a.applied_serial {
        text.push_str(&format!(", applied in serial {serial}"));
    }
    text
}

/// One line per approval, newest first; `None` when there are none.
pub fn approvals_human(approvals: &[Approval], style: Style) -> Option<String> {
    if approvals.is_empty() {
        return None;
    }
    let rows: Vec<Vec<String>> = approvals
        .iter()
        .rev()
        .map(|a| {
            vec![
                a.id.clone(),
                a.status.as_str().to_owned(),
                a.created.clone(),
                summary_text(a),
                safe(&a.reasons.join("; ")).into_owned(),
                approved_text(a),
            ]
        })
        .collect();
    Some(table(
        &[
            "ID",
            "STATUS",
            "CREATED",
            "PLAN",
            "WAITS BECAUSE",
            "APPROVED",
        ],
        &rows,
        style,
    ))
}

/// `{"approvals": [...]}`, newest first, as `GET /api/approvals` answers.
pub fn approvals_json(approvals: &[Approval]) -> String {
    let newest_first: Vec<&Approval> = approvals.iter().rev().collect();
    let mut s = serde_json::to_string_pretty(&serde_json::json!({ "approvals": newest_first }))
        .unwrap_or_default();
    s.push('\n');
    s
}
