//! Text renderings of what state holds: card tables and details, run history, the canonical
//! export (YAML, JSON, CSV), diffs between serials (unified via `similar`, or structured JSON),
//! the audit of provider calls and the drift a refresh found.
//!
//! Turns data into text and decides nothing. The canonical form is built from
//! [`CardRecord`](crate::state::CardRecord)s, which cannot hold a PAN or CVV, so no rendering here
//! can print one. Output is deterministic: maps are sorted, money always has two decimals, nothing
//! depends on the clock.
//!
//! Each rendering lives in the submodule of its command (`export`, `diff`, `tables`, `history`,
//! `audit`, `refresh`); this file re-exports them, so callers name `render::state::<fn>` and never
//! the submodule, and holds the money format they all share.

mod approvals;
mod audit;
mod diff;
mod export;
mod history;
mod refresh;
mod tables;

use rust_decimal::{Decimal, RoundingStrategy};

use super::Style;

pub use approvals::{approvals_human, approvals_json};
pub use audit::{audit_csv, audit_json, audit_table};
pub use diff::{
    ChangedCard, ChangedPerson, ChangedTopup, DiffSide, PeopleDiff, StateDiff, TopupsDiff,
    diff_human, diff_json,
};
pub use export::{
    CanonicalCard, CanonicalPerson, CanonicalTopup, ExportKinds, canonical_people,
    canonical_topups, card_text, export_csv, export_json, export_people_csv, export_topups_csv,
    export_yaml, person_text, topup_text,
};
pub use history::{history_human, history_json, history_with_approvals};
pub use refresh::{
    drift_line, refresh_human, refresh_only_summary, refreshed_section, shown_updates, update_lines,
};
pub use tables::{
    OrderView, card_detail, card_detail_json, cards_json, cards_table, people_table, topups_json,
    topups_table,
};

/// Money as export writes it: exactly two decimals, rounded half away from zero.
pub fn money(d: Decimal) -> String {
    let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r.to_string()
}

fn opt_money(d: Option<Decimal>) -> Option<String> {
    d.map(money)
}

/// An amount for people: with the state's currency when a run has recorded it (`5.00 USDT`).
fn amount(d: Decimal, currency: &str) -> String {
    if currency.is_empty() {
        money(d)
    } else {
        // The currency is the provider's word for it.
        format!(
            "{} {}",
            money(d),
            crate::render::safe(&currency.to_uppercase())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decl::DesiredStatus;
    use crate::state::{CardPhase, CardRecord};

    /// One active card with a label, shared by the submodules' tests.
    pub(super) fn card(key: &str) -> CardRecord {
        CardRecord {
            key: key.into(),
            external_user_id: "u-1".into(),
            product_code: "VISA_USD_STD".into(),
            initial_topup: Some(Decimal::new(5, 0)),
            desired_status: DesiredStatus::Active,
            labels: crate::decl::Labels::from([("team".into(), "ops".into())]),
            card_id: Some("card_1".into()),
            phase: CardPhase::Active,
            provider_status: Some("active".into()),
            last4: Some("4242".into()),
            charged: Decimal::new(1005, 1),
            attempt: 1,
            replaced_by: None,
            balance: None,
            created_at: "2025-01-01T00:00:00Z".into(),
            updated_at: "2025-01-02T00:00:00Z".into(),
        }
    }

    #[test]
    fn money_has_two_decimals() {
        assert_eq!(money(Decimal::new(5, 0)), "5.00");
        assert_eq!(money(Decimal::new(1005, 1)), "100.50");
        assert_eq!(money(Decimal::new(12345, 3)), "12.35");
        assert_eq!(money(Decimal::ZERO), "0.00");
    }
}
