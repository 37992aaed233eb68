//! cardform's own failure codes, for failures the provider did not name, with their hints.
//! Provider slugs and their hints live in `wire::error`.

use crate::client::ClientError;
use crate::wire::hint_for_slug;

/// The provider could not be reached, or kept failing until the retries ran out.
pub const UNREACHABLE: &str = "unreachable";
/// A journaled request could not be read back.
pub const JOURNAL_CORRUPT: &str = "journal_corrupt";
/// The card was removed from state while the plan still named it.
pub const CARD_NOT_IN_STATE: &str = "card_not_in_state";
/// State holds no provider card id for a card that needs one.
pub const NO_CARD_ID: &str = "no_card_id";
/// The provider failed the order without a slug.
pub const ORDER_FAILED: &str = "order_failed";
/// The provider answered with an order that contradicts the journal; nothing was bound.
pub const ORDER_MISMATCH: &str = "order_mismatch";
/// A declared move found its new key taken in state (another writer got there first).
pub const MOVE_CONFLICT: &str = "move_conflict";
/// The journal holds the change's idempotency key for another request: nothing was journaled
/// or sent for it.
pub const JOURNAL_CONFLICT: &str = "journal_conflict";

/// The slug of a client error: the provider's, else [`UNREACHABLE`].
pub fn of(e: &ClientError) -> String {
    e.slug().unwrap_or(UNREACHABLE).to_owned()
}

/// A cardholder mutation for a person the declarations no longer hold (a saved plan applied
/// without its declaration files): its KYC fields exist nowhere else.
pub const KYC_NOT_DECLARED: &str = "kyc_not_declared";
/// The provider ended a person's KYC without approval: their cards cannot be issued.
pub const KYC_REJECTED: &str = "kyc_rejected";
/// A card whose cardholder's KYC was still running when `--kyc-wait` ran out.
pub const KYC_PENDING: &str = "kyc_pending";

/// What the user can do about a failure code, cardform's or the provider's.
pub fn hint(slug: &str) -> &'static str {
    match slug {
        KYC_NOT_DECLARED => {
            "apply the plan where its declaration files are (they hold the KYC fields), or plan again with them"
        }
        KYC_REJECTED => {
            "the provider rejected (or let expire) this person's KYC: resolve it with the provider, then re-run apply; their other work went ahead"
        }
        KYC_PENDING => {
            "KYC was not approved within --kyc-wait: re-run apply later (nothing was charged; the card is issued once the provider approves the cardholder)"
        }
        UNREACHABLE => {
            "the provider could not be reached or kept failing; nothing is lost: re-run apply to resume (orders are tracked under their idempotency keys)"
        }
        JOURNAL_CORRUPT => {
            "the state's order journal is damaged; do not delete state: inspect it with `cardform show KEY` and report it"
        }
        CARD_NOT_IN_STATE => "the card left state during the run; run `cardform plan` again",
        NO_CARD_ID => {
            "state has no provider card id for this card; run `cardform refresh` or `cardform import KEY CARD_ID`"
        }
        ORDER_MISMATCH => {
            "the provider's answer does not match what the journal sent under that key (another provider world after a reset, a wrong CARDFORM_API_URL, a key reused elsewhere?), names a card id another card holds, or completed without a card id; nothing was bound to this card and its order stays in the journal: check the provider URL and `cardform show KEY` before re-running"
        }
        JOURNAL_CONFLICT => {
            "the journal already holds this change's idempotency key for another request (a state edited by hand, or two cards' histories mixed under one key); nothing was sent for it and the rest of the run went on: inspect it with `cardform show KEY` and report it before re-running"
        }
        MOVE_CONFLICT => {
            "both keys are in state now; run `cardform plan` again and resolve it there (remove the move, or `cardform state rm` one of them)"
        }
        ORDER_FAILED => {
            "the provider failed the order without saying why; re-run apply to re-issue"
        }
        provider => hint_for_slug(provider),
    }
}
