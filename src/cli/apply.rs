//! `cardform apply` and `cardform force-unlock`: plan (or read a saved plan), ask, lock the state,
//! hand the actions to the executor, draw its events, and settle the exit code; remove a lock
//! whose holder is gone, once asked.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::args::ApplyArgs;
use super::plan::document;
use super::provider::Provider;
use super::session::{self, Session};
use super::settings::{self, Global, parse_amount};
use super::{CliError, Outcome};
use crate::decl;
use crate::exec::{self, EventSink, ExecOptions, StopFlag};
use crate::plan::{PlanDocument, PlanOptions};
use crate::render::{self, progress};
use crate::serve::apply as carry;
use crate::state::{StateError, Store};
use crate::wire::SystemClock;

/// `apply`'s flags, each checked once before anything is read or sent.
struct Settings {
    max_fees: Option<rust_decimal::Decimal>,
    max_prune: crate::plan::MaxPrune,
    lock_wait: std::time::Duration,
    rate: Option<f64>,
    parallelism: usize,
    progress_interval: std::time::Duration,
    max_failure_rate: Option<rust_decimal::Decimal>,
    kyc_wait: std::time::Duration,
    part_cards: usize,
}

impl Settings {
    fn resolve(args: &ApplyArgs, global: &Global) -> Result<Self, CliError> {
        let rate = global.rate(args.rate)?.map(|(r, _)| r);
        Ok(Settings {
            max_fees: parse_amount("--max-fees", args.max_fees.as_deref())?,
            max_prune: global.max_prune(args.max_prune.as_deref())?.0,
            lock_wait: settings::lock_wait(&args.lock_timeout)?,
            rate,
            parallelism: global.parallelism(args.parallelism, rate)?.0,
            progress_interval: settings::parse_duration(
                "--progress-interval",
                &args.progress_interval,
            )?,
            max_failure_rate: global.max_failure_rate(args.max_failure_rate.as_deref())?.0,
            kyc_wait: settings::parse_duration("--kyc-wait", &args.kyc_wait)?,
            part_cards: match args.part_size {
                0 => return Err(CliError::Usage("--part-size must be at least 1".into())),
                n => n,
            },
        })
    }
}

pub async fn run(args: &ApplyArgs, global: &Global) -> Result<Outcome, CliError> {
    if args.refresh_only {
        return super::refresh::apply_refresh_only(args, global).await;
    }
    // Without a PLANFILE, `-f` may come from cardform.toml: resolved once, here.
    let mut args = args.clone();
    if args.plan_file.is_none() {
        args.files = global.files(&args.files).map_err(|_| {
            CliError::Usage(
                "nothing to apply: pass -f FILE|DIR (repeatable) or a saved PLANFILE, or list \
                 the declarations as `files = [\"cards/\"]` in cardform.toml"
                    .into(),
            )
        })?;
    }
    let args = &args;
    let settings = Settings::resolve(args, global)?;

    // Everything that can fail on input fails before the provider hears of it.
    let input = match &args.plan_file {
        Some(path) => Input::Saved(Box::new(read_plan_file(path)?)),
        None => declared(args, &settings)?,
    };

    let provider = Provider::connect(global, settings.rate).await?;
    let result = session::write_for(
        global,
        settings.lock_wait,
        &provider.id,
        async |s: &Session| {
            // From here on Ctrl-C must not leave the lock behind: before anything is sent it releases
            // the lock and exits; while orders are in flight it stops starting new work.
            let stop = StopFlag::default();
            let sending = Arc::new(AtomicBool::new(false));
            let signals = tokio::spawn(watch_interrupts(
                stop.clone(),
                sending.clone(),
                s.store().clone(),
                s.lock().lock_id.clone(),
            ));
            let result = locked(args, &settings, global, &provider, s, input, stop, sending).await;
            signals.abort();
            result
        },
    )
    .await;
    provider.shutdown().await;
    result
}

/// What to apply: a plan saved earlier, or declarations to plan now, read whole or a part at a
/// time.
enum Input {
    Saved(Box<PlanDocument>),
    Declared(decl::Declarations),
    /// A fleet of more than `--part-size` cards without moves or people: every entry checked
    /// and counted (no card kept), to be planned and applied a part at a time.
    InParts(decl::Checked),
}

/// The shortest a card can be written (a CSV row of one-letter fields): files smaller than this
/// per card of `--part-size` cannot hold more cards than a part, and are read whole at once.
const LEAST_BYTES_PER_CARD: u64 = 8;

/// Reads `-f`: counted first when the files could hold more cards than a part, and then read a
/// part at a time when they do and nothing in them relates cards of different parts.
fn declared(args: &ApplyArgs, settings: &Settings) -> Result<Input, CliError> {
    let may_be_large =
        decl::input_bytes(&args.files) > settings.part_cards as u64 * LEAST_BYTES_PER_CARD;
    if may_be_large
        && args.target.is_empty()
        && args.replace.is_empty()
        && let Ok(checked) = decl::check(&args.files)
        && checked.cards > settings.part_cards
        && !checked.has_moves
        && !checked.has_people
    {
        return Ok(Input::InParts(checked));
    }
    // A problem found while counting is reported by the whole read, with every other.
    let decls = decl::load(&args.files)?;
    settings::check_not_empty(&decls, args.allow_empty)?;
    Ok(Input::Declared(decls))
}

/// The cardholder forms a run sends, by external user id.
type Forms = std::collections::BTreeMap<String, crate::wire::CreateCardholderRequest>;

/// The plan `apply` carries out, once approved, with what the run needs beside its actions.
struct Approved {
    doc: PlanDocument,
    forms: Forms,
    /// Set when the fleet is carried out a part at a time.
    parts: Option<crate::exec::parts::Parts>,
}

/// What `-f` or a PLANFILE comes to once state is read under the lock: each input in the one
/// form it is planned from, so nothing below matches an input that cannot occur.
enum Ready {
    Saved(Box<PlanDocument>),
    Declared(decl::Declarations),
    /// Planned and folded a part at a time: the whole plan without its actions.
    Folded(Box<Folded>),
}

struct Folded {
    plan: crate::plan::Plan,
    outline: crate::plan::outline::Outline,
    parts: crate::exec::parts::Parts,
    currency: String,
    files: Vec<String>,
}

/// `input` in the form it is planned from. A fleet counted for parts is read whole after all
/// when people in state relate cards across parts (a card waits for its person), or when one
/// part's change waits for another's.
async fn ready(
    args: &ApplyArgs,
    settings: &Settings,
    provider: &Provider,
    snapshot: &crate::state::Snapshot,
    options: &PlanOptions,
    input: Input,
) -> Result<Ready, CliError> {
    let counted = match input {
        Input::Saved(doc) => return Ok(Ready::Saved(doc)),
        Input::Declared(decls) => return Ok(Ready::Declared(decls)),
        Input::InParts(counted) => counted,
    };
    let people_in_state = snapshot.resources.keys().any(|a| a.kind.is_person())
        || snapshot.open_orders.keys().any(|a| a.kind.is_person());
    if !people_in_state {
        let facts = provider.facts().await?;
        let count = u32::try_from(counted.cards.div_ceil(settings.part_cards))
            .map_err(|_| CliError::Usage("--part-size is too small for this fleet".into()))?;
        if let Some((plan, outline, parts)) =
            crate::exec::parts::fold(&args.files, snapshot, &facts, options, count)?
        {
            return Ok(Ready::Folded(Box::new(Folded {
                plan,
                outline,
                parts,
                currency: facts.currency,
                files: counted.files,
            })));
        }
    }
    Ok(Ready::Declared(decl::load(&args.files)?))
}

/// The plan to carry out, shown and approved; `Err(outcome)` when the command ends here
/// (declined, or nothing to do).
async fn approve(
    args: &ApplyArgs,
    global: &Global,
    provider: &Provider,
    store: &Store,
    snapshot: &crate::state::Snapshot,
    mut options: PlanOptions,
    ready: Ready,
) -> Result<Result<Approved, Outcome>, CliError> {
    let approved = match ready {
        Ready::Saved(doc) => {
            let doc = *doc;
            super::stale::against_state(&doc, snapshot, store).await?;
            if let Some(notice) = render::plan::partial_notice(&doc) {
                eprintln!("{}", render::safe(&notice));
            }
            super::stale::against_declarations(&doc, snapshot, global, provider).await?;
            let forms = saved_plan_forms(&doc, provider.client.journal_key());
            Approved {
                doc,
                forms,
                parts: None,
            }
        }
        Ready::Folded(folded) => {
            let Folded {
                plan,
                outline,
                parts,
                currency,
                files,
            } = *folded;
            let doc = PlanDocument::new(
                plan,
                crate::plan::StateRef::new(&snapshot.lineage, snapshot.serial),
                crate::plan::DeclarationsRef {
                    // A fingerprint covers the whole declarations in order, which are never
                    // held here; nothing reads it from a plan that is not saved.
                    fingerprint: String::new(),
                    files,
                },
                args.prune,
                &currency,
                crate::wire::timestamp::now_rfc3339(&SystemClock),
            );
            let shown = || render::plan::human_outlined(&doc, &outline, global.style);
            if let Some(end) = show_and_ask(args, global, &doc, shown)? {
                return Ok(Err(end));
            }
            Approved {
                doc,
                forms: Forms::new(),
                parts: Some(parts),
            }
        }
        Ready::Declared(decls) => {
            settings::check_cards_declared(&decls, snapshot.cards.len(), args.allow_empty)?;
            options.replace = super::plan::replace_set(&args.replace, &decls, snapshot)?;
            let facts = provider.facts().await?;
            let journal_key = provider.client.journal_key();
            let doc = document(&decls, snapshot, &facts, &options, journal_key);
            super::settings::check_targets_matched(&doc)?;
            let shown = || render::plan::human(&doc, global.style, false);
            if let Some(end) = show_and_ask(args, global, &doc, shown)? {
                return Ok(Err(end));
            }
            Approved {
                doc,
                forms: crate::exec::declared::forms(&decls),
                parts: None,
            }
        }
    };
    Ok(Ok(approved))
}

#[allow(clippy::too_many_arguments)]
async fn locked(
    args: &ApplyArgs,
    settings: &Settings,
    global: &Global,
    provider: &Provider,
    session: &Session,
    input: Input,
    stop: StopFlag,
    sending: Arc<AtomicBool>,
) -> Result<Outcome, CliError> {
    let store = session.store();
    let snapshot = store.snapshot().await?;
    let options = PlanOptions {
        prune: args.prune,
        max_fees: settings.max_fees,
        max_prune: settings.max_prune,
        targets: super::settings::targets(&args.target)?,
        replace: Default::default(),
    };
    let ready = ready(args, settings, provider, &snapshot, &options, input).await?;
    let Approved {
        doc,
        mut forms,
        mut parts,
    } = match approve(args, global, provider, store, &snapshot, options, ready).await? {
        Ok(approved) => approved,
        Err(outcome) => return Ok(outcome),
    };
    if !doc.applicable {
        return Err(
            CliError::refused("the saved plan has problems and cannot be applied")
                .hint("`cardform show PLANFILE` lists them; fix the declarations and plan again"),
        );
    }
    // As `apply -f` does: no run is recorded, so the serial (and every other saved plan made
    // against it) stays as it is.
    if !doc.has_changes {
        if !args.json {
            println!("No changes in the saved plan: nothing to apply.");
        }
        return Ok(Outcome::Success);
    }

    if doc.refresh.as_ref().is_some_and(|r| r.refresh_only) {
        return super::refresh::apply_refreshed(session, &doc, args.json, global).await;
    }

    // The executor owns the actions from here: a copy for it would double apply's memory.
    let mut doc = doc;
    let mut actions = std::mem::take(&mut doc.plan.actions);
    session
        .run(async |serial| {
            if !doc.currency.is_empty() {
                store.set_currency(&doc.currency).await?;
            }
            let (snapshot, recorded) =
                super::refresh::record_saved(store, serial, &doc, snapshot).await?;
            let summary = execute(
                args,
                settings,
                global,
                provider,
                store,
                serial,
                snapshot,
                &doc,
                std::mem::take(&mut actions),
                parts.take(),
                std::mem::take(&mut forms),
                stop,
                &sending,
            )
            .await?;
            let mut json = serde_json::to_value(&summary).unwrap_or_default();
            if let (Some(drift), Some(json)) = (recorded, json.as_object_mut()) {
                json.insert("drift".into(), drift);
            }
            Ok((summary, json))
        })
        .await
        .and_then(|summary| {
            if !args.json {
                print!(
                    "{}",
                    global.with_flags(&progress::summary(&summary, global.style, &doc.currency))
                );
            }
            if summary.interrupted {
                return Ok(Outcome::Interrupted);
            }
            if !summary.succeeded() {
                return Err(CliError::Reported);
            }
            Ok(Outcome::Success)
        })
}

/// Carries out `doc` as run `serial`, drawing the executor's events.
#[allow(clippy::too_many_arguments)]
async fn execute(
    args: &ApplyArgs,
    settings: &Settings,
    global: &Global,
    provider: &Provider,
    store: &Store,
    serial: u64,
    snapshot: crate::state::Snapshot,
    doc: &PlanDocument,
    actions: Vec<crate::plan::Action>,
    parts: Option<crate::exec::parts::Parts>,
    cardholder_forms: std::collections::BTreeMap<String, crate::wire::CreateCardholderRequest>,
    stop: StopFlag,
    sending: &AtomicBool,
) -> Result<exec::Summary, CliError> {
    let mode = if args.json {
        progress::Mode::Json
    } else if std::io::stderr().is_terminal() {
        progress::Mode::Bar
    } else {
        progress::Mode::Lines {
            each_card: args.log_cards,
            interval: settings.progress_interval,
        }
    };
    let drawer = Arc::new(progress::Progress::new(
        mode,
        global.err_style,
        &doc.currency,
    ));
    let sink = {
        let drawer = drawer.clone();
        EventSink::new(move |e| drawer.handle(&e))
    };
    sending.store(true, Ordering::SeqCst);

    let options = ExecOptions {
        parallelism: settings.parallelism,
        fail_fast: args.fail_fast,
        fetch_details: args.fetch_details,
        max_fees: settings.max_fees,
        canary: args.canary,
        max_failure_rate: settings.max_failure_rate,
        subproviders: carry::subproviders(&provider.client, &cardholder_forms, &snapshot).await,
        cardholder_forms,
        kyc_wait: settings.kyc_wait,
        ..ExecOptions::default()
    };
    if let Some(parts) = &parts
        && !args.json
    {
        eprintln!(
            "note: {} changes are carried out in {} parts of about {} cards (--part-size), each \
             planned again and checked against this plan before it starts",
            parts.total,
            parts.count(),
            settings.part_cards
        );
    }
    let summary = carry::carry_out(carry::Carry {
        store: store.clone(),
        client: provider.client.clone(),
        serial,
        snapshot,
        actions,
        parts,
        options,
        sink,
        stop,
    })
    .await?;
    Ok(summary)
}

/// Before anything is sent, Ctrl-C releases the lock and leaves. Once orders are being sent, the
/// first Ctrl-C starts nothing new and finishes what is in flight; the second leaves at once (the
/// journal already holds everything needed to resume).
async fn watch_interrupts(stop: StopFlag, sending: Arc<AtomicBool>, store: Store, lock_id: String) {
    if tokio::signal::ctrl_c().await.is_err() {
        return;
    }
    if !sending.load(Ordering::SeqCst) {
        let _ = store.release_lock(&lock_id).await;
        eprintln!("\nInterrupted: nothing was sent.");
        std::process::exit(130);
    }
    stop.stop();
    eprintln!(
        "\nInterrupted: starting nothing new, tracking orders in flight. Press Ctrl-C again to exit at once (re-run apply to resume)."
    );
    if tokio::signal::ctrl_c().await.is_ok() {
        eprintln!(
            "Exiting now. Open orders are in the journal: re-run the same apply to resume them."
        );
        std::process::exit(130);
    }
}

/// Shows the plan (`text`, unless `--json`) and asks for approval: `Some` of how apply ends when
/// it goes no further (problems, nothing to do, not approved), `None` to go on.
fn show_and_ask(
    args: &ApplyArgs,
    global: &Global,
    doc: &PlanDocument,
    text: impl FnOnce() -> String,
) -> Result<Option<Outcome>, CliError> {
    if !args.json {
        print!("{}", global.with_flags(&text()));
    }
    if !doc.applicable {
        super::sandbox_settings::hint_balance(global, &doc.plan.problems);
        return Err(CliError::Reported);
    }
    if !doc.has_changes {
        return Ok(Some(Outcome::Success));
    }
    if !args.auto_approve && !approved()? {
        println!("Apply cancelled: nothing was sent.");
        return Ok(Some(Outcome::Success));
    }
    Ok(None)
}

fn approved() -> Result<bool, CliError> {
    confirmed("Do you want to perform these actions?")?.ok_or_else(|| {
        CliError::Usage(
            "apply needs approval, but standard input is not a terminal: pass --auto-approve (for CI), or apply a saved plan (cardform plan --out PLANFILE; cardform apply PLANFILE)".into(),
        )
    })
}

/// Asks `question` on the terminal, where only `yes` means yes; `None` when standard input is
/// not a terminal to ask on.
pub(super) fn confirmed(question: &str) -> Result<Option<bool>, CliError> {
    if !std::io::stdin().is_terminal() {
        return Ok(None);
    }
    print!("\n{question} Only 'yes' will be accepted: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::io("stdin", e))?;
    Ok(Some(answer.trim() == "yes"))
}

fn read_plan_file(path: &std::path::Path) -> Result<PlanDocument, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::io(path.display(), e))?;
    crate::plan::file::read(&text).map_err(|e| {
        // The likeliest mistake: declarations given without -f. Never suggest writing a plan
        // over them.
        if decl::load(&[path.to_path_buf()]).is_ok() {
            return CliError::Usage(format!(
                "{0} holds declarations, not a saved plan: apply them with `cardform apply -f {0}`",
                path.display()
            ));
        }
        CliError::refused(format!(
            "{} is not a cardform plan file ({e})",
            path.display()
        ))
        .hint(
            "save a plan with `cardform plan -f DECLARATIONS --out plan.json`, then `cardform \
             apply plan.json`",
        )
    })
}

/// The KYC forms a saved plan's cardholder actions need: its declaration files are the only
/// place they are (the plan holds none). Read only when the plan creates a cardholder; when the
/// files are gone, those actions fail with a hint and the rest of the plan goes ahead.
fn saved_plan_forms(
    doc: &PlanDocument,
    journal_key: &[u8],
) -> std::collections::BTreeMap<String, crate::wire::CreateCardholderRequest> {
    let creates_cardholders = doc
        .plan
        .actions
        .iter()
        .any(|a| a.kind() == crate::plan::ActionKind::CreateCardholder);
    let files: Vec<std::path::PathBuf> = doc.declarations.files.iter().map(Into::into).collect();
    if !creates_cardholders || files.is_empty() {
        return Default::default();
    }
    match decl::load(&files) {
        Ok(decls) if decls.fingerprint_keyed(journal_key) == doc.declarations.fingerprint => {
            crate::exec::declared::forms(&decls)
        }
        _ => Default::default(),
    }
}

/// Removes lock `lock_id` once a person has said its holder is gone. A holder still running on
/// this host is refused whatever the flags: removing its record would not stop it (on PostgreSQL
/// it would end its session mid-run), and stopping that process frees the lock anyway. Any other
/// holder goes after a `yes` on the terminal, or with `--force` where there is none to ask on.
pub async fn force_unlock(
    lock_id: &str,
    force: bool,
    global: &Global,
) -> Result<Outcome, CliError> {
    session::reading_required(global, async |store: &Store| {
        let holder = match store.current_lock().await? {
            Some(holder) if holder.lock_id == lock_id => holder,
            Some(other) => {
                return Err(StateError::NotFound(format!(
                    "no lock {lock_id}; the state is locked by {} (pid {} on {})",
                    other.lock_id, other.pid, other.host
                ))
                .into());
            }
            None => {
                return Err(
                    StateError::NotFound(format!("no lock is held (asked for {lock_id})")).into(),
                );
            }
        };
        let held = format!(
            "lock {} (held by {}@{} pid {} running `{}` since {})",
            holder.lock_id, holder.user, holder.host, holder.pid, holder.command, holder.since
        );
        if super::who::runs_here(&holder.host, holder.pid) {
            return Err(CliError::refused(format!(
                "refusing to remove {held}: pid {} is still running on this host, and removing \
                 its lock would not stop it",
                holder.pid
            ))
            .hint("stop that process (or let it finish): its lock goes with it"));
        }
        let fate = holder_fate(&holder);
        if !force {
            // The lock's holder (user, host, command) is state's text.
            println!(
                "{} {}.\n{}",
                global.style.bold("Force-unlock"),
                render::safe(&held),
                render::safe(&fate)
            );
            let Some(yes) = confirmed("Do you want to remove this lock?")? else {
                return Err(CliError::Usage(format!(
                    "force-unlock needs confirmation, but standard input is not a terminal: \
                     pass --force to remove {held}"
                )));
            };
            if !yes {
                println!("Force-unlock cancelled: the lock is still in place.");
                return Ok(Outcome::Success);
            }
        }
        let info = store.force_unlock(lock_id).await?;
        let removed = format!(
            "Removed lock {} (held by {}@{} pid {} running `{}` since {}).",
            info.lock_id, info.user, info.host, info.pid, info.command, info.since
        );
        println!("{} {}", render::safe(&removed), render::safe(&fate));
        Ok(Outcome::Success)
    })
    .await
}

/// What becomes of the holder of a lock that is removed (one known not to run on this host).
fn holder_fate(holder: &crate::state::LockInfo) -> String {
    if holder.host == crate::state::local_host() {
        format!(
            "Its process (pid {}) is no longer running on this host.",
            holder.pid
        )
    } else {
        format!(
            "It was taken on another host ({}), where it may still be running: if so, it stops \
             at its next write, having changed nothing; its orders in flight stay open in the \
             journal and the next run resumes them.",
            holder.host
        )
    }
}
