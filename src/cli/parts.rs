//! `apply -f` of a very large fleet, a part at a time (see [`Part`]). Once the whole plan is
//! approved, each part of the declarations is read again, planned against its part of state,
//! checked against what was approved for it, and handed to the run: while orders are in flight,
//! only one part's declarations and changes are held, not the whole plan's.
//!
//! Owns the choice to split and the check that every part plans as approved; sends nothing
//! itself (the executor does) and prints nothing.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

use super::CliError;
use crate::decl::{self, Declarations};
use crate::exec;
use crate::model::{Address, Part};
use crate::plan::{self, Action, Plan, PlanOptions, ProviderFacts};
use crate::state::Snapshot;

/// Cards per part unless `--part-size` says otherwise: small enough that a part's declarations
/// and changes are a few tens of megabytes, large enough that a million cards read their files
/// only twenty times more.
pub const DEFAULT_PART_CARDS: usize = 50_000;

/// A plan to carry out a part at a time.
pub struct Parts {
    files: Vec<PathBuf>,
    facts: ProviderFacts,
    options: PlanOptions,
    /// Per part, in order: the digest of the actions approved for it.
    approved: Vec<[u8; 32]>,
    /// The changes of all parts.
    pub total: usize,
}

/// How to carry out `plan`, made from `decls` (read from `files`) against `snapshot`: a part at
/// a time when more than `part_cards` cards are declared and nothing relates cards of different
/// parts; `None` to carry it out at once. Moves and people relate cards across parts (a move's
/// two keys, a person's cards), so with either declared, or people in state, it is never split.
pub fn split(
    decls: &Declarations,
    files: &[PathBuf],
    snapshot: &Snapshot,
    plan: &Plan,
    facts: &ProviderFacts,
    options: &PlanOptions,
    part_cards: usize,
) -> Option<Parts> {
    let people_in_state = snapshot.resources.keys().any(|a| a.kind.is_person())
        || snapshot.open_orders.keys().any(|a| a.kind.is_person());
    if decls.cards.len() <= part_cards
        || !decls.moves.is_empty()
        || !decls.cardholders.is_empty()
        || !options.targets.is_empty()
        || people_in_state
    {
        return None;
    }
    let count = u32::try_from(decls.cards.len().div_ceil(part_cards.max(1))).ok()?;
    let part_of = |a: &Address| a.card_key().map(|key| Part::holding(key, count).index());
    let mut digests: Vec<Sha256> = vec![Sha256::new(); count as usize];
    let mut buf = Vec::new();
    for a in &plan.actions {
        let part = part_of(&a.address())?;
        if a.depends_on.iter().any(|d| part_of(d) != Some(part)) {
            return None;
        }
        add(&mut digests[part as usize], &mut buf, a);
    }
    Some(Parts {
        files: files.to_vec(),
        facts: facts.clone(),
        options: options.clone(),
        approved: digests.into_iter().map(|d| d.finalize().into()).collect(),
        total: plan.actions.iter().filter(|a| a.kind.is_change()).count(),
    })
}

/// Adds `action` to a part's digest: its plan-file form, length-prefixed.
fn add(digest: &mut Sha256, buf: &mut Vec<u8>, action: &Action) {
    buf.clear();
    serde_json::to_writer(&mut *buf, action).expect("an action serializes");
    digest.update((buf.len() as u64).to_le_bytes());
    digest.update(&*buf);
}

impl Parts {
    /// How many parts.
    pub fn count(&self) -> usize {
        self.approved.len()
    }

    /// Carries out every part in `run`, in order, against `snapshot` (all of state as the run
    /// started). A part that no longer plans as approved (its files were edited while the run
    /// went on) stops the run before anything of it is sent; so does one that no longer reads.
    pub async fn carry_out(self, run: &mut exec::Run, snapshot: &Snapshot) -> Result<(), CliError> {
        let count = self.approved.len() as u32;
        for (part, approved) in Part::all(count).zip(&self.approved) {
            if run.is_stopped() {
                break;
            }
            let changed = |why: &str| {
                format!(
                    "the declarations changed while apply ran ({why}): part {} of {count} and \
                     those after it were not started; plan again",
                    part.index() + 1
                )
            };
            let decls = match decl::load_part(&self.files, part) {
                Ok(decls) => decls,
                Err(_) => {
                    run.halt(changed("they no longer read cleanly")).await;
                    break;
                }
            };
            let state = snapshot.part(part);
            let planned = plan::plan(&decls.cards, &state, &self.facts, &self.options);
            drop(decls);
            let mut digest = Sha256::new();
            let mut buf = Vec::new();
            for a in &planned.actions {
                add(&mut digest, &mut buf, a);
            }
            if <[u8; 32]>::from(digest.finalize()) != *approved {
                run.halt(changed("this part no longer plans as approved"))
                    .await;
                break;
            }
            run.part(state, planned.actions)
                .await
                .map_err(|e| CliError::Other(e.to_string()))?;
        }
        run.skip_rest().await;
        Ok(())
    }
}
