//! The read-only dashboard: `GET /` (the page), `GET /assets/*` (its script, style and icon,
//! compiled into the binary: no front-end build step) and `GET /api/summary`, the JSON the page
//! draws. Pending approvals and the approve button go through `approvals`' own API.
//!
//! Owns what the summary says and how it is cut down for people who only need figures: no card
//! key, card id, last4, user id, secret or full name reaches it; people appear by initials only.
//! It must not write state nor decide anything. Money stays a decimal string end to end (the page
//! formats the string, never a float). The page has no inline script or style, so a CSP of
//! `default-src 'self'` (set by `serve` with the other secure headers) holds.

mod summary;
#[cfg(test)]
pub(crate) mod test_support;

use axum::Router;
use axum::extract::{Path, State as Extract};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

use super::State;
use super::metrics::{Cached, FLEET_TTL, unavailable};
pub use summary::{Summary, initials};

const INDEX: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");
const ICON: &str = include_str!("icon.svg");

/// The page, its assets and its data.
pub fn routes() -> Router<State> {
    let cache = Arc::new(Cached::<Summary>::new(FLEET_TTL));
    Router::new()
        .route(
            "/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route("/assets/{file}", get(asset))
        // Browsers ask for it on every page, the login form's too (so it is open: see `http`).
        .route(
            "/favicon.ico",
            get(|| async { page(ICON, "image/svg+xml") }),
        )
        .route(
            "/api/summary",
            get(move |Extract(shared): Extract<State>| async move {
                match cache.get(|| Summary::read(&shared)).await {
                    Ok(s) => axum::Json(summary::with_live(&s, &shared)).into_response(),
                    Err(e) => unavailable(&e),
                }
            }),
        )
}

async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "app.js" => page(APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => page(APP_CSS, "text/css; charset=utf-8"),
        "icon.svg" => page(ICON, "image/svg+xml"),
        _ => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// The figures change under the page, so nothing is cached by the browser.
fn page(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests;
