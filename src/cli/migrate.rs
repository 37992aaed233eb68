//! `cardform state migrate --to URL` and `cardform state backup FILE`: copy a whole state to
//! another place (a laptop's file to the team's PostgreSQL, say, or a backup file), lineage and
//! serial included, so every idempotency key stays the same and nothing is ever issued or paid
//! twice because state moved. `migrate` holds the source's lock while it copies; `backup` reads
//! one consistent snapshot without the lock, so it works while an apply runs. Both leave the
//! source as it was.

use super::args::{BackupArgs, MigrateArgs};
use super::out::print;
use super::session::{self, Session};
use super::settings::{self, Global};
use super::{CliError, Outcome};
use crate::state::{StateLocation, Store};

pub async fn run(args: &MigrateArgs, global: &Global) -> Result<Outcome, CliError> {
    let wait = settings::lock_wait(&args.lock.lock_timeout)?;
    let target = StateLocation::parse(&args.to).map_err(CliError::Usage)?;
    if target == global.state {
        return Err(CliError::Usage(format!(
            "--to {target}: that is the state being copied"
        )));
    }
    let text = session::write(global, wait, async |s: &Session| {
        copy(s.store(), &global.state, &target, wait).await
    })
    .await?;
    print(&text)
}

pub async fn backup(args: &BackupArgs, global: &Global) -> Result<Outcome, CliError> {
    if args.file.exists() {
        return Err(CliError::Usage(format!(
            "{}: refusing to overwrite an existing file; name a new one",
            args.file.display()
        )));
    }
    let to = StateLocation::file(&args.file);
    let text = session::reading_required(global, async |store: &Store| {
        let dump = store.dump().await?;
        let target = Store::create(&to).await?;
        let loaded = target.load(&dump).await;
        target.close().await;
        loaded?;
        Ok(format!(
            "Wrote a copy of {} at serial {} to {to} ({}). It is a complete state: read it with \
             --state {to}.\n",
            global.state,
            dump.serial,
            contents(&dump)
        ))
    })
    .await?;
    print(&text)
}

async fn copy(
    source: &Store,
    from: &StateLocation,
    to: &StateLocation,
    wait: std::time::Duration,
) -> Result<String, CliError> {
    let dump = source.dump().await?;
    if let Some(existing) = Store::open_existing(to).await? {
        let lineage = existing.lineage().await?;
        let serial = existing.serial().await?;
        existing.close().await;
        // A state made by `cardform init` and never written to is an empty place to copy into.
        if serial == 0 {
            return load(&dump, from, to, wait).await;
        }
        if lineage != dump.lineage {
            return Err(CliError::refused(format!(
                "refusing to copy into {to}: it holds another state (lineage {lineage}, serial \
                 {serial}); copying would mix two lineages and their idempotency keys"
            ))
            .hint("pick an empty place (e.g. another ?state=NAME)"));
        }
        if serial == dump.serial {
            return Ok(format!(
                "{to} already holds this state at serial {serial} (lineage {lineage}): nothing to copy.\n"
            ));
        }
        return Err(CliError::refused(format!(
            "refusing to copy into {to}: it holds this state at serial {serial}, the source is at \
             serial {}; both were written since they parted, and neither may overwrite the other",
            dump.serial
        )));
    }
    load(&dump, from, to, wait).await
}

async fn load(
    dump: &crate::state::StateDump,
    from: &StateLocation,
    to: &StateLocation,
    wait: std::time::Duration,
) -> Result<String, CliError> {
    // `copy` found nothing there, or a state never written to: a state to create, or to fill.
    let target = Store::open_or_create(to).await?;
    let lock = super::who::acquire_lock(&target, wait).await?;
    let loaded = target.load(dump).await;
    let released = target.release_lock(&lock.lock_id).await;
    target.close().await;
    loaded?;
    released?;
    Ok(format!(
        "Copied the state from {from} to {to}: lineage {}, serial {}; {}.\nPoint --state / \
         CARDFORM_STATE at {to} from now on. The source was left as it was: keep it as a backup, \
         or delete it once the copy is in use.\n",
        dump.lineage,
        dump.serial,
        contents(dump)
    ))
}

/// What a copy holds, as both messages say it; approvals only where `cardform serve` left some.
fn contents(dump: &crate::state::StateDump) -> String {
    let mut said = format!(
        "{} cards, {} orders, {} runs, {} provider calls",
        dump.cards.len(),
        dump.orders.len(),
        dump.runs.len(),
        dump.calls.len()
    );
    if !dump.approvals.is_empty() {
        said.push_str(&format!(", {} approvals", dump.approvals.len()));
    }
    said
}
