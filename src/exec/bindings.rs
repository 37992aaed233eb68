//! Which provider card id is bound to which card key, for one run (apply's or refresh's): a
//! card id belongs to one card only, whichever order names it first. Must not read or write
//! state: the run seeds it from state's cards and it lives as long as the run. Also the per-card
//! locks under which a settling order writes its card.

use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

use super::perform::{another_card, not_issued, taken};
use crate::state::{CardRecord, OrderKind, OrderRecord};
use crate::wire::{Order, OrderStatus};

/// Provider card id → the key it is bound to, for one run (apply's or refresh's): every card in
/// state as the run started, and every card the run bound since. A card id is bound to one card
/// only, so a bind checks and inserts under this one lock ([`Bindings::refuse`]): two orders
/// that name the same card id cannot both bind it, whichever finishes first.
#[derive(Default)]
pub(crate) struct Bindings(std::sync::Mutex<Bound>);

/// What [`Bindings`] guards.
#[derive(Default)]
struct Bound {
    /// Card id → key.
    keys: HashMap<compact_str::CompactString, compact_str::CompactString>,
    /// The card ids bound by this run (not read from state): an answer told us whose they are,
    /// and nothing else has confirmed it yet.
    fresh: std::collections::HashSet<compact_str::CompactString>,
}

impl Bindings {
    /// The bindings of `cards` (state's, as the run starts).
    pub(crate) fn of<'a>(cards: impl IntoIterator<Item = &'a CardRecord>) -> Self {
        Self(std::sync::Mutex::new(Bound {
            keys: cards
                .into_iter()
                .filter_map(|c| Some((c.card_id.clone()?, c.key.clone())))
                .collect(),
            fresh: Default::default(),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Bound> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The key card id `card_id` is bound to.
    pub(super) fn bound_to(&self, card_id: &str) -> Option<compact_str::CompactString> {
        self.lock().keys.get(card_id).cloned()
    }

    /// Whether this run bound `card_id` (rather than finding it in state).
    pub(crate) fn is_fresh(&self, card_id: &str) -> bool {
        self.lock().fresh.contains(card_id)
    }

    /// The provider confirmed whose card `card_id` is (`cards/get`): it need not be read again.
    pub(crate) fn confirm(&self, card_id: &str) {
        self.lock().fresh.remove(card_id);
    }

    /// Why the terminal answer `o` to `order` must not be settled into `card`: it names another
    /// card than the card's own, an issue order completed naming no card, or the card id it
    /// names is bound to another key. Otherwise a completed issue order's card id is bound to
    /// `card` here, checked and taken under one lock, and `None` is returned. The card id is
    /// taken last, so an answer refused for another reason takes nothing.
    pub(crate) fn refuse(
        &self,
        order: &OrderRecord,
        card: &CardRecord,
        o: &Order,
    ) -> Option<String> {
        if let Some(why) = another_card(order, card, o).or_else(|| not_issued(order, card, o)) {
            return Some(why);
        }
        if order.kind != OrderKind::Issue || o.status != OrderStatus::Completed {
            return None;
        }
        let theirs = o.card_id.as_deref()?;
        let mut bound = self.lock();
        match bound.keys.get(theirs) {
            Some(other) if *other != card.key => Some(taken(o, theirs, other)),
            Some(_) => None,
            None => {
                bound.keys.insert(theirs.into(), card.key.clone());
                bound.fresh.insert(theirs.into());
                None
            }
        }
    }
}

/// What keeps two orders from mixing up one card.
pub(super) struct CardGuards {
    /// Which card ids are bound to which keys: state's, and this run's as it binds them.
    pub(super) bound: Bindings,
    /// One lock per card whose record a settling order writes: two orders of one card (its
    /// top-ups, say) settle one at a time, each adding its charge to the record as it is then.
    pub(super) card_locks: std::sync::Mutex<std::collections::HashMap<String, Arc<Mutex<()>>>>,
}

impl CardGuards {
    /// The lock of card `key`'s record (see `card_locks`).
    pub(super) fn lock(&self, key: &str) -> Arc<Mutex<()>> {
        let mut locks = self
            .card_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        locks.entry(key.to_owned()).or_default().clone()
    }

    /// Gives back a lock from [`CardGuards::lock`], forgetting it when no other order of the card
    /// holds or awaits it (a run over 100,000 cards keeps no lock per card).
    pub(super) fn unlock(&self, key: &str, lock: Arc<Mutex<()>>) {
        let mut locks = self
            .card_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's reference and this one: clones are only made under this mutex.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(key);
        }
    }
}
