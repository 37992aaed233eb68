//! The world file: the format it is saved in, and how a world is rebuilt from it (re-seeded
//! RNG, due events re-queued), plus the dirty flag that says when saving is worth it.
//!
//! Only turns a [`World`] into bytes and back; reading and writing the file itself is the
//! server's job (`sandbox/mod.rs`), since the world must not do I/O.

use std::cmp::Reverse;

use rand::SeedableRng;
use rand::rngs::StdRng;

use serde_json::{Map, Value};

use super::super::catalog::SUBPROVIDER;
use super::World;

/// 2: cardholders keyed by (external_user_id, subprovider_code), with their KYC timing and no
/// personal data. Format 1 files (one cardholder per external_user_id) are migrated on load.
pub(super) const WORLD_FORMAT: u32 = 2;

pub(super) fn fresh_rng() -> StdRng {
    StdRng::seed_from_u64(0)
}

/// A world's own randomness for its ids, from the OS: the seeded RNG makes fault patterns
/// repeatable, and must not make two worlds' ids the same.
pub(super) fn fresh_epoch() -> u32 {
    rand::random()
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("not a sandbox world file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("world file format {0} is not supported (this build reads format {WORLD_FORMAT})")]
    Format(u32),
}

impl World {
    /// A world saved by [`World::to_json`]. The RNG is re-seeded past what the saved world used,
    /// so a reloaded sandbox does not repeat its fault pattern from the start.
    pub fn from_json(bytes: &[u8], seed: u64) -> Result<Self, LoadError> {
        let mut raw: Value = serde_json::from_slice(bytes)?;
        let format = raw.get("format").and_then(Value::as_u64).unwrap_or(0);
        match format {
            1 => migrate_v1(&mut raw),
            2 => {}
            other => return Err(LoadError::Format(other as u32)),
        }
        let mut w: World = serde_json::from_value(raw)?;
        w.rng = StdRng::seed_from_u64(seed ^ w.next_id.rotate_left(32));
        let due: Vec<(u64, String)> = w
            .orders
            .values()
            .filter_map(|o| o.next_event().map(|t| (t, o.id.clone())))
            .collect();
        w.events.extend(due.into_iter().map(Reverse));
        w.dirty = false;
        Ok(w)
    }

    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// Whether something worth saving changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }
}

/// Format 1 kept one cardholder per external_user_id, as the API showed it, and its KYC state was
/// final (ready, or pending forever): each becomes the one cardholder at its subprovider, its KYC
/// ended at its creation if approved or rejected, pending forever otherwise.
fn migrate_v1(raw: &mut Value) {
    let Some(w) = raw.as_object_mut() else {
        return;
    };
    let old = match w.remove("cardholders") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let mut by_user = Map::new();
    for (uid, h) in old {
        let created = h
            .get("created_at")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_microsecond().max(0) as u64);
        let sub = h
            .get("subprovider_code")
            .and_then(Value::as_str)
            .unwrap_or(SUBPROVIDER)
            .to_owned();
        let (due, outcome) = match h.get("kyc_status").and_then(Value::as_str) {
            Some("approved") => (Value::from(created), "approved"),
            Some("rejected") | Some("expired") => (Value::from(created), "rejected"),
            _ => (Value::Null, "approved"),
        };
        let rec = serde_json::json!({
            "cardholder_id": h.get("cardholder_id").cloned().unwrap_or(Value::Null),
            "external_user_id": uid,
            "subprovider_code": sub,
            "created": created,
            "kyc_due": due,
            "kyc_outcome": outcome,
        });
        let mut subs = Map::new();
        subs.insert(sub, rec);
        by_user.insert(uid, Value::Object(subs));
    }
    w.insert("cardholders".to_owned(), Value::Object(by_user));
    w.insert("format".to_owned(), Value::from(WORLD_FORMAT));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_format_1_world_is_migrated() {
        let v1 = serde_json::json!({
            "format": 1, "balance": "10.00", "total_charged": "0.00", "total_refunded": "0.00",
            "next_id": 3, "orders": {}, "cards": {}, "users": {}, "idempotency": {},
            "idempotency_queue": [], "calls": {}, "counters": {"rate_limited": 0, "dropped": 0,
            "injected_errors": 0, "idempotent_replays": 0},
            "cardholders": {
                "a": {"cardholder_id": "ch_1", "subprovider_code": "sandbox", "registration_status": "active",
                      "kyc_status": "approved", "kyc_level": "basic", "created_at": "2025-06-15T15:06:40Z"},
                "b": {"cardholder_id": "ch_2", "registration_status": "pending", "kyc_status": "pending"}
            }
        });
        let mut w = World::from_json(&serde_json::to_vec(&v1).unwrap(), 1).unwrap();
        let now = 1_750_000_000_000_000 + 10;
        assert_eq!(
            w.holder("a", "sandbox").unwrap().kyc_status(now),
            crate::wire::KycStatus::Approved
        );
        assert_eq!(
            w.holder("b", "sandbox").unwrap().kyc_status(now),
            crate::wire::KycStatus::Pending
        );
        assert_eq!(w.inspect(now).cardholders, 2);
        let again = World::from_json(&w.to_json().unwrap(), 1).unwrap();
        assert_eq!(again.format, WORLD_FORMAT);
    }
}
