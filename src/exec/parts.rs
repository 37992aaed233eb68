//! `apply -f` of a very large fleet, a part at a time (see [`Part`]): the plan is made part by
//! part and folded (`plan::fold`), so the whole plan's actions are never held; once it is
//! approved, each part of the declarations is read again, planned again, checked against what
//! was approved for it, and handed to the run. Only one part's declarations and changes are held
//! at any time, before approval or after.
//!
//! Owns the check that every part plans as approved, and the digests it compares; the choice to
//! split is the command's. Sends nothing itself (the run does) and prints nothing.

use sha2::{Digest, Sha256};
use std::path::PathBuf;

use crate::decl;
use crate::exec::{self, ExecError};
use crate::model::{Address, Part};
use crate::plan::outline::Outline;
use crate::plan::{self, Action, Folding, Plan, PlanOptions, ProviderFacts};
use crate::state::Snapshot;

/// Why a fleet could not be planned or carried out a part at a time.
#[derive(Debug, thiserror::Error)]
pub enum PartsError {
    /// The declarations do not read: the whole load's report, every problem in it.
    #[error("invalid declarations")]
    Decl(#[from] decl::DeclReport),
    /// A part reported a problem the whole load did not: a file changed between the reads.
    #[error("the declarations changed while they were read; run apply again")]
    ChangedWhileRead,
    /// Boxed: a state error is large, and this travels on every part's result.
    #[error(transparent)]
    Exec(#[from] Box<ExecError>),
}

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
    /// Per part, in order: its changes and what the plan estimated for them, so a run that
    /// stops says what the parts it never started would have cost.
    estimates: Vec<exec::Share>,
    /// The changes of all parts.
    pub total: usize,
}

/// The plan of the fleet in `files`, made a part at a time in `count` parts (each part of the
/// declarations against its part of `snapshot`, all of state) and folded: the whole plan without
/// its actions, the outline the human view shows, and the digest of each part's actions, which
/// the run checks each part against before it starts. `None` when a change of one part waits
/// for a change of another (never, without moves or people): the fleet is then planned whole.
pub fn fold(
    files: &[PathBuf],
    snapshot: &Snapshot,
    facts: &ProviderFacts,
    options: &PlanOptions,
    count: u32,
) -> Result<Option<(Plan, Outline, Parts)>, PartsError> {
    let mut folding = Folding::new(snapshot);
    let mut outline = Outline::default();
    let mut approved = Vec::new();
    let mut estimates = Vec::new();
    for part in Part::all(count) {
        let Ok((planned, _)) = plan_part(files, snapshot, part, facts, options) else {
            // A part reports only its own duplicates: the whole load reports every problem.
            return Err(match decl::load(files) {
                Err(report) => report.into(),
                Ok(_) => PartsError::ChangedWhileRead,
            });
        };
        let part_of = |a: &Address| a.card_key().map(|key| part.holds(key));
        let crosses = planned.actions.iter().any(|a| {
            part_of(&a.address()) != Some(true)
                || a.depends_on.iter().any(|d| part_of(d) != Some(true))
        });
        if crosses {
            return Ok(None);
        }
        approved.push(digest(&planned.actions));
        let mut estimate = exec::Share::default();
        for a in planned.actions.iter().filter(|a| a.kind().is_change()) {
            estimate.add(a.estimate.total());
        }
        estimates.push(estimate);
        for a in &planned.actions {
            outline.add(a);
        }
        folding.add(planned);
    }
    outline.finish();
    let plan = folding.finish(facts, options);
    let parts = Parts {
        files: files.to_vec(),
        facts: facts.clone(),
        options: options.clone(),
        approved,
        estimates,
        total: plan.totals.changes(),
    };
    Ok(Some((plan, outline, parts)))
}

/// One part of the fleet in `files`, planned against its part of `snapshot` (returned too): the
/// one way both the fold and the run plan a part, so the run's digest can match the approved one.
fn plan_part(
    files: &[PathBuf],
    snapshot: &Snapshot,
    part: Part,
    facts: &ProviderFacts,
    options: &PlanOptions,
) -> Result<(plan::Draft, Snapshot), decl::DeclReport> {
    let decls = decl::load_part(files, part)?;
    let state = snapshot.part(part);
    let planned = plan::draft(&decls.cards, &[], &[], &state, facts, options);
    Ok((planned, state))
}

/// The digest of one part's actions, in plan order.
fn digest(actions: &[Action]) -> [u8; 32] {
    let mut digest = Sha256::new();
    let mut buf = Vec::new();
    for a in actions {
        add(&mut digest, &mut buf, a);
    }
    digest.finalize().into()
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
    pub async fn carry_out(
        self,
        run: &mut exec::Run,
        snapshot: &Snapshot,
    ) -> Result<(), PartsError> {
        let count = self.approved.len() as u32;
        // The first part not fed to the run: it and those after it are left.
        let mut started = 0;
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
            let Ok((planned, state)) =
                plan_part(&self.files, snapshot, part, &self.facts, &self.options)
            else {
                run.halt(changed("they no longer read cleanly")).await;
                break;
            };
            if digest(&planned.actions) != *approved {
                run.halt(changed("this part no longer plans as approved"))
                    .await;
                break;
            }
            started += 1;
            run.part(state, planned.actions).await.map_err(Box::new)?;
        }
        let mut left = exec::Share::default();
        for e in &self.estimates[started..] {
            left.estimated += e.estimated;
            left.estimated_unknown += e.estimated_unknown;
        }
        run.skip_rest(left).await;
        Ok(())
    }
}
