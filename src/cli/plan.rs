//! `cardform plan`: declarations + state + provider facts → a plan, printed and optionally saved.

use std::path::{Path, PathBuf};

use super::args::{Format, PlanArgs};
use super::provider::Provider;
use super::settings::{Global, parse_amount};
use super::{CliError, Outcome};
use crate::decl::{self, Declarations};
use crate::plan::{self, DeclarationsRef, PlanDocument, PlanOptions, StateRef};
use crate::render;
use crate::state::{Snapshot, Store};
use crate::wire::{SystemClock, timestamp::now_rfc3339};

pub async fn run(args: &PlanArgs, global: &Global) -> Result<Outcome, CliError> {
    if args.refresh_only {
        return refresh_only(args, global).await;
    }
    // `-f` and `--max-prune` may come from cardform.toml: resolved once, here.
    let mut args = args.clone();
    args.files.files = global.files(&args.files.files)?;
    let args = &args;
    let mut options = PlanOptions {
        prune: args.prune,
        max_fees: parse_amount("--max-fees", args.max_fees.as_deref())?,
        max_prune: global.max_prune(args.max_prune.as_deref())?.0,
        targets: super::settings::targets(&args.target)?,
        replace: Default::default(),
    };
    // The declarations are parsed on a blocking thread while the state is read: on a large fleet
    // each takes a good part of a second and neither needs the other. Their errors keep the
    // order they had when the two ran one after the other: declarations first (invalid input
    // must never reach the provider), then the provider's settings, then the state.
    let files = args.files.files.clone();
    let parsing = tokio::task::spawn_blocking(move || decl::load(&files));
    let early = read_snapshot(global, args.refresh).await;
    let decls = match parsing.await {
        Ok(loaded) => loaded?,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    };
    super::settings::check_not_empty(&decls, args.allow_empty)?;
    if let Some(out) = &args.out {
        check_out(out, &decls)?;
    }
    let format = if args.json { Format::Json } else { args.format };
    let provider = Provider::connect(global, None).await?;
    let gathered = gather(global, &provider, early).await;
    let journal_key = *provider.client.journal_key();
    provider.shutdown().await;
    let (snapshot, holder, facts, refreshed) = gathered?;
    super::settings::check_cards_declared(&decls, snapshot.cards.len(), args.allow_empty)?;
    options.replace = replace_set(&args.replace, &decls, &snapshot)?;
    let mut doc = document(&decls, &snapshot, &facts, &options, &journal_key);
    doc.in_progress = holder;
    doc.refresh = refreshed;
    // Not needed past this point, and not freed: the process ends right after printing, and
    // freeing a million cards' records one allocation at a time took a third of a second.
    std::mem::forget(snapshot);
    std::mem::forget(decls);
    super::settings::check_targets_matched(&doc)?;
    print_plan(args, global, format, &mut doc)
}

/// Prints (and with `--out` saves) `doc`; the exit code it earns.
fn print_plan(
    args: &PlanArgs,
    global: &Global,
    format: Format,
    doc: &mut PlanDocument,
) -> Result<Outcome, CliError> {
    if let Some(out) = &args.out {
        save(out, doc)?;
    }
    match format {
        Format::Human => print!(
            "{}",
            global.with_flags(&render::plan::human(doc, global.style, args.detail))
        ),
        // Streamed: the text of a million actions is never held.
        Format::Json => plan::file::write_json(doc, std::io::stdout().lock())
            .map_err(|e| CliError::io("standard output", e))?,
        Format::Markdown => print!("{}", global.with_flags(&render::plan::markdown(doc))),
    }
    if let (Some(out), Format::Human) = (&args.out, format) {
        println!(
            "\nSaved the plan to {}. Apply exactly this plan with: {}",
            out.display(),
            global.cmd(&format!("apply {}", out.display()))
        );
    }
    if !doc.applicable {
        super::sandbox_settings::hint_balance(global, &doc.plan.problems);
        return Err(CliError::Reported);
    }
    Ok(if args.detailed_exitcode && doc.has_changes {
        Outcome::Changes
    } else {
        Outcome::Success
    })
}

/// `plan --refresh-only`: what changed at the provider outside cardform, as a plan of state
/// updates and nothing else. The declarations are not read: this plan never changes a card.
async fn refresh_only(args: &PlanArgs, global: &Global) -> Result<Outcome, CliError> {
    if let Some(out) = &args.out {
        check_out(out, &Declarations::default())?;
    }
    let format = if args.json { Format::Json } else { args.format };
    let early = read_snapshot(global, true).await;
    let provider = Provider::connect(global, None).await?;
    let gathered = gather(global, &provider, early).await;
    provider.shutdown().await;
    let (snapshot, holder, facts, refreshed) = gathered?;
    let observed = refreshed.unwrap_or_default();
    let mut doc = PlanDocument::new(
        empty_plan(&snapshot, facts.balance),
        StateRef::new(&snapshot.lineage, snapshot.serial),
        DeclarationsRef {
            fingerprint: String::new(),
            files: Vec::new(),
        },
        false,
        &facts.currency,
        now_rfc3339(&SystemClock),
    );
    doc.in_progress = holder;
    doc.has_changes = !observed.updates.is_empty();
    doc.refresh = Some(plan::drift::Refreshed {
        refresh_only: true,
        ..observed
    });
    print_plan(args, global, format, &mut doc)
}

/// A plan of no actions: every card in state unchanged.
fn empty_plan(snapshot: &Snapshot, balance: Option<rust_decimal::Decimal>) -> plan::Plan {
    let mut totals = plan::Totals::from_actions(&[], snapshot.cards.len(), balance);
    totals.in_state = snapshot.cards.len();
    plan::Plan {
        actions: Vec::new(),
        unchanged: snapshot.cards.len(),
        totals,
        problems: Vec::new(),
        warnings: Vec::new(),
        partial: None,
    }
}

/// A refresh-only plan of what `observed` found against `snapshot` (`apply --refresh-only`).
pub fn refresh_only_document(
    snapshot: &Snapshot,
    observed: crate::exec::refresh::Observed,
    currency: &str,
    balance: Option<rust_decimal::Decimal>,
) -> PlanDocument {
    let mut doc = PlanDocument::new(
        empty_plan(snapshot, balance),
        StateRef::new(&snapshot.lineage, snapshot.serial),
        DeclarationsRef {
            fingerprint: String::new(),
            files: Vec::new(),
        },
        false,
        currency,
        now_rfc3339(&SystemClock),
    );
    let refreshed = super::refresh::refreshed(observed, true, snapshot);
    doc.has_changes = !refreshed.updates.is_empty();
    doc.refresh = Some(refreshed);
    doc
}

/// `--replace KEY…` as the planner takes it. Each key must be a declared card that state holds
/// (an issued card to replace); anything else is an error naming it, before anything is sent.
pub fn replace_set(
    keys: &[String],
    decls: &Declarations,
    snapshot: &Snapshot,
) -> Result<std::collections::BTreeSet<String>, CliError> {
    for key in keys {
        let declared = decls.cards.iter().any(|c| c.key == key.as_str());
        let in_state = snapshot.cards.contains_key(key.as_str());
        let why = match (declared, in_state) {
            (true, true) => continue,
            (true, false) => "is declared but not in state: there is no card to replace yet \
                              (plan issues it)"
                .to_owned(),
            (false, true) => "is in state but not declared: declare it to replace it".to_owned(),
            (false, false) => {
                let candidates: Vec<&str> = decls
                    .cards
                    .iter()
                    .map(|c| c.key.as_str())
                    .filter(|k| snapshot.cards.contains_key(*k))
                    .collect();
                match crate::decl::suggest::did_you_mean(key, &candidates) {
                    Some(s) => format!("is neither declared nor in state (did you mean `{s}`?)"),
                    None => "is neither declared nor in state".to_owned(),
                }
            }
        };
        return Err(CliError::Usage(format!(
            "--replace {}: card `{}` {why}; nothing was sent to the provider",
            render::safe(key),
            render::safe(key)
        )));
    }
    Ok(keys.iter().cloned().collect())
}

/// State (seen through the provider's eyes in memory with `--refresh`; nothing is written) and
/// provider facts.
async fn gather(
    global: &Global,
    provider: &Provider,
    early: Result<StateRead, CliError>,
) -> Result<Gathered, CliError> {
    let read = early?;
    super::provider::check(read.provider.as_deref(), &provider.id)?;
    let mut snapshot = read.snapshot;
    let refreshed = match read.refresh {
        Some(known) => {
            let observed = super::refresh::look(global, provider, &known).await;
            let refreshed = super::refresh::refreshed(observed, false, &known.snapshot);
            snapshot = known.snapshot;
            plan::drift::apply_in_memory(&mut snapshot, &refreshed.updates);
            Some(refreshed)
        }
        None => None,
    };
    Ok((snapshot, read.holder, provider.facts().await?, refreshed))
}

type Gathered = (
    Snapshot,
    Option<plan::InProgress>,
    plan::ProviderFacts,
    Option<plan::drift::Refreshed>,
);

/// What plan reads of the state: a snapshot, who is applying to it right now (if anyone), the
/// provider it belongs to (if recorded yet), and with `--refresh` what a look at the provider
/// starts from (the snapshot is then moved into it).
struct StateRead {
    snapshot: Snapshot,
    holder: Option<plan::InProgress>,
    provider: Option<String>,
    refresh: Option<crate::exec::refresh::Known>,
}

/// The state as plan sees it (with `--sandbox`, a state not written yet is an empty one), who is
/// applying to it right now, and the provider it belongs to: plan against another provider
/// would plan nonsense, so [`gather`] refuses it before asking that provider anything.
async fn read_snapshot(global: &Global, refresh: bool) -> Result<StateRead, CliError> {
    super::session::reading(global, async |store: Option<&Store>| match store {
        Some(store) => {
            let snapshot = store.snapshot().await?;
            let holder =
                store
                    .current_lock()
                    .await?
                    .filter(|l| !l.stale)
                    .map(|l| plan::InProgress {
                        command: l.command,
                        by: format!("{}@{}", l.user, l.host),
                        since: l.since,
                    });
            let provider = store.provider().await?;
            if !refresh {
                return Ok(StateRead {
                    snapshot,
                    holder,
                    provider,
                    refresh: None,
                });
            }
            let known = crate::exec::refresh::Known {
                snapshot,
                refunds_unknown: store.refunds_unknown().await?,
                currency: store.currency().await?,
            };
            Ok(StateRead {
                snapshot: Snapshot::default(),
                holder,
                provider,
                refresh: Some(known),
            })
        }
        None => Ok(StateRead {
            snapshot: Snapshot::default(),
            holder: None,
            provider: None,
            refresh: None,
        }),
    })
    .await
}

pub use crate::serve::apply::document;

/// `--out` never writes over what it read, nor over a file that is not a plan: one missing `-f`
/// must not turn someone's declarations into plan JSON.
fn check_out(out: &Path, decls: &Declarations) -> Result<(), CliError> {
    let Ok(target) = out.canonicalize() else {
        return Ok(()); // does not exist yet
    };
    if let Some(input) = decls
        .files
        .iter()
        .find(|f| Path::new(f).canonicalize().is_ok_and(|f| f == target))
    {
        return Err(CliError::Usage(format!(
            "--out {}: refusing to write the plan over {input}, one of the declaration files it \
             was made from; save it elsewhere, e.g. --out plan.json",
            out.display()
        )));
    }
    // Its head is enough: a plan of a million actions, read whole, took a gigabyte.
    let is_plan = read_head(out).is_some_and(|head| {
        head.trim_start().starts_with('{')
            && head.contains("\"format_version\"")
            && head.contains("\"actions\"")
    });
    if !is_plan {
        return Err(CliError::Usage(format!(
            "--out {}: refusing to overwrite a file that is not a cardform plan; pick another \
             path, or remove it first",
            out.display()
        )));
    }
    Ok(())
}

/// The first 64 KiB of `path` (a plan's fields before its actions are a few hundred bytes).
fn read_head(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::new();
    let file = std::fs::File::open(path).ok()?;
    file.take(1 << 16).read_to_end(&mut head).ok()?;
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Writes the plan file (format 2, streamed: see `plan::file`).
fn save(path: &PathBuf, doc: &mut PlanDocument) -> Result<(), CliError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir.display(), e))?;
    }
    let file = std::fs::File::create(path).map_err(|e| CliError::io(path.display(), e))?;
    plan::file::write_file(doc, file).map_err(|e| CliError::io(path.display(), e))
}
