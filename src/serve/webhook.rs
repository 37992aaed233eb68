//! The provider's webhook, received (`POST /webhooks/provider`, REFERENCE.md §6), and the
//! subscription the leader keeps for it.
//!
//! A delivery is checked by itself (not by the serve token): the `API-KEY` header in constant
//! time, then the envelope with the project's secret, then the event. What fails is refused
//! (401, counted); a terminal order goes to the [`Inbox`] (a duplicate is counted and answered
//! 200, so the provider stops retrying); an unknown event is answered 200 and ignored. This file
//! must not settle anything: the executor's `track` takes delivered orders and settles them
//! through the same checks as polled ones.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use super::{Config, Counters, Shared, log};
use crate::client::{Client, ClientError};
use crate::exec::inbox::{Inbox, Received};
use crate::wire::webhook::{
    Delivery, SubscribeRequest, Subscription, UnsubscribeRequest, acknowledgement, open_delivery,
};
use crate::wire::{Key, Secret};

/// Where the provider delivers, under `--public-url`.
pub const WEBHOOK_PATH: &str = "/webhooks/provider";

/// What a delivery must carry to be believed: the project's API key (in its header) and an
/// envelope sealed with the project's secret.
pub struct Check {
    api_key: Secret,
    key: Key,
}

impl Check {
    pub fn new(api_key: &str, api_secret: &Secret) -> Self {
        Check {
            api_key: Secret::new(api_key),
            key: Key::from_secret(api_secret),
        }
    }

    /// The check of deliveries from the provider `client` talks to.
    pub fn of_client(client: &Client) -> Self {
        let (api_key, key) = client.delivery_credentials();
        Check {
            api_key: api_key.clone(),
            key: key.clone(),
        }
    }
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Check(***)")
    }
}

/// The provider's webhook route. Not behind the serve token: a delivery proves itself.
pub fn routes() -> Router<super::State> {
    Router::new().route(WEBHOOK_PATH, post(provider))
}

async fn provider(State(shared): State<super::State>, headers: HeaderMap, body: Bytes) -> Response {
    let api_key = headers.get("API-KEY").and_then(|v| v.to_str().ok());
    let Some(check) = &shared.webhook_check else {
        Counters::bump(&shared.counters.webhooks_refused);
        return (StatusCode::UNAUTHORIZED, axum::Json(refused())).into_response();
    };
    let (status, body) = receive(check, &shared.inbox, &shared.counters, api_key, &body);
    (status, axum::Json(body)).into_response()
}

/// Decides one delivery: the status and plain JSON body to answer with.
pub fn receive(
    check: &Check,
    inbox: &Inbox,
    counters: &Counters,
    api_key: Option<&str>,
    body: &[u8],
) -> (StatusCode, serde_json::Value) {
    match open_delivery(&check.key, check.api_key.expose(), api_key, body) {
        Err(e) => {
            Counters::bump(&counters.webhooks_refused);
            log::warn("webhook refused", json!({"error": e.to_string()}));
            (StatusCode::UNAUTHORIZED, refused())
        }
        Ok(Delivery::Other(event)) => {
            log::info(
                "webhook ignored: not an event cardform follows",
                json!({"event": event}),
            );
            (StatusCode::OK, acknowledgement())
        }
        Ok(Delivery::Order(order)) => {
            match inbox.deliver(*order) {
                Received::Accepted => Counters::bump(&counters.webhooks_accepted),
                Received::Duplicate => Counters::bump(&counters.webhooks_duplicate),
                // An older status than one already seen, or an order still open: polling
                // follows open orders.
                Received::NotTerminal => {}
            }
            (StatusCode::OK, acknowledgement())
        }
    }
}

fn refused() -> serde_json::Value {
    serde_json::json!({"success": false, "error": "delivery refused"})
}

/// The URL the provider is told to deliver to, under `public_url`.
pub fn delivery_url(public_url: &str) -> String {
    format!("{}{WEBHOOK_PATH}", public_url.trim_end_matches('/'))
}

/// Subscribes `public_url`'s webhook route (the leader does, when it starts leading).
pub async fn subscribe(client: &Client, public_url: &str) -> Result<Subscription, ClientError> {
    client
        .call(
            &SubscribeRequest {
                url: delivery_url(public_url),
            },
            None,
        )
        .await
}

/// Ends a subscription (the leader does, when it steps down or is told to stop).
pub async fn unsubscribe(client: &Client, subscription: &Subscription) -> Result<(), ClientError> {
    client
        .call(
            &UnsubscribeRequest {
                subscription_id: subscription.subscription_id.clone(),
            },
            None,
        )
        .await
        .map(drop)
}

/// The inbox a reconcile's run waits on: only while the provider delivers to this replica.
/// Without a subscription every order would wait out the fallback deadline before its polling.
/// The leader subscribes `--public-url`'s webhook route before each run: subscribing a URL that
/// is subscribed already costs one call and changes nothing, and it puts back a subscription a
/// replica that stepped down behind the same URL took away. A refusal is logged and the run
/// polls as without webhooks.
pub async fn inbox_for_runs(shared: &Shared, config: &Config) -> Option<Arc<Inbox>> {
    let public_url = config.public_url.as_deref()?;
    shared.webhook_check.as_ref()?;
    let sub = match subscribe(&shared.client, public_url).await {
        Ok(sub) => sub,
        Err(e) => {
            log::warn(
                "webhooks not subscribed: polling only",
                json!({"error": e.to_string()}),
            );
            return None;
        }
    };
    let mut held = shared
        .subscription
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if held.as_ref() != Some(&sub) {
        log::info(
            "webhooks subscribed",
            json!({"subscription_id": sub.subscription_id, "url": sub.url}),
        );
    }
    *held = Some(sub);
    Some(shared.inbox.clone())
}

/// On stepping down (or stopping): ends this replica's subscription, so the next leader's is
/// the only one. A delivery already on its way is still taken in; nobody waits for it, so it
/// leaves the inbox when it expires, and the next leader polls that order.
pub async fn stop_leading(shared: &Shared) {
    let sub = shared
        .subscription
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some(sub) = sub else {
        return;
    };
    match unsubscribe(&shared.client, &sub).await {
        Ok(()) => log::info(
            "webhooks unsubscribed",
            json!({"subscription_id": sub.subscription_id}),
        ),
        Err(e) => log::warn(
            "webhooks: could not unsubscribe",
            json!({"subscription_id": sub.subscription_id, "error": e.to_string()}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::webhook::{Event, seal_delivery};
    use crate::wire::{Order, SystemClock};

    fn order(id: &str, status: &str) -> Order {
        serde_json::from_value(serde_json::json!({
            "order_id": id, "order_type": "card_issue", "status": status,
            "data": {}, "created_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    fn setup() -> (Check, Inbox, Counters, Key) {
        let secret = Secret::new("project-secret");
        (
            Check::new("project-key", &secret),
            Inbox::new(Arc::new(SystemClock)),
            Counters::default(),
            Key::from_secret(&secret),
        )
    }

    fn body(key: &Key, o: &Order) -> Vec<u8> {
        seal_delivery(key, &Event::order(o).unwrap()).unwrap()
    }

    #[test]
    fn a_terminal_order_is_accepted_once_then_counted_as_duplicate() {
        let (check, inbox, counters, key) = setup();
        let b = body(&key, &order("o1", "completed"));
        for _ in 0..3 {
            let (status, reply) = receive(&check, &inbox, &counters, Some("project-key"), &b);
            assert_eq!(status, StatusCode::OK);
            assert_eq!(reply, serde_json::json!({"success": true}));
        }
        assert_eq!(Counters::get(&counters.webhooks_accepted), 1);
        assert_eq!(Counters::get(&counters.webhooks_duplicate), 2);
        assert!(inbox.take("o1").is_some());
    }

    #[test]
    fn forged_deliveries_are_refused_and_counted() {
        let (check, inbox, counters, key) = setup();
        let good = body(&key, &order("o2", "completed"));
        let (status, _) = receive(&check, &inbox, &counters, Some("wrong-key"), &good);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = receive(&check, &inbox, &counters, None, &good);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let other = Key::from_secret(&Secret::new("not-it"));
        let bad_mac = body(&other, &order("o2", "completed"));
        let (status, _) = receive(&check, &inbox, &counters, Some("project-key"), &bad_mac);
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = receive(&check, &inbox, &counters, Some("project-key"), b"{}");
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(Counters::get(&counters.webhooks_refused), 4);
        assert_eq!(Counters::get(&counters.webhooks_accepted), 0);
        assert_eq!(inbox.pending(), 0, "nothing refused reaches the inbox");
    }

    #[test]
    fn stale_statuses_and_unknown_events_are_acknowledged_and_ignored() {
        let (check, inbox, counters, key) = setup();
        let stale = body(&key, &order("o3", "processing"));
        let (status, _) = receive(&check, &inbox, &counters, Some("project-key"), &stale);
        assert_eq!(status, StatusCode::OK);
        let other = seal_delivery(
            &key,
            &Event {
                event: "card.closed".into(),
                data: serde_json::Value::Null,
            },
        )
        .unwrap();
        let (status, _) = receive(&check, &inbox, &counters, Some("project-key"), &other);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(inbox.pending(), 0);
        assert_eq!(Counters::get(&counters.webhooks_accepted), 0);
        assert_eq!(Counters::get(&counters.webhooks_refused), 0);
    }

    #[test]
    fn the_delivery_url_is_under_the_public_url() {
        assert_eq!(
            delivery_url("https://cf.example/"),
            "https://cf.example/webhooks/provider"
        );
    }
}
