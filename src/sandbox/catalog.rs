//! The sandbox's fixed card products: what it publishes on `cards/products` and what it really
//! charges. It must not hold any mutable state; the world decides what to do with a product.

use rust_decimal::Decimal;

use crate::wire::Product;

/// The subprovider of most sandbox products (and of their cardholders).
pub const SUBPROVIDER: &str = "sandbox";

/// A second subprovider (for `MC_EUR_PREMIUM`): a person with cards of both needs two
/// cardholders, one per subprovider.
pub const SUBPROVIDER_EU: &str = "sandbox-eu";

/// Every subprovider a cardholder may be created at.
pub fn is_subprovider(code: &str) -> bool {
    products().iter().any(|p| p.subprovider == code)
}

/// One product, with the fees the sandbox actually charges (published or not).
#[derive(Debug, Clone)]
pub struct ProductDef {
    pub code: &'static str,
    pub id: u64,
    pub name: &'static str,
    pub currency: &'static str,
    pub issue_fee: Decimal,
    pub topup_fee_percent: Decimal,
    pub topup_fee_fixed: Decimal,
    pub min_topup: Decimal,
    pub max_topup: Decimal,
    pub active: bool,
    /// `false` hides every fee field from `cards/products`, so clients meet an "unknown fee".
    pub publishes_fees: bool,
    /// Where its cardholders must be registered.
    pub subprovider: &'static str,
}

fn d(units: i64, scale: u32) -> Decimal {
    Decimal::new(units, scale)
}

/// The catalog, in the order `cards/products` lists it.
pub fn products() -> &'static [ProductDef] {
    static CATALOG: std::sync::OnceLock<Vec<ProductDef>> = std::sync::OnceLock::new();
    CATALOG.get_or_init(|| {
        vec![
            ProductDef {
                code: "VISA_USD_STD",
                id: 1,
                name: "Visa USD Standard",
                currency: "usd",
                issue_fee: d(500, 2),
                topup_fee_percent: d(15, 1),
                topup_fee_fixed: d(30, 2),
                min_topup: d(1000, 2),
                max_topup: d(500000, 2),
                active: true,
                publishes_fees: true,
                subprovider: SUBPROVIDER,
            },
            ProductDef {
                code: "MC_EUR_PREMIUM",
                id: 2,
                name: "Mastercard EUR Premium",
                currency: "eur",
                issue_fee: d(1500, 2),
                topup_fee_percent: d(200, 2),
                topup_fee_fixed: d(0, 2),
                min_topup: d(5000, 2),
                max_topup: d(1000000, 2),
                active: true,
                publishes_fees: true,
                subprovider: SUBPROVIDER_EU,
            },
            ProductDef {
                code: "VISA_USD_LEGACY",
                id: 3,
                name: "Visa USD Legacy (discontinued)",
                currency: "usd",
                issue_fee: d(300, 2),
                topup_fee_percent: d(100, 2),
                topup_fee_fixed: d(50, 2),
                min_topup: d(1000, 2),
                max_topup: d(100000, 2),
                active: false,
                publishes_fees: true,
                subprovider: SUBPROVIDER,
            },
            ProductDef {
                code: "VIRTUAL_NOFEES",
                id: 4,
                name: "Virtual card (fees on request)",
                currency: "usd",
                issue_fee: d(300, 2),
                topup_fee_percent: d(100, 2),
                topup_fee_fixed: d(0, 2),
                min_topup: d(100, 2),
                max_topup: d(100000, 2),
                active: true,
                publishes_fees: false,
                subprovider: SUBPROVIDER,
            },
        ]
    })
}

pub fn by_code(code: &str) -> Option<&'static ProductDef> {
    products().iter().find(|p| p.code == code)
}

pub fn by_id(id: u64) -> Option<&'static ProductDef> {
    products().iter().find(|p| p.id == id)
}

impl ProductDef {
    /// The product as `cards/products` publishes it.
    pub fn published(&self) -> Product {
        let fee = |v: Decimal| self.publishes_fees.then_some(v);
        Product {
            product_code: self.code.to_owned(),
            product_id: Some(serde_json::Value::from(self.id)),
            name: self.name.to_owned(),
            currency: self.currency.to_owned(),
            issue_fee: fee(self.issue_fee),
            topup_fee_percent: fee(self.topup_fee_percent),
            topup_fee_fixed: fee(self.topup_fee_fixed),
            min_topup: Some(self.min_topup),
            max_topup: Some(self.max_topup),
            is_active: self.active,
            subprovider_code: Some(self.subprovider.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofees_product_publishes_no_fee_but_charges_one() {
        let p = by_code("VIRTUAL_NOFEES").unwrap().published();
        assert_eq!(
            (p.issue_fee, p.topup_fee_percent, p.topup_fee_fixed),
            (None, None, None)
        );
        assert_eq!(p.issue_charge(None), None);
        let std = by_code("VISA_USD_STD").unwrap().published();
        assert_eq!(
            std.issue_charge(Some(Decimal::new(5000, 2))),
            Some(d(5605, 2))
        );
        assert!(!by_code("VISA_USD_LEGACY").unwrap().active);
        assert_eq!(by_id(2).unwrap().code, "MC_EUR_PREMIUM");
    }
}
