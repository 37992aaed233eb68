//! What every backend agrees on about schemas: the version this build writes and the report of
//! an upgrade. Each backend keeps its own migrations (`sqlite/schema.rs`); must hold no SQL.
//!
//! The rules, the same for every backend: a writing command (or `cardform init --upgrade`)
//! upgrades; a read-only command never changes a schema; a schema newer than this build is
//! refused and left untouched; lineage, and so every idempotency key, survives every upgrade.

use serde::Serialize;

/// The newest schema this build knows. Schema 1: the first release. Schema 2: journal, change
/// log and audit keyed by resource address; no reserved column names; a migrations table.
/// Schema 3: each order records the run that sent it (money belongs to the run that spent it).
/// Schema 4: a record per resource that is not a card (`resources`, top-ups first, backfilled
/// from the journal), logged in the change log like cards; a card's last reported balance.
/// Schema 5: the same facts in fewer bytes: positional card images, and audited calls that name
/// their order instead of repeating its key and resource. Schema 6: the change log's tombstones
/// indexed, so a snapshot knows the keys that left state without reading the log. Schema 7: money
/// derived from the journal: an order records what was refunded, a card's `charged` is what its
/// orders cost (recomputed by the upgrade), and a state records the provider it belongs to.
/// Schema 8: plans that wait for approval (`cardform serve`'s policy), with who approved them.
pub const SCHEMA_VERSION: i64 = 8;

/// What opening a state for writing did to an older schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upgrade {
    pub from: i64,
    pub to: i64,
    /// Where the untouched copy of the old state was kept, when the backend keeps one.
    pub backup: Option<String>,
}

impl std::fmt::Display for Upgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "upgraded the state from schema {} to {}",
            self.from, self.to
        )?;
        if let Some(b) = &self.backup {
            write!(f, "; the schema-{} file is kept as {b}", self.from)?;
        }
        Ok(())
    }
}
