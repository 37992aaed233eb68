//! Debug logging, switched on at the edge: `-v` (info: each provider request and answer), `-vv`
//! (debug: their bodies, redacted; state and lock operations), `-vvv` (trace, with the SQL
//! statements), or `CARDFORM_LOG` in `RUST_LOG` syntax (a bare level means cardform's own
//! events). Lines go to stderr, or appended to `CARDFORM_LOG_FILE`; never to stdout, which carries
//! plans and `--json`.
//!
//! Owns the choice of filter and writer, and installs the subscriber once per process. Without a
//! flag or the variable it installs nothing, so output is exactly what it is without logging.
//! It must not decide what is logged or redact anything: the modules that log do (`client::log`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use super::CliError;

/// The filter, in `RUST_LOG` / `TF_LOG` style.
pub const ENV_LOG: &str = "CARDFORM_LOG";
/// Where log lines go instead of stderr (appended; created if missing).
pub const ENV_LOG_FILE: &str = "CARDFORM_LOG_FILE";

const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];

/// The filter `-v` repeated `verbose` times asks for, else `CARDFORM_LOG`'s; `None`: no logging.
/// A flag wins over the variable, as flags do everywhere in cardform.
fn directives(verbose: u8, env: Option<&str>) -> Option<String> {
    let own = |level: &str| format!("cardform={level}");
    match verbose {
        0 => {
            let env = env.map(str::trim).filter(|e| !e.is_empty())?;
            // A bare level is cardform's own events: `debug` must not turn on every dependency's
            // chatter. Anything else is taken as directives, exactly as written.
            Some(if LEVELS.contains(&env.to_ascii_lowercase().as_str()) {
                own(&env.to_ascii_lowercase())
            } else {
                env.to_owned()
            })
        }
        1 => Some(own("info")),
        2 => Some(own("debug")),
        _ => Some(format!("{},sqlx=debug", own("trace"))),
    }
}

/// Installs the subscriber `-v` / `CARDFORM_LOG` ask for, if any. A filter that does not parse
/// or a log file that cannot be opened is an error naming the variable.
/// `json`: one JSON object a line (`cardform serve`, whose own lines are JSON too).
pub fn init(verbose: u8, json: bool) -> Result<(), CliError> {
    let env = super::settings::env_var(ENV_LOG);
    let Some(directives) = directives(verbose, env.as_deref()) else {
        return Ok(());
    };
    let filter = EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| CliError::Usage(format!("{ENV_LOG}={directives}: {e}")))?;
    let writer = match super::settings::env_var(ENV_LOG_FILE) {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| CliError::io(format!("{ENV_LOG_FILE}={path}"), e))?;
            BoxMakeWriter::new(std::sync::Mutex::new(file))
        }
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Plain text: a log is grepped and pasted into issues, and colour codes get in the way.
        .with_ansi(false);
    let installed = if json {
        builder
            .event_format(crate::serve::log::JsonLines)
            .try_init()
    } else {
        builder.try_init()
    };
    installed.map_err(|e| CliError::refused(format!("cannot start logging: {e}")))
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn flags_win_and_a_bare_level_means_cardform() {
        assert_eq!(directives(0, None), None);
        assert_eq!(directives(0, Some("  ")), None);
        assert_eq!(directives(1, None).as_deref(), Some("cardform=info"));
        assert_eq!(
            directives(2, Some("trace")).as_deref(),
            Some("cardform=debug")
        );
        assert_eq!(
            directives(3, None).as_deref(),
            Some("cardform=trace,sqlx=debug")
        );
        assert_eq!(
            directives(0, Some("DEBUG")).as_deref(),
            Some("cardform=debug")
        );
        assert_eq!(
            directives(0, Some("cardform::client=trace,sqlx=info")).as_deref(),
            Some("cardform::client=trace,sqlx=info")
        );
    }
}
