//! The world file: the format it is saved in, and how a world is rebuilt from it (re-seeded
//! RNG, due events re-queued), plus the dirty flag that says when saving is worth it.
//!
//! Only turns a [`World`] into bytes and back; reading and writing the file itself is the
//! server's job (`sandbox/mod.rs`), since the world must not do I/O.

use std::cmp::Reverse;

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::World;

pub(super) const WORLD_FORMAT: u32 = 1;

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
        let mut w: World = serde_json::from_slice(bytes)?;
        if w.format != WORLD_FORMAT {
            return Err(LoadError::Format(w.format));
        }
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
