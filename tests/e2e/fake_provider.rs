//! A small, scriptable, fault-injecting provider for the client's tests.
//!
//! It implements only what REFERENCE.md states and, on purpose, the *other* allowed shapes than
//! the built-in sandbox: bare (unwrapped) encrypted success bodies, plain-JSON errors even after
//! authentication, `cards/products` as a bare array or `{"products": ..}`, extra unknown fields and
//! unknown status values. It uses `cardform::wire` for the envelope crypto only, never its types,
//! so client and fake cannot agree on anything the reference does not say.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use cardform::wire::{Key, Secret};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const API_KEY: &str = "fake-key-1";
pub const API_SECRET: &str = "fake-secret-1";

/// What the next matching request gets instead of (or on top of) normal service.
/// What an idempotency key remembers: endpoint, request fields, HTTP status, response.
type IdemEntry = (String, Map<String, Value>, u16, Result<Value, Value>);

#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status (and `Retry-After`, plain body) without doing anything.
    Status {
        code: u16,
        retry_after: Option<&'static str>,
        body: &'static str,
    },
    /// Carry the request out (charge, create the order), then close the connection unanswered.
    DropAfterExecute,
    /// Close the connection unanswered without doing anything.
    DropBefore,
    /// Wait this long, then serve normally.
    Delay(Duration),
    /// Serve normally but encrypt the answer with a key derived from another secret.
    ForeignKey,
    /// Answer with this status and an *encrypted* error body, without doing anything.
    EncryptedError { code: u16, slug: &'static str },
}

impl Fault {
    pub fn status(code: u16) -> Fault {
        Fault::Status {
            code,
            retry_after: None,
            body: "internal error",
        }
    }

    pub fn too_many(retry_after: Option<&'static str>) -> Fault {
        Fault::Status {
            code: 429,
            retry_after,
            body: r#"{"success":false,"error":"slow down","error_slug":"rate_limited"}"#,
        }
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub api_key: Option<String>,
    pub idempotency_key: Option<String>,
    pub content_type: Option<String>,
    /// Decrypted fields without `request_timestamp`; `None` when the body could not be opened.
    pub fields: Option<Map<String, Value>>,
    pub timestamp: Option<u64>,
    pub at: Instant,
}

pub struct FakeState {
    script: VecDeque<(Option<&'static str>, Fault)>,
    pub seen: Vec<Seen>,
    timestamps: HashSet<u64>,
    /// Added to the fake's clock, to simulate a skewed client.
    pub clock_offset_micros: i64,
    pub products_bare: bool,
    /// Idempotency key → (path, fields, HTTP status, answer) of the first request.
    idem: HashMap<String, IdemEntry>,
    pub orders: HashMap<String, Value>,
    order_checks: HashMap<String, u32>,
    pub balance: Decimal,
    pub charged: Decimal,
    next_id: u64,
}

pub struct FakeProvider {
    pub url: String,
    state: Arc<Mutex<FakeState>>,
}

type Shared = Arc<Mutex<FakeState>>;

fn lock(s: &Shared) -> MutexGuard<'_, FakeState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("literal decimal")
}

impl FakeProvider {
    pub async fn start() -> FakeProvider {
        let state = Arc::new(Mutex::new(FakeState {
            script: VecDeque::new(),
            seen: Vec::new(),
            timestamps: HashSet::new(),
            clock_offset_micros: 0,
            products_bare: true,
            idem: HashMap::new(),
            orders: HashMap::new(),
            order_checks: HashMap::new(),
            balance: dec("1000.00"),
            charged: Decimal::ZERO,
            next_id: 1,
        }));
        let app = Router::new()
            .route("/api/v1/{*path}", post(handle))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeProvider {
            url: format!("http://{addr}"),
            state,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.state)
    }

    /// The next `n` requests (to `path`, or to any path when `None`) get `fault`.
    pub fn script(&self, path: Option<&'static str>, n: usize, fault: Fault) {
        let mut st = self.state();
        for _ in 0..n {
            st.script.push_back((path, fault.clone()));
        }
    }

    pub fn seen_on(&self, path: &str) -> Vec<Seen> {
        self.state()
            .seen
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

fn key() -> Key {
    Key::from_secret(&Secret::new(API_SECRET))
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn plain_error(code: u16, slug: &str, message: &str) -> Response {
    let body = json!({"success": false, "error": message, "error_slug": slug}).to_string();
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        [("content-type", "application/json")],
        body,
    )
        .into_response()
}

/// Closes the connection with no response: unwinding out of the handler ends hyper's connection
/// task. `resume_unwind` skips the panic hook, so test output stays clean.
fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new("fake provider: dropping the connection"))
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn open(body: &[u8]) -> Option<(Map<String, Value>, u64)> {
    let outer: Value = serde_json::from_slice(body).ok()?;
    let plain = key().open(outer.get("encrypted")?.as_str()?).ok()?;
    let Value::Object(mut m) = serde_json::from_slice(&plain).ok()? else {
        return None;
    };
    let ts = m.remove("request_timestamp")?.as_u64()?;
    Some((m, ts))
}

const MUTATIONS: [&str; 4] = [
    "cards/create",
    "cards/topup",
    "cards/freeze",
    "cards/unfreeze",
];

async fn handle(
    State(s): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let opened = open(&body);
    let fault = {
        let mut st = lock(&s);
        st.seen.push(Seen {
            path: path.clone(),
            api_key: header(&headers, "API-KEY"),
            idempotency_key: header(&headers, "Idempotency-Key"),
            content_type: header(&headers, "content-type"),
            fields: opened.as_ref().map(|(f, _)| f.clone()),
            timestamp: opened.as_ref().map(|(_, t)| *t),
            at: Instant::now(),
        });
        let pos = st
            .script
            .iter()
            .position(|(p, _)| p.is_none_or(|p| p == path));
        pos.and_then(|i| st.script.remove(i)).map(|(_, f)| f)
    };
    let mut drop_after = false;
    let mut foreign = false;
    match fault {
        Some(Fault::Status {
            code,
            retry_after,
            body,
        }) => {
            let mut resp = (
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                body,
            )
                .into_response();
            if let Some(ra) = retry_after {
                resp.headers_mut()
                    .insert("Retry-After", ra.parse().expect("header value"));
            }
            return resp;
        }
        Some(Fault::DropBefore) => drop_connection(),
        Some(Fault::EncryptedError { code, slug }) => {
            let plain = json!({"success": false, "error": "refused", "error_slug": slug});
            let body = json!({"encrypted": key().seal(plain.to_string().as_bytes())});
            return (
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                [("content-type", "application/json")],
                body.to_string(),
            )
                .into_response();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::DropAfterExecute) => drop_after = true,
        Some(Fault::ForeignKey) => foreign = true,
        None => {}
    }

    if header(&headers, "API-KEY").as_deref() != Some(API_KEY) {
        return plain_error(401, "project_not_found", "unknown project");
    }
    let Some((fields, ts)) = opened else {
        return plain_error(
            400,
            "invalid_request",
            "request body could not be decrypted",
        );
    };
    let is_mutation = MUTATIONS.contains(&path.as_str());
    let idem_key = header(&headers, "Idempotency-Key");
    let (code, answer) = {
        let mut st = lock(&s);
        let now = now_micros() + st.clock_offset_micros;
        if (ts as i64 - now).abs() > 30_000_000 {
            return plain_error(
                400,
                "invalid_request",
                "request_timestamp outside the window",
            );
        }
        if !st.timestamps.insert(ts) {
            return plain_error(
                400,
                "invalid_request",
                "duplicate request_timestamp (replay)",
            );
        }
        match (is_mutation, &idem_key) {
            (true, None) => {
                return plain_error(400, "idempotency_key_required", "Idempotency-Key missing");
            }
            (true, Some(k)) => match st.idem.get(k) {
                Some((p, f, code, answer)) if *p == path && *f == fields => (*code, answer.clone()),
                Some(_) => {
                    return plain_error(409, "idempotency_key_conflict", "key reused");
                }
                None => {
                    let (code, answer) = execute(&mut st, &path, &fields);
                    st.idem
                        .insert(k.clone(), (path.clone(), fields, code, answer.clone()));
                    (code, answer)
                }
            },
            (false, _) => execute(&mut st, &path, &fields),
        }
    };
    if drop_after {
        drop_connection();
    }
    match answer {
        Ok(v) => {
            let k = if foreign {
                Key::from_secret(&Secret::new("someone-else's-secret"))
            } else {
                key()
            };
            // Bare, unwrapped success body: the other shape the reference allows.
            let body = json!({"encrypted": k.seal(v.to_string().as_bytes())}).to_string();
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::OK),
                [("content-type", "application/json")],
                body,
            )
                .into_response()
        }
        Err(err) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
            [("content-type", "application/json")],
            err.to_string(),
        )
            .into_response(),
    }
}

fn err(slug: &str, message: &str) -> Result<Value, Value> {
    Err(json!({"success": false, "error": message, "error_slug": slug}))
}

fn products() -> Value {
    json!([
        {"product_code": "VISA_USD_STD", "product_id": 11, "name": "Visa standard",
         "currency": "usd", "issue_fee": "5.00", "topup_fee_percent": "1.5",
         "topup_fee_fixed": "0.30", "min_topup": "10", "max_topup": "5000",
         "is_active": true, "subprovider_code": "sp1", "tier": "gold", "limits": {"daily": 5}},
        {"product_code": "MC_EUR_OLD", "name": "Retired", "currency": "eur",
         "is_active": false},
    ])
}

fn execute(st: &mut FakeState, path: &str, f: &Map<String, Value>) -> (u16, Result<Value, Value>) {
    let text = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_owned);
    match path {
        "cards/products" => {
            let list = products();
            (
                200,
                Ok(if st.products_bare {
                    list
                } else {
                    json!({"products": list, "page": 1})
                }),
            )
        }
        "project/balance" => (
            200,
            Ok(json!({"available": st.balance.to_string(), "currency": "usdt", "frozen": "0"})),
        ),
        "cards/create" => {
            let Some(user) = text("external_user_id") else {
                return (
                    400,
                    err("external_user_id_required", "external_user_id missing"),
                );
            };
            let code = text("product_code").unwrap_or_default();
            let list = products();
            let Some(p) = list
                .as_array()
                .and_then(|l| l.iter().find(|p| p["product_code"] == code.as_str()))
            else {
                return (404, err("product_not_found", "no such product"));
            };
            if p["is_active"] != true {
                return (422, err("product_not_active", "product disabled"));
            }
            let fee = dec(p["issue_fee"].as_str().unwrap_or("0"));
            let topup = text("initial_topup_amount").map(|a| dec(&a));
            let charge = fee + topup.unwrap_or_default();
            if charge > st.balance {
                return (402, err("insufficient_funds", "balance too low"));
            }
            let before = st.balance;
            st.balance -= charge;
            st.charged += charge;
            let id = format!("ord_{}", st.next_id);
            st.next_id += 1;
            let order = json!({
                "order_id": id, "order_type": "card_issue", "status": "new",
                "balance_before": before.to_string(), "balance_after": st.balance.to_string(),
                "data": {"external_user_id": user, "product_code": code},
                "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
                "issue_status": "card_create_pending", "is_issued": false,
            });
            st.orders.insert(id, order.clone());
            (201, Ok(order))
        }
        "orders/check" => {
            let id = text("order_id").unwrap_or_default();
            let checks = {
                let c = st.order_checks.entry(id.clone()).or_default();
                *c += 1;
                *c
            };
            let Some(order) = st.orders.get_mut(&id) else {
                return (404, err("order_not_found", "no such order"));
            };
            // An unknown status first (older copies and future ones have more), then completed.
            if checks == 1 {
                order["status"] = json!("under_review");
            } else {
                order["status"] = json!("completed");
                order["card_id"] = json!(format!("card_{id}"));
                order["issue_status"] = json!("initial_topup_skipped");
                order["completed_at"] = json!("2025-01-01T00:00:05Z");
            }
            (200, Ok(order.clone()))
        }
        "cards/get" => {
            let id = text("card_id").unwrap_or_default();
            if !id.starts_with("card_") {
                return (404, err("card_not_found", "no such card"));
            }
            (
                200,
                Ok(json!({
                    "card_id": id, "status": "active", "currency": "usd", "balance": "0.00",
                    "card_number": "4111111111111111", "cvv": 123, "expiry_month": 12,
                    "expiry_year": 2030, "brand": "visa",
                })),
            )
        }
        "cards/topup" | "cards/freeze" | "cards/unfreeze" => {
            let id = format!("ord_{}", st.next_id);
            st.next_id += 1;
            let kind = match path {
                "cards/topup" => "card_topup",
                "cards/freeze" => "card_freeze",
                _ => "card_unfreeze",
            };
            let order = json!({"order_id": id, "order_type": kind, "status": "processing",
                               "card_id": text("card_id"), "data": {}, "created_at": "x"});
            st.orders.insert(id, order.clone());
            (200, Ok(order))
        }
        "users/create" => (
            200,
            Ok(json!({"user_id": "u_1", "external_user_id": text("external_user_id")})),
        ),
        _ => (404, err("invalid_request", "unknown endpoint")),
    }
}
