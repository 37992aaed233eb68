//! What a release ships beside the binary, written from the clap definition so it never drifts
//! from `--help`: the man pages (`cardform generate-man DIR`) and the bash, zsh and fish
//! completions (`cardform generate-completions DIR`). Both commands are hidden: they are for
//! `scripts/package.sh` and packagers, not for users. Owns only writing those files; it reads no
//! project file, state or provider, and must not.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use super::args::Cli;
use super::{CliError, Outcome};

/// The shells whose completions a release archive carries: the ones `scripts/install.sh` knows
/// where to put.
const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// `cardform generate-man DIR`: `cardform.1`, and one page per visible subcommand
/// (`cardform-plan.1`, `cardform-state-list.1`, …), each dated with the build date so two builds
/// of one commit write the same bytes.
pub fn man(dir: &Path) -> Result<Outcome, CliError> {
    create_dir(dir)?;
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    let mut written = Vec::new();
    write_pages(command, dir, &mut written)?;
    report(&written);
    Ok(Outcome::Success)
}

/// `cardform generate-completions DIR`: `cardform.bash`, `_cardform` (zsh) and `cardform.fish`.
pub fn completions(dir: &Path) -> Result<Outcome, CliError> {
    create_dir(dir)?;
    let mut command = Cli::command();
    let mut written = Vec::new();
    for shell in SHELLS {
        let path =
            clap_complete::generate_to(shell, &mut command, "cardform", dir).map_err(|e| {
                CliError::io(
                    format!("writing {shell} completions into {}", dir.display()),
                    e,
                )
            })?;
        written.push(path);
    }
    report(&written);
    Ok(Outcome::Success)
}

/// Depth first, the way `clap_mangen::generate_to` walks, but with the page dated: that function
/// leaves the date empty and offers no way to set it.
fn write_pages(
    command: clap::Command,
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<(), CliError> {
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, written)?;
    }
    let page = clap_mangen::Man::new(command).date(env!("CARDFORM_BUILD_DATE"));
    let path = page
        .generate_to(dir)
        .map_err(|e| CliError::io(format!("writing a man page into {}", dir.display()), e))?;
    written.push(path);
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir.display(), e))
}

/// One line per file on stderr, so a packaging script's log says what it got while stdout stays
/// free for a pipe.
fn report(written: &[PathBuf]) {
    for path in written {
        eprintln!("wrote {}", path.display());
    }
}
