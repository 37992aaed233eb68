//! The in-process sandbox's settings (`--sandbox`): `CARDFORM_SANDBOX` holds the flags
//! `cardform sandbox` takes (its balance, every fault it can inject), so a plan or an apply
//! against the built-in sandbox can be sized and made hostile without a second process.
//!
//! Parsed with the very `SandboxArgs` of `cardform sandbox`, so a flag added there is a setting
//! here too. Only `--listen` and `--world` are refused: the in-process sandbox listens on a free
//! loopback port and keeps its world beside its state.

use clap::{Args, FromArgMatches, parser::ValueSource};
use rust_decimal::Decimal;

use super::CliError;
use super::args::SandboxArgs;
use crate::plan::Problem;
use crate::sandbox::SandboxConfig;

pub const ENV_SANDBOX: &str = "CARDFORM_SANDBOX";

/// What the in-process sandbox differs in from `cardform sandbox` before any setting: orders
/// finish fast (a demo's plan-apply loop), KYC is decided at once, and the fault seed is 0.
/// `CARDFORM_SANDBOX` comes after these, and a flag given there wins.
const IN_PROCESS_DEFAULTS: [&str; 6] = [
    "--order-latency",
    "300ms",
    "--kyc-latency",
    "0s",
    "--seed",
    "0",
];

/// The in-process sandbox as `CARDFORM_SANDBOX` sets it.
pub struct SandboxSettings {
    /// Listen address and world file are the caller's to set.
    pub config: SandboxConfig,
    /// `--balance` when given: a saved world whose balance is lower is funded up to it.
    pub balance: Option<Decimal>,
    /// The flags as given, for the one line that says the sandbox is not the default one
    /// (empty: it is). `--api-secret`'s value is masked.
    pub shown: Vec<String>,
}

/// Reads `CARDFORM_SANDBOX` (unset or blank: the defaults).
pub fn from_env() -> Result<SandboxSettings, CliError> {
    let raw = std::env::var(ENV_SANDBOX).unwrap_or_default();
    parse(&raw)
}

/// The settings `raw` (the variable's value) asks for.
pub fn parse(raw: &str) -> Result<SandboxSettings, CliError> {
    let usage = |m: String| CliError::Usage(format!("{ENV_SANDBOX}: {m}"));
    let words = split(raw).map_err(usage)?;
    let command = SandboxArgs::augment_args(
        clap::Command::new(ENV_SANDBOX)
            .no_binary_name(true)
            // The in-process defaults come first; the variable's flags override them.
            .args_override_self(true),
    );
    let matches = command
        .try_get_matches_from(
            IN_PROCESS_DEFAULTS
                .iter()
                .copied()
                .chain(words.iter().map(String::as_str)),
        )
        .map_err(|e| {
            if e.kind() == clap::error::ErrorKind::DisplayHelp {
                return usage(
                    "the settings are the flags of cardform sandbox: see cardform sandbox --help"
                        .to_owned(),
                );
            }
            // Clap's first line says what is wrong; its usage line would show the in-process
            // defaults as if they were required.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            usage(format!(
                "{} (the settings are the flags of cardform sandbox: see cardform sandbox --help)",
                first.trim().trim_start_matches("error: ")
            ))
        })?;
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    for (id, flag, why) in [
        (
            "listen",
            "--listen",
            "the in-process sandbox listens on a free loopback port of its own",
        ),
        (
            "world",
            "--world",
            "the in-process sandbox keeps its world beside its state (state/sandbox-world.json)",
        ),
    ] {
        if given(id) {
            return Err(usage(format!(
                "{flag} is not a setting of --sandbox: {why} (a sandbox of your own runs with \
                 cardform sandbox {flag} ...)"
            )));
        }
    }
    let args = SandboxArgs::from_arg_matches(&matches).map_err(|e| usage(e.to_string()))?;
    let config = super::sandbox::config(&args).map_err(|e| match e {
        CliError::Usage(m) => usage(m),
        other => other,
    })?;
    Ok(SandboxSettings {
        balance: given("balance").then_some(config.balance),
        config,
        shown: masked(&words),
    })
}

/// The hint for a plan that needs more than the in-process sandbox's balance: the setting that
/// raises it, to at least what the plan charges (rounded up to a whole amount).
pub fn balance_hint(problems: &[Problem]) -> Option<String> {
    problems.iter().find_map(|p| match p {
        Problem::InsufficientBalance { needed, .. } => Some(format!(
            "the --sandbox balance is a setting: {ENV_SANDBOX}=\"--balance {}\" (a saved sandbox \
             world is funded up to it)",
            needed.ceil().max(Decimal::ONE)
        )),
        _ => None,
    })
}

/// Says on stderr that `CARDFORM_SANDBOX` is set but this run talks to a real provider, so a
/// setting meant for the sandbox is not silently taken for one that applies.
pub fn tell_ignored() {
    if std::env::var(ENV_SANDBOX).is_ok_and(|v| !v.trim().is_empty()) {
        eprintln!("note: {ENV_SANDBOX} is ignored without --sandbox");
    }
}

/// Tells on stderr how to raise the balance, when the provider is the in-process sandbox and
/// the plan charges more than it has.
pub fn hint_balance(global: &super::settings::Global, problems: &[Problem]) {
    if !global.sandbox {
        return;
    }
    if let Some(hint) = balance_hint(problems) {
        eprintln!(
            "{} {}",
            global.err_style.bold("hint:"),
            crate::render::safe(&hint)
        );
    }
}

/// The flags as they may be shown: the value of `--api-secret` (which encrypts the sandbox's
/// bodies) is not echoed.
fn masked(words: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut secret_next = false;
    for w in words {
        if secret_next {
            out.push("***".to_owned());
            secret_next = false;
        } else if w.starts_with("--api-secret=") {
            out.push("--api-secret=***".to_owned());
        } else {
            secret_next = w == "--api-secret";
            out.push(w.clone());
        }
    }
    out
}

/// Splits the variable into words as a shell would, for the common cases: blanks separate,
/// single quotes keep everything, double quotes keep everything but `\"` and `\\`, a backslash
/// outside quotes keeps the next character. No expansion of any kind.
fn split(raw: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                words.extend(word.take());
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err("a single quote is not closed".to_owned()),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\')) => w.push(c),
                            Some(c) => {
                                w.push('\\');
                                w.push(c);
                            }
                            None => return Err("a double quote is not closed".to_owned()),
                        },
                        Some(c) => w.push(c),
                        None => return Err("a double quote is not closed".to_owned()),
                    }
                }
            }
            '\\' => {
                let w = word.get_or_insert_with(String::new);
                if let Some(c) = chars.next() {
                    w.push(c);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_as_a_shell_would() {
        assert_eq!(
            split(r#" --balance 100000  --fail-product 'A B' --x "c\"d" e\ f "#).unwrap(),
            [
                "--balance",
                "100000",
                "--fail-product",
                "A B",
                "--x",
                "c\"d",
                "e f"
            ]
        );
        assert_eq!(split("").unwrap(), Vec::<String>::new());
        assert!(split("'open").is_err());
    }

    #[test]
    fn defaults_are_the_in_process_ones_and_flags_win() {
        let s = parse("").unwrap();
        assert_eq!(
            s.config.order_latency,
            std::time::Duration::from_millis(300)
        );
        assert_eq!(s.config.kyc_latency, std::time::Duration::ZERO);
        assert_eq!(s.balance, None);
        assert!(s.shown.is_empty());
        let s =
            parse("--balance 100000 --order-latency 1s --fail-product A --fail-product B").unwrap();
        assert_eq!(s.balance, Some(Decimal::from(100_000)));
        assert_eq!(s.config.order_latency, std::time::Duration::from_secs(1));
        assert_eq!(s.config.fail_products, ["A", "B"]);
    }

    #[test]
    fn listen_world_and_bad_values_name_the_variable() {
        for bad in [
            "--listen 127.0.0.1:9",
            "--world w.json",
            "--balance lots",
            "--no-such-flag",
            "--help",
            "--fail-rate 2",
        ] {
            let Err(CliError::Usage(m)) = parse(bad) else {
                panic!("{bad} was accepted");
            };
            assert!(m.starts_with("CARDFORM_SANDBOX: "), "{m}");
        }
    }

    #[test]
    fn the_secret_is_not_shown() {
        let s = parse("--api-secret s3 --api-secret=s4 --balance 5").unwrap();
        assert_eq!(
            s.shown,
            ["--api-secret", "***", "--api-secret=***", "--balance", "5"]
        );
    }
}
