//! Whether `apply PLANFILE` may carry out a saved plan: against the state (what other runs changed
//! since the plan's serial, judged by `plan::stale`) and against the declarations the plan was
//! made from (as they are now, after a merge), planned again when nothing else can tell. Decides,
//! and says why in types: it never prints (the command line words refusals and notes) and never
//! writes state.
//!
//! Applying a plan that passes is safe because what it touches is exactly as it was planned
//! against: the executor reads each card from the snapshot taken under the lock, and every order
//! goes out under its journaled idempotency key (derived from lineage, key and attempt), so even
//! an action met twice is sent once.

use std::future::Future;

use crate::client::ClientError;
use crate::decl;
use crate::model::Address;
use crate::plan::stale::{self, CardChange, Footprint, Verdict};
use crate::plan::{ActionKind, PlanDocument, PlanOptions, ProviderFacts};
use crate::state::{Snapshot, StateError, Store};

/// Why a saved plan may not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Made for another state or in a format this build does not read: the document's words.
    Document(String),
    /// A run since changed what the plan touches: `plan::stale`'s words, state's text in them.
    Touched(String),
    /// The declarations changed since the plan was made and no longer load.
    DeclarationsInvalid,
    /// Cards the plan acts on are declared otherwise now, or no longer declared.
    CardsChanged(Vec<CardChange>),
    /// The declarations changed, and the plan creates people or is a part: planning again cannot
    /// tell whether what it touches changed. `people_declared`: whether people are declared now.
    Unverifiable { people_declared: bool },
    /// Planned now, the declarations ask for other changes of these.
    OtherChanges(Vec<Address>),
}

/// What a plan that may be applied comes with, to be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// State moved on from serial `then` to `now`, by `runs` runs changing `changes` resources,
    /// none of them what the plan touches.
    MovedOn {
        then: u64,
        now: u64,
        runs: usize,
        changes: usize,
    },
    /// The declarations changed, but only by what state already holds.
    SameChanges,
    /// The declarations changed, not for what the plan touches; they also ask for changes of
    /// these, which the next plan has.
    ChangesElsewhere(Vec<Address>),
}

/// A refusal, or what kept the check from deciding (boxed: a check's result stays small).
#[derive(Debug, thiserror::Error)]
pub enum StaleError {
    #[error("the saved plan is stale: {0:?}")]
    Refused(Refusal),
    #[error(transparent)]
    State(Box<StateError>),
    #[error(transparent)]
    Client(Box<ClientError>),
}

impl From<StateError> for StaleError {
    fn from(e: StateError) -> Self {
        StaleError::State(Box::new(e))
    }
}

impl From<ClientError> for StaleError {
    fn from(e: ClientError) -> Self {
        StaleError::Client(Box::new(e))
    }
}

fn refused<T>(why: Refusal) -> Result<T, StaleError> {
    Err(StaleError::Refused(why))
}

/// Refuses a plan made for another state or format, or one some run since has touched; notes a
/// serial that moved on without touching it. Called under the lock, on `snapshot` read under it.
pub async fn against_state(
    doc: &PlanDocument,
    snapshot: &Snapshot,
    store: &Store,
) -> Result<Option<Note>, StaleError> {
    if let Some(why) = doc.staleness(&snapshot.lineage, snapshot.serial) {
        return refused(Refusal::Document(why));
    }
    if doc.state.serial == snapshot.serial {
        return Ok(None);
    }
    let footprint = Footprint::of_document(doc);
    let changes = store.changes_since(doc.state.serial).await?;
    let runs = store.history().await?;
    match stale::judge(&doc.state, snapshot.serial, &footprint, &changes, &runs) {
        Verdict::Current => Ok(None),
        Verdict::Stale(why) => refused(Refusal::Touched(why)),
        Verdict::MovedOn { runs, changes } => Ok(Some(Note::MovedOn {
            then: doc.state.serial,
            now: snapshot.serial,
            runs,
            changes,
        })),
    }
}

/// When the plan's declaration files are still around and now say something else (another pull
/// request merged in since the review), refuses when what differs touches the plan: a card it
/// acts on declared otherwise, no longer declared, or planned now with other changes. `facts`
/// (the provider's products and balance) is awaited only when the declarations must be planned
/// again.
pub async fn against_declarations(
    doc: &PlanDocument,
    snapshot: &Snapshot,
    journal_key: &[u8],
    facts: impl Future<Output = Result<ProviderFacts, ClientError>>,
) -> Result<Option<Note>, StaleError> {
    let files: Vec<std::path::PathBuf> = doc.declarations.files.iter().map(Into::into).collect();
    if files.is_empty() || !files.iter().all(|f| f.exists()) {
        return Ok(None);
    }
    let now = match decl::load(&files) {
        Ok(now) if now.fingerprint_keyed(journal_key) == doc.declarations.fingerprint => {
            return Ok(None);
        }
        Ok(now) => now,
        Err(_) => return refused(Refusal::DeclarationsInvalid),
    };
    let footprint = Footprint::of_document(doc);
    let cards = stale::cards_changed(&doc.plan, snapshot, &now.cards);
    if cards
        .iter()
        .any(|c| footprint.touches(&Address::card(c.key.as_str())))
    {
        return refused(Refusal::CardsChanged(cards));
    }
    // No card the plan touches differs. A person's fields count only through the keyed
    // fingerprint, and a targeted plan is a part: neither can be checked by planning again.
    let creates_people = doc.plan.actions.iter().any(|a| {
        matches!(
            a.kind(),
            ActionKind::CreateUser | ActionKind::CreateCardholder
        )
    });
    if creates_people || doc.plan.partial.is_some() {
        return refused(Refusal::Unverifiable {
            people_declared: !now.cardholders.is_empty(),
        });
    }
    let facts = facts.await?;
    planned_again(doc, snapshot, &now, &footprint, &facts, journal_key)
}

/// Plans the changed declarations again against the state: refuses when they ask for other
/// changes of what the plan touches; notes the changes elsewhere, which the next plan has.
fn planned_again(
    doc: &PlanDocument,
    snapshot: &Snapshot,
    now: &decl::Declarations,
    footprint: &Footprint,
    facts: &ProviderFacts,
    journal_key: &[u8],
) -> Result<Option<Note>, StaleError> {
    let options = PlanOptions {
        prune: doc.prune,
        ..PlanOptions::default()
    };
    let people = super::declared::planned(now, journal_key);
    let fresh = crate::plan::plan_all(&now.cards, &now.moves, &people, snapshot, facts, &options);
    let (touched, elsewhere): (Vec<Address>, Vec<Address>) =
        stale::differing_changes(&doc.plan, &fresh)
            .into_iter()
            .partition(|a| footprint.touches(a));
    if !touched.is_empty() {
        return refused(Refusal::OtherChanges(touched));
    }
    Ok(Some(if elsewhere.is_empty() {
        Note::SameChanges
    } else {
        Note::ChangesElsewhere(elsewhere)
    }))
}
