//! Whether `apply PLANFILE` may carry out a saved plan: against the state (what other runs changed
//! since the plan's serial, judged by `plan::stale`) and against the declarations the plan was
//! made from (as they are now, after a merge). Refuses with what changed, by key and run; says
//! nothing when the plan is current. Reads state and declarations, never writes either.
//!
//! Applying a plan that passes is safe because what it touches is exactly as it was planned
//! against: the executor reads each card from the snapshot taken under the lock, and every order
//! goes out under its journaled idempotency key (derived from lineage, key and attempt), so even
//! an action met twice is sent once.

use std::collections::BTreeSet;

use super::CliError;
use super::provider::Provider;
use super::settings::Global;
use crate::decl;
use crate::model::Address;
use crate::plan::stale::{self, Footprint, Verdict};
use crate::plan::{ActionKind, PlanDocument, PlanOptions};
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
    if let Some(why) = doc.staleness(&snapshot.lineage, snapshot.serial) {
        return Err(refuse(why));
    }
    if doc.state.serial == snapshot.serial {
        return Ok(());
    }
    let footprint = Footprint::of_document(doc);
    let changes = store.changes_since(doc.state.serial).await?;
    let runs = store.history().await?;
    match stale::judge(&doc.state, snapshot.serial, &footprint, &changes, &runs) {
        Verdict::Current => Ok(()),
        // Run commands and users are state's text: made safe line by line, the lines kept.
        Verdict::Stale(why) => Err(refuse(
            why.lines()
                .map(crate::render::safe)
                .collect::<Vec<_>>()
                .join("\n"),
        )),
        Verdict::MovedOn { runs, changes } => {
            eprintln!(
                "note: state moved on since the plan was made (serial {} then, {} now: {runs} \
                 run(s), {changes} change(s)), none to what this plan touches",
                doc.state.serial, snapshot.serial
            );
            Ok(())
        }
    }
}

/// When the plan's declaration files are still around and now say something else (another pull
/// request merged in since the review), refuses when what differs touches the plan: a card it
/// acts on declared otherwise, no longer declared, or planned now with other changes. Names what
/// differs elsewhere in a note: the next plan has it.
pub(super) async fn against_declarations(
    doc: &PlanDocument,
    snapshot: &Snapshot,
    global: &Global,
    provider: &Provider,
) -> Result<(), CliError> {
    let journal_key = provider.client.journal_key();
    let files: Vec<std::path::PathBuf> = doc.declarations.files.iter().map(Into::into).collect();
    if files.is_empty() || !files.iter().all(|f| f.exists()) {
        return Ok(());
    }
    let now = match decl::load(&files) {
        Ok(now) if now.fingerprint_keyed(journal_key) == doc.declarations.fingerprint => {
            return Ok(());
        }
        Ok(now) => now,
        Err(_) => {
            return Err(refuse(
                "the declarations changed since the plan was made and are now invalid",
            ));
        }
    };
    let again = || global.cmd("plan -f DECLARATIONS --out PLANFILE");
    let footprint = Footprint::of_document(doc);
    let cards = stale::cards_changed(&doc.plan, snapshot, &now.cards);
    if cards
        .iter()
        .any(|c| footprint.touches(&Address::card(c.key.as_str())))
    {
        return Err(refuse(format!(
            "{}. Run `{}` again and review that plan",
            cards_message(&cards),
            again()
        )));
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
        return Err(refuse(format!(
            "the declarations changed since the plan was made: {}. Run `{}` again and review \
             that plan",
            if now.cardholders.is_empty() {
                "the declared moves"
            } else {
                "the declared people or moves"
            },
            again()
        )));
    }
    planned_again(doc, snapshot, &now, &footprint, global, provider).await
}

/// Plans the changed declarations again against the state: refuses when they ask for other
/// changes of what the plan touches; notes the changes elsewhere, which the next plan has.
async fn planned_again(
    doc: &PlanDocument,
    snapshot: &Snapshot,
    now: &decl::Declarations,
    footprint: &Footprint,
    global: &Global,
    provider: &Provider,
) -> Result<(), CliError> {
    let again = || global.cmd("plan -f DECLARATIONS --out PLANFILE");
    let facts = provider.facts().await?;
    let options = PlanOptions {
        prune: doc.prune,
        ..PlanOptions::default()
    };
    let fresh = super::plan::document(
        now,
        snapshot,
        &facts,
        &options,
        provider.client.journal_key(),
    );
    let (touched, elsewhere): (Vec<Address>, Vec<Address>) =
        stale::differing_changes(&doc.plan, &fresh.plan)
            .into_iter()
            .partition(|a| footprint.touches(a));
    // A person's address is their external user id: the provider's text, shown made safe.
    let named = |addresses: &[Address]| {
        listed(
            addresses
                .iter()
                .map(|a| format!("{} {}", a.kind, crate::render::safe(&a.key)))
                .collect(),
        )
    };
    if !touched.is_empty() {
        return Err(refuse(format!(
            "the declarations changed since the plan was made: planned now, they ask for other \
             changes of {}. Run `{}` again and review that plan",
            named(&touched),
            again()
        )));
    }
    if elsewhere.is_empty() {
        eprintln!(
            "note: the declarations changed since the plan was made, but only by what state \
             already holds: they ask for exactly the reviewed changes"
        );
    } else {
        eprintln!(
            "note: the declarations changed since the plan was made; what this plan touches did \
             not, and it is applied as reviewed. They also ask for changes it does not make, of \
             {}: run `{}` after this apply to review those",
            named(&elsewhere),
            again()
        );
    }
    Ok(())
}

/// `the declarations changed since the plan was made in FILES: KEY (WHAT), …`.
fn cards_message(changed: &[stale::CardChange]) -> String {
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
