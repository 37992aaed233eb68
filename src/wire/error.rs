//! Provider error bodies and slugs (REFERENCE.md §4), with a hint of what the user can do.

use serde::{Deserialize, Serialize};
use std::fmt;

use super::KycStatus;

/// `{"success": false, "error": "<message>", "error_slug": "<slug>"}`, plain or encrypted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub success: bool,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_slug: String,
    /// [assumed] On `cardholder_not_ready` only: the cardholder's `kyc_status` (`pending`,
    /// `rejected`, `expired`, ...), the one way to tell a KYC that will never pass from one that
    /// is still running (see `assumed::KYC_STATUS_ERROR_FIELD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyc_status: Option<KycStatus>,
}

impl ErrorBody {
    pub fn new(slug: &str, message: impl Into<String>) -> Self {
        Self {
            success: false,
            error: message.into(),
            error_slug: slug.to_owned(),
            kyc_status: None,
        }
    }

    /// The same error, carrying the cardholder's KYC status.
    pub fn with_kyc_status(mut self, status: KycStatus) -> Self {
        self.kyc_status = Some(status);
        self
    }
}

/// A provider's refusal: its slug, its message and the HTTP status it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub slug: String,
    pub message: String,
    pub http_status: u16,
    /// [assumed] What a `cardholder_not_ready` says of the cardholder's KYC, when it says it:
    /// the one way to tell a KYC still running from one that will not pass.
    pub kyc_status: Option<KycStatus>,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.slug, self.message)
    }
}

impl std::error::Error for ProviderError {}

impl ProviderError {
    pub fn hint(&self) -> &'static str {
        hint_for_slug(&self.slug)
    }
}

/// Error slugs of REFERENCE.md §4 as constants, so code never misspells one.
pub mod slug {
    pub const IDEMPOTENCY_KEY_REQUIRED: &str = "idempotency_key_required";
    pub const EXTERNAL_USER_ID_REQUIRED: &str = "external_user_id_required";
    pub const PRODUCT_NOT_FOUND: &str = "product_not_found";
    pub const PRODUCT_NOT_ACTIVE: &str = "product_not_active";
    pub const CARDHOLDER_NOT_FOUND: &str = "cardholder_not_found";
    pub const CARDHOLDER_NOT_READY: &str = "cardholder_not_ready";
    pub const INSUFFICIENT_FUNDS: &str = "insufficient_funds";
    pub const INVALID_PRICING: &str = "invalid_pricing";
    pub const CARD_PRODUCT_LIMITS_INVALID: &str = "card_product_limits_invalid";
    pub const INVALID_AMOUNT: &str = "invalid_amount";
    pub const AMOUNT_BELOW_MINIMUM: &str = "amount_below_minimum";
    pub const AMOUNT_ABOVE_MAXIMUM: &str = "amount_above_maximum";
    pub const CARD_NOT_FOUND: &str = "card_not_found";
    pub const CARD_NOT_ACTIVE: &str = "card_not_active";
    pub const CURRENCY_MISMATCH: &str = "currency_mismatch";
    pub const INVALID_CARD_ID: &str = "invalid_card_id";
    pub const CARD_ISSUE_NOT_COMPLETED: &str = "card_issue_not_completed";
    pub const INVALID_CARD_STATUS: &str = "invalid_card_status";
    pub const PROVIDER_INVALID_CARD_STATUS: &str = "provider_invalid_card_status";
    pub const PROVIDER_ERROR: &str = "provider_error";
    pub const USER_NOT_FOUND: &str = "user_not_found";
    pub const EXTERNAL_USER_ID_EXISTS: &str = "external_user_id_exists";
    /// [assumed] A second `cardholders/create` for the same (external_user_id, subprovider_code).
    pub const CARDHOLDER_ALREADY_EXISTS: &str = "cardholder_already_exists";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const PROJECT_NOT_FOUND: &str = "project_not_found";
    pub const IDEMPOTENCY_KEY_CONFLICT: &str = "idempotency_key_conflict";
    pub const ORDER_NOT_FOUND: &str = "order_not_found";
    pub const RATE_LIMITED: &str = "rate_limited";
}

/// What to do about a slug, in one sentence. Unknown slugs get a generic hint.
pub fn hint_for_slug(s: &str) -> &'static str {
    match s {
        slug::IDEMPOTENCY_KEY_REQUIRED => {
            "the client sent a mutation without Idempotency-Key; this is a cardform bug, please report it"
        }
        slug::EXTERNAL_USER_ID_REQUIRED => "set external_user_id on the card in your declarations",
        slug::PRODUCT_NOT_FOUND => {
            "check product_code against the provider's products (`cardform plan` lists them)"
        }
        slug::PRODUCT_NOT_ACTIVE => {
            "the product is disabled at the provider; pick an active product"
        }
        slug::CARDHOLDER_NOT_FOUND => {
            "register the user/cardholder with the provider before issuing a card"
        }
        slug::CARDHOLDER_NOT_READY => {
            "the cardholder's KYC is not complete; wait for approval and re-run apply"
        }
        slug::INSUFFICIENT_FUNDS => "top up the master balance, then re-run apply",
        slug::INVALID_PRICING | slug::CARD_PRODUCT_LIMITS_INVALID => {
            "the product is misconfigured at the provider; contact the provider's support"
        }
        slug::INVALID_AMOUNT => "use a positive decimal amount with at most 2 decimal places",
        slug::AMOUNT_BELOW_MINIMUM => "raise the amount to the product's min_topup",
        slug::AMOUNT_ABOVE_MAXIMUM => "lower the amount to the product's max_topup",
        slug::CARD_NOT_FOUND | slug::INVALID_CARD_ID => {
            "the card is unknown to the provider; run `cardform refresh` to reconcile state"
        }
        slug::CARD_NOT_ACTIVE => "the card is not active; unfreeze it first",
        slug::CURRENCY_MISMATCH => "the amount's currency does not match the card's",
        slug::CARD_ISSUE_NOT_COMPLETED => {
            "the card's issue order is still running; wait for it to complete and re-run"
        }
        slug::INVALID_CARD_STATUS | slug::PROVIDER_INVALID_CARD_STATUS => {
            "the card's status does not allow this change; run `cardform refresh` to see its real status"
        }
        slug::PROVIDER_ERROR => "the provider failed; re-run apply later (it resumes safely)",
        slug::USER_NOT_FOUND => "register the user with the provider first",
        slug::EXTERNAL_USER_ID_EXISTS => "this external_user_id is already registered",
        slug::CARDHOLDER_ALREADY_EXISTS => {
            "this person already has a cardholder at this subprovider; adopt it"
        }
        slug::INVALID_REQUEST => {
            "the provider rejected the request shape or timestamp; check the system clock (±30 s)"
        }
        slug::PROJECT_NOT_FOUND => "the API key is wrong: check CARDFORM_API_KEY",
        slug::IDEMPOTENCY_KEY_CONFLICT => {
            "an idempotency key was reused with a different request; the declaration changed while an order was open"
        }
        slug::ORDER_NOT_FOUND => "the provider does not know this order; run `cardform refresh`",
        slug::RATE_LIMITED => "lower --rate; cardform backs off and retries automatically",
        _ => "see the provider's message; re-running apply is safe",
    }
}
