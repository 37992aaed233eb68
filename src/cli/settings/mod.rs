//! Resolved settings: clap's strings turned into typed values once, with the defaults that depend
//! on other flags (`--sandbox` moves the state to `state/sandbox.db`). Every flag that more than
//! one command takes (`--lock-timeout`, `--rate`, `--max-fees`) is checked here and only here.
//! Where the state lives is decided here too, and [`StateSource`] says from what. The flags'
//! values are parsed in `values.rs`, the refusals of declared input in `checks.rs` (both
//! re-exported here).
//!
//! The project file (`cardform.toml`, see `project`) gives defaults below flags and environment
//! variables: flag > environment > cardform.toml > built-in default. Each value resolved here
//! knows its [`Source`], which `cardform config` prints.

use rust_decimal::Decimal;
use std::io::IsTerminal;
use std::path::PathBuf;

use super::CliError;
use super::args::GlobalArgs;
use super::project::Project;
use crate::render::Style;
use crate::state::StateLocation;

mod checks;
mod values;

pub use checks::{check_cards_declared, check_not_empty, check_targets_matched};
pub use values::{
    lock_wait, max_failure_rate, max_prune, parallelism, parse_amount, parse_duration, rate,
    targets,
};

pub const DEFAULT_STATE: &str = "state/cardform.db";
pub const SANDBOX_STATE: &str = "state/sandbox.db";
/// The sandbox's world is kept beside its state, so `--sandbox` runs are one persistent provider.
pub const SANDBOX_WORLD: &str = "sandbox-world.json";
/// Where a team keeps its real state (a shared file or a postgres:// URL).
pub const ENV_STATE: &str = "CARDFORM_STATE";

/// Where a resolved setting came from, as `cardform config` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    Env(&'static str),
    /// `cardform.toml`, as `path:line`.
    File(String),
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File(at) => f.write_str(at),
            Source::Default => f.write_str("default"),
        }
    }
}

/// Where the state location came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    /// `--state`, which always wins.
    Flag,
    /// `CARDFORM_STATE`, for runs against a real provider only.
    Env,
    /// `state` in `cardform.toml`, for runs against a real provider only (as `CARDFORM_STATE`).
    Project,
    /// The default for the provider (`state/cardform.db`, or `state/sandbox.db` with `--sandbox`).
    /// `env_ignored`: `CARDFORM_STATE` was set, and `--sandbox` left it alone.
    Default { env_ignored: bool },
}

#[derive(Debug, Clone)]
pub struct Global {
    pub state: StateLocation,
    pub state_source: StateSource,
    pub sandbox: bool,
    /// Colour on stdout.
    pub style: Style,
    /// Colour on stderr.
    pub err_style: Style,
    /// `--request-timeout`: how long one provider call may go without any answer.
    pub request_timeout: std::time::Duration,
    /// The project file, when one was found (or named).
    pub project: Option<Project>,
    /// The provider's API URL: `CARDFORM_API_URL`, else `api_url` in `cardform.toml`.
    pub api_url: Option<(String, Source)>,
}

impl Global {
    pub fn resolve(g: &GlobalArgs, project: Option<Project>) -> Result<Self, CliError> {
        let env = env_var(ENV_STATE);
        let file = project.as_ref().and_then(|p| p.state.as_deref());
        let (state, state_source) =
            state_location(g.state.as_deref(), env.as_deref(), file, g.sandbox);
        let state = StateLocation::parse(state).map_err(|e| match state_source {
            StateSource::Env => CliError::Usage(format!("{ENV_STATE}: {e}")),
            StateSource::Project => CliError::Usage(format!(
                "{}: {e}",
                project.as_ref().map(|p| p.at("state")).unwrap_or_default()
            )),
            _ => CliError::Usage(e),
        })?;
        let api_url = match (env_var(super::provider::ENV_URL), &project) {
            (Some(url), _) => Some((url, Source::Env(super::provider::ENV_URL))),
            (None, Some(p)) => p
                .api_url
                .clone()
                .filter(|u| !u.trim().is_empty())
                .map(|u| (u, Source::File(p.at("api_url")))),
            (None, None) => None,
        };
        let color_ok = !g.no_color && std::env::var_os("NO_COLOR").is_none();
        let request_timeout = parse_duration("--request-timeout", &g.request_timeout)?;
        if request_timeout.is_zero() {
            return Err(CliError::Usage(
                "--request-timeout 0: a call needs some time to be answered (e.g. 30s)".into(),
            ));
        }
        Ok(Global {
            state,
            state_source,
            sandbox: g.sandbox,
            request_timeout,
            project,
            api_url,
            style: Style {
                color: color_ok && std::io::stdout().is_terminal(),
            },
            err_style: Style {
                color: color_ok && std::io::stderr().is_terminal(),
            },
        })
    }

    /// A cardform command to suggest, with the `--sandbox` / `--state` it needs to act on this
    /// state when pasted. A PostgreSQL state is left to `CARDFORM_STATE` (where the recipe keeps
    /// it): its shown form hides the password, so pasting it would not connect.
    pub fn cmd(&self, rest: &str) -> String {
        let mut s = String::from("cardform");
        if self.sandbox {
            s.push_str(" --sandbox");
        }
        let default = if self.sandbox {
            SANDBOX_STATE
        } else {
            DEFAULT_STATE
        };
        // A state from cardform.toml needs no flag: the pasted command finds the same file.
        if let Some(path) = self.state.as_file()
            && path != std::path::Path::new(default)
            && self.state_source != StateSource::Project
        {
            s.push_str(&format!(" --state {}", path.display()));
        }
        format!("{s} {rest}")
    }

    /// `text` with every command it suggests (`` `cardform …` ``) given the `--sandbox` / `--state`
    /// flags [`Global::cmd`] adds. The hints written below the cli layer (slug hints, state and
    /// plan messages) know no flags; this is where they get them, once, before they are shown.
    pub fn with_flags(&self, text: &str) -> String {
        const START: &str = "`cardform ";
        let prefix = format!("`{}", self.cmd(""));
        if prefix.len() == START.len() + 1 {
            return text.to_owned(); // no flags to add: `cardform  ` is START plus one space
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find(START) {
            let before = &rest[..i];
            out.push_str(before);
            let after = &rest[i + START.len()..];
            let command = &after[..after.find('`').unwrap_or(after.len())];
            // A quoted record (the lock holder's `command …`) is shown as it ran; a suggestion
            // that names its state already is left alone.
            let keep = before.ends_with("command ")
                || command.contains("--sandbox")
                || command.contains("--state");
            out.push_str(if keep { START } else { &prefix });
            rest = after;
        }
        out.push_str(rest);
        out
    }

    /// The sandbox's world file: beside a file state, else in the working directory.
    pub fn sandbox_world(&self) -> PathBuf {
        self.state
            .as_file()
            .and_then(|f| f.parent())
            .map(|p| p.join(SANDBOX_WORLD))
            .unwrap_or_else(|| PathBuf::from(SANDBOX_WORLD))
    }
}

pub const DEFAULT_MAX_PRUNE: &str = "10%";
pub const DEFAULT_MAX_FAILURE_RATE: &str = "20%";

/// A flag that cardform.toml may give a default for: the flag if passed, else the file's value,
/// else `None` (the caller's built-in default), with where it came from.
fn flag_or_file<T>(
    flag: Option<T>,
    flag_name: &'static str,
    project: Option<&Project>,
    key: &str,
    from_file: impl FnOnce(&Project) -> Option<T>,
) -> Option<(T, Source)> {
    match flag {
        Some(v) => Some((v, Source::Flag(flag_name))),
        None => project.and_then(|p| from_file(p).map(|v| (v, Source::File(p.at(key))))),
    }
}

/// An error in a value taken from cardform.toml names where it was written.
fn placed(e: CliError, source: &Source) -> CliError {
    match (e, source) {
        (CliError::Usage(m), Source::File(at)) => CliError::Usage(format!("{at}: {m}")),
        (e, _) => e,
    }
}

impl Global {
    /// The declaration paths: `-f` if given, else `files` in cardform.toml.
    pub fn files(&self, flag: &[PathBuf]) -> Result<Vec<PathBuf>, CliError> {
        Ok(self.files_sourced(flag)?.0)
    }

    pub fn files_sourced(&self, flag: &[PathBuf]) -> Result<(Vec<PathBuf>, Source), CliError> {
        let flag = (!flag.is_empty()).then(|| flag.to_vec());
        let project = self.project.as_ref();
        flag_or_file(flag, "-f", project, "files", |p| p.files.clone()).ok_or_else(|| {
            CliError::Usage(match project {
                Some(p) => format!(
                    "no declaration files: pass -f FILE|DIR (repeatable), or list them as \
                     `files = [\"cards/\"]` in {}",
                    p.path.display()
                ),
                None => "no declaration files: pass -f FILE|DIR (repeatable), or list them as \
                         `files = [\"cards/\"]` in a cardform.toml (`cardform init --config` \
                         writes one)"
                    .into(),
            })
        })
    }

    /// `--rate`, else `rate` in cardform.toml.
    pub fn rate(&self, flag: Option<f64>) -> Result<Option<(f64, Source)>, CliError> {
        match flag_or_file(flag, "--rate", self.project.as_ref(), "rate", |p| p.rate) {
            Some((r, source)) => match rate(Some(r)) {
                Ok(_) => Ok(Some((r, source))),
                Err(e) => Err(placed(e, &source)),
            },
            None => Ok(None),
        }
    }

    /// `--parallelism`, else `parallelism` in cardform.toml, else enough for the rate.
    pub fn parallelism(
        &self,
        flag: Option<usize>,
        rate: Option<f64>,
    ) -> Result<(usize, Source), CliError> {
        let chosen = flag_or_file(
            flag,
            "--parallelism",
            self.project.as_ref(),
            "parallelism",
            |p| p.parallelism,
        );
        match chosen {
            Some((n, source)) => parallelism(Some(n), rate)
                .map(|n| (n, source.clone()))
                .map_err(|e| placed(e, &source)),
            None => Ok((parallelism(None, rate)?, Source::Default)),
        }
    }

    /// `--max-prune`, else `max_prune` in cardform.toml, else 10%.
    pub fn max_prune(
        &self,
        flag: Option<&str>,
    ) -> Result<(crate::plan::MaxPrune, String, Source), CliError> {
        let (raw, source) = flag_or_file(
            flag.map(str::to_owned),
            "--max-prune",
            self.project.as_ref(),
            "max_prune",
            |p| p.max_prune.clone(),
        )
        .unwrap_or_else(|| (DEFAULT_MAX_PRUNE.to_owned(), Source::Default));
        let parsed = max_prune(&raw).map_err(|e| placed(e, &source))?;
        Ok((parsed, raw, source))
    }

    /// `--max-failure-rate`, else `max_failure_rate` in cardform.toml, else 20%.
    pub fn max_failure_rate(
        &self,
        flag: Option<&str>,
    ) -> Result<(Option<Decimal>, String, Source), CliError> {
        let (raw, source) = flag_or_file(
            flag.map(str::to_owned),
            "--max-failure-rate",
            self.project.as_ref(),
            "max_failure_rate",
            |p| p.max_failure_rate.clone(),
        )
        .unwrap_or_else(|| (DEFAULT_MAX_FAILURE_RATE.to_owned(), Source::Default));
        let parsed = max_failure_rate(&raw).map_err(|e| placed(e, &source))?;
        Ok((parsed, raw, source))
    }

    /// Where the state came from, as `cardform config` shows it.
    pub fn state_source_shown(&self) -> Source {
        match self.state_source {
            StateSource::Flag => Source::Flag("--state"),
            StateSource::Env => Source::Env(ENV_STATE),
            StateSource::Project => Source::File(
                self.project
                    .as_ref()
                    .map(|p| p.at("state"))
                    .unwrap_or_default(),
            ),
            StateSource::Default { .. } => Source::Default,
        }
    }
}

/// A set, non-blank environment variable.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Where the state lives: `--state` if given; else, against a real provider, `CARDFORM_STATE`
/// (`env`) if set, else `state` in cardform.toml (`file`); else the default. A `--sandbox` run
/// never takes `CARDFORM_STATE` or the file's state: that is where a team keeps its real state,
/// and sandbox cards recorded there would make the next real plan say "No changes" for cards
/// the provider never issued.
pub fn state_location<'a>(
    flag: Option<&'a str>,
    env: Option<&'a str>,
    file: Option<&'a str>,
    sandbox: bool,
) -> (&'a str, StateSource) {
    match (flag, env, sandbox) {
        (Some(flag), _, _) => (flag, StateSource::Flag),
        (None, Some(env), false) => (env, StateSource::Env),
        (None, None, false) if file.is_some() => {
            (file.unwrap_or(DEFAULT_STATE), StateSource::Project)
        }
        (None, env, true) => (
            SANDBOX_STATE,
            StateSource::Default {
                env_ignored: env.is_some(),
            },
        ),
        (None, None, false) => (DEFAULT_STATE, StateSource::Default { env_ignored: false }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggested_commands_get_the_flags_once() {
        let global = |state: &str, sandbox: bool| Global {
            state: StateLocation::file(state),
            state_source: StateSource::Flag,
            sandbox,
            style: Style::PLAIN,
            err_style: Style::PLAIN,
            request_timeout: std::time::Duration::from_secs(30),
            project: None,
            api_url: None,
        };
        let hint = "run `cardform refresh`, then `cardform --sandbox plan`, `cardform init --state \
                    x.db` and `cardform force-unlock L1` (held by command `cardform apply`)";
        let g = global(DEFAULT_STATE, false);
        assert_eq!(
            g.with_flags(hint),
            hint,
            "nothing to add for the default state"
        );
        let g = global(SANDBOX_STATE, true);
        assert_eq!(
            g.with_flags(hint),
            "run `cardform --sandbox refresh`, then `cardform --sandbox plan`, `cardform init \
             --state x.db` and `cardform --sandbox force-unlock L1` (held by command `cardform \
             apply`)"
        );
    }

    #[test]
    fn the_sandbox_never_takes_its_state_from_the_environment() {
        let team = Some("postgres://ci@db/cardform");
        assert_eq!(
            state_location(None, team, None, true),
            (SANDBOX_STATE, StateSource::Default { env_ignored: true })
        );
        assert_eq!(
            state_location(None, None, None, true),
            (SANDBOX_STATE, StateSource::Default { env_ignored: false })
        );
        assert_eq!(
            state_location(Some("demo.db"), team, None, true),
            ("demo.db", StateSource::Flag)
        );
        assert_eq!(
            state_location(None, team, None, false),
            ("postgres://ci@db/cardform", StateSource::Env)
        );
        assert_eq!(
            state_location(Some("x.db"), team, None, false),
            ("x.db", StateSource::Flag)
        );
        assert_eq!(
            state_location(None, None, None, false),
            (DEFAULT_STATE, StateSource::Default { env_ignored: false })
        );
    }

    #[test]
    fn the_project_file_comes_after_flag_and_env_and_never_for_the_sandbox() {
        let team = Some("postgres://ci@db/cardform");
        let file = Some("/repo/state/cardform.db");
        assert_eq!(
            state_location(None, None, file, false),
            ("/repo/state/cardform.db", StateSource::Project)
        );
        assert_eq!(
            state_location(None, team, file, false),
            ("postgres://ci@db/cardform", StateSource::Env)
        );
        assert_eq!(
            state_location(Some("x.db"), team, file, false),
            ("x.db", StateSource::Flag)
        );
        assert_eq!(
            state_location(None, None, file, true),
            (SANDBOX_STATE, StateSource::Default { env_ignored: false })
        );
    }
}
