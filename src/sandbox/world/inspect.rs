//! The operator's view of the world (`GET /__sandbox/inspect`): balance, totals, order and call
//! counts, fault counters, users and cardholders per person with their KYC status now.
//!
//! Read-only apart from applying due events first; it must not count itself as a call.

use std::collections::BTreeMap;

use super::orders::Kind;
use super::{Inspection, IssueOrderCount, PersonCount, World};

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
        let mut people: BTreeMap<&str, PersonCount> = BTreeMap::new();
        let mut kyc: BTreeMap<String, u64> = BTreeMap::new();
        let person = |uid: &str| PersonCount {
            external_user_id: uid.to_owned(),
            users: 0,
            cardholders: 0,
            kyc: BTreeMap::new(),
        };
        for uid in self.users.keys() {
            people.entry(uid).or_insert_with(|| person(uid)).users += 1;
        }
        let mut holders = 0;
        for (uid, subs) in &self.cardholders {
            let p = people.entry(uid).or_insert_with(|| person(uid));
            for (sub, h) in subs {
                let status = h.kyc_status(now).to_string();
                p.cardholders += 1;
                p.kyc.insert(sub.clone(), status.clone());
                *kyc.entry(status).or_default() += 1;
                holders += 1;
            }
        }
        Inspection {
            balance: self.balance,
            total_charged: self.total_charged,
            total_refunded: self.total_refunded,
            total_deposited: self.total_deposited,
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
            cardholders: holders,
            rate_limited: self.counters.rate_limited,
            dropped: self.counters.dropped,
            injected_errors: self.counters.injected_errors,
            idempotent_replays: self.counters.idempotent_replays,
            people: people.into_values().collect(),
            kyc,
            webhooks: Default::default(),
        }
    }
}
