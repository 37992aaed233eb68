//! Every way a command can fail, and how each is shown to a person: what went wrong and what to do.

use crate::client::ClientError;
use crate::decl::DeclReport;
use crate::render::{Style, safe};
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("invalid declarations")]
    Decl(#[from] DeclReport),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(
        "no provider configured: set CARDFORM_API_URL (or api_url in cardform.toml), CARDFORM_API_KEY and CARDFORM_API_SECRET, or pass --sandbox to try the built-in sandbox"
    )]
    NoProvider,
    #[error("{0}")]
    Io(String),
    #[error(
        "no state at {location}: run `cardform init --state {location}` to create it, or point --state / CARDFORM_STATE (or `state` in cardform.toml) at your team's shared state (nothing was sent to the provider)"
    )]
    NoState { location: String },
    /// The state was written for another provider: its cards exist there, not at this one.
    #[error(
        "this state belongs to provider {recorded}, but this run would use {current}: refusing \
         to plan or change cards against a provider that did not issue them (nothing was sent \
         to the provider)"
    )]
    OtherProvider { recorded: String, current: String },
    /// Already explained on the output (plan problems, failed cards): only the exit code remains.
    #[error("")]
    Reported,
    #[error("{0}")]
    Other(String),
}

impl From<crate::exec::parts::PartsError> for CliError {
    fn from(e: crate::exec::parts::PartsError) -> Self {
        use crate::exec::{ExecError, parts::PartsError};
        match e {
            PartsError::Decl(report) => CliError::Decl(report),
            PartsError::Exec(e) => match *e {
                ExecError::State(e) => CliError::State(e),
            },
            PartsError::ChangedWhileRead => CliError::Other(e.to_string()),
        }
    }
}

impl CliError {
    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        CliError::Io(format!("{what}: {e}"))
    }

    /// The text for stderr (empty when the command already said everything). Every message may
    /// quote a key, a path, state's or the provider's text: each is escaped (see
    /// [`crate::render::safe`]) before it is painted.
    pub fn render(&self, style: Style) -> String {
        match self {
            CliError::Reported => String::new(),
            CliError::Decl(report) => {
                let width = 100;
                let mut s = crate::render::diagnostics::render_report(report, style.color, width);
                s.push_str("note: nothing was sent to the provider.\n");
                s
            }
            CliError::Client(e) => {
                let mut s = format!("{} {}\n", style.red("error:"), safe(&e.to_string()));
                let hint = e.hint();
                if !hint.is_empty() {
                    s.push_str(&format!("  {} {}\n", style.bold("hint:"), safe(&hint)));
                }
                s
            }
            CliError::State(e) => {
                let mut s = format!("{} {}\n", style.red("error:"), safe(&e.to_string()));
                if let Some(help) = miette::Diagnostic::help(e) {
                    let help = help.to_string();
                    s.push_str(&format!("  {} {}\n", style.bold("hint:"), safe(&help)));
                }
                s
            }
            CliError::OtherProvider { current, .. } => format!(
                "{} {}\n  {} check CARDFORM_API_URL (or --sandbox / --state); if the state \
                 has really moved to {}, run `cardform state replace-provider` to record \
                 that\n",
                style.red("error:"),
                safe(&self.to_string()),
                style.bold("hint:"),
                safe(current),
            ),
            other => format!("{} {}\n", style.red("error:"), safe(&other.to_string())),
        }
    }
}
