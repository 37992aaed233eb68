//! The approvals' HTTP API: `GET /api/approvals` lists the plans that waited (newest first), and
//! `POST /api/approvals/{id}/approve` (optional JSON `{"by": "name"}`) approves a pending one and
//! asks for a reconcile to apply it at once. Behind the token (the `serve` router puts it there).
//!
//! Answers requests only: what is within policy and what applies is `policy`'s and the
//! reconcile loop's; it never sends anything to the provider.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::state::{Approval, StateError};

/// The longest approver name taken: a name, not a document.
const MAX_BY: usize = 100;

/// Who approves when the request does not say.
const DEFAULT_BY: &str = "api";

pub fn routes() -> axum::Router<super::State> {
    axum::Router::new()
        .route("/api/approvals", get(list))
        .route("/api/approvals/{id}/approve", post(approve))
}

async fn list(State(shared): State<super::State>) -> Response {
    match shared.store.approvals().await {
        Ok(mut all) => {
            all.reverse();
            Json(serde_json::json!({ "approvals": all })).into_response()
        }
        Err(e) => failed(&e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    by: Option<String>,
}

async fn approve(
    State(shared): State<super::State>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let by = match approver(&body) {
        Ok(by) => by,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let result: Result<Approval, StateError> = shared.store.approve(&id, &by).await;
    let answer = match result {
        Ok(approval) => {
            tracing::info!(target: "cardform::serve", approval = %approval.id, by = %by, "plan approved");
            // Applied now, not at the next interval: the dashboard's button should act at once.
            shared.trigger.ask();
            (StatusCode::OK, Json(approval)).into_response()
        }
        Err(e @ StateError::NotFound(_)) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ StateError::NotPending { .. }) => error(StatusCode::CONFLICT, &e.to_string()),
        Err(e) => return failed(&e),
    };
    if let Err(e) = super::policy::refresh_pending(&shared).await {
        tracing::warn!(target: "cardform::serve", error = %e, "pending approvals not recounted");
    }
    answer
}

/// The approver named by the body (none, or `{"by": "name"}`), checked.
fn approver(body: &[u8]) -> Result<String, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_BY.to_owned());
    }
    let parsed: ApproveBody = serde_json::from_slice(body)
        .map_err(|e| format!("the body must be JSON like {{\"by\": \"name\"}}: {e}"))?;
    match parsed.by {
        None => Ok(DEFAULT_BY.to_owned()),
        Some(by) => check_name(&by),
    }
}

/// An approver's name as recorded: trimmed, not empty, at most [`MAX_BY`] characters, no control
/// characters (it is shown in terminals and logs).
pub fn check_name(by: &str) -> Result<String, String> {
    let by = by.trim();
    if by.is_empty() || by.chars().count() > MAX_BY || by.chars().any(char::is_control) {
        return Err(format!(
            "\"by\" must be a name of 1 to {MAX_BY} characters without control characters"
        ));
    }
    Ok(by.to_owned())
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// State could not answer: logged in full, answered without detail.
fn failed(e: &StateError) -> Response {
    tracing::error!(target: "cardform::serve", error = %e, "approvals: state failed");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "state could not be read or written",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_names_the_approver_or_the_default_does() {
        assert_eq!(approver(b"").unwrap(), "api");
        assert_eq!(approver(b"{}").unwrap(), "api");
        assert_eq!(
            approver(br#"{"by": " ops-oncall "}"#).unwrap(),
            "ops-oncall"
        );
        assert!(approver(br#"{"by": ""}"#).is_err());
        assert!(approver(br#"{"by": "a\u001bb"}"#).is_err());
        assert!(approver(br#"{"who": "x"}"#).is_err());
        assert!(approver(b"not json").is_err());
        assert!(approver(format!(r#"{{"by": "{}"}}"#, "x".repeat(101)).as_bytes()).is_err());
    }
}
