//! The sandbox's deliveries against a receiver on loopback that checks them as `serve` does:
//! one test per fault mode, each on its own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

use crate::client::{Client, ClientConfig};
use crate::sandbox::{self, SandboxConfig, SandboxHandle, WebhookFaults};
use crate::wire::webhook::{
    Delivery, SubscribeRequest, SubscriptionsRequest, UnsubscribeRequest, open_delivery,
};
use crate::wire::{CheckOrderRequest, CreateCardRequest, Key, Order, Secret};

const LATENCY: Duration = Duration::from_millis(30);

/// What the receiver saw: every POST, checked, in arrival order.
#[derive(Default)]
struct Seen {
    /// Orders that passed the check, with when they came.
    orders: Vec<(Instant, Order)>,
    refused: usize,
    /// Answer the first this many good deliveries with a 500.
    fail_first: usize,
}

type Log = Arc<Mutex<Seen>>;

async fn receive(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let key = Key::from_secret(&Secret::new("sandbox-secret"));
    let api_key = headers.get("API-KEY").and_then(|v| v.to_str().ok());
    let mut seen = log.lock().unwrap();
    match open_delivery(&key, "sandbox-key", api_key, &body) {
        Ok(Delivery::Order(o)) => {
            if seen.fail_first > 0 {
                seen.fail_first -= 1;
                return StatusCode::INTERNAL_SERVER_ERROR;
            }
            seen.orders.push((Instant::now(), *o));
            StatusCode::OK
        }
        Ok(Delivery::Other(_)) => StatusCode::OK,
        Err(_) => {
            seen.refused += 1;
            StatusCode::UNAUTHORIZED
        }
    }
}

/// A sandbox with `faults`, a receiver subscribed to it, and a client.
async fn setup(faults: WebhookFaults, fail_first: usize) -> (SandboxHandle, Client, Log) {
    let log: Log = Arc::new(Mutex::new(Seen {
        fail_first,
        ..Seen::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(log.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let sb = sandbox::spawn(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        order_latency: LATENCY,
        seed: 7,
        webhooks: faults,
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let client = Client::new(ClientConfig {
        base_url: sb.base_url(),
        api_key: Secret::new("sandbox-key"),
        api_secret: Secret::new("sandbox-secret"),
        ..ClientConfig::default()
    })
    .unwrap();
    let sub = client.call(&SubscribeRequest { url }, None).await.unwrap();
    assert!(sub.subscription_id.starts_with("wh_"));
    (sb, client, log)
}

/// Creates `n` issue orders; their ids.
async fn issue(client: &Client, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let req = CreateCardRequest {
            product_code: Some("VISA_USD_STD".into()),
            product_id: None,
            external_user_id: format!("u-{i}"),
            initial_topup_amount: None,
        };
        let o = client.call(&req, Some(&format!("k-{i}"))).await.unwrap();
        ids.push(o.order_id);
    }
    ids
}

/// Waits until `done` holds of the sandbox's counters (at most 5 s).
async fn until(sb: &SandboxHandle, done: impl Fn(&sandbox::WebhookStats) -> bool) {
    let start = Instant::now();
    while !done(&sb.inspect().webhooks) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out: {:?}",
            sb.inspect().webhooks
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ids_of(log: &Log) -> Vec<String> {
    let seen = log.lock().unwrap();
    seen.orders
        .iter()
        .map(|(_, o)| o.order_id.clone())
        .collect()
}

#[tokio::test]
async fn without_faults_each_terminal_order_is_delivered_once_as_orders_check_shows_it() {
    let (sb, client, log) = setup(WebhookFaults::default(), 0).await;
    let ids = issue(&client, 4).await;
    until(&sb, |s| s.delivered == 4).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let got = log.lock().unwrap().orders.clone();
    assert_eq!(got.len(), 4);
    for (_, o) in &got {
        assert!(ids.contains(&o.order_id));
        assert!(o.status.is_terminal());
        let checked: Order = client
            .call(
                &CheckOrderRequest {
                    order_id: o.order_id.clone(),
                },
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            *o, checked,
            "the delivery is the order exactly as orders/check answers it"
        );
    }
    let s = sb.inspect().webhooks;
    assert_eq!((s.events, s.posts, s.given_up, s.dropped), (4, 4, 0, 0));
    assert_eq!(s.responses.get("200"), Some(&4));
}

#[tokio::test]
async fn a_delivery_is_retried_until_it_gets_a_200() {
    let (sb, client, log) = setup(WebhookFaults::default(), 2).await;
    issue(&client, 1).await;
    until(&sb, |s| s.delivered == 1).await;
    let s = sb.inspect().webhooks;
    assert_eq!(s.posts, 3);
    assert_eq!(s.responses.get("500"), Some(&2));
    assert_eq!(ids_of(&log).len(), 1);
}

#[tokio::test]
async fn duplicate_sends_every_delivery_again() {
    let faults = WebhookFaults {
        duplicate: 2,
        ..WebhookFaults::default()
    };
    let (sb, client, log) = setup(faults, 0).await;
    let ids = issue(&client, 3).await;
    until(&sb, |s| s.delivered == 9).await;
    let got = ids_of(&log);
    for id in &ids {
        assert_eq!(got.iter().filter(|g| *g == id).count(), 3);
    }
    assert_eq!(sb.inspect().webhooks.duplicates, 6);
}

#[tokio::test]
async fn drop_never_delivers_a_share_of_the_orders_the_same_under_the_same_seed() {
    let mut dropped = Vec::new();
    for _ in 0..2 {
        let faults = WebhookFaults {
            drop_rate: 0.5,
            ..WebhookFaults::default()
        };
        let (sb, client, log) = setup(faults, 0).await;
        issue(&client, 10).await;
        until(&sb, |s| s.events == 10).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = sb.inspect().webhooks;
        assert!(s.dropped > 0 && s.dropped < 10, "{s:?}");
        assert_eq!(ids_of(&log).len() as u64, 10 - s.dropped);
        assert_eq!(s.delivered, 10 - s.dropped);
        dropped.push(s.dropped);
    }
    assert_eq!(dropped[0], dropped[1], "decided by the seed");
}

#[tokio::test]
async fn reorder_delivers_an_older_status_after_the_terminal_one() {
    let faults = WebhookFaults {
        reorder: true,
        ..WebhookFaults::default()
    };
    let (sb, client, log) = setup(faults, 0).await;
    let ids = issue(&client, 3).await;
    until(&sb, |s| s.delivered == 6).await;
    let got = log.lock().unwrap().orders.clone();
    for id in &ids {
        let mine: Vec<&Order> = got
            .iter()
            .map(|(_, o)| o)
            .filter(|o| &o.order_id == id)
            .collect();
        assert_eq!(mine.len(), 2);
        assert!(mine[0].status.is_terminal());
        assert!(!mine[1].status.is_terminal(), "the stale one comes last");
    }
    assert_eq!(sb.inspect().webhooks.stale, 3);
}

#[tokio::test]
async fn forged_deliveries_are_sent_and_refused_by_a_checking_receiver() {
    let faults = WebhookFaults {
        forged: true,
        ..WebhookFaults::default()
    };
    let (sb, client, log) = setup(faults, 0).await;
    issue(&client, 2).await;
    until(&sb, |s| s.delivered == 2 && s.forged == 4).await;
    let s = sb.inspect().webhooks;
    assert_eq!(s.forged_accepted, 0);
    assert_eq!(s.forged_responses.get("401"), Some(&4));
    assert_eq!(log.lock().unwrap().refused, 4);
    assert_eq!(ids_of(&log).len(), 2);
}

#[tokio::test]
async fn delay_holds_each_delivery_back() {
    let faults = WebhookFaults {
        delay: Duration::from_millis(300),
        ..WebhookFaults::default()
    };
    let (sb, client, log) = setup(faults, 0).await;
    let sent = Instant::now();
    issue(&client, 1).await;
    until(&sb, |s| s.delivered == 1).await;
    let (at, _) = log.lock().unwrap().orders[0].clone();
    assert!(at - sent >= LATENCY + Duration::from_millis(300));
}

#[tokio::test]
async fn unsubscribing_stops_deliveries_and_nothing_is_backfilled() {
    let (sb, client, log) = setup(WebhookFaults::default(), 0).await;
    let list = client.call(&SubscriptionsRequest {}, None).await.unwrap();
    assert_eq!(list.subscriptions.len(), 1);
    let id = list.subscriptions[0].subscription_id.clone();
    client
        .call(
            &UnsubscribeRequest {
                subscription_id: id,
            },
            None,
        )
        .await
        .unwrap();
    issue(&client, 2).await;
    tokio::time::sleep(LATENCY * 4).await;
    let s = sb.inspect().webhooks;
    assert_eq!((s.events, s.posts), (0, 0));
    assert!(ids_of(&log).is_empty());
}
