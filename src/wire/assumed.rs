//! Every [assumed] choice of REFERENCE.md in one place. When the provider documents one of these,
//! change it here; the client and sandbox both read from this module.

use rust_decimal::{Decimal, RoundingStrategy};

/// §1: every endpoint is `POST <base>/api/v1/<path>`; the base URL itself is configuration.
pub const API_PREFIX: &str = "/api/v1/";

/// §1: 429 carries `Retry-After` in seconds.
pub const RETRY_AFTER_HEADER: &str = "Retry-After";

/// §1: a rate limit counts requests per one-second window. Its shape is unknown (sliding, fixed
/// on the second boundaries, or a token bucket); the sandbox defaults to the strictest, a
/// sliding window, and the client paces so that none of them is exceeded.
pub const RATE_WINDOW_MICROS: u64 = 1_000_000;

/// §2: the server's replay window around its clock, in microseconds.
pub const TIMESTAMP_WINDOW_MICROS: u64 = 30_000_000;

/// §3: the field that names an order in `orders/check`.
pub const ORDER_CHECK_FIELD: &str = "order_id";

/// §3: the field for an issue order's optional initial top-up.
pub const INITIAL_TOPUP_FIELD: &str = "initial_topup_amount";

/// §5: how long the provider keeps idempotency keys. A resume later than this must look before
/// re-issuing.
pub const IDEMPOTENCY_KEY_TTL_SECS: u64 = 24 * 3600;

/// §3/§5: a failed issue order is refunded in full to the master balance when it fails. The order
/// keeps `balance_before`/`balance_after` as of its creation (that was the charge), and its `data`
/// carries `refunded_amount`. The public docs are silent on refunds.
pub const FAILED_ISSUE_ORDER_REFUNDED: bool = true;

/// The `data` field of a failed order that says how much was given back.
pub const REFUNDED_AMOUNT_FIELD: &str = "refunded_amount";

/// §5: only a request that succeeded binds its idempotency key. A refused request (validation
/// error, insufficient funds, ...) did nothing, so a retry under the same key is judged afresh:
/// a client may fix the cause (e.g. top up the master balance) and re-run with the same key.
pub const IDEMPOTENCY_STORES_ERRORS: bool = false;

/// §3: `users/create` takes only `external_user_id`; answers a [`crate::wire::User`].
/// §3: one cardholder per (external_user_id, subprovider_code); a second `cardholders/create` for
/// the same pair answers [`CARDHOLDER_ALREADY_EXISTS`](crate::wire::error::slug::CARDHOLDER_ALREADY_EXISTS)
/// (HTTP 409 at the sandbox): the cardholder is there, nothing else happened. Adopt it.
pub const ONE_CARDHOLDER_PER_SUBPROVIDER: bool = true;

/// §3: a new cardholder answers `registration_status: pending`, `kyc_status: pending`, and its
/// KYC is decided later (`approved` + `active`, or `rejected` + `failed`). With no read endpoint,
/// readiness only shows through `cards/create`.
pub const CARDHOLDER_STARTS_PENDING: bool = true;

/// §3/§4: the reference documents no cardholder read endpoint, so the one way a client can learn
/// that a KYC was *rejected* (or expired), rather than still running, is this extra field of the
/// error object that `cards/create` answers with `cardholder_not_ready`:
/// `{"success": false, "error": "...", "error_slug": "cardholder_not_ready", "kyc_status": "rejected"}`.
/// The sandbox includes it on every `cardholder_not_ready` (`pending` while KYC runs). A client
/// must treat its absence as "unknown, maybe still pending".
pub const KYC_STATUS_ERROR_FIELD: &str = "kyc_status";

/// §1/§5: `users/create` and `cardholders/create` do not require an `Idempotency-Key`, but honour
/// one when sent, exactly like `cards/create`: same key + same body replays the first answer; same
/// key + another body is `idempotency_key_conflict`; a refused request does not bind its key.
pub const CREATES_HONOUR_IDEMPOTENCY_KEY: bool = true;

/// §6: the event a webhook delivery carries when an order reaches a terminal status (`completed`
/// or `failed`, whatever its type). Event names are not public; this is the sandbox's name, and
/// the receiver ignores (answers 200 to) any other.
pub const WEBHOOK_ORDER_EVENT: &str = "order.completed";

/// §6: a delivery's decrypted body is `{"event": "<name>", "data": <payload>}`; for
/// [`WEBHOOK_ORDER_EVENT`] the payload is the order exactly as `orders/check` answers it. No
/// `request_timestamp`: a delivery is retried with the same body, so a replay check on it would
/// refuse the provider's own retries.
pub const WEBHOOK_EVENT_FIELD: &str = "event";
pub const WEBHOOK_DATA_FIELD: &str = "data";

/// §6: `wh/subscribe` takes `{"url": "..."}` and answers `{"subscription_id": "...", "url": "..."}`;
/// `wh/unsubscribe` takes `{"subscription_id": "..."}` and answers the same object;
/// `wh/subscriptions` answers `{"subscriptions": [..]}`. Subscribing a URL already subscribed
/// answers its existing subscription (no second delivery per event). The client also accepts `id`.
pub const WEBHOOK_URL_FIELD: &str = "url";
pub const WEBHOOK_SUBSCRIPTION_ID_FIELD: &str = "subscription_id";

/// §6: how long the sandbox keeps retrying one delivery that does not get a 200: this many
/// attempts, backing off from [`WEBHOOK_RETRY_FIRST_MILLIS`] (doubling, at most 2 s apart). The
/// provider's own schedule is not public; "at-least-once" is [doc], the bound is not.
pub const WEBHOOK_ATTEMPTS: u32 = 8;
pub const WEBHOOK_RETRY_FIRST_MILLIS: u64 = 50;

/// Money is rounded half-up to cents.
pub fn round_money(v: Decimal) -> Decimal {
    v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// §3: the charge of a top-up of `amount`: `amount + amount × percent / 100 + fixed`, rounded.
/// `None` when the product does not publish its top-up fees.
pub fn topup_charge(
    amount: Decimal,
    fee_percent: Option<Decimal>,
    fee_fixed: Option<Decimal>,
) -> Option<Decimal> {
    Some(round_money(
        amount + amount * fee_percent? / Decimal::ONE_HUNDRED + fee_fixed?,
    ))
}

/// §3: the charge of an issue order: `issue_fee` plus the top-up charge when one is requested.
pub fn issue_charge(
    issue_fee: Option<Decimal>,
    initial_topup: Option<Decimal>,
    fee_percent: Option<Decimal>,
    fee_fixed: Option<Decimal>,
) -> Option<Decimal> {
    let fee = issue_fee?;
    match initial_topup {
        None => Some(round_money(fee)),
        Some(a) => Some(round_money(fee + topup_charge(a, fee_percent, fee_fixed)?)),
    }
}

/// The fee part of a top-up (what is paid beyond the amount itself).
pub fn topup_fee(
    amount: Decimal,
    fee_percent: Option<Decimal>,
    fee_fixed: Option<Decimal>,
) -> Option<Decimal> {
    Some(topup_charge(amount, fee_percent, fee_fixed)? - amount)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros_free::d;

    mod rust_decimal_macros_free {
        pub fn d(s: &str) -> rust_decimal::Decimal {
            s.parse().unwrap()
        }
    }

    #[test]
    fn issue_charge_formula() {
        assert_eq!(
            issue_charge(Some(d("5")), None, None, None),
            Some(d("5.00"))
        );
        // 5 + 50 + 50*1.5/100 + 0.30 = 56.05
        assert_eq!(
            issue_charge(Some(d("5")), Some(d("50")), Some(d("1.5")), Some(d("0.30"))),
            Some(d("56.05"))
        );
        // half-up: 10 * 1.25% = 0.125 -> 0.13
        assert_eq!(
            topup_charge(d("10"), Some(d("1.25")), Some(d("0"))),
            Some(d("10.13"))
        );
        assert_eq!(issue_charge(None, None, None, None), None);
        assert_eq!(
            issue_charge(Some(d("1")), Some(d("10")), None, Some(d("0"))),
            None
        );
    }
}
