//! `cardform init`: create a state on purpose, or (`--upgrade`) bring one written by an older
//! cardform to this release's schema. The only command whose job is the schema itself.
//! `init --config` instead writes a starter `cardform.toml` (see `project`).

use super::args::InitArgs;
use super::out::print;
use super::settings::Global;
use super::{CliError, Outcome};
use crate::state::{SCHEMA_VERSION, Store};

pub async fn run(args: &InitArgs, global: &Global) -> Result<Outcome, CliError> {
    if args.config {
        return write_config();
    }
    let at = &global.state;
    let found = Store::schema_version(at).await?;
    if let Some(v) = found.filter(|v| *v < SCHEMA_VERSION && !args.upgrade) {
        return Err(CliError::refused(format!(
            "the state at {at} was written by an older cardform (schema {v})"
        ))
        .hint(format!(
            "upgrade it with `cardform init --upgrade --state {at}` (a copy of the old file is \
             kept beside it)"
        )));
    }
    // Only here is a state created, and only where nothing is (an empty file is refused, not
    // taken for a new state). Opening an existing one upgrades an older schema (refusing while
    // an older cardform holds its lock) and refuses a newer one untouched.
    let store = match found {
        None => Store::create(at).await?,
        Some(_) => Store::open(at).await?,
    };
    let lineage = store.lineage().await?;
    let serial = store.serial().await?;
    let text = match (found, store.upgraded()) {
        (None, _) => format!(
            "Initialised a new cardform state at {at} (schema {SCHEMA_VERSION}, lineage {lineage}).\n"
        ),
        (Some(_), Some(up)) => format!(
            "The state at {at}: {up}.\nLineage {lineage} and serial {serial} are unchanged, so \
             every idempotency key stays the same: re-running apply sends nothing new.\n"
        ),
        (Some(_), None) => format!(
            "The state at {at} is ready (schema {SCHEMA_VERSION}, lineage {lineage}, serial \
             {serial}): nothing to do.\n"
        ),
    };
    store.close().await;
    print(&text)
}

/// `init --config`: a commented cardform.toml in the working directory, never over one.
fn write_config() -> Result<Outcome, CliError> {
    use std::io::Write;
    let path = std::path::Path::new(super::project::FILE_NAME);
    // `create_new`: the check and the write are one step, so a file appearing meanwhile is kept.
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CliError::refused(format!(
                "{} already exists: refusing to overwrite it",
                path.display()
            ))
            .hint("edit it, or remove it first"));
        }
        Err(e) => return Err(CliError::io(path.display(), e)),
    };
    file.write_all(super::project::STARTER.as_bytes())
        .map_err(|e| CliError::io(path.display(), e))?;
    print(&format!(
        "Wrote {}: edit `files` and `state`, then run `cardform config` to check what applies.\n",
        path.display()
    ))
}
