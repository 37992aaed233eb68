//! The webhook inbox: terminal orders the provider delivered, by order id, waiting for the
//! executor's `track` to take them. De-duplicated (at-least-once delivery sends some twice) and
//! bounded: an entry leaves when taken; one nobody takes (it arrived before the create answer
//! named its order, a real race, or after its order was settled by polling) is kept only for
//! [`KEEP`], and never more than [`CAPACITY`] at once.
//!
//! Owns only the hand-over. It must not judge an order (`track`'s caller settles a delivered
//! order exactly as a checked one, with the same checks) nor do I/O; time comes from the
//! `wire::Clock` seam.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::wire::{Clock, Order};

/// How long a delivery nobody waits for is kept.
pub const KEEP: Duration = Duration::from_secs(600);

/// At most this many deliveries nobody waits for are kept (the oldest leave first), and this
/// many taken order ids are remembered to recognise duplicates.
pub const CAPACITY: usize = 100_000;

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Handed to the order's tracker, or kept for it.
    Accepted,
    /// This order was delivered (or settled) already.
    Duplicate,
    /// Not a terminal status (a late, reordered delivery of an older one): polling, not the
    /// inbox, follows an open order.
    NotTerminal,
}

/// See the module's doc.
pub struct Inbox {
    clock: Arc<dyn Clock>,
    keep_micros: u64,
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Delivered, not taken yet: order id → (arrived at, order).
    pending: HashMap<String, (u64, Order)>,
    /// Pending ids by arrival, for expiry; an id already taken is skipped when reached.
    arrivals: VecDeque<(u64, String)>,
    /// Ids taken (or settled otherwise), the oldest first out.
    taken: HashSet<String>,
    taken_order: VecDeque<String>,
    /// Trackers waiting now, by order id, each with its own number: a wait that ends takes
    /// out its own entry only, never one a later wait for the same order put in.
    waiters: HashMap<String, (u64, oneshot::Sender<Order>)>,
    next_waiter: u64,
}

impl State {
    fn mark_taken(&mut self, id: &str, capacity: usize) {
        if self.taken.insert(id.to_owned()) {
            self.taken_order.push_back(id.to_owned());
        }
        while self.taken_order.len() > capacity {
            if let Some(old) = self.taken_order.pop_front() {
                self.taken.remove(&old);
            }
        }
    }

    /// Drops pending deliveries older than `keep` at `now`, and the oldest beyond `capacity`.
    fn expire(&mut self, now: u64, keep: u64, capacity: usize) {
        while let Some((at, id)) = self.arrivals.front() {
            let live = self.pending.get(id).is_some_and(|(a, _)| a == at);
            if live && *at + keep > now && self.pending.len() <= capacity {
                break;
            }
            if live {
                self.pending.remove(id);
            }
            self.arrivals.pop_front();
        }
    }
}

impl Inbox {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(clock, KEEP, CAPACITY)
    }

    pub fn with_limits(clock: Arc<dyn Clock>, keep: Duration, capacity: usize) -> Self {
        Inbox {
            clock,
            keep_micros: u64::try_from(keep.as_micros()).unwrap_or(u64::MAX / 4),
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in one delivered order (it passed the delivery check).
    pub fn deliver(&self, order: Order) -> Received {
        if !order.status.is_terminal() {
            return Received::NotTerminal;
        }
        let now = self.clock.now_micros();
        let mut st = self.lock();
        st.expire(now, self.keep_micros, self.capacity);
        let id = order.order_id.clone();
        if st.taken.contains(&id) || st.pending.contains_key(&id) {
            return Received::Duplicate;
        }
        let order = match st.waiters.remove(&id) {
            Some((_, tx)) => match tx.send(order) {
                Ok(()) => {
                    st.mark_taken(&id, self.capacity);
                    return Received::Accepted;
                }
                // Its tracker gave up waiting a moment ago: keep it like an early one.
                Err(order) => order,
            },
            None => order,
        };
        st.pending.insert(id.clone(), (now, order));
        st.arrivals.push_back((now, id));
        st.expire(now, self.keep_micros, self.capacity);
        Received::Accepted
    }

    /// The delivered order `order_id`, if it is here now.
    pub fn take(&self, order_id: &str) -> Option<Order> {
        let mut st = self.lock();
        let (_, order) = st.pending.remove(order_id)?;
        st.mark_taken(order_id, self.capacity);
        Some(order)
    }

    /// Waits up to `timeout` for the delivery of `order_id`; `None` if none came by then.
    pub async fn wait(&self, order_id: &str, timeout: Duration) -> Option<Order> {
        let (mut rx, me) = {
            let mut st = self.lock();
            if let Some((_, order)) = st.pending.remove(order_id) {
                st.mark_taken(order_id, self.capacity);
                return Some(order);
            }
            let (tx, rx) = oneshot::channel();
            st.next_waiter += 1;
            let me = st.next_waiter;
            st.waiters.insert(order_id.to_owned(), (me, tx));
            (rx, me)
        };
        if let Ok(Ok(order)) = tokio::time::timeout(timeout, &mut rx).await {
            return Some(order);
        }
        let mut st = self.lock();
        if st.waiters.get(order_id).is_some_and(|(n, _)| *n == me) {
            st.waiters.remove(order_id);
        }
        // Sent between the timeout and the lock: it is ours, and marked taken already.
        rx.try_recv().ok()
    }

    /// `order_id` was settled without its delivery (polling found it ended first): a delivery
    /// that comes later is a duplicate, not something to keep.
    pub fn settled(&self, order_id: &str) {
        let mut st = self.lock();
        st.pending.remove(order_id);
        st.mark_taken(order_id, self.capacity);
    }

    /// Deliveries kept for nobody yet.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Manual(AtomicU64);
    impl Clock for Manual {
        fn now_micros(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    fn order(id: &str, status: &str) -> Order {
        serde_json::from_value(serde_json::json!({
            "order_id": id, "order_type": "card_issue", "status": status,
            "data": {}, "created_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    fn inbox() -> (Arc<Manual>, Inbox) {
        let clock = Arc::new(Manual(AtomicU64::new(1_000_000)));
        let inbox = Inbox::with_limits(clock.clone(), Duration::from_secs(10), 3);
        (clock, inbox)
    }

    #[tokio::test]
    async fn a_delivery_before_the_wait_is_kept_and_taken_once() {
        let (_, inbox) = inbox();
        assert_eq!(inbox.deliver(order("a", "completed")), Received::Accepted);
        assert_eq!(inbox.pending(), 1);
        let got = inbox.wait("a", Duration::from_millis(1)).await;
        assert_eq!(got.map(|o| o.order_id), Some("a".into()));
        assert_eq!(inbox.pending(), 0);
        assert_eq!(inbox.deliver(order("a", "completed")), Received::Duplicate);
        assert_eq!(inbox.pending(), 0, "a duplicate is not kept");
        assert!(inbox.wait("a", Duration::from_millis(1)).await.is_none());
    }

    #[tokio::test]
    async fn a_waiting_tracker_gets_the_delivery_at_once() {
        let (_, inbox) = inbox();
        let inbox = Arc::new(inbox);
        let waiter = {
            let inbox = inbox.clone();
            tokio::spawn(async move { inbox.wait("b", Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        while inbox.lock().waiters.is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(inbox.deliver(order("b", "failed")), Received::Accepted);
        let got = waiter.await.unwrap().expect("delivered");
        assert_eq!(got.order_id, "b");
        assert_eq!(inbox.pending(), 0);
        assert_eq!(inbox.deliver(order("b", "failed")), Received::Duplicate);
    }

    #[tokio::test]
    async fn a_wait_that_times_out_loses_nothing_delivered_later() {
        let (_, inbox) = inbox();
        assert!(inbox.wait("c", Duration::from_millis(5)).await.is_none());
        assert!(inbox.lock().waiters.is_empty(), "the waiter left");
        assert_eq!(inbox.deliver(order("c", "completed")), Received::Accepted);
        assert_eq!(inbox.take("c").map(|o| o.order_id), Some("c".into()));
    }

    #[test]
    fn open_statuses_are_not_kept() {
        let (_, inbox) = inbox();
        assert_eq!(
            inbox.deliver(order("d", "processing")),
            Received::NotTerminal
        );
        assert_eq!(inbox.deliver(order("d", "new")), Received::NotTerminal);
        assert_eq!(inbox.pending(), 0);
        // The terminal status that comes after is taken as usual.
        assert_eq!(inbox.deliver(order("d", "completed")), Received::Accepted);
    }

    #[test]
    fn settled_orders_make_later_deliveries_duplicates() {
        let (_, inbox) = inbox();
        inbox.settled("e");
        assert_eq!(inbox.deliver(order("e", "completed")), Received::Duplicate);
        assert_eq!(inbox.pending(), 0);
    }

    #[test]
    fn unclaimed_deliveries_expire_and_are_capped() {
        let (clock, inbox) = inbox();
        inbox.deliver(order("f1", "completed"));
        clock.0.fetch_add(11_000_000, Ordering::Relaxed);
        inbox.deliver(order("f2", "completed"));
        assert_eq!(inbox.pending(), 1, "f1 expired after 10 s");
        assert!(inbox.take("f1").is_none());
        for id in ["f3", "f4", "f5"] {
            inbox.deliver(order(id, "completed"));
        }
        assert_eq!(inbox.pending(), 3, "capped at 3");
        assert!(inbox.take("f2").is_none(), "the oldest left first");
        assert!(inbox.take("f5").is_some());
    }

    #[test]
    fn taken_ids_are_bounded_too() {
        let (_, inbox) = inbox();
        for id in ["g1", "g2", "g3", "g4"] {
            inbox.settled(id);
        }
        assert_eq!(inbox.lock().taken.len(), 3);
        assert_eq!(inbox.deliver(order("g4", "completed")), Received::Duplicate);
    }
}
