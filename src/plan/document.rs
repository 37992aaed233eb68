//! The plan as a versioned document: what `--json` prints and what `--out PLANFILE` saves. It
//! carries the state lineage and serial and the declarations' fingerprint, so `apply PLANFILE` can
//! refuse a stale plan and say what changed (what makes it stale: `stale`).

use serde::{Deserialize, Serialize};

use super::Plan;

/// Bump on any incompatible change of the document's shape; readers refuse versions they don't
/// know. What `--json` prints; a plan file is format 2 (see `plan::file`).
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub format_version: u32,
    pub cardform_version: String,
    /// RFC 3339.
    pub created_at: String,
    pub state: StateRef,
    pub declarations: DeclarationsRef,
    pub prune: bool,
    /// The master balance's currency (upper case), for the money line.
    pub currency: String,
    pub applicable: bool,
    pub has_changes: bool,
    /// Another cardform holding the state's lock while the plan was made: its open orders are in
    /// progress, not waiting to be resumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<InProgress>,
    /// Made against the provider's view (`--refresh`, `--refresh-only`): what that look found,
    /// recorded by `apply` of this plan. Absent from plans made without one (and older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<super::drift::Refreshed>,
    #[serde(flatten)]
    pub plan: Plan,
}

/// Who was applying when a plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    pub command: String,
    /// `user@host`.
    pub by: String,
    /// RFC 3339.
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRef {
    /// Empty when the state file does not exist yet.
    pub lineage: String,
    pub serial: u64,
    pub fingerprint: String,
}

impl StateRef {
    pub fn new(lineage: &str, serial: u64) -> Self {
        Self {
            lineage: lineage.to_owned(),
            serial,
            fingerprint: if lineage.is_empty() {
                "none (no state yet)".to_owned()
            } else {
                format!("{lineage}:{serial}")
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclarationsRef {
    pub fingerprint: String,
    pub files: Vec<String>,
}

impl PlanDocument {
    pub fn new(
        plan: Plan,
        state: StateRef,
        declarations: DeclarationsRef,
        prune: bool,
        currency: &str,
        created_at: String,
    ) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            cardform_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at,
            state,
            declarations,
            prune,
            currency: currency.to_uppercase(),
            applicable: plan.is_applicable(),
            has_changes: plan.has_changes(),
            in_progress: None,
            refresh: None,
            plan,
        }
    }

    /// Why this saved plan may not be applied to the state as it is now, whatever changed in
    /// it; `None` when it may. A serial that moved on is judged by what changed
    /// ([`super::stale::judge`]), not here; one that went back (a restored state) is refused here.
    pub fn staleness(&self, lineage: &str, serial: u64) -> Option<String> {
        if !super::file::READS.contains(&self.format_version) {
            return Some(format!(
                "the plan file has format version {} but this cardform reads versions {} and {}",
                self.format_version,
                super::file::READS[0],
                super::file::READS[1]
            ));
        }
        if !self.state.lineage.is_empty() && self.state.lineage != lineage {
            return Some(format!(
                "the plan was made for another state (lineage {}, this state is {lineage})",
                self.state.lineage
            ));
        }
        if self.state.serial > serial {
            return Some(format!(
                "state is older than the plan (serial {} then, {serial} now: restored from a backup?): run `cardform plan` again",
                self.state.serial
            ));
        }
        None
    }
}
