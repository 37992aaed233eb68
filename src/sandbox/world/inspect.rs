//! The operator's view of the world (`GET /__sandbox/inspect`): balance, totals, order and call
//! counts, fault counters.
//!
//! Read-only apart from applying due events first; it must not count itself as a call.

use std::collections::BTreeMap;

use super::orders::Kind;
use super::{Inspection, IssueOrderCount, World};

impl World {
    pub fn inspect(&mut self, now: u64) -> Inspection {
        self.advance(now);
        let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let (mut failed, mut open) = (0, 0);
        for o in self.orders.values() {
            if o.kind == Kind::Issue {
                *counts
                    .entry((&o.external_user_id, &o.product_code))
                    .or_default() += 1;
                if o.fail.is_some() && o.stage > 0 {
                    failed += 1;
                }
            }
            if o.is_open() {
                open += 1;
            }
        }
        Inspection {
            balance: self.balance,
            total_charged: self.total_charged,
            total_refunded: self.total_refunded,
            issue_orders: counts
                .into_iter()
                .map(|((u, p), count)| IssueOrderCount {
                    external_user_id: u.to_owned(),
                    product_code: p.to_owned(),
                    count,
                })
                .collect(),
            calls: self.calls.clone(),
            orders: self.orders.len() as u64,
            open_orders: open,
            failed_orders: failed,
            cards: self.cards.len() as u64,
            users: self.users.len() as u64,
            cardholders: self.cardholders.len() as u64,
            rate_limited: self.counters.rate_limited,
            dropped: self.counters.dropped,
            injected_errors: self.counters.injected_errors,
            idempotent_replays: self.counters.idempotent_replays,
        }
    }
}
