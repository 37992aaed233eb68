//! The SQLite store (sqlx): schema migrations, snapshots, the order journal, the change log, the
//! audit of provider calls and the state lock. The only place in cardform that holds SQL.
//!
//! It records what it is told and answers questions about it; it must not decide what to do (that
//! is `plan` and `exec`), and it must never store a card number or CVV (no column could hold one).

// `StateError::Locked` carries the holder inline because callers match on it and print it; the
// error path is rare, so its size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod lock;
pub mod model;
mod rows;
mod schema;
mod store;

pub use lock::{LockInfo, LockRequest, local_host};
pub use model::*;
pub use schema::SCHEMA_VERSION;
pub use store::Store;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Who started a run and what it does; `at` is RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInfo {
    pub command: String,
    pub user: String,
    pub host: String,
    pub at: String,
}

/// One command that wrote state, with its own serial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub serial: u64,
    pub at: String,
    pub finished_at: Option<String>,
    pub user: String,
    pub host: String,
    pub command: String,
    /// Whatever the command chose to summarise (counts, money); `{}` until the run finishes.
    pub summary: serde_json::Value,
}

/// One provider call that changed something (or tried to). Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    /// RFC 3339.
    pub at: String,
    pub endpoint: String,
    pub idempotency_key: Option<String>,
    pub order_id: Option<String>,
    pub card_key: Option<String>,
    /// `"ok"` or the error slug.
    pub result: String,
    #[serde(with = "crate::wire::decimal::option", default)]
    pub charge: Option<Decimal>,
}

/// Everything that can go wrong reading or writing state.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StateError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("state database error: {0}")]
    Sqlx(#[from] sqlx::Error),

    #[error(
        "{path}: written by a newer cardform (schema {found}, this build supports {supported}): upgrade cardform"
    )]
    #[diagnostic(help(
        "this state was not modified; run a cardform release that knows schema {found}"
    ))]
    NewerSchema {
        found: i64,
        supported: i64,
        path: PathBuf,
    },

    #[error("{}", lock::locked_message(.0))]
    Locked(LockInfo),

    #[error("not found: {0}")]
    NotFound(String),

    #[error("state is corrupt or not a cardform state: {0}")]
    Corrupt(String),

    /// The journal already holds this idempotency key for a different request: sending it again
    /// would either be refused by the provider or, worse, return an unrelated order.
    #[error(
        "order journal conflict: idempotency key {key} is already journaled for a different request"
    )]
    JournalConflict { key: String },

    #[error("serial {0} has no run: call begin_run first")]
    UnknownSerial(u64),

    #[error("invalid timestamp {value:?}: expected RFC 3339 (e.g. 2025-01-31T12:00:00Z)")]
    InvalidTimestamp { value: String },
}

/// The time seam: every timestamp the store makes itself comes from here.
pub fn now() -> String {
    jiff::Timestamp::now().to_string()
}
