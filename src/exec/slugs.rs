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

/// The slug of a client error: the provider's, else [`UNREACHABLE`].
pub fn of(e: &ClientError) -> String {
    e.slug().unwrap_or(UNREACHABLE).to_owned()
}

/// What the user can do about a failure code, cardform's or the provider's.
pub fn hint(slug: &str) -> &'static str {
    match slug {
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
            "the provider's answer does not match what the journal sent under that key (another provider world after a reset, a wrong CARDFORM_API_URL, a key reused elsewhere?); nothing was bound or charged to this card: check the provider URL and `cardform show KEY` before re-running"
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
