//! `cardform.toml`, the project file: where the declarations and the state are, which provider,
//! and defaults for the flags a team always passes. Found by walking up from the working
//! directory, as cargo and uv find theirs, so `cardform plan` works from anywhere in the cards
//! repository. The file is committed with the declarations, so it never holds a secret: a key
//! that looks like one, or a state URL with a password, is refused rather than read.
//!
//! Only reading and checking happens here; which value wins (flag > environment > file >
//! default) is decided in `settings`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::decl::suggest::did_you_mean;
use crate::state::redact_url;

pub const FILE_NAME: &str = "cardform.toml";
/// Names the project file explicitly (as `--config-file` does), skipping the search.
pub const ENV_CONFIG: &str = "CARDFORM_CONFIG";

/// Every key the file may hold, for did-you-mean.
const KEYS: &[&str] = &[
    "files",
    "state",
    "api_url",
    "rate",
    "parallelism",
    "max_prune",
    "max_failure_rate",
    "serve",
];

/// Names that mark a key as a secret, whatever else it says (`api_key`, `db_password`, ...).
const SECRET_WORDS: &[&str] = &["secret", "key", "password", "passwd", "token"];

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid TOML: {message}")]
    Syntax { path: String, message: String },
    #[error(
        "{at}: `{key}` looks like a secret, and cardform.toml never holds one (it is committed \
         with the declarations): set CARDFORM_API_KEY and CARDFORM_API_SECRET in the \
         environment instead (in CI, from its secret store), and remove `{key}` from the file"
    )]
    Secret { at: String, key: String },
    #[error(
        "{at}: the state URL holds a password, and cardform.toml never holds one (it is \
         committed with the declarations): write the URL without it ({redacted} without \
         `:***`) and set PGPASSWORD, or put the whole URL in CARDFORM_STATE"
    )]
    StatePassword { at: String, redacted: String },
    #[error("{at}: unknown key `{key}`{hint} (known keys: {known})", known = KEYS.join(", "))]
    Unknown {
        at: String,
        key: String,
        hint: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// A flag default that may be written as a number or as text (`max_prune = 25` or `"5%"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Integer(i64),
    Float(f64),
    Text(String),
}

impl NumberOrText {
    fn text(self) -> String {
        match self {
            NumberOrText::Integer(n) => n.to_string(),
            NumberOrText::Float(n) => n.to_string(),
            NumberOrText::Text(s) => s,
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    files: Option<Vec<String>>,
    state: Option<String>,
    api_url: Option<String>,
    rate: Option<f64>,
    parallelism: Option<usize>,
    max_prune: Option<NumberOrText>,
    max_failure_rate: Option<NumberOrText>,
    #[serde(default)]
    serve: ServeTable,
}

/// `[serve]`: the defaults of `cardform serve`'s own flags (flags win). Durations as `--interval`
/// takes them ("5m", "30s").
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeTable {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub interval: Option<String>,
    pub drain_timeout: Option<String>,
    pub drift_interval: Option<String>,
    /// `--max-fees-per-day`: an amount, as an integer or a string ("500.00").
    #[serde(default, deserialize_with = "amount")]
    pub max_fees_per_day: Option<String>,
}

/// The keys of `[serve]`, whose lines `cardform config` shows too (none shares a top-level
/// key's name, so the first `key =` line is the one in `[serve]`).
const SERVE_KEYS: &[&str] = &[
    "listen",
    "public_url",
    "interval",
    "drain_timeout",
    "drift_interval",
    "max_fees_per_day",
];

/// An amount as written: an integer or a string. A TOML float is refused, as it is not exact.
fn amount<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<NumberOrText>::deserialize(d)? {
        Some(NumberOrText::Float(f)) => Err(serde::de::Error::custom(format!(
            "write the amount {f} as a string, e.g. \"{f}\", so it stays exact"
        ))),
        other => Ok(other.map(NumberOrText::text)),
    }
}

/// A project file, read and checked, its paths made relative to where it lives.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// Where the file is.
    pub path: PathBuf,
    /// Declaration paths, joined to the file's directory.
    pub files: Option<Vec<PathBuf>>,
    /// A file path joined to the file's directory, or a postgres:// URL without a password.
    pub state: Option<String>,
    pub api_url: Option<String>,
    pub rate: Option<f64>,
    pub parallelism: Option<usize>,
    pub max_prune: Option<String>,
    pub max_failure_rate: Option<String>,
    /// `[serve]`, empty when the file has none.
    pub serve: ServeTable,
    /// The line each top-level key is on (1-based), for `cardform config`.
    lines: BTreeMap<String, usize>,
}

impl Project {
    /// `path:line` of `key`, or the path alone when the line is not known.
    pub fn at(&self, key: &str) -> String {
        at(&self.path, self.lines.get(key).copied())
    }

    /// The project file for this run: `explicit` (`--config-file` / `CARDFORM_CONFIG`) if
    /// given, else the nearest `cardform.toml` in `start` or above it; `None` when there is none.
    pub fn load(explicit: Option<&Path>, start: &Path) -> Result<Option<Project>, ProjectError> {
        let (path, base) = match explicit {
            Some(p) => (
                p.to_path_buf(),
                p.parent().unwrap_or(Path::new("")).to_path_buf(),
            ),
            None => match find(start) {
                Some(p) => {
                    let base = relative_base(start, &p);
                    (p, base)
                }
                None => return Ok(None),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ProjectError::Read {
            path: path.display().to_string(),
            source,
        })?;
        parse_in(&path, &base, &text).map(Some)
    }
}

/// The nearest `cardform.toml` in `start` or one of its ancestors, up to the filesystem root.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// The found file's directory as seen from `start` (`../..`, or empty when it is `start`): paths
/// joined to it stay relative, as `-f cards/` would be, so a saved plan records the files the
/// same way on every checkout of the repository.
fn relative_base(start: &Path, found: &Path) -> PathBuf {
    let dir = found.parent().unwrap_or(Path::new(""));
    match start.strip_prefix(dir) {
        Ok(below) => below.components().map(|_| "..").collect(),
        Err(_) => dir.to_path_buf(),
    }
}

fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(l) => format!("{}:{l}", path.display()),
        None => path.display().to_string(),
    }
}

/// The line `key = …` is on: the first line that starts with the key (bare or quoted) followed
/// by `=`. Good enough for a flat file; `None` when the key is written some other way.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
                .iter()
                .any(|k| {
                    l.strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
        })
        .map(|i| i + 1)
}

fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| key.contains(w))
}

/// Every key in `table` and the tables under it that looks like a secret, dotted (`a.api_key`).
fn secret_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let dotted = format!("{prefix}{k}");
        if looks_secret(k) {
            out.push(dotted.clone());
        }
        if let toml::Value::Table(t) = v {
            secret_keys(t, &format!("{dotted}."), out);
        }
    }
}

/// Whether a postgres URL carries a password, in its user info or as a `password=` parameter.
fn has_password(url: &str) -> bool {
    redact_url(url) != url
        || url
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|p| p.starts_with("password=")))
}

/// The file at `path`, its relative paths joined to `dir` (its directory, as the run sees it).
fn parse_in(path: &Path, dir: &Path, text: &str) -> Result<Project, ProjectError> {
    let shown = || path.display().to_string();
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| ProjectError::Syntax {
            path: shown(),
            message: e.message().to_owned(),
        })?;
    // Secrets first: a secret under a misspelt or unknown key must still be named as a secret,
    // never echoed back as "unknown key" with a did-you-mean.
    let mut secrets = Vec::new();
    secret_keys(&table, "", &mut secrets);
    if let Some(key) = secrets.into_iter().next() {
        let last = key.rsplit('.').next().unwrap_or(&key);
        return Err(ProjectError::Secret {
            at: at(path, line_of(text, last)),
            key,
        });
    }
    if let Some(key) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(ProjectError::Unknown {
            at: at(path, line_of(text, key)),
            key: key.clone(),
            hint: did_you_mean(key, KEYS)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default(),
        });
    }
    if let Some(toml::Value::String(state)) = table.get("state")
        && state.contains("://")
        && has_password(state)
    {
        return Err(ProjectError::StatePassword {
            at: at(path, line_of(text, "state")),
            redacted: redact_url(state),
        });
    }
    let raw: Raw = toml::from_str(text).map_err(|e| ProjectError::Invalid {
        path: shown(),
        message: e.message().to_owned(),
    })?;
    let lines = KEYS
        .iter()
        .chain(SERVE_KEYS)
        .filter_map(|k| line_of(text, k).map(|l| ((*k).to_owned(), l)))
        .collect();
    Ok(Project {
        path: path.to_path_buf(),
        files: raw.files.map(|fs| fs.iter().map(|f| dir.join(f)).collect()),
        state: raw.state.map(|s| {
            if s.contains("://") {
                s
            } else {
                dir.join(s).display().to_string()
            }
        }),
        api_url: raw.api_url,
        rate: raw.rate,
        parallelism: raw.parallelism,
        max_prune: raw.max_prune.map(NumberOrText::text),
        max_failure_rate: raw.max_failure_rate.map(NumberOrText::text),
        serve: raw.serve,
        lines,
    })
}

/// What `cardform init --config` writes: every key, commented, so the file documents itself.
pub const STARTER: &str = r#"# cardform.toml: the project's settings, so `cardform plan` and `cardform apply` need no flags.
# cardform finds this file by walking up from the working directory. Paths are relative to it.
# Precedence: flags > environment variables > this file > built-in defaults.
# `cardform config` shows what each setting resolved to and where it came from.
#
# Never put a secret here: the API key and secret go in CARDFORM_API_KEY and
# CARDFORM_API_SECRET, a database password in PGPASSWORD (or the whole URL in CARDFORM_STATE).

# Declaration files and directories (-f).
files = ["cards/"]

# The state (--state): a file, or a postgres:// URL without its password.
# Runs with --sandbox keep their own state/sandbox.db.
state = "state/cardform.db"

# The provider's API URL (CARDFORM_API_URL overrides it).
# api_url = "https://api.example.com"

# Defaults for flags.
# rate = 100                # provider requests per second (--rate)
# parallelism = 128         # cards in flight (--parallelism)
# max_prune = "10%"         # the most cards --prune may freeze (--max-prune)
# max_failure_rate = "20%"  # apply's failure brake (--max-failure-rate)

# `cardform serve` (its token is CARDFORM_SERVE_TOKEN, never here; its state must be PostgreSQL).
# [serve]
# listen = "0.0.0.0:8080"   # --listen
# public_url = "https://cardform.example.com"  # --public-url
# interval = "5m"           # reconcile at least this often (--interval)
# drain_timeout = "30s"     # on SIGTERM, orders in flight may finish this long (--drain-timeout)
# drift_interval = "15m"    # read the fleet back to notice drift, or "off" (--drift-interval)
# max_fees_per_day = "500.00"  # fees a day applied without approval (--max-fees-per-day)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Project, ProjectError> {
        parse_in(Path::new("/repo/cardform.toml"), Path::new("/repo"), text)
    }

    #[test]
    fn the_serve_table_is_read_and_checked() {
        let p = parse_str(
            "files = [\"cards/\"]\n[serve]\nlisten = \"0.0.0.0:9000\"\ninterval = \"10m\"\n",
        )
        .unwrap();
        assert_eq!(p.serve.listen.as_deref(), Some("0.0.0.0:9000"));
        assert_eq!(p.serve.interval.as_deref(), Some("10m"));
        assert_eq!(p.serve.drain_timeout, None);
        assert_eq!(p.at("interval"), "/repo/cardform.toml:4");
        let p = parse_str("[serve]\nmax_fees_per_day = 500\n").unwrap();
        assert_eq!(p.serve.max_fees_per_day.as_deref(), Some("500"));
        let p = parse_str("[serve]\nmax_fees_per_day = \"12.50\"\n").unwrap();
        assert_eq!(p.serve.max_fees_per_day.as_deref(), Some("12.50"));
        let e = parse_str("[serve]\nmax_fees_per_day = 12.5\n").unwrap_err();
        assert!(e.to_string().contains("as a string"), "{e}");
        let e = parse_str("[serve]\nlisten_on = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("listen_on"), "{e}");
        // The token never comes from the file.
        let e = parse_str("[serve]\ntoken = \"0123456789abcdef\"\n").unwrap_err();
        assert!(matches!(e, ProjectError::Secret { .. }), "{e}");
    }

    #[test]
    fn paths_are_relative_to_the_file() {
        let p = parse_str(
            "files = [\"cards/\", \"payroll.csv\"]\nstate = \"state/x.db\"\nmax_prune = 25\n",
        )
        .unwrap();
        assert_eq!(
            p.files.clone().unwrap(),
            vec![
                PathBuf::from("/repo/cards/"),
                PathBuf::from("/repo/payroll.csv")
            ]
        );
        assert_eq!(p.state.as_deref(), Some("/repo/state/x.db"));
        assert_eq!(p.max_prune.as_deref(), Some("25"));
        assert_eq!(p.at("state"), "/repo/cardform.toml:2");
    }

    #[test]
    fn secrets_are_refused_naming_where_they_belong() {
        for text in [
            "api_key = \"k\"",
            "api_secret = \"s\"",
            "[provider]\ntoken = \"t\"",
            "files = []\ndb_password = \"p\"",
        ] {
            let e = parse_str(text).unwrap_err().to_string();
            assert!(e.contains("looks like a secret"), "{text}: {e}");
            assert!(
                e.contains("CARDFORM_API_KEY and CARDFORM_API_SECRET"),
                "{e}"
            );
        }
        let e = parse_str("state = \"postgres://ci:hunter2@db/cards\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("PGPASSWORD") && e.contains("CARDFORM_STATE"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        assert!(parse_str("state = \"postgres://ci@db/cards?state=prod\"").is_ok());
    }

    #[test]
    fn unknown_keys_get_a_did_you_mean() {
        let e = parse_str("\nmax_prun = 3").unwrap_err().to_string();
        assert_eq!(
            e,
            "/repo/cardform.toml:2: unknown key `max_prun` (did you mean `max_prune`?) (known \
             keys: files, state, api_url, rate, parallelism, max_prune, max_failure_rate, serve)"
        );
    }

    #[test]
    fn a_found_file_gives_paths_relative_to_the_working_directory() {
        let found = Path::new("/repo/cardform.toml");
        assert_eq!(relative_base(Path::new("/repo"), found), PathBuf::from(""));
        assert_eq!(
            relative_base(Path::new("/repo/docs/runbooks"), found),
            PathBuf::from("../..")
        );
        let p = parse_in(found, Path::new("../.."), "files = [\"cards/\"]").unwrap();
        assert_eq!(p.files.unwrap(), vec![PathBuf::from("../../cards/")]);
    }

    #[test]
    fn the_starter_file_parses() {
        let p = parse_str(STARTER).unwrap();
        assert!(p.files.is_some() && p.state.is_some());
    }
}
