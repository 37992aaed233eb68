//! Cards: the card record, the endpoints that issue, top up, freeze and unfreeze one (each by
//! placing an order), the card as `cards/get` shows it, the operator's close, and the PAN's Luhn
//! digit.
//!
//! The PAN and CVV are born here and leave only inside a [`Card`] reply, which the HTTP layer
//! encrypts; nothing here may log or otherwise expose them.

use rand::Rng;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::catalog::{self, ProductDef};
use super::money::amount_within;
use super::orders::{Failure, Kind, OrderRec};
use super::users::user_id;
use super::{ApiError, Settings, World, err, text};
use crate::wire::assumed;
use crate::wire::error::slug;
use crate::wire::{Card, CardStatus, Sensitive};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CardRec {
    pub(super) card_id: String,
    external_user_id: String,
    product_code: String,
    currency: String,
    pub(super) balance: Decimal,
    pub(super) status: CardStatus,
    pub(super) status_before_freeze: Option<CardStatus>,
    pan: String,
    cvv: String,
    expiry_month: u32,
    expiry_year: i32,
    pub(super) issue_completed: bool,
    /// A freeze/unfreeze order in flight; a second one is refused until it completes.
    pub(super) pending_change: Option<String>,
}

impl World {
    pub(super) fn new_card(&mut self, o: &OrderRec) -> CardRec {
        let mut digits: Vec<u8> = vec![4, 0, 0, 0, 0, 0];
        digits.extend((0..9).map(|_| self.rng.random_range(0..10u8)));
        digits.push(luhn_check_digit(&digits));
        let pan: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        let cvv = format!("{:03}", self.rng.random_range(0..1000u32));
        let year = jiff::Timestamp::from_microsecond(o.created as i64)
            .map(|t| jiff::tz::TimeZone::UTC.to_datetime(t).year() as i32)
            .unwrap_or(2025);
        let currency = catalog::by_code(&o.product_code)
            .map(|p| p.currency)
            .unwrap_or("usd");
        CardRec {
            card_id: o.card_id.clone(),
            external_user_id: o.external_user_id.clone(),
            product_code: o.product_code.clone(),
            currency: currency.to_owned(),
            balance: Decimal::new(0, 2),
            status: CardStatus::PendingActivation,
            status_before_freeze: None,
            pan,
            cvv,
            expiry_month: self.rng.random_range(1..=12),
            expiry_year: year + 3,
            issue_completed: false,
            pending_change: None,
        }
    }

    pub(super) fn card(&self, id: &str) -> Result<&CardRec, ApiError> {
        self.cards
            .get(id)
            .ok_or_else(|| err(slug::CARD_NOT_FOUND, format!("no card {id}")))
    }

    pub(super) fn create_card(
        &mut self,
        s: &Settings,
        now: u64,
        f: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let uid = user_id(f)?;
        let product = find_product(f)?;
        if !product.active {
            return Err(err(
                slug::PRODUCT_NOT_ACTIVE,
                format!("product {} is not active", product.code),
            ));
        }
        // Nothing is charged on these refusals, and they bind no idempotency key.
        self.cardholder_gate(s, now, &uid, product.subprovider)?;
        let topup = match f.get(assumed::INITIAL_TOPUP_FIELD) {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) if t.trim().is_empty() => None,
            Some(v) => Some(amount_within(v, product)?),
        };
        let charge = assumed::issue_charge(
            Some(product.issue_fee),
            topup,
            Some(product.topup_fee_percent),
            Some(product.topup_fee_fixed),
        )
        .ok_or_else(|| err(slug::INVALID_PRICING, "the product has no pricing"))?;
        let charge = s.charged(charge);
        self.charge(charge)?;
        let fail = if s.fail_products.contains(product.code) {
            Some(Failure {
                slug: slug::PROVIDER_ERROR.to_owned(),
                message: "sandbox: the product is misconfigured at the card network \
                          (--fail-product)"
                    .to_owned(),
                refund: Some(s.refund.of(charge)),
            })
        } else {
            (s.fail_rate > 0.0 && self.rng.random::<f64>() < s.fail_rate).then(|| Failure {
                slug: slug::PROVIDER_ERROR.to_owned(),
                message: "sandbox: the card network declined to create the card (--fail-rate)"
                    .to_owned(),
                refund: Some(s.refund.of(charge)),
            })
        };
        let card_id = self.new_id("card");
        self.first_card.get_or_insert_with(|| card_id.clone());
        let o = self.new_order(
            s,
            now,
            Kind::Issue,
            card_id,
            uid,
            product,
            topup,
            charge,
            fail,
        );
        self.order_response(s, o, now)
    }

    pub(super) fn topup(
        &mut self,
        s: &Settings,
        now: u64,
        f: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let id = card_id(f)?;
        let raw = f
            .get("amount")
            .ok_or_else(|| err(slug::INVALID_AMOUNT, "amount is required"))?;
        let card = self.card(&id)?;
        let product = catalog::by_code(&card.product_code)
            .ok_or_else(|| err(slug::INVALID_PRICING, "the card's product has no pricing"))?;
        let amount = amount_within(raw, product)?;
        if !matches!(
            card.status,
            CardStatus::Active | CardStatus::WaitForTopupActivationByUser
        ) {
            return Err(err(
                slug::CARD_NOT_ACTIVE,
                format!("card {id} is {}", card.status),
            ));
        }
        if let Some(cur) = text(f, "currency")
            && !cur.eq_ignore_ascii_case(&card.currency)
        {
            return Err(err(
                slug::CURRENCY_MISMATCH,
                format!("card {id} is in {}, not {cur}", card.currency),
            ));
        }
        let uid = card.external_user_id.clone();
        let charge = assumed::topup_charge(
            amount,
            Some(product.topup_fee_percent),
            Some(product.topup_fee_fixed),
        )
        .ok_or_else(|| err(slug::INVALID_PRICING, "the product has no pricing"))?;
        let charge = s.charged(charge);
        self.charge(charge)?;
        let fail = if s.fail_topup_products.contains(product.code) {
            Some(Failure {
                slug: slug::PROVIDER_ERROR.to_owned(),
                message: "sandbox: the card network declines top-ups of this product \
                          (--fail-topup-product)"
                    .to_owned(),
                refund: Some(s.refund.of(charge)),
            })
        } else {
            (s.fail_rate > 0.0 && self.rng.random::<f64>() < s.fail_rate).then(|| Failure {
                slug: slug::PROVIDER_ERROR.to_owned(),
                message: "sandbox: the card network declined the top-up (--fail-rate)".to_owned(),
                refund: Some(s.refund.of(charge)),
            })
        };
        let o = self.new_order(
            s,
            now,
            Kind::Topup,
            id,
            uid,
            product,
            Some(amount),
            charge,
            fail,
        );
        self.order_response(s, o, now)
    }

    pub(super) fn change_status(
        &mut self,
        s: &Settings,
        now: u64,
        f: &Map<String, Value>,
        kind: Kind,
    ) -> Result<Value, ApiError> {
        let id = card_id(f)?;
        let uid = user_id(f)?;
        let card = self.card(&id)?;
        if card.external_user_id != uid {
            return Err(err(
                slug::CARDHOLDER_NOT_FOUND,
                format!("card {id} does not belong to external_user_id {uid}"),
            ));
        }
        if !card.issue_completed {
            return Err(err(
                slug::CARD_ISSUE_NOT_COMPLETED,
                format!("the issue order of card {id} has not completed"),
            ));
        }
        let allowed = card.pending_change.is_none()
            && match kind {
                Kind::Freeze => !matches!(card.status, CardStatus::Frozen | CardStatus::Closed),
                _ => card.status == CardStatus::Frozen,
            };
        if !allowed {
            let what = if card.pending_change.is_some() {
                "has a status change in progress".to_owned()
            } else {
                format!("is {}", card.status)
            };
            let verb = if kind == Kind::Freeze {
                "frozen"
            } else {
                "unfrozen"
            };
            return Err(err(
                slug::INVALID_CARD_STATUS,
                format!("card {id} {what} and cannot be {verb}"),
            ));
        }
        let product = catalog::by_code(&card.product_code)
            .ok_or_else(|| err(slug::PROVIDER_ERROR, "the card's product is gone"))?;
        let zero = Decimal::new(0, 2);
        let o = self.new_order(s, now, kind, id.clone(), uid, product, None, zero, None);
        if let Some(c) = self.cards.get_mut(&id) {
            c.pending_change = Some(o.clone());
        }
        self.order_response(s, o, now)
    }

    /// Close a card as the provider would on its own (fraud, expiry, a support request): the one
    /// thing no API call can do, so tests can reach cardform's closed-card handling. Closing is
    /// final and closing a closed card again is a no-op. `false` if the card is unknown.
    pub fn close_card(&mut self, now: u64, card_id: &str) -> bool {
        // Cards whose issue order is already due must exist before they can be looked up.
        self.advance(now);
        let Some(c) = self.cards.get_mut(card_id) else {
            return false;
        };
        if c.status != CardStatus::Closed {
            c.status = CardStatus::Closed;
            c.status_before_freeze = None;
            self.dirty = true;
        }
        true
    }
}

/// A card id present and shaped like one (`[A-Za-z0-9_-]{1,64}`); unknown ones are a separate slug.
pub(super) fn card_id(f: &Map<String, Value>) -> Result<String, ApiError> {
    match f.get("card_id") {
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 64
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
        {
            Ok(s.clone())
        }
        None | Some(Value::Null) => Err(err(slug::INVALID_CARD_ID, "card_id is required")),
        Some(other) => Err(err(
            slug::INVALID_CARD_ID,
            format!("card_id {other} is not a card id"),
        )),
    }
}

fn find_product(f: &Map<String, Value>) -> Result<&'static ProductDef, ApiError> {
    if let Some(code) = text(f, "product_code") {
        return catalog::by_code(&code)
            .ok_or_else(|| err(slug::PRODUCT_NOT_FOUND, format!("no product {code}")));
    }
    let Some(raw) = f.get("product_id").filter(|v| !v.is_null()) else {
        return Err(err(
            slug::PRODUCT_NOT_FOUND,
            "product_code (or product_id) is required",
        ));
    };
    let found = match raw {
        Value::Number(n) => n.as_u64().and_then(catalog::by_id),
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .ok()
            .and_then(catalog::by_id)
            .or_else(|| catalog::by_code(s.trim())),
        _ => None,
    };
    found.ok_or_else(|| err(slug::PRODUCT_NOT_FOUND, format!("no product {raw}")))
}

pub(super) fn card_view(c: &CardRec) -> Card {
    Card {
        card_id: c.card_id.clone(),
        status: c.status.clone(),
        external_user_id: Some(c.external_user_id.clone()),
        product_code: Some(c.product_code.clone()),
        currency: Some(c.currency.clone()),
        balance: Some(c.balance),
        expiry_month: Some(json!(c.expiry_month)),
        expiry_year: Some(json!(c.expiry_year)),
        card_number: Some(Sensitive::new(c.pan.clone())),
        cvv: Some(Sensitive::new(c.cvv.clone())),
    }
}

/// The digit that makes `payload` + digit pass the Luhn check.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    let sum: u32 = payload
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Whether a digit string passes the Luhn check.
pub fn luhn_valid(number: &str) -> bool {
    let digits: Option<Vec<u8>> = number
        .chars()
        .map(|c| c.to_digit(10).map(|d| d as u8))
        .collect();
    match digits {
        Some(d) if d.len() >= 2 => {
            let (payload, check) = d.split_at(d.len() - 1);
            luhn_check_digit(payload) == check[0]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("4000000000000002"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("41x1"));
    }
}
