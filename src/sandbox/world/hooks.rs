//! The world's side of webhooks (REFERENCE.md §6): the subscription endpoints and the queue of
//! orders that reached a terminal status, with the views a delivery carries.
//!
//! It decides nothing about delivering (when, how often, which faults): that is
//! `sandbox::webhooks`, which drains [`World::take_ended`] outside the world's lock.

use serde_json::{Map, Value};

use super::{ApiError, Settings, World, err, text, to_value};
use crate::wire::error::slug;
use crate::wire::webhook::{Subscription, SubscriptionList};
use crate::wire::{Endpoint, Order, assumed};

/// One order that reached a terminal status, as deliveries show it.
#[derive(Debug, Clone)]
pub(crate) struct EndedOrder {
    /// The order exactly as `orders/check` answers it now.
    pub order: Order,
    /// The same order as it was answered at its creation (not terminal): what a reordered,
    /// late delivery of an older status carries.
    pub stale: Order,
}

impl World {
    /// Queues an order that just reached the end of its timed side effects, if anyone listens.
    pub(super) fn order_ended(&mut self, id: String) {
        if !self.subscriptions.is_empty() {
            self.ended.push(id);
        }
    }

    /// Whether anyone is subscribed: the dispatcher only moves the world on for them.
    pub fn has_subscriptions(&self) -> bool {
        !self.subscriptions.is_empty()
    }

    /// The subscribed URLs, in subscription id order.
    pub fn subscribed_urls(&self) -> Vec<String> {
        self.subscriptions.values().cloned().collect()
    }

    /// Applies what is due by `now` and hands over the orders that ended since the last call,
    /// in the order they ended. One whose view is not terminal yet stays queued.
    pub fn take_ended(&mut self, s: &Settings, now: u64) -> Vec<EndedOrder> {
        self.advance(now);
        let ids = std::mem::take(&mut self.ended);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(o) = self.orders.get(&id) else {
                continue;
            };
            let order = self.order_view(s, o, now);
            if !order.status.is_terminal() {
                self.ended.push(id);
                continue;
            }
            let stale = self.order_view(s, o, o.created);
            out.push(EndedOrder { order, stale });
        }
        out
    }

    /// `wh/subscribe`, `wh/unsubscribe` and `wh/subscriptions` [assumed shapes: see
    /// `assumed::WEBHOOK_URL_FIELD`].
    pub(super) fn subscriptions_call(
        &mut self,
        endpoint: Endpoint,
        f: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        match endpoint {
            Endpoint::WhSubscribe => {
                let url = text(f, assumed::WEBHOOK_URL_FIELD)
                    .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                    .ok_or_else(|| {
                        err(
                            slug::INVALID_REQUEST,
                            "url is required: an http:// or https:// address",
                        )
                    })?;
                let existing = self.subscriptions.iter().find(|(_, u)| **u == url);
                let subscription_id = match existing {
                    Some((id, _)) => id.clone(),
                    None => {
                        let id = self.new_id("wh");
                        self.subscriptions.insert(id.clone(), url.clone());
                        self.dirty = true;
                        id
                    }
                };
                to_value(&Subscription {
                    subscription_id,
                    url,
                })
            }
            Endpoint::WhUnsubscribe => {
                let id = text(f, assumed::WEBHOOK_SUBSCRIPTION_ID_FIELD)
                    .ok_or_else(|| err(slug::INVALID_REQUEST, "subscription_id is required"))?;
                let url = self
                    .subscriptions
                    .remove(&id)
                    .ok_or_else(|| err(slug::INVALID_REQUEST, format!("no subscription {id}")))?;
                self.dirty = true;
                to_value(&Subscription {
                    subscription_id: id,
                    url,
                })
            }
            _ => to_value(&SubscriptionList {
                subscriptions: self
                    .subscriptions
                    .iter()
                    .map(|(id, url)| Subscription {
                        subscription_id: id.clone(),
                        url: url.clone(),
                    })
                    .collect(),
            }),
        }
    }
}
