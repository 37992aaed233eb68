//! Webhooks as data (REFERENCE.md §6): the subscription calls, a delivery's body, and the check
//! a receiver makes of one (API-KEY in constant time, then the envelope, then the event).
//!
//! Shared by the sandbox (which seals deliveries) and `serve` (which opens them), so both agree
//! on the bytes. No I/O here. Every shape that is not documented is named in [`assumed`].

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::assumed;
use super::types::{Call, Endpoint, Order};
use super::{Envelope, Key};

/// `wh/subscribe` [assumed shape].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscribeRequest {
    pub url: String,
}

/// One subscription, as `wh/subscribe`, `wh/unsubscribe` and `wh/subscriptions` answer it
/// [assumed shape].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    #[serde(alias = "id")]
    pub subscription_id: String,
    #[serde(default)]
    pub url: String,
}

impl Call for SubscribeRequest {
    const ENDPOINT: Endpoint = Endpoint::WhSubscribe;
    type Response = Subscription;
}

/// `wh/unsubscribe` [assumed shape].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnsubscribeRequest {
    pub subscription_id: String,
}

impl Call for UnsubscribeRequest {
    const ENDPOINT: Endpoint = Endpoint::WhUnsubscribe;
    type Response = Subscription;
}

/// `wh/subscriptions`: no fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionsRequest {}

/// The answer of `wh/subscriptions` [assumed shape; a bare array is accepted too].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubscriptionList {
    pub subscriptions: Vec<Subscription>,
}

impl<'de> Deserialize<'de> for SubscriptionList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Wrapped { subscriptions: Vec<Subscription> },
            Bare(Vec<Subscription>),
        }
        Ok(match Either::deserialize(d)? {
            Either::Wrapped { subscriptions } | Either::Bare(subscriptions) => {
                SubscriptionList { subscriptions }
            }
        })
    }
}

impl Call for SubscriptionsRequest {
    const ENDPOINT: Endpoint = Endpoint::WhSubscriptions;
    type Response = SubscriptionList;
}

/// The decrypted body of one delivery [assumed shape: `assumed::WEBHOOK_EVENT_FIELD`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event: String,
    #[serde(default)]
    pub data: Value,
}

impl Event {
    /// The event of an order that reached a terminal status.
    pub fn order(order: &Order) -> Result<Self, serde_json::Error> {
        Ok(Event {
            event: assumed::WEBHOOK_ORDER_EVENT.to_owned(),
            data: serde_json::to_value(order)?,
        })
    }
}

/// What a delivery that passed the check says.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// An order event: the order as `orders/check` answers it (maybe not terminal: a stale
    /// delivery of an older status).
    Order(Box<Order>),
    /// An event this build does not know: acknowledged and ignored.
    Other(String),
}

/// Why a delivery was refused. The receiver answers 401 to every one alike, so a forger learns
/// nothing of which part failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeliveryError {
    #[error("the API-KEY header is missing or wrong")]
    ApiKey,
    #[error("the body is not an encrypted envelope")]
    NotEnvelope,
    #[error("the envelope does not open with the project's secret: {0}")]
    Envelope(#[from] super::EnvelopeError),
    #[error("the decrypted delivery is not an event: {0}")]
    Shape(String),
}

/// Compares two strings in time that depends on neither's content: both are hashed first, so
/// the comparison runs over 32 bytes whatever the lengths, and no early exit shows where they
/// first differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    let diff = x
        .iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q));
    std::hint::black_box(diff) == 0
}

/// The whole check of one delivery: the API-KEY (constant time), the envelope with the project
/// secret's key, then the event. Only what passes all three is looked at.
pub fn open_delivery(
    key: &Key,
    api_key: &str,
    sent_api_key: Option<&str>,
    body: &[u8],
) -> Result<Delivery, DeliveryError> {
    if !sent_api_key.is_some_and(|k| same_secret(k, api_key)) {
        return Err(DeliveryError::ApiKey);
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|_| DeliveryError::NotEnvelope)?;
    let plaintext = key.open(&envelope.encrypted)?;
    let event: Event =
        serde_json::from_slice(&plaintext).map_err(|e| DeliveryError::Shape(e.to_string()))?;
    if event.event != assumed::WEBHOOK_ORDER_EVENT {
        return Ok(Delivery::Other(event.event));
    }
    serde_json::from_value::<Order>(event.data)
        .map(|o| Delivery::Order(Box::new(o)))
        .map_err(|e| DeliveryError::Shape(format!("{}: {e}", assumed::WEBHOOK_ORDER_EVENT)))
}

/// The body of one delivery: `{"encrypted": ...}` of the event, sealed with `key`.
pub fn seal_delivery(key: &Key, event: &Event) -> Result<Vec<u8>, serde_json::Error> {
    let plaintext = serde_json::to_vec(event)?;
    serde_json::to_vec(&Envelope {
        encrypted: key.seal(&plaintext),
    })
}

/// The body a receiver answers every delivery it accepts with (REFERENCE.md §6 [doc]).
pub fn acknowledgement() -> Value {
    serde_json::json!({ "success": true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{OrderStatus, Secret};

    fn key(s: &str) -> Key {
        Key::from_secret(&Secret::new(s))
    }

    fn order(status: &str) -> Order {
        serde_json::from_value(serde_json::json!({
            "order_id": "ord_1", "order_type": "card_issue", "status": status,
            "card_id": "card_1", "balance_before": "100.00", "balance_after": "95.00",
            "data": {}, "created_at": "2026-01-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn a_sealed_order_event_opens_to_the_same_order() {
        let k = key("s");
        let body = seal_delivery(&k, &Event::order(&order("completed")).unwrap()).unwrap();
        let got = open_delivery(&k, "api", Some("api"), &body).unwrap();
        let Delivery::Order(o) = got else {
            panic!("expected an order, got {got:?}")
        };
        assert_eq!(*o, order("completed"));
        assert_eq!(o.status, OrderStatus::Completed);
    }

    #[test]
    fn wrong_or_missing_api_key_is_refused_before_anything_is_opened() {
        let k = key("s");
        let body = seal_delivery(&k, &Event::order(&order("completed")).unwrap()).unwrap();
        assert_eq!(
            open_delivery(&k, "api", Some("apj"), &body),
            Err(DeliveryError::ApiKey)
        );
        assert_eq!(
            open_delivery(&k, "api", None, &body),
            Err(DeliveryError::ApiKey)
        );
        assert_eq!(
            open_delivery(&k, "api", Some(""), b"garbage"),
            Err(DeliveryError::ApiKey)
        );
    }

    #[test]
    fn wrong_secret_bad_mac_and_garbage_are_refused() {
        let body = seal_delivery(&key("other"), &Event::order(&order("failed")).unwrap()).unwrap();
        assert!(matches!(
            open_delivery(&key("s"), "api", Some("api"), &body),
            Err(DeliveryError::Envelope(crate::wire::EnvelopeError::Decrypt))
        ));
        assert_eq!(
            open_delivery(&key("s"), "api", Some("api"), b"{}"),
            Err(DeliveryError::NotEnvelope)
        );
        let k = key("s");
        let sealed = k.seal(b"[1,2]");
        let body = serde_json::to_vec(&Envelope { encrypted: sealed }).unwrap();
        assert!(matches!(
            open_delivery(&k, "api", Some("api"), &body),
            Err(DeliveryError::Shape(_))
        ));
    }

    #[test]
    fn unknown_events_pass_the_check_and_are_named() {
        let k = key("s");
        let ev = Event {
            event: "card.closed".into(),
            data: Value::Null,
        };
        let body = seal_delivery(&k, &ev).unwrap();
        assert_eq!(
            open_delivery(&k, "api", Some("api"), &body),
            Ok(Delivery::Other("card.closed".into()))
        );
    }

    #[test]
    fn same_secret_compares_content_not_length() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert!(!same_secret("", "a"));
    }

    #[test]
    fn subscription_shapes_are_lenient() {
        let s: Subscription = serde_json::from_str(r#"{"id":"wh_1"}"#).unwrap();
        assert_eq!(s.subscription_id, "wh_1");
        let l: SubscriptionList =
            serde_json::from_str(r#"[{"subscription_id":"a","url":"u"}]"#).unwrap();
        assert_eq!(l.subscriptions.len(), 1);
        let l: SubscriptionList = serde_json::from_str(r#"{"subscriptions":[]}"#).unwrap();
        assert!(l.subscriptions.is_empty());
    }
}
