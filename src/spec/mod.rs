//! Declarations: reading YAML and CSV files into validated [`DesiredCard`]s, with a source span for
//! every error. Must not touch the network or state.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The status a declaration asks for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStatus {
    #[default]
    Active,
    Frozen,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Active => "active",
            DesiredStatus::Frozen => "frozen",
        }
    }
}

/// Where a declaration came from, for messages that point back at it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct Origin {
    pub file: String,
    /// 1-based line of the card's entry (its `key` in YAML, its row in CSV).
    pub line: usize,
}

/// One card as the user declared it, after defaults are applied and everything is validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredCard {
    pub key: String,
    pub external_user_id: String,
    pub product_code: String,
    #[serde(with = "crate::wire::decimal::option", default)]
    pub initial_topup: Option<Decimal>,
    pub status: DesiredStatus,
    pub labels: BTreeMap<String, String>,
    #[serde(skip)]
    pub origin: Origin,
}

/// Everything declared across all input files, sorted by key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Declarations {
    pub cards: Vec<DesiredCard>,
    /// The input files read, in the order read.
    pub files: Vec<String>,
    /// `sha256:<hex>` over the canonical form of `cards` (independent of file layout and order).
    pub fingerprint: String,
}
