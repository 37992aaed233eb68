//! What an action will cost, and how we know: from the product's published pricing, else from
//! charges observed in state for that product, else unknown (never shown as zero).

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{Action, ActionKind, ProviderFacts};
use crate::state::{OrderPhase, Snapshot};
use crate::wire::assumed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EstimateSource {
    /// No money moves (status changes, labels, resuming an acknowledged order).
    None,
    /// The provider's published product pricing.
    Pricing,
    /// Real charges state recorded for earlier orders of this product.
    Observed,
    /// Nobody knows yet.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// Fees; `None` when unknown (or when there are none: see `source`). Read as `None` when
    /// left out (a plan file leaves out what its `action_defaults` say).
    #[serde(with = "crate::wire::decimal::option", default)]
    pub fee: Option<Decimal>,
    /// Money moved onto the card (the initial top-up amount itself).
    #[serde(with = "crate::wire::decimal")]
    pub topup: Decimal,
    pub source: EstimateSource,
}

impl Estimate {
    pub fn none() -> Self {
        Self {
            fee: None,
            topup: Decimal::ZERO,
            source: EstimateSource::None,
        }
    }

    /// fee + top-up, when the fee is known (or there is none).
    pub fn total(&self) -> Option<Decimal> {
        match self.source {
            EstimateSource::Unknown => None,
            _ => Some(self.fee.unwrap_or_default() + self.topup),
        }
    }
}

pub(super) fn for_action(action: &Action, state: &Snapshot, facts: &ProviderFacts) -> Estimate {
    match action.kind() {
        ActionKind::Issue | ActionKind::Reissue | ActionKind::Replace => {}
        ActionKind::Resume => return resume(action, state),
        ActionKind::Topup => return topup(action, facts),
        // Status changes and labels carry no fee [assumed: the reference documents none].
        _ => return Estimate::none(),
    }
    let Some(after) = action.after() else {
        return Estimate::none();
    };
    // A card taken back from an acknowledged issue order: that order was paid when it was sent.
    if action.kind() == ActionKind::Issue && state.takes_back(&action.key, action.attempt) {
        return Estimate::none();
    }
    let topup = cents(after.initial_topup.unwrap_or_default());
    let product = facts.products.get(after.product_code.as_str());
    if let Some(p) = product {
        let fee = match after.initial_topup {
            None => p.issue_fee.map(assumed::round_money),
            Some(a) => p
                .issue_fee
                .zip(assumed::topup_fee(
                    a,
                    p.topup_fee_percent,
                    p.topup_fee_fixed,
                ))
                .map(|(f, t)| assumed::round_money(f + t)),
        }
        .map(cents);
        if let Some(fee) = fee {
            return Estimate {
                fee: Some(fee),
                topup,
                source: EstimateSource::Pricing,
            };
        }
    }
    // Observed charges only tell the issue fee of a card without a top-up.
    if after.initial_topup.is_none()
        && let Some(fee) = state.observed_issue_fees.get(after.product_code.as_str())
    {
        return Estimate {
            fee: Some(cents(*fee)),
            topup,
            source: EstimateSource::Observed,
        };
    }
    Estimate {
        fee: None,
        topup,
        source: EstimateSource::Unknown,
    }
}

/// A top-up: its amount, and the product's top-up fee on it (no observed fallback: the fee
/// depends on the amount, and state holds no rule to learn it from).
fn topup(action: &Action, facts: &ProviderFacts) -> Estimate {
    let amount = action.amount().unwrap_or_default();
    let fee = facts
        .products
        .get(action.product_code.as_str())
        .and_then(|p| assumed::topup_fee(amount, p.topup_fee_percent, p.topup_fee_fixed))
        .map(|f| cents(assumed::round_money(f)));
    Estimate {
        fee,
        topup: cents(amount),
        source: if fee.is_some() {
            EstimateSource::Pricing
        } else {
            EstimateSource::Unknown
        },
    }
}

/// An acknowledged order has been paid already; one that was only journaled may still be created
/// (and charged) when it is re-sent, so it counts at its recorded estimate.
fn resume(action: &Action, state: &Snapshot) -> Estimate {
    let unsent: Vec<_> = state
        .open_orders_of(&action.address())
        .iter()
        .filter(|o| o.phase == OrderPhase::Prepared)
        .collect();
    if unsent.is_empty() {
        return Estimate::none();
    }
    match unsent
        .iter()
        .map(|o| o.estimated_charge)
        .sum::<Option<Decimal>>()
    {
        Some(c) => Estimate {
            fee: Some(c),
            topup: Decimal::ZERO,
            source: EstimateSource::Observed,
        },
        None => Estimate {
            fee: None,
            topup: Decimal::ZERO,
            source: EstimateSource::Unknown,
        },
    }
}

/// Money as it is shown and serialized: exactly two decimal places ("5.00", not "5").
fn cents(mut d: Decimal) -> Decimal {
    d.rescale(2);
    d
}
