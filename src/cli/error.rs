//! Every way a command can fail, and how each is shown to a person: what went wrong (the
//! message) and what to do (the hint). One type at the edge, like jj's `CommandError`: the core's
//! typed errors arrive through `From`, each bringing its hint as a miette `help`, and a command's
//! own refusals are [`CliError::refused`] with a hint of their own. Must not decide exit codes
//! (`cli::exit` does) or print (the caller writes what [`CliError::render`] returns).

use miette::Diagnostic;

use crate::client::ClientError;
use crate::decl::DeclReport;
use crate::render::{Style, safe};
use crate::state::StateError;

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum CliError {
    /// The command line or a setting is wrong.
    #[error("{0}")]
    #[diagnostic(code(cardform::usage))]
    Usage(String),
    /// The declarations do not read; drawn by miette with their source spans.
    #[error("invalid declarations")]
    Decl(#[from] DeclReport),
    #[error(transparent)]
    #[diagnostic(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Client(#[from] ClientError),
    #[error("no provider configured")]
    #[diagnostic(
        code(cardform::no_provider),
        help(
            "set CARDFORM_API_URL (or api_url in cardform.toml), CARDFORM_API_KEY and \
             CARDFORM_API_SECRET, or pass --sandbox to try the built-in sandbox"
        )
    )]
    NoProvider,
    #[error("{0}")]
    #[diagnostic(code(cardform::io))]
    Io(String),
    #[error("no state at {location} (nothing was sent to the provider)")]
    #[diagnostic(
        code(cardform::no_state),
        help(
            "run `cardform init --state {location}` to create it, or point --state / \
             CARDFORM_STATE (or `state` in cardform.toml) at your team's shared state"
        )
    )]
    NoState { location: String },
    /// The state was written for another provider: its cards exist there, not at this one.
    #[error(
        "this state belongs to provider {recorded}, but this run would use {current}: refusing \
         to plan or change cards against a provider that did not issue them (nothing was sent \
         to the provider)"
    )]
    #[diagnostic(
        code(cardform::other_provider),
        help(
            "check CARDFORM_API_URL (or --sandbox / --state); if the state has really moved to \
             {current}, run `cardform state replace-provider` to record that"
        )
    )]
    OtherProvider { recorded: String, current: String },
    /// A key that names no card in state.
    #[error("no card {key:?} in state {state}")]
    #[diagnostic(
        code(cardform::no_such_card),
        help("`{listing}` lists the keys it holds")
    )]
    NoSuchCard {
        key: String,
        state: String,
        /// The command that lists them, as this run was invoked.
        listing: String,
    },
    /// A command refused, or could not do, what was asked: the message says what and why, the
    /// hint what to do about it.
    #[error("{message}")]
    #[diagnostic(code(cardform::refused))]
    Refused {
        message: String,
        #[help]
        hint: Option<String>,
    },
    /// Already explained on the output (plan problems, failed cards): only the exit code remains.
    #[error("")]
    Reported,
}

impl From<crate::exec::parts::PartsError> for CliError {
    fn from(e: crate::exec::parts::PartsError) -> Self {
        use crate::exec::parts::PartsError;
        match e {
            PartsError::Decl(report) => CliError::Decl(report),
            PartsError::Exec(e) => (*e).into(),
            PartsError::ChangedWhileRead => CliError::refused(e.to_string()),
        }
    }
}

impl From<crate::exec::ExecError> for CliError {
    fn from(e: crate::exec::ExecError) -> Self {
        match e {
            crate::exec::ExecError::State(e) => CliError::State(e),
        }
    }
}

impl CliError {
    pub fn io(what: impl std::fmt::Display, e: std::io::Error) -> Self {
        CliError::Io(format!("{what}: {e}"))
    }

    /// A refusal (or failure) of the command itself, without a hint yet.
    pub fn refused(message: impl Into<String>) -> Self {
        CliError::Refused {
            message: message.into(),
            hint: None,
        }
    }

    /// The same error with `hint` saying what to do (a refusal's own; others keep theirs).
    pub fn hint(self, hint: impl Into<String>) -> Self {
        match self {
            CliError::Refused { message, .. } => CliError::Refused {
                message,
                hint: Some(hint.into()),
            },
            other => other,
        }
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
            other => {
                let mut s = format!("{} {}\n", style.red("error:"), safe(&other.to_string()));
                if let Some(help) = other
                    .help()
                    .map(|h| h.to_string())
                    .filter(|h| !h.is_empty())
                {
                    s.push_str(&format!("  {} {}\n", style.bold("hint:"), safe(&help)));
                }
                s
            }
        }
    }
}
