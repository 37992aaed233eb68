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
    // `-f` and `--max-prune` may come from cardform.toml: resolved once, here.
    let mut args = args.clone();
    args.files.files = global.files(&args.files.files)?;
    let args = &args;
    let options = PlanOptions {
        prune: args.prune,
        max_fees: parse_amount("--max-fees", args.max_fees.as_deref())?,
        max_prune: global.max_prune(args.max_prune.as_deref())?.0,
        targets: super::settings::targets(&args.target)?,
    };
    // The declarations are parsed on a blocking thread while the state is read: on a large fleet
    // each takes a good part of a second and neither needs the other. Their errors keep the
    // order they had when the two ran one after the other: declarations first (invalid input
    // must never reach the provider), then the provider's settings, then the state. With
    // `--refresh` the state is read only once it has been refreshed.
    let files = args.files.files.clone();
    let parsing = tokio::task::spawn_blocking(move || decl::load(&files));
    let early = if args.refresh {
        None
    } else {
        Some(read_snapshot(global).await)
    };
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
    let gathered = gather(args, global, &provider, format, early).await;
    let journal_key = *provider.client.journal_key();
    provider.shutdown().await;
    let (snapshot, holder, facts) = gathered?;
    super::settings::check_cards_declared(&decls, snapshot.cards.len(), args.allow_empty)?;
    let mut doc = document(&decls, &snapshot, &facts, &options, &journal_key);
    doc.in_progress = holder;
    // Not needed past this point, and not freed: the process ends right after printing, and
    // freeing a million cards' records one allocation at a time took a third of a second.
    std::mem::forget(snapshot);
    std::mem::forget(decls);
    super::settings::check_targets_matched(&doc)?;

    if let Some(out) = &args.out {
        save(out, &mut doc)?;
    }
    match format {
        Format::Human => print!(
            "{}",
            global.with_flags(&render::plan::human(&doc, global.style, args.detail))
        ),
        // Streamed: the text of a million actions is never held.
        Format::Json => plan::file::write_json(&doc, std::io::stdout().lock())
            .map_err(|e| CliError::io("standard output", e))?,
        Format::Markdown => print!("{}", global.with_flags(&render::plan::markdown(&doc))),
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

/// State (refreshed first with `--refresh`; `early` when it was read already) and provider facts.
async fn gather(
    args: &PlanArgs,
    global: &Global,
    provider: &Provider,
    format: Format,
    early: Option<Result<StateRead, CliError>>,
) -> Result<(Snapshot, Option<plan::InProgress>, plan::ProviderFacts), CliError> {
    if let Some(read) = early {
        let (snapshot, holder, recorded) = read?;
        super::provider::check(recorded.as_deref(), &provider.id)?;
        return Ok((snapshot, holder, provider.facts().await?));
    }
    if args.refresh && Store::exists(&global.state).await? {
        let report = super::refresh::refresh_state(
            global,
            provider,
            crate::exec::DEFAULT_PARALLELISM,
            std::time::Duration::ZERO,
            super::refresh::PROGRESS_INTERVAL,
        )
        .await?;
        // Machine-readable plans own stdout; the drift report then goes to stderr.
        match format {
            Format::Human => println!(
                "{}",
                global.with_flags(&render::state::refresh_human(&report, global.style))
            ),
            _ => eprint!(
                "{}",
                global.with_flags(&render::state::refresh_human(&report, global.err_style))
            ),
        }
    }
    let (snapshot, holder, recorded) = read_snapshot(global).await?;
    super::provider::check(recorded.as_deref(), &provider.id)?;
    Ok((snapshot, holder, provider.facts().await?))
}

/// What plan reads of the state: a snapshot, who is applying to it right now (if anyone), and
/// the provider it belongs to (if recorded yet).
type StateRead = (Snapshot, Option<plan::InProgress>, Option<String>);

/// The state as plan sees it (with `--sandbox`, a state not written yet is an empty one), who is
/// applying to it right now, and the provider it belongs to: plan against another provider
/// would plan nonsense, so [`gather`] refuses it before asking that provider anything.
async fn read_snapshot(global: &Global) -> Result<StateRead, CliError> {
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
            Ok((snapshot, holder, store.provider().await?))
        }
        None => Ok((Snapshot::default(), None, None)),
    })
    .await
}

/// The plan of `decls` against `snapshot`; `journal_key` keys the digests declared people are
/// compared by.
pub fn document(
    decls: &Declarations,
    snapshot: &Snapshot,
    facts: &plan::ProviderFacts,
    options: &PlanOptions,
    journal_key: &[u8],
) -> PlanDocument {
    let people = crate::exec::declared::planned(decls, journal_key);
    let p = plan::plan_all(
        &decls.cards,
        &decls.moves,
        &people,
        snapshot,
        facts,
        options,
    );
    PlanDocument::new(
        p,
        StateRef::new(&snapshot.lineage, snapshot.serial),
        DeclarationsRef {
            fingerprint: decls.fingerprint_keyed(journal_key),
            files: decls.files.clone(),
        },
        options.prune,
        &facts.currency,
        now_rfc3339(&SystemClock),
    )
}

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
