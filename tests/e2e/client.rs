//! The HTTP client over real loopback HTTP against the fault-injecting fake provider.

use crate::fake_provider::{API_KEY, API_SECRET, FakeProvider, Fault};
use cardform::client::{Client, ClientConfig, ClientError, Jitter};
use cardform::wire::{
    BalanceRequest, CreateCardRequest, Endpoint, OrderStatus, Secret, TopupRequest,
};
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn config(fake: &FakeProvider) -> ClientConfig {
    ClientConfig {
        base_url: fake.url.clone(),
        api_key: Secret::new(API_KEY),
        api_secret: Secret::new(API_SECRET),
        rate: None,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(3),
        give_up_after: Duration::from_secs(30),
        max_retries: 4,
        backoff_base: Duration::from_millis(5),
    }
}

fn client(cfg: ClientConfig) -> Client {
    Client::with_jitter(cfg, Jitter::seeded(1)).expect("valid config")
}

fn create(user: &str) -> CreateCardRequest {
    CreateCardRequest {
        product_code: Some("VISA_USD_STD".into()),
        product_id: None,
        external_user_id: user.into(),
        initial_topup_amount: Some("20.00".parse().expect("decimal")),
    }
}

fn d(s: &str) -> Decimal {
    s.parse().expect("decimal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_envelope_and_lenient_shapes() {
    let fake = FakeProvider::start().await;
    let c = client(config(&fake));

    let bal = c.balance().await.expect("balance");
    assert_eq!(bal.available, d("1000.00"));

    // Bare array, then the wrapped object; unknown fields in both.
    let bare = c.products().await.expect("bare products");
    fake.state().products_bare = false;
    let wrapped = c.products().await.expect("wrapped products");
    assert_eq!(bare, wrapped);
    assert_eq!(bare.len(), 2);
    assert_eq!(bare[0].issue_fee, Some(d("5.00")));
    assert!(!bare[1].is_active);
    assert_eq!(bare[1].issue_fee, None, "missing fee stays unknown");

    let order = c
        .call(&create("u-1"), Some("key-hdr-1"))
        .await
        .expect("create");
    assert_eq!(order.status, OrderStatus::New);
    assert_eq!(order.charge(), Some(d("25.00")));

    let first = c.check_order(&order.order_id).await.expect("check 1");
    assert_eq!(first.status, OrderStatus::Unknown("under_review".into()));
    let done = c.check_order(&order.order_id).await.expect("check 2");
    assert!(done.status.is_terminal());
    let card = c
        .get_card(done.card_id.as_deref().expect("card id"))
        .await
        .expect("card");
    assert_eq!(card.last4().as_deref(), Some("1111"));
    assert!(!format!("{card:?}").contains("4111111111111111"));

    let seen = fake.state().seen.clone();
    assert_eq!(seen.len(), 7);
    for s in &seen {
        assert_eq!(s.api_key.as_deref(), Some(API_KEY), "{}", s.path);
        assert_eq!(s.content_type.as_deref(), Some("application/json"));
        assert!(s.fields.is_some(), "body decryptable with the secret");
        let expect_key = s.path == "cards/create";
        assert_eq!(s.idempotency_key.is_some(), expect_key, "{}", s.path);
    }
    let create_seen = &fake.seen_on("cards/create")[0];
    assert_eq!(create_seen.idempotency_key.as_deref(), Some("key-hdr-1"));
    let fields = create_seen.fields.as_ref().expect("fields");
    assert_eq!(fields["external_user_id"], "u-1");
    assert_eq!(fields["initial_topup_amount"], "20.00", "money as a string");
    assert!(!fields.contains_key("data"), "fields at the root");

    let stats = c.stats();
    assert_eq!(stats.requests_to(Endpoint::Products), 2);
    assert_eq!(stats.requests_to(Endpoint::OrdersCheck), 2);
    assert_eq!(stats.total_requests(), 7);
    assert_eq!(stats.retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_calls_get_distinct_timestamps() {
    let fake = FakeProvider::start().await;
    let c = client(config(&fake));
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move {
                if i % 2 == 0 {
                    c.call(&BalanceRequest {}, None).await.map(|_| ())
                } else {
                    let req = TopupRequest {
                        card_id: format!("card_{i}"),
                        amount: Decimal::TEN,
                    };
                    c.call(&req, Some(&format!("topup-{i}"))).await.map(|_| ())
                }
            })
        })
        .collect();
    for t in tasks {
        t.await
            .expect("task")
            .expect("every call accepted (no replay rejection)");
    }
    let seen = fake.state().seen.clone();
    assert_eq!(seen.len(), 200);
    let ts: Vec<u64> = seen
        .iter()
        .map(|s| s.timestamp.expect("decryptable"))
        .collect();
    let distinct: HashSet<_> = ts.iter().collect();
    assert_eq!(distinct.len(), 200, "no timestamp handed out twice");
    assert_eq!(c.stats().retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_then_succeeds() {
    let fake = FakeProvider::start().await;
    let c = client(config(&fake));
    fake.script(Some("project/balance"), 1, Fault::status(500));
    fake.script(Some("project/balance"), 1, Fault::status(502));
    c.balance().await.expect("third attempt succeeds");
    let seen = fake.seen_on("project/balance");
    assert_eq!(seen.len(), 3);
    let ts: Vec<_> = seen.iter().map(|s| s.timestamp.expect("ts")).collect();
    assert!(
        ts[0] < ts[1] && ts[1] < ts[2],
        "fresh timestamp per attempt"
    );
    let stats = c.stats();
    assert_eq!(stats.retries, 2);
    assert_eq!(stats.server_errors, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honours_retry_after_and_slows_down() {
    let fake = FakeProvider::start().await;
    let mut cfg = config(&fake);
    cfg.rate = Some(50.0);
    let c = client(cfg);
    fake.script(None, 1, Fault::too_many(Some("1")));
    let start = Instant::now();
    c.balance().await.expect("after the wait");
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    let seen = fake.seen_on("project/balance");
    assert_eq!(seen.len(), 2);
    assert!(seen[1].at.duration_since(seen[0].at) >= Duration::from_secs(1));
    let stats = c.stats();
    assert_eq!(stats.rate_limited, 1);
    let rate = stats.current_rate.expect("limited");
    assert!(rate < 50.0, "rate reduced, got {rate}");

    // Unlimited client: a 429 (here without Retry-After, so backoff) with nothing accepted
    // before it says nothing about the rate; one after five accepted calls in the same second
    // limits it to those five, less the headroom (5 − 1 = 4/s).
    let c2 = client(config(&fake));
    assert_eq!(c2.stats().current_rate, None);
    fake.script(None, 1, Fault::too_many(None));
    c2.balance().await.expect("retried");
    assert_eq!(c2.stats().current_rate, None);
    let c3 = client(config(&fake));
    for _ in 0..5 {
        c3.balance().await.expect("accepted");
    }
    fake.script(None, 1, Fault::too_many(None));
    c3.balance().await.expect("retried");
    assert_eq!(c3.stats().current_rate, Some(4.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_response_on_create_is_retried_with_same_key_and_body() {
    let fake = FakeProvider::start().await;
    let c = client(config(&fake));
    fake.script(Some("cards/create"), 1, Fault::DropAfterExecute);
    let order = c
        .call(&create("u-lost"), Some("idem-lost-1"))
        .await
        .expect("retry gets the original order");

    let seen = fake.seen_on("cards/create");
    assert_eq!(seen.len(), 2, "one lost, one retried");
    assert_eq!(seen[0].idempotency_key.as_deref(), Some("idem-lost-1"));
    assert_eq!(seen[0].idempotency_key, seen[1].idempotency_key);
    assert_eq!(seen[0].fields, seen[1].fields, "same body");
    assert_ne!(seen[0].timestamp, seen[1].timestamp);

    let st = fake.state();
    assert_eq!(st.orders.len(), 1, "one order");
    assert!(st.orders.contains_key(&order.order_id));
    assert_eq!(st.charged, d("25.00"), "one charge");
    assert_eq!(st.balance, d("975.00"));
    drop(st);
    assert_eq!(c.stats().connection_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_errors_are_surfaced_with_hints_and_not_retried() {
    let fake = FakeProvider::start().await;
    let c = client(config(&fake));
    let mut req = create("u-2");
    req.product_code = Some("NOPE".into());
    let e = c
        .call(&req, Some("k-nope"))
        .await
        .expect_err("unknown product");
    assert_eq!(e.slug(), Some("product_not_found"));
    assert!(!e.is_retryable());
    assert!(e.hint().contains("product_code"), "{}", e.hint());
    match &e {
        ClientError::Provider(p) => assert_eq!(p.http_status, 404),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.seen_on("cards/create").len(), 1, "not retried");

    // Same key, different body: conflict, not retried.
    let e = c
        .call(&create("u-2"), Some("k-nope"))
        .await
        .expect_err("conflict");
    assert_eq!(e.slug(), Some("idempotency_key_conflict"));

    // Wrong API key.
    let mut cfg = config(&fake);
    cfg.api_key = Secret::new("wrong-key");
    let e = client(cfg).balance().await.expect_err("wrong key");
    assert_eq!(e.slug(), Some("project_not_found"));
    assert!(e.hint().contains("CARDFORM_API_KEY"));
    assert!(!e.to_string().contains("wrong-key"), "key not echoed");

    // Clock skew.
    fake.state().clock_offset_micros = 120_000_000;
    let e = c.balance().await.expect_err("skewed");
    assert_eq!(e.slug(), Some("invalid_request"));
    assert!(e.hint().contains("±30 s"), "{}", e.hint());
    fake.state().clock_offset_micros = 0;

    assert_eq!(c.stats().retries, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_is_fatal_with_a_secret_hint() {
    let fake = FakeProvider::start().await;

    // The provider cannot open our body: it says so in plain JSON.
    let mut cfg = config(&fake);
    cfg.api_secret = Secret::new("not-the-secret");
    let e = client(cfg).balance().await.expect_err("refused");
    assert!(e.hint().contains("CARDFORM_API_SECRET"), "{}", e.hint());
    assert!(!format!("{e} {e:?}").contains("not-the-secret"));

    // We cannot open the provider's answer.
    let c = client(config(&fake));
    fake.script(None, 1, Fault::ForeignKey);
    let e = c.balance().await.expect_err("undecryptable");
    assert!(matches!(e, ClientError::Fatal(_)), "{e:?}");
    assert!(e.hint().contains("CARDFORM_API_SECRET"), "{}", e.hint());
    assert!(!e.is_retryable());
    assert_eq!(fake.seen_on("project/balance").len(), 2, "not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_rate_limit_paces_calls() {
    let fake = FakeProvider::start().await;
    let mut cfg = config(&fake);
    cfg.rate = Some(20.0);
    let c = client(cfg);
    let start = Instant::now();
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.balance().await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("balance");
    }
    // 30 calls paced evenly a little under 20/s (19/s), no burst: at least 29 / 19 = 1.53 s.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    assert_eq!(c.stats().current_rate, Some(19.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_retries_report_the_last_failure() {
    let fake = FakeProvider::start().await;
    let mut cfg = config(&fake);
    cfg.max_retries = 2;
    let c = client(cfg);
    fake.script(None, 10, Fault::status(503));
    let e = c
        .call(&create("u-3"), Some("k-503"))
        .await
        .expect_err("gives up");
    match &e {
        ClientError::Exhausted {
            endpoint,
            attempts,
            last,
        } => {
            assert_eq!(*endpoint, "cards/create");
            assert_eq!(*attempts, 3);
            assert!(last.contains("503"), "{last}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_retryable());
    let seen = fake.seen_on("cards/create");
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|s| s.idempotency_key.as_deref() == Some("k-503"))
    );
    assert_eq!(fake.state().orders.len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_dropped_connections_are_retried() {
    let fake = FakeProvider::start().await;
    let mut cfg = config(&fake);
    cfg.request_timeout = Duration::from_millis(300);
    let c = client(cfg);
    fake.script(None, 1, Fault::Delay(Duration::from_secs(2)));
    fake.script(None, 1, Fault::DropBefore);
    c.balance().await.expect("third attempt");
    let stats = c.stats();
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.connection_errors, 2);
    assert_eq!(stats.retries, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_exhausts_and_mutation_needs_a_key() {
    let fake = FakeProvider::start().await;
    let c = client(config(&fake));
    let e = c.call(&create("u-4"), None).await.expect_err("no key");
    assert!(matches!(e, ClientError::Fatal(_)), "{e:?}");
    assert!(fake.state().seen.is_empty(), "nothing sent");

    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let mut cfg = config(&fake);
    cfg.base_url = format!("http://127.0.0.1:{port}/api/v1/");
    cfg.max_retries = 1;
    let c = client(cfg);
    // Refused before the provider ever answered: a wrong URL, reported without retrying.
    let e = c.balance().await.expect_err("refused");
    assert!(matches!(e, ClientError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    assert!(e.hint().contains("CARDFORM_API_URL"));
    assert!(!e.is_retryable());
    assert_eq!(c.stats().connection_errors, 1);

    for bad in ["", "not a url", "ftp://x"] {
        let mut cfg = config(&fake);
        cfg.base_url = bad.into();
        assert!(
            matches!(Client::new(cfg), Err(ClientError::Fatal(_))),
            "{bad}"
        );
    }
    let cfg = ClientConfig {
        api_secret: Secret::new("top-secret-value"),
        api_key: Secret::new("key-value"),
        ..config(&fake)
    };
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains("top-secret-value") && !dbg.contains("key-value"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_errors_even_on_2xx_and_wrong_base_url() {
    let fake = FakeProvider::start().await;
    let c = client(config(&fake));
    fake.script(
        None,
        1,
        Fault::EncryptedError {
            code: 200,
            slug: "insufficient_funds",
        },
    );
    let e = c
        .call(&create("u-5"), Some("k-enc"))
        .await
        .expect_err("success:false is an error on 2xx too");
    assert_eq!(e.slug(), Some("insufficient_funds"));
    assert!(matches!(&e, ClientError::Provider(p) if p.http_status == 200));
    fake.script(
        None,
        1,
        Fault::EncryptedError {
            code: 404,
            slug: "order_not_found",
        },
    );
    let e = c.check_order("ord_x").await.expect_err("encrypted 404");
    assert_eq!(e.slug(), Some("order_not_found"));
    assert_eq!(fake.state().seen.len(), 2, "neither retried");

    // A base URL that reaches a server but not the API: no provider error body.
    let mut cfg = config(&fake);
    cfg.base_url = format!("{}/elsewhere", fake.url);
    let e = client(cfg)
        .balance()
        .await
        .expect_err("404 from the router");
    assert!(
        matches!(e, ClientError::Fatal(ref m) if m.contains("CARDFORM_API_URL")),
        "{e:?}"
    );
}

// ------------------------------------------------------------------ against the built-in sandbox

mod against_sandbox {
    use super::d;
    use cardform::client::{Client, ClientConfig, ClientError, Jitter};
    use cardform::sandbox::{self, SandboxConfig, SandboxHandle};
    use cardform::wire::{
        CardStatus, CreateCardRequest, CreateCardholderRequest, CreateUserRequest, FreezeRequest,
        Order, OrderStatus, OrderType, Secret, TopupRequest, UnfreezeRequest,
    };
    use std::time::{Duration, Instant};

    async fn start(cfg: SandboxConfig) -> (SandboxHandle, Client) {
        let secret = cfg.api_secret.clone();
        let key = cfg.api_key.clone();
        let sb = sandbox::spawn(SandboxConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..cfg
        })
        .await
        .expect("sandbox starts");
        let client = Client::with_jitter(
            ClientConfig {
                base_url: sb.base_url(),
                api_key: Secret::new(key),
                api_secret: secret,
                backoff_base: Duration::from_millis(5),
                ..ClientConfig::default()
            },
            Jitter::seeded(3),
        )
        .expect("client");
        (sb, client)
    }

    fn quick() -> SandboxConfig {
        SandboxConfig {
            order_latency: Duration::from_millis(200),
            ..SandboxConfig::default()
        }
    }

    fn issue(user: &str, product: &str, topup: Option<&str>) -> CreateCardRequest {
        CreateCardRequest {
            product_code: Some(product.into()),
            product_id: None,
            external_user_id: user.into(),
            initial_topup_amount: topup.map(d),
        }
    }

    async fn until_terminal(c: &Client, order: &Order) -> Order {
        let deadline = Instant::now() + Duration::from_secs(4);
        loop {
            let o = c.check_order(&order.order_id).await.expect("orders/check");
            if o.status.is_terminal() {
                return o;
            }
            assert!(Instant::now() < deadline, "order stuck in {}", o.status);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_endpoint() {
        let (sb, c) = start(quick()).await;
        let products = c.products().await.expect("products");
        let std = products
            .iter()
            .find(|p| p.product_code == "VISA_USD_STD")
            .expect("VISA_USD_STD listed");
        assert!(std.is_active);
        assert!(products.iter().any(|p| !p.is_active));
        let before = c.balance().await.expect("balance").available;

        c.call(
            &CreateUserRequest {
                external_user_id: "sb-u1".into(),
            },
            None,
        )
        .await
        .expect("users/create");
        let holder = c
            .call(
                &CreateCardholderRequest {
                    external_user_id: "sb-u1".into(),
                    subprovider_code: sandbox::SUBPROVIDER.into(),
                    first_name: "Ada".into(),
                    last_name: "Lovelace".into(),
                    birth_date: "1990-12-10".into(),
                    email: "ada@example.com".into(),
                    phone_number_full: "+4915112345678".into(),
                    country_iso: "DE".into(),
                },
                None,
            )
            .await
            .expect("cardholders/create");
        assert!(!holder.cardholder_id.is_empty());

        let req = issue("sb-u1", "VISA_USD_STD", Some("50.00"));
        let order = c.call(&req, Some("sb-issue-1")).await.expect("create");
        assert_eq!(order.order_type, OrderType::CardIssue);
        let expected = std.issue_charge(Some(d("50.00"))).expect("published fees");
        assert_eq!(order.charge(), Some(expected));
        let done = until_terminal(&c, &order).await;
        assert_eq!(done.status, OrderStatus::Completed);
        let card_id = done.card_id.clone().expect("card id");
        let card = c.get_card(&card_id).await.expect("cards/get");
        assert_eq!(card.status, CardStatus::Active);
        let pan = card.card_number.as_ref().expect("pan").expose().to_owned();
        assert!(sandbox::luhn_valid(&pan));
        assert!(!format!("{card:?}").contains(&pan));

        let topup = c
            .call(
                &TopupRequest {
                    card_id: card_id.clone(),
                    amount: d("20.00"),
                },
                Some("sb-topup-1"),
            )
            .await
            .expect("topup");
        assert_eq!(
            until_terminal(&c, &topup).await.status,
            OrderStatus::Completed
        );
        let freeze = FreezeRequest {
            card_id: card_id.clone(),
            external_user_id: "sb-u1".into(),
        };
        let f = c.call(&freeze, Some("sb-freeze-1")).await.expect("freeze");
        until_terminal(&c, &f).await;
        assert_eq!(
            c.get_card(&card_id).await.expect("card").status,
            CardStatus::Frozen
        );
        let unfreeze = UnfreezeRequest {
            card_id: card_id.clone(),
            external_user_id: "sb-u1".into(),
        };
        let u = c
            .call(&unfreeze, Some("sb-unfreeze-1"))
            .await
            .expect("unfreeze");
        until_terminal(&c, &u).await;
        assert_eq!(
            c.get_card(&card_id).await.expect("card").status,
            CardStatus::Active
        );

        let after = c.balance().await.expect("balance").available;
        let inspect = sb.inspect();
        assert_eq!(before - after, inspect.total_charged);
        assert_eq!(c.stats().retries, 0);
        assert_eq!(
            c.stats().total_requests(),
            inspect.calls.values().sum::<u64>()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idempotent_replay_and_conflict() {
        let (sb, c) = start(quick()).await;
        let req = issue("sb-u2", "VISA_USD_STD", None);
        let a = c.call(&req, Some("sb-replay")).await.expect("first");
        let b = c.call(&req, Some("sb-replay")).await.expect("replay");
        assert_eq!(a.order_id, b.order_id);
        let other = issue("sb-u2", "MC_EUR_PREMIUM", None);
        let e = c
            .call(&other, Some("sb-replay"))
            .await
            .expect_err("conflict");
        assert_eq!(e.slug(), Some("idempotency_key_conflict"));
        let inspect = sb.inspect();
        assert_eq!(inspect.issue_count("sb-u2", "VISA_USD_STD"), 1);
        assert_eq!(inspect.issue_count("sb-u2", "MC_EUR_PREMIUM"), 0);
        assert_eq!(inspect.total_charged, a.charge().expect("charge"));
        assert_eq!(inspect.idempotent_replays, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lost_responses_are_charged_once() {
        let (sb, c) = start(SandboxConfig {
            drop_rate: 1.0,
            ..quick()
        })
        .await;
        let mut ids = Vec::new();
        for i in 0..3 {
            let req = issue(&format!("sb-drop-{i}"), "VISA_USD_STD", Some("10.00"));
            let o = c
                .call(&req, Some(&format!("sb-drop-key-{i}")))
                .await
                .expect("the retry under the same key gets the order");
            ids.push(o);
        }
        let inspect = sb.inspect();
        assert_eq!(inspect.dropped, 3);
        assert_eq!(
            inspect.calls_to("cards/create"),
            6,
            "each create sent twice"
        );
        for i in 0..3 {
            assert_eq!(
                inspect.issue_count(&format!("sb-drop-{i}"), "VISA_USD_STD"),
                1
            );
        }
        let charged: rust_decimal::Decimal = ids.iter().filter_map(Order::charge).sum();
        assert_eq!(inspect.total_charged, charged, "charged once per card");
        assert_eq!(c.stats().connection_errors, 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn provider_slugs_are_surfaced_and_not_retried() {
        let (sb, c) = start(SandboxConfig {
            balance: d("10.00"),
            not_ready_users: vec!["sb-kyc".into()],
            ..quick()
        })
        .await;
        let cases: [(CreateCardRequest, &str); 4] = [
            (issue("sb-u3", "NOPE", None), "product_not_found"),
            (
                issue("sb-u3", "VISA_USD_LEGACY", None),
                "product_not_active",
            ),
            (
                issue("sb-kyc", "VISA_USD_STD", None),
                "cardholder_not_ready",
            ),
            (issue("sb-u3", "MC_EUR_PREMIUM", None), "insufficient_funds"),
        ];
        for (i, (req, slug)) in cases.iter().enumerate() {
            let e = c
                .call(req, Some(&format!("sb-slug-{i}")))
                .await
                .expect_err(slug);
            assert_eq!(e.slug(), Some(*slug), "{e:?}");
            assert!(matches!(e, ClientError::Provider(_)));
            assert!(!e.hint().is_empty());
        }
        let e = c.get_card("card_missing").await.expect_err("no card");
        assert!(
            matches!(e.slug(), Some("card_not_found" | "invalid_card_id")),
            "{e:?}"
        );
        let e = c.check_order("ord_missing").await.expect_err("no order");
        assert_eq!(e.slug(), Some("order_not_found"));
        assert_eq!(sb.inspect().calls_to("cards/create"), 4, "none retried");
        assert_eq!(c.stats().retries, 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limit_and_injected_errors_are_absorbed() {
        let (sb, c) = start(SandboxConfig {
            rate_limit: Some(10),
            error_rate: 0.3,
            seed: 7,
            ..quick()
        })
        .await;
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.balance().await })
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("absorbed by retries");
        }
        let inspect = sb.inspect();
        let stats = c.stats();
        assert!(inspect.rate_limited > 0);
        assert_eq!(stats.rate_limited, inspect.rate_limited);
        assert_eq!(stats.server_errors, inspect.injected_errors);
        assert!(stats.current_rate.is_some(), "limiting after 429s");
    }
}
