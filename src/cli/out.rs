//! Small things every reporting command shares: printing a finished text to stdout, opening the
//! state a command needs, and the error for a key state does not hold. No command logic.

use std::io::Write as _;

use super::settings::Global;
use super::{CliError, Outcome};

/// Writes `text` to stdout in one go (a closed pipe is an error, not a panic).
pub fn print(text: &str) -> Result<Outcome, CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(|e| CliError::io("stdout", e))?;
    Ok(Outcome::Success)
}

pub fn no_such_card(key: &str, global: &Global) -> CliError {
    CliError::NoSuchCard {
        key: key.to_owned(),
        state: global.state.to_string(),
        listing: global.cmd("show"),
    }
}
