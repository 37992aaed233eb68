//! `cardform validate`: parse and lint declarations; no state, no network.

use super::args::ValidateArgs;
use super::settings::Global;
use super::{CliError, Outcome};
use crate::decl;
use crate::render::diagnostics;

pub fn run(args: &ValidateArgs, global: &Global) -> Result<Outcome, CliError> {
    // `-f` may come from cardform.toml.
    let mut args = args.clone();
    args.files.files = global.files(&args.files.files)?;
    let args = &args;
    let loaded = decl::load(&args.files.files);
    if args.out.json {
        println!("{}", diagnostics::result_json(&loaded));
        return match loaded {
            Ok(decls) => super::settings::check_not_empty(&decls, args.allow_empty)
                .map(|()| Outcome::Success),
            Err(_) => Err(CliError::Reported),
        };
    }
    // Said before the verdict, valid or not: a file left out of a directory on purpose is still
    // one someone may have meant to declare cards in.
    for skipped in decl::skipped(&args.files.files) {
        println!("skipped: {skipped}");
    }
    let decls = loaded?;
    super::settings::check_not_empty(&decls, args.allow_empty)?;
    let people = match decls.cardholders.len() {
        0 => String::new(),
        1 => " and 1 cardholder".to_owned(),
        n => format!(" and {n} cardholders"),
    };
    println!(
        "{} {} card{}{people} declared in {} file{}.",
        global.style.green("Valid:"),
        decls.cards.len(),
        if decls.cards.len() == 1 { "" } else { "s" },
        decls.files.len(),
        if decls.files.len() == 1 { "" } else { "s" },
    );
    Ok(Outcome::Success)
}
