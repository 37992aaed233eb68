//! The sandbox's webhook deliveries (REFERENCE.md §6): when an order reaches a terminal status,
//! every subscribed URL gets a POST with the project's `API-KEY` and the encrypted envelope of
//! `{"event": "order.completed", "data": <the order as orders/check answers it>}`, retried until
//! it gets a 200 (bounded: at-least-once, no backfill).
//!
//! Owns the dispatcher task, the delivery faults and the delivery counters. The world decides
//! when an order ended ([`World::take_ended`](super::world::World)); nothing here changes the
//! world. Every fault decision comes from one RNG seeded by the sandbox's seed, drawn in the order
//! orders end, so a run's decisions repeat with its seed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use super::Shared;
use super::world::EndedOrder;
use crate::wire::webhook::{Event, seal_delivery};
use crate::wire::{Key, Secret, assumed};

/// How often the dispatcher looks for orders that ended (while someone is subscribed).
const TICK: Duration = Duration::from_millis(5);

/// How long one delivery POST may take before it counts as failed.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// The secret forged deliveries are sealed with: anything but the project's.
const FORGED_SECRET: &str = "not-the-project-secret";

/// How deliveries misbehave. Each switch works on its own; the default delivers each event
/// once, at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WebhookFaults {
    /// Wait this long before each delivery.
    pub delay: Duration,
    /// Send every delivery this many extra times.
    pub duplicate: u32,
    /// The share of events never delivered (to any subscriber).
    pub drop_rate: f64,
    /// Deliver each event's terminal status, then an older non-terminal status of the same
    /// order; and shuffle the deliveries of the orders that ended together.
    pub reorder: bool,
    /// Per event, two extra deliveries a receiver must refuse: one with a wrong `API-KEY`, one
    /// sealed with a wrong secret (its MAC does not check out).
    pub forged: bool,
}

impl WebhookFaults {
    /// The switches that are on, for the banner.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.delay.is_zero() {
            out.push(format!("webhook delay {:?}", self.delay));
        }
        if self.duplicate > 0 {
            out.push(format!("webhook duplicates ×{}", self.duplicate + 1));
        }
        if self.drop_rate > 0.0 {
            out.push(format!("webhook drop rate {}", self.drop_rate));
        }
        if self.reorder {
            out.push("webhooks reordered".to_owned());
        }
        if self.forged {
            out.push("forged webhooks".to_owned());
        }
        out
    }
}

/// What the dispatcher did, served in the inspection. `responses` are the HTTP statuses the
/// genuine POSTs got (`error`: no answer), `forged_responses` those of the forged ones.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookStats {
    /// Orders that reached a terminal status while someone was subscribed.
    pub events: u64,
    /// Genuine POSTs sent, retries and duplicates included.
    pub posts: u64,
    /// Genuine deliveries (each copy) that ended with a 200.
    pub delivered: u64,
    /// Genuine deliveries given up after every attempt failed.
    pub given_up: u64,
    /// Events the drop fault never delivered.
    pub dropped: u64,
    /// Extra copies sent by the duplicate fault.
    pub duplicates: u64,
    /// Older, non-terminal statuses sent after the terminal one by the reorder fault.
    pub stale: u64,
    /// Forged POSTs sent, and how many of them a receiver answered 200 (it must not).
    pub forged: u64,
    pub forged_accepted: u64,
    pub responses: BTreeMap<String, u64>,
    pub forged_responses: BTreeMap<String, u64>,
}

/// What one POST carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Genuine,
    Stale,
    ForgedKey,
    ForgedMac,
}

/// One POST to make: its kind and body.
struct Post {
    kind: Kind,
    body: Vec<u8>,
}

/// The dispatcher's own state beside the sandbox's.
pub(super) struct Dispatcher {
    pub(super) faults: WebhookFaults,
    pub(super) stats: Mutex<WebhookStats>,
    rng: Mutex<StdRng>,
    forged_key: Key,
}

impl Dispatcher {
    pub(super) fn new(faults: WebhookFaults, seed: u64) -> Self {
        Dispatcher {
            faults,
            stats: Mutex::new(WebhookStats::default()),
            // Its own stream, so webhook faults do not shift the world's fault decisions.
            rng: Mutex::new(StdRng::seed_from_u64(seed ^ 0x5745_4248_4f4f_4b53)),
            forged_key: Key::from_secret(&Secret::new(FORGED_SECRET)),
        }
    }

    pub(super) fn stats(&self) -> WebhookStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn count(&self, f: impl FnOnce(&mut WebhookStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The POST sequences for the orders that ended together, to every URL, faults applied.
    /// Each sequence is sent in order by one task (a stale status after the terminal one).
    fn plan(&self, key: &Key, ended: &[EndedOrder], urls: &[String]) -> Vec<(String, Vec<Post>)> {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        let f = &self.faults;
        let mut jobs = Vec::new();
        for e in ended {
            self.count(|s| s.events += 1);
            if f.drop_rate > 0.0 && rng.random::<f64>() < f.drop_rate {
                self.count(|s| s.dropped += 1);
                continue;
            }
            let (Ok(genuine), Ok(stale)) = (seal(key, &e.order), seal(key, &e.stale)) else {
                continue;
            };
            for url in urls {
                let mut seq: Vec<Post> = (0..=f.duplicate)
                    .map(|_| Post {
                        kind: Kind::Genuine,
                        body: genuine.clone(),
                    })
                    .collect();
                if f.reorder {
                    seq.push(Post {
                        kind: Kind::Stale,
                        body: stale.clone(),
                    });
                }
                jobs.push((url.clone(), seq));
                if f.forged {
                    let Ok(bad_mac) = seal(&self.forged_key, &e.order) else {
                        continue;
                    };
                    for post in [
                        Post {
                            kind: Kind::ForgedKey,
                            body: genuine.clone(),
                        },
                        Post {
                            kind: Kind::ForgedMac,
                            body: bad_mac,
                        },
                    ] {
                        jobs.push((url.clone(), vec![post]));
                    }
                }
            }
        }
        if f.reorder {
            jobs.shuffle(&mut *rng);
        }
        jobs
    }
}

fn seal(key: &Key, order: &crate::wire::Order) -> Result<Vec<u8>, serde_json::Error> {
    seal_delivery(key, &Event::order(order)?)
}

/// Runs until aborted: every tick, takes the orders that ended and sends their deliveries.
/// Dropping (aborting) it drops every delivery still in flight with it.
pub(super) async fn run(shared: Arc<Shared>) {
    let http = reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .build()
        .unwrap_or_default();
    let mut in_flight = JoinSet::new();
    loop {
        tokio::time::sleep(TICK).await;
        while in_flight.try_join_next().is_some() {}
        let (ended, urls) = {
            let now = shared.clock.now_micros();
            let mut w = shared.world();
            if !w.has_subscriptions() {
                continue;
            }
            (w.take_ended(&shared.settings, now), w.subscribed_urls())
        };
        if ended.is_empty() {
            continue;
        }
        let jobs = shared.hooks.plan(&shared.settings.key, &ended, &urls);
        for (url, posts) in jobs {
            let (shared, http) = (shared.clone(), http.clone());
            in_flight.spawn(async move { deliver(&shared, &http, &url, posts).await });
        }
    }
}

/// Sends one sequence of POSTs in order, each genuine one retried until it gets a 200.
async fn deliver(shared: &Shared, http: &reqwest::Client, url: &str, posts: Vec<Post>) {
    let hooks = &shared.hooks;
    let delay = hooks.faults.delay;
    for (i, post) in posts.into_iter().enumerate() {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if i > 0 && post.kind == Kind::Genuine {
            hooks.count(|s| s.duplicates += 1);
        }
        let api_key = match post.kind {
            Kind::ForgedKey => format!("{}-forged", shared.settings.api_key),
            _ => shared.settings.api_key.clone(),
        };
        if matches!(post.kind, Kind::ForgedKey | Kind::ForgedMac) {
            let status = send(http, url, &api_key, &post.body).await;
            hooks.count(|s| {
                s.forged += 1;
                if status.as_deref() == Some("200") {
                    s.forged_accepted += 1;
                }
                *s.forged_responses
                    .entry(status.unwrap_or_else(|| "error".into()))
                    .or_default() += 1;
            });
            continue;
        }
        if post.kind == Kind::Stale {
            hooks.count(|s| s.stale += 1);
        }
        let mut wait = Duration::from_millis(assumed::WEBHOOK_RETRY_FIRST_MILLIS);
        let mut ok = false;
        for attempt in 1..=assumed::WEBHOOK_ATTEMPTS {
            let status = send(http, url, &api_key, &post.body).await;
            ok = status.as_deref() == Some("200");
            hooks.count(|s| {
                s.posts += 1;
                *s.responses
                    .entry(status.unwrap_or_else(|| "error".into()))
                    .or_default() += 1;
            });
            if ok || attempt == assumed::WEBHOOK_ATTEMPTS {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
        }
        hooks.count(|s| {
            if ok {
                s.delivered += 1
            } else {
                s.given_up += 1
            }
        });
    }
}

#[cfg(test)]
mod tests;

/// One POST; the HTTP status it got, `None` when no answer came.
async fn send(http: &reqwest::Client, url: &str, api_key: &str, body: &[u8]) -> Option<String> {
    http.post(url)
        .header("API-KEY", api_key)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_vec())
        .send()
        .await
        .ok()
        .map(|r| r.status().as_u16().to_string())
}
