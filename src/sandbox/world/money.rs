//! Money: charging the master balance for an order, the two-decimal form balances are kept in,
//! and the amount rules (positive, at most two decimals, within the product's limits).
//!
//! Prices themselves come from `wire::assumed` and the catalog; nothing here may invent a fee.

use rust_decimal::Decimal;
use serde_json::Value;

use super::catalog::ProductDef;
use super::{ApiError, World, err};
use crate::wire::assumed::round_money;
use crate::wire::error::slug;

/// What a failed order gives back to the master balance. The reference assumes all of it
/// ([`crate::wire::assumed::FAILED_ISSUE_ORDER_REFUNDED`]); a provider may give back part, or
/// nothing (then the order carries no `refunded_amount`), and cardform must count each right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RefundPolicy {
    /// All of the charge (the default, as the reference assumes).
    #[default]
    Full,
    /// Half of the charge, rounded half-up to cents: a provider that keeps its costs.
    Partial,
    /// Nothing: the order keeps its charge and says no `refunded_amount`.
    None,
}

impl RefundPolicy {
    /// What an order that charged `charge` gives back when it fails.
    pub fn of(self, charge: Decimal) -> Decimal {
        match self {
            RefundPolicy::Full => charge,
            RefundPolicy::Partial => round_money(charge / Decimal::TWO),
            RefundPolicy::None => Decimal::ZERO,
        }
    }
}

impl super::Settings {
    /// What an order whose fee is `fee` really takes from the master balance: the fee, unless
    /// the hostile `charge_multiplier` says otherwise (the world's ledger records what this says,
    /// so it stays the truth to compare cardform's figures with).
    pub(super) fn charged(&self, fee: Decimal) -> Decimal {
        match self.charge_multiplier {
            Some(m) => money(fee * m),
            None => fee,
        }
    }
}

impl World {
    pub(super) fn charge(&mut self, charge: Decimal) -> Result<(), ApiError> {
        if charge > self.balance {
            return Err(err(
                slug::INSUFFICIENT_FUNDS,
                format!(
                    "the order costs {charge} but the master balance is {}",
                    self.balance
                ),
            ));
        }
        Ok(())
    }

    /// An operator's deposit: raises the master balance to `target` when it is below it (a
    /// sandbox asked for a larger balance than its saved world has left). Returns what was paid
    /// in (zero when the balance already reaches `target`). Counted in `total_deposited` only:
    /// it is neither a charge nor a refund.
    pub fn deposit_up_to(&mut self, target: Decimal) -> Decimal {
        let target = money(target);
        if target <= self.balance {
            return Decimal::new(0, 2);
        }
        let paid = target - self.balance;
        self.balance = target;
        self.total_deposited = money(self.total_deposited + paid);
        self.dirty = true;
        paid
    }
}

pub(super) fn money(v: Decimal) -> Decimal {
    let mut v = round_money(v);
    v.rescale(2);
    v
}

/// An amount that is a positive decimal with at most two decimals, within the product's limits.
pub(super) fn amount_within(raw: &Value, p: &ProductDef) -> Result<Decimal, ApiError> {
    let text = match raw {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let amount = text
        .parse::<Decimal>()
        .ok()
        .filter(|a| *a > Decimal::ZERO && a.normalize().scale() <= 2)
        .ok_or_else(|| {
            err(
                slug::INVALID_AMOUNT,
                format!("amount {raw} is not a positive decimal with at most 2 decimals"),
            )
        })?;
    if amount < p.min_topup {
        return Err(err(
            slug::AMOUNT_BELOW_MINIMUM,
            format!(
                "amount {amount} is below the minimum {} of {}",
                p.min_topup, p.code
            ),
        ));
    }
    if amount > p.max_topup {
        return Err(err(
            slug::AMOUNT_ABOVE_MAXIMUM,
            format!(
                "amount {amount} is above the maximum {} of {}",
                p.max_topup, p.code
            ),
        ));
    }
    Ok(amount)
}
