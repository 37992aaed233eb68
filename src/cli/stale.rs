//! Whether `apply PLANFILE` may carry out a saved plan, as the command line says it: the decision
//! is `exec::stale`'s (against the state, and against the declarations as they are now); here it
//! becomes a refusal naming what changed, by key and run, or a note on stderr. Says nothing when
//! the plan is current.

use std::collections::BTreeSet;

use super::CliError;
use super::provider::Provider;
use super::settings::Global;
use crate::exec::stale::{self, Note, Refusal, StaleError};
use crate::model::Address;
use crate::plan::PlanDocument;
use crate::plan::stale::CardChange;
use crate::state::{Snapshot, Store};

fn refuse(why: impl std::fmt::Display) -> CliError {
    CliError::refused(format!("refusing to apply a stale plan: {why}"))
}

/// Refuses a plan made for another state or format, or one some run since has touched; notes a
/// serial that moved on without touching it. Called under the lock, on `snapshot` read under it.
pub(super) async fn against_state(
    doc: &PlanDocument,
    snapshot: &Snapshot,
    store: &Store,
) -> Result<(), CliError> {
    told(stale::against_state(doc, snapshot, store).await, "")
}

/// Refuses a plan whose declarations now say otherwise about what it touches (another pull
/// request merged in since the review); notes what differs elsewhere: the next plan has it.
pub(super) async fn against_declarations(
    doc: &PlanDocument,
    snapshot: &Snapshot,
    global: &Global,
    provider: &Provider,
) -> Result<(), CliError> {
    let journal_key = provider.client.journal_key();
    let verdict = stale::against_declarations(doc, snapshot, journal_key, provider.facts()).await;
    told(verdict, &global.cmd("plan -f DECLARATIONS --out PLANFILE"))
}

/// The verdict as the user reads it; `again` is the command that plans anew.
fn told(verdict: Result<Option<Note>, StaleError>, again: &str) -> Result<(), CliError> {
    match verdict {
        Ok(None) => Ok(()),
        Ok(Some(note)) => {
            eprintln!("{}", note_text(&note, again));
            Ok(())
        }
        Err(StaleError::Refused(why)) => Err(refuse(refusal_text(why, again))),
        Err(StaleError::State(e)) => Err((*e).into()),
        Err(StaleError::Client(e)) => Err((*e).into()),
    }
}

fn refusal_text(why: Refusal, again: &str) -> String {
    match why {
        Refusal::Document(why) => why,
        // Run commands and users are state's text: made safe line by line, the lines kept.
        Refusal::Touched(why) => why
            .lines()
            .map(crate::render::safe)
            .collect::<Vec<_>>()
            .join("\n"),
        Refusal::DeclarationsInvalid => {
            "the declarations changed since the plan was made and are now invalid".to_owned()
        }
        Refusal::CardsChanged(cards) => format!(
            "{}. Run `{again}` again and review that plan",
            cards_message(&cards)
        ),
        Refusal::Unverifiable { people_declared } => format!(
            "the declarations changed since the plan was made: {}. Run `{again}` again and \
             review that plan",
            if people_declared {
                "the declared people or moves"
            } else {
                "the declared moves"
            }
        ),
        Refusal::OtherChanges(touched) => format!(
            "the declarations changed since the plan was made: planned now, they ask for other \
             changes of {}. Run `{again}` again and review that plan",
            named(&touched)
        ),
    }
}

fn note_text(note: &Note, again: &str) -> String {
    match note {
        Note::MovedOn {
            then,
            now,
            runs,
            changes,
        } => format!(
            "note: state moved on since the plan was made (serial {then} then, {now} now: {runs} \
             run(s), {changes} change(s)), none to what this plan touches"
        ),
        Note::SameChanges => "note: the declarations changed since the plan was made, but only \
             by what state already holds: they ask for exactly the reviewed changes"
            .to_owned(),
        Note::ChangesElsewhere(elsewhere) => format!(
            "note: the declarations changed since the plan was made; what this plan touches did \
             not, and it is applied as reviewed. They also ask for changes it does not make, of \
             {}: run `{again}` after this apply to review those",
            named(elsewhere)
        ),
    }
}

/// A person's address is their external user id: the provider's text, shown made safe.
fn named(addresses: &[Address]) -> String {
    listed(
        addresses
            .iter()
            .map(|a| format!("{} {}", a.kind, crate::render::safe(&a.key)))
            .collect(),
    )
}

/// `the declarations changed since the plan was made in FILES: KEY (WHAT), …`.
fn cards_message(changed: &[CardChange]) -> String {
    let files: BTreeSet<&str> = changed.iter().filter_map(|c| c.file.as_deref()).collect();
    let files = if files.is_empty() {
        String::new()
    } else {
        format!(" in {}", files.into_iter().collect::<Vec<_>>().join(", "))
    };
    format!(
        "the declarations changed since the plan was made{files}: {}",
        listed(
            changed
                .iter()
                .map(|c| format!("{} ({})", c.key, c.what))
                .collect()
        )
    )
}

/// The first few of `items`, and how many more.
fn listed(mut items: Vec<String>) -> String {
    const SHOW: usize = 10;
    let more = items.len().saturating_sub(SHOW);
    items.truncate(SHOW);
    let mut list = items.join(", ");
    if more > 0 {
        list.push_str(&format!(" and {more} more"));
    }
    list
}
