//! `cardform validate`: parse and lint declarations; no state, no network.

use super::args::FilesArgs;
use super::settings::Global;
use super::{CliError, Outcome};
use crate::spec;

pub fn run(args: &FilesArgs, global: &Global) -> Result<Outcome, CliError> {
    let decls = spec::load(&args.files)?;
    println!(
        "{} {} card{} declared in {} file{}.",
        global.style.green("Valid:"),
        decls.cards.len(),
        if decls.cards.len() == 1 { "" } else { "s" },
        decls.files.len(),
        if decls.files.len() == 1 { "" } else { "s" },
    );
    Ok(Outcome::Success)
}
