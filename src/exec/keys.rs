//! Deterministic idempotency keys. A re-run after a crash derives the same key for the same
//! intent, so the provider returns the order it already has instead of creating (and charging) a
//! second one. A new intent (the next issue attempt, another status change) gets a new key.

use uuid::Uuid;

use crate::state::OrderKind;

/// A fixed namespace for cardform's v5 UUIDs.
const NAMESPACE: Uuid = Uuid::from_u128(0x6b1f_0c2e_9d4a_4f3b_8e21_5a7c_d0e9_f314);

fn derive(name: &str) -> String {
    format!("cf-{}", Uuid::new_v5(&NAMESPACE, name.as_bytes()))
}

/// The key of issue attempt `attempt` (1-based) of card `key` in state `lineage`.
pub fn issue(lineage: &str, key: &str, attempt: u32) -> String {
    derive(&format!("{lineage}\0issue\0{key}\0{attempt}"))
}

/// The key of the `seq`th status change of `kind` for provider card `card_id`.
pub fn status_change(lineage: &str, key: &str, kind: OrderKind, card_id: &str, seq: u32) -> String {
    derive(&format!(
        "{lineage}\0{}\0{key}\0{card_id}\0{seq}",
        kind.as_str()
    ))
}

/// The key of attempt `attempt` of top-up `id` of card `key`: a re-run re-sends the same key, so
/// the provider creates the top-up (and takes its money) once.
pub fn topup(lineage: &str, key: &str, id: &str, attempt: u32) -> String {
    derive(&format!("{lineage}\0topup\0{key}\0{id}\0{attempt}"))
}

/// The key of attempt `attempt` to create the user or cardholder at `address`.
pub fn person(lineage: &str, address: &crate::model::Address, attempt: u32) -> String {
    derive(&format!(
        "{lineage}\0{}\0{}\0{attempt}",
        address.kind, address.key
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_distinct() {
        assert_eq!(issue("L", "alice", 1), issue("L", "alice", 1));
        assert_ne!(issue("L", "alice", 1), issue("L", "alice", 2));
        assert_ne!(issue("L", "alice", 1), issue("M", "alice", 1));
        assert_ne!(issue("L", "a\0b", 1), issue("L", "a", 1));
        assert_ne!(
            status_change("L", "a", OrderKind::Freeze, "c1", 1),
            status_change("L", "a", OrderKind::Unfreeze, "c1", 1)
        );
    }
}
