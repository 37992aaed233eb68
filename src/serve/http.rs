//! The one router of `serve`: its own routes (`/healthz`, `/readyz`, `/api/reconcile`,
//! `/login`), the parts' routers merged in, and what every response gets: the token check
//! (bearer or the login cookie; everything but `/healthz`, `/login` and the provider's webhook),
//! secure headers and body-size limits.
//!
//! Owns authentication and the response headers; must not hold a part's logic. A refused
//! request learns nothing but "unauthorized".

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State as Extract};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::sync::atomic::Ordering;

use super::State;

/// Most requests carry a small JSON body, or none.
pub const BODY_LIMIT: usize = 64 * 1024;
/// The provider's webhook deliveries may be larger (a batch of card events).
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// How long `/readyz` waits for the state and the provider to answer.
const READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(3);

/// The name of the cookie `POST /login` sets.
pub const SESSION_COOKIE: &str = "cardform_session";

/// Paths answered without the token: liveness, the login form, the icon browsers fetch for it
/// (unanswered, Chromium logs a console error on the login page), and the provider's webhook
/// (checked by its own API key and envelope).
const OPEN_PATHS: &[&str] = &["/healthz", "/login", "/favicon.ico", "/webhooks/provider"];

/// Every route of `serve`, behind the token where it must be, with the secure headers.
pub fn router(state: State) -> Router {
    let own = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/reconcile", post(reconcile))
        .route("/login", get(login_form).post(login));
    // PARTS: each part's `routes()` is merged here as its branch lands:
    let parts: Router<State> = Router::new()
        .merge(crate::serve::approvals::routes())
        .merge(crate::serve::dashboard::routes())
        .merge(crate::serve::metrics::routes());
    // The webhook keeps its own, larger body limit:
    let webhook = crate::serve::webhook::routes().layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT));
    own.merge(parts)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .merge(webhook)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::map_response(secure_headers))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(json!({"status": "ok"}))
}

/// Ready when state answers and the provider answers; 503 naming which does not.
async fn readyz(Extract(state): Extract<State>) -> Response {
    // A probe answers within its own deadline, whatever the client's retries would wait for.
    let within = |ok: Result<bool, _>| ok.unwrap_or(false);
    let (state_ok, provider_ok) = tokio::join!(
        tokio::time::timeout(READY_WITHIN, async { state.store.serial().await.is_ok() }),
        tokio::time::timeout(READY_WITHIN, async {
            let balance = crate::wire::BalanceRequest {};
            state.client.call(&balance, None).await.is_ok()
        }),
    );
    let (state_ok, provider_ok) = (within(state_ok), within(provider_ok));
    let leader = state.counters.leader.load(Ordering::Relaxed);
    let body = json!({
        "state": if state_ok { "ok" } else { "unreachable" },
        "provider": if provider_ok { "ok" } else { "unreachable" },
        "leader": leader,
    });
    let code = if state_ok && provider_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn reconcile(Extract(state): Extract<State>) -> Response {
    state.trigger.ask();
    let leader = state.counters.leader.load(Ordering::Relaxed);
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"status": "accepted", "leader": leader})),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "not found"})),
    )
        .into_response()
}

const LOGIN_PAGE: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>cardform serve: sign in</title></head><body><h1>cardform serve</h1>\
<form method=\"post\" action=\"/login\"><label>Token <input type=\"password\" name=\"token\" \
autocomplete=\"current-password\" required></label> <button type=\"submit\">Sign in</button>\
</form></body></html>\n";

async fn login_form() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        LOGIN_PAGE,
    )
        .into_response()
}

/// `token=…` (a form post) checked against the token; sets the session cookie and goes to `/`.
/// An address that sent wrong tokens waits its turn first, right token or not, so that giving
/// up on a slow answer tells a guesser nothing.
async fn login(
    Extract(state): Extract<State>,
    extensions: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Response {
    // Without it (a router driven in a test) every client is one address.
    let ip = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let now = tokio::time::Instant::now();
    let turn = state.login_throttle.turn(ip, now.into_std());
    tokio::time::sleep_until(turn.into()).await;
    let given = form_value(&body, "token").unwrap_or_default();
    if !same(given.as_bytes(), state.token.expose().as_bytes()) {
        state
            .login_throttle
            .failed(ip, tokio::time::Instant::now().into_std());
        return unauthorized();
    }
    state.login_throttle.succeeded(ip);
    let cookie = format!(
        "{SESSION_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/",
        session_value(state.token.expose())
    );
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/")
        .header(header::SET_COOKIE, cookie)
        .body(Body::empty())
        .unwrap_or_else(|_| unauthorized())
}

/// The value of `name` in an `application/x-www-form-urlencoded` body.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the session cookie holds: a digest of the token, so the token itself never sits in a
/// browser, and every replica (sharing the token) accepts it.
pub fn session_value(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"cardform serve session\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

/// Equal, in time that does not depend on where the first difference is.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The request carries the token (`Authorization: Bearer …`) or the session cookie.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(given) = bearer {
        return same(given.trim().as_bytes(), token.as_bytes());
    }
    let expected = session_value(token);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == SESSION_COOKIE && same(v.as_bytes(), expected.as_bytes()))
}

async fn authenticate(Extract(state): Extract<State>, request: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&request.uri().path())
        || authorized(request.headers(), state.token.expose())
    {
        return next.run(request).await;
    }
    unauthorized()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "unauthorized"})),
    )
        .into_response()
}

/// What every response carries, whoever made it.
async fn secure_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    let set = [
        ("content-security-policy", "default-src 'self'"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ];
    for (name, value) in set {
        h.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"abcdefghijklmnop", b"abcdefghijklmnop"));
        assert!(!same(b"abcdefghijklmnop", b"abcdefghijklmnoq"));
        assert!(!same(b"abc", b"abcd"));
    }

    #[test]
    fn bearer_or_cookie_and_nothing_else() {
        let token = "0123456789abcdef-token";
        let mut h = HeaderMap::new();
        assert!(!authorized(&h, token));
        h.insert(header::AUTHORIZATION, "Bearer wrong".parse().unwrap());
        assert!(!authorized(&h, token));
        h.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert!(authorized(&h, token));
        let mut c = HeaderMap::new();
        c.insert(
            header::COOKIE,
            format!("a=b; {SESSION_COOKIE}={}", session_value(token))
                .parse()
                .unwrap(),
        );
        assert!(authorized(&c, token));
        let mut raw = HeaderMap::new();
        raw.insert(
            header::COOKIE,
            format!("{SESSION_COOKIE}={token}").parse().unwrap(),
        );
        assert!(!authorized(&raw, token));
    }

    #[test]
    fn form_values_are_decoded() {
        assert_eq!(
            form_value(b"a=1&token=x%2By+z", "token").as_deref(),
            Some("x+y z")
        );
        assert_eq!(form_value(b"a=1", "token"), None);
    }
}
