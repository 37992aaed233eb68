//! Typed requests and responses for every endpoint of REFERENCE.md §3.
//!
//! Requests serialize to the fields that go at the root of the decrypted JSON (the envelope code
//! adds `request_timestamp`). Responses are lenient: unknown fields are ignored, unknown enum values
//! are kept as `Unknown(..)` rather than failing, optional fields may be absent.

use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Sensitive;

/// Every endpoint cardform knows, with its path under `/api/v1/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Products,
    Balance,
    UsersCreate,
    CardholdersCreate,
    CardsCreate,
    OrdersCheck,
    CardsGet,
    CardsTopup,
    CardsFreeze,
    CardsUnfreeze,
    /// Webhook subscriptions (REFERENCE.md §6; request and answer shapes in `wire::webhook`).
    WhSubscribe,
    WhUnsubscribe,
    WhSubscriptions,
}

impl Endpoint {
    pub const ALL: [Endpoint; 13] = [
        Endpoint::Products,
        Endpoint::Balance,
        Endpoint::UsersCreate,
        Endpoint::CardholdersCreate,
        Endpoint::CardsCreate,
        Endpoint::OrdersCheck,
        Endpoint::CardsGet,
        Endpoint::CardsTopup,
        Endpoint::CardsFreeze,
        Endpoint::CardsUnfreeze,
        Endpoint::WhSubscribe,
        Endpoint::WhUnsubscribe,
        Endpoint::WhSubscriptions,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Products => "cards/products",
            Endpoint::Balance => "project/balance",
            Endpoint::UsersCreate => "users/create",
            Endpoint::CardholdersCreate => "cardholders/create",
            Endpoint::CardsCreate => "cards/create",
            Endpoint::OrdersCheck => "orders/check",
            Endpoint::CardsGet => "cards/get",
            Endpoint::CardsTopup => "cards/topup",
            Endpoint::CardsFreeze => "cards/freeze",
            Endpoint::CardsUnfreeze => "cards/unfreeze",
            Endpoint::WhSubscribe => "wh/subscribe",
            Endpoint::WhUnsubscribe => "wh/unsubscribe",
            Endpoint::WhSubscriptions => "wh/subscriptions",
        }
    }

    pub fn from_path(path: &str) -> Option<Endpoint> {
        Self::ALL.into_iter().find(|e| e.path() == path)
    }

    /// Mutations require `Idempotency-Key` (§1) and may only be retried with the same key and body.
    pub fn is_mutation(self) -> bool {
        matches!(
            self,
            Endpoint::CardsCreate
                | Endpoint::CardsTopup
                | Endpoint::CardsFreeze
                | Endpoint::CardsUnfreeze
        )
    }
}

/// Ties a request type to its endpoint and response type, so a call is `client.call(&req)`.
pub trait Call: Serialize + Send + Sync {
    const ENDPOINT: Endpoint;
    type Response: DeserializeOwned + Serialize + Send;
}

macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $s:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)*
            /// A value this build does not know; kept verbatim.
            Unknown(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $s,)*
                    $name::Unknown(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $($s => $name::$variant,)*
                    other => $name::Unknown(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::from(s.as_str()))
            }
        }
    };
}

open_enum!(
    /// `order.status`: `new → activating | processing | failed`, then `completed | failed`.
    OrderStatus {
        New => "new",
        Activating => "activating",
        Processing => "processing",
        Completed => "completed",
        Failed => "failed",
        Paid => "paid",
    }
);

impl OrderStatus {
    pub fn is_terminal(&self) -> bool {
        matches!(self, OrderStatus::Completed | OrderStatus::Failed)
    }
}

open_enum!(
    OrderType {
        CardIssue => "card_issue",
        CardTopup => "card_topup",
        CardFreeze => "card_freeze",
        CardUnfreeze => "card_unfreeze",
    }
);

open_enum!(
    /// The issue order's sub-status machine (REFERENCE.md §3).
    IssueStatus {
        CardCreatePending => "card_create_pending",
        CardCreateDone => "card_create_done",
        CardCreateError => "card_create_error",
        InitialTopupPending => "initial_topup_pending",
        InitialTopupInProgress => "initial_topup_in_progress",
        InitialTopupError => "initial_topup_error",
        InitialTopupDone => "initial_topup_done",
        InitialTopupVerifyError => "initial_topup_verify_error",
        InitialTopupSkipped => "initial_topup_skipped",
        Completed => "completed",
    }
);

open_enum!(
    TopupStatus {
        New => "new",
        ProviderInProgress => "provider_in_progress",
        NewError => "new_error",
        ProviderInProgressError => "provider_in_progress_error",
        ProviderVerification => "provider_verification",
        ProviderVerificationError => "provider_verification_error",
        Completed => "completed",
        Failed => "failed",
    }
);

open_enum!(
    CardStatus {
        PendingOrder => "pending_order",
        Paid => "paid",
        PendingActivation => "pending_activation",
        WaitForTopupActivationByUser => "wait_for_topup_activation_by_user",
        Active => "active",
        Frozen => "frozen",
        Closed => "closed",
    }
);

open_enum!(
    RegistrationStatus {
        Pending => "pending",
        Active => "active",
        Suspended => "suspended",
        Failed => "failed",
    }
);

open_enum!(
    KycStatus {
        NotStarted => "not_started",
        Pending => "pending",
        Approved => "approved",
        Rejected => "rejected",
        Expired => "expired",
    }
);

open_enum!(
    KycLevel {
        None => "none",
        Basic => "basic",
        Advanced => "advanced",
        Full => "full",
    }
);

// ---------------------------------------------------------------- responses

/// A card product. Field names are [assumed]; every fee may be missing (then it is unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Product {
    #[serde(default)]
    pub product_code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<serde_json::Value>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub currency: String,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub issue_fee: Option<Decimal>,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub topup_fee_percent: Option<Decimal>,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub topup_fee_fixed: Option<Decimal>,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_topup: Option<Decimal>,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_topup: Option<Decimal>,
    #[serde(default = "default_true")]
    pub is_active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprovider_code: Option<String>,
}

fn default_true() -> bool {
    true
}

impl Product {
    /// Estimated charge of issuing one card of this product (§3 formula); `None` if fees are unknown.
    pub fn issue_charge(&self, initial_topup: Option<Decimal>) -> Option<Decimal> {
        super::assumed::issue_charge(
            self.issue_fee,
            initial_topup,
            self.topup_fee_percent,
            self.topup_fee_fixed,
        )
    }
}

/// `cards/products`: `{"products": [...]}` [assumed], or a bare array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductList {
    pub products: Vec<Product>,
}

impl<'de> Deserialize<'de> for ProductList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Wrapped { products: Vec<Product> },
            Bare(Vec<Product>),
        }
        Ok(match Shape::deserialize(d)? {
            Shape::Wrapped { products } | Shape::Bare(products) => ProductList { products },
        })
    }
}

/// `project/balance`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    #[serde(with = "super::decimal")]
    pub available: Decimal,
    #[serde(default)]
    pub currency: String,
}

/// Any order (issue, top-up, freeze, unfreeze), as `cards/create`, `orders/check` etc. return it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    #[serde(default = "unknown_order_type")]
    pub order_type: OrderType,
    pub status: OrderStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub balance_before: Option<Decimal>,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub balance_after: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_slug: Option<String>,
    #[serde(default)]
    pub data: serde_json::Value,
    #[serde(default)]
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue_status: Option<IssueStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_issued: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_card_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topup_status: Option<TopupStatus>,
}

fn unknown_order_type() -> OrderType {
    OrderType::Unknown(String::new())
}

impl Order {
    /// The real charge of the order (`balance_before − balance_after`), when both are known.
    pub fn charge(&self) -> Option<Decimal> {
        Some(self.balance_before? - self.balance_after?)
    }

    /// What a failed order gave back ([`super::assumed::REFUNDED_AMOUNT_FIELD`] in `data`, a decimal
    /// string or number): `Some(0)` for a failed order without it (it kept its charge), `None`
    /// for an order that has not failed. An amount that is not a decimal counts as not given.
    pub fn refunded(&self) -> Option<Decimal> {
        if self.status != OrderStatus::Failed {
            return None;
        }
        let given = self.data.get(super::assumed::REFUNDED_AMOUNT_FIELD);
        let amount = match given {
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            Some(serde_json::Value::Number(n)) => n.to_string().parse().ok(),
            _ => None,
        };
        Some(amount.unwrap_or_default())
    }
}

/// `cards/get`. PAN and CVV are [`Sensitive`]: they print masked and cardform never stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Card {
    pub card_id: String,
    pub status: CardStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub balance: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_month: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry_year: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_number: Option<Sensitive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cvv: Option<Sensitive>,
}

impl Card {
    pub fn last4(&self) -> Option<String> {
        self.card_number.as_ref().map(Sensitive::last4)
    }
}

/// `users/create` [assumed shape]: whatever the provider returns, with the id if present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default)]
    pub external_user_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cardholder {
    pub cardholder_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subprovider_code: Option<String>,
    pub registration_status: RegistrationStatus,
    pub kyc_status: KycStatus,
    #[serde(default = "kyc_none")]
    pub kyc_level: KycLevel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

fn kyc_none() -> KycLevel {
    KycLevel::None
}

// ---------------------------------------------------------------- requests

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProductsRequest {}

impl Call for ProductsRequest {
    const ENDPOINT: Endpoint = Endpoint::Products;
    type Response = ProductList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BalanceRequest {}

impl Call for BalanceRequest {
    const ENDPOINT: Endpoint = Endpoint::Balance;
    type Response = Balance;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateUserRequest {
    pub external_user_id: String,
}

impl Call for CreateUserRequest {
    const ENDPOINT: Endpoint = Endpoint::UsersCreate;
    type Response = User;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCardholderRequest {
    pub external_user_id: String,
    pub subprovider_code: String,
    pub first_name: String,
    pub last_name: String,
    /// YYYY-MM-DD
    pub birth_date: String,
    pub email: String,
    pub phone_number_full: String,
    /// ISO 3166-1 alpha-2
    pub country_iso: String,
}

impl Call for CreateCardholderRequest {
    const ENDPOINT: Endpoint = Endpoint::CardholdersCreate;
    type Response = Cardholder;
}

/// `cards/create`: fees are charged when the order is created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCardRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_code: Option<String>,
    /// Legacy alternative to `product_code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<serde_json::Value>,
    #[serde(default)]
    pub external_user_id: String,
    #[serde(
        default,
        with = "super::decimal::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub initial_topup_amount: Option<Decimal>,
}

impl Call for CreateCardRequest {
    const ENDPOINT: Endpoint = Endpoint::CardsCreate;
    type Response = Order;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOrderRequest {
    pub order_id: String,
}

impl Call for CheckOrderRequest {
    const ENDPOINT: Endpoint = Endpoint::OrdersCheck;
    type Response = Order;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetCardRequest {
    pub card_id: String,
}

impl Call for GetCardRequest {
    const ENDPOINT: Endpoint = Endpoint::CardsGet;
    type Response = Card;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopupRequest {
    pub card_id: String,
    #[serde(with = "super::decimal")]
    pub amount: Decimal,
}

impl Call for TopupRequest {
    const ENDPOINT: Endpoint = Endpoint::CardsTopup;
    type Response = Order;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeRequest {
    pub card_id: String,
    pub external_user_id: String,
}

impl Call for FreezeRequest {
    const ENDPOINT: Endpoint = Endpoint::CardsFreeze;
    type Response = Order;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnfreezeRequest {
    pub card_id: String,
    pub external_user_id: String,
}

impl Call for UnfreezeRequest {
    const ENDPOINT: Endpoint = Endpoint::CardsUnfreeze;
    type Response = Order;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_statuses_are_kept() {
        let o: Order = serde_json::from_str(
            r#"{"order_id":"o1","order_type":"card_reissue","status":"paid_later","data":{},"created_at":"x","extra":1}"#,
        )
        .unwrap();
        assert_eq!(o.status, OrderStatus::Unknown("paid_later".into()));
        assert_eq!(o.order_type.as_str(), "card_reissue");
        assert!(!o.status.is_terminal());
    }

    #[test]
    fn products_accept_wrapped_bare_and_missing_fees() {
        let a: ProductList =
            serde_json::from_str(r#"{"products":[{"product_code":"A","issue_fee":"5.00"}]}"#)
                .unwrap();
        let b: ProductList =
            serde_json::from_str(r#"[{"product_code":"A","issue_fee":5}]"#).unwrap();
        assert_eq!(
            a.products[0].issue_fee,
            b.products[0].issue_fee.map(|d| d.round_dp(2))
        );
        assert_eq!(a.products[0].topup_fee_percent, None);
        assert_eq!(a.products[0].issue_charge(Some(Decimal::TEN)), None);
        assert_eq!(a.products[0].issue_charge(None), Some(Decimal::new(500, 2)));
    }

    #[test]
    fn order_charge_is_balance_difference() {
        let o: Order = serde_json::from_str(
            r#"{"order_id":"o","order_type":"card_issue","status":"new","balance_before":"100.00","balance_after":"94.50","data":{},"created_at":""}"#,
        )
        .unwrap();
        assert_eq!(o.charge(), Some(Decimal::new(550, 2)));
    }

    #[test]
    fn endpoints_round_trip_paths() {
        for e in Endpoint::ALL {
            assert_eq!(Endpoint::from_path(e.path()), Some(e));
        }
        assert!(Endpoint::CardsCreate.is_mutation());
        assert!(!Endpoint::OrdersCheck.is_mutation());
    }
}
