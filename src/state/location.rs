//! Where a state lives, parsed once from `--state` / `CARDFORM_STATE`: a file path or a
//! `postgres://` URL. Owns the syntax of a state location and how it is shown; must not open
//! anything. Its `Display` is what every message, history entry and lock record shows, so it never
//! carries a credential.

use std::fmt;
use std::path::{Path, PathBuf};

/// A state: a local SQLite file, or one named state in a PostgreSQL database shared by a team.
#[derive(Clone, PartialEq, Eq)]
pub enum StateLocation {
    File(PathBuf),
    Postgres(PgLocation),
}

/// A state in PostgreSQL: the server and database to connect to, and which of the states kept
/// there (`?state=NAME`, default `default`) this is. Each state lives in its own schema.
#[derive(Clone, PartialEq, Eq)]
pub struct PgLocation {
    /// The connection URL as given, without cardform's own `state` parameter. Holds the password
    /// when the URL has one: never printed (see [`PgLocation::redacted`]).
    connect: String,
    name: String,
}

/// What a state name may be: it becomes part of a schema name.
const STATE_NAME_MAX: usize = 40;

impl PgLocation {
    pub(super) fn connect_url(&self) -> &str {
        &self.connect
    }

    /// The state's name within its database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema that holds this state's tables.
    pub(super) fn schema(&self) -> String {
        format!("cardform_{}", self.name)
    }

    /// The URL with any password hidden and the state named, for every message.
    pub fn redacted(&self) -> String {
        let base = redact_url(&self.connect);
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}state={}", self.name)
    }

    fn parse(raw: &str) -> Result<Self, String> {
        let (base, query) = match raw.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (raw, None),
        };
        let mut name = None;
        let mut kept = Vec::new();
        for pair in query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|p| !p.is_empty())
        {
            match pair.split_once('=') {
                Some(("state", v)) => name = Some(v.to_owned()),
                _ => kept.push(pair),
            }
        }
        let name = name.unwrap_or_else(|| "default".to_owned());
        let ok = !name.is_empty()
            && name.len() <= STATE_NAME_MAX
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !ok {
            return Err(format!(
                "--state {}: state name {name:?} must be 1 to {STATE_NAME_MAX} characters from a-z 0-9 _",
                redact_url(raw)
            ));
        }
        let connect = if kept.is_empty() {
            base.to_owned()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        Ok(PgLocation { connect, name })
    }
}

impl StateLocation {
    /// Parses what the user typed: a `postgres://` or `postgresql://` URL (with `?state=NAME`
    /// to pick one of several states in that database), or else a file path.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err(
                "--state is empty: give a file path such as state/cardform.db, or a \
                        postgres:// URL"
                    .into(),
            );
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            return match scheme {
                "postgres" | "postgresql" => PgLocation::parse(raw).map(StateLocation::Postgres),
                _ => Err(format!(
                    "--state {}: `{scheme}://` state is not supported; give a file path such as \
                     state/cardform.db, or a postgres:// URL",
                    redact_url(raw)
                )),
            };
        }
        Ok(StateLocation::File(PathBuf::from(raw)))
    }

    pub fn file(path: impl Into<PathBuf>) -> Self {
        StateLocation::File(path.into())
    }

    /// The local file, for the things only a file has (the sandbox world kept beside it).
    pub fn as_file(&self) -> Option<&Path> {
        match self {
            StateLocation::File(p) => Some(p),
            StateLocation::Postgres(_) => None,
        }
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::File(p) => write!(f, "{}", p.display()),
            StateLocation::Postgres(pg) => f.write_str(&pg.redacted()),
        }
    }
}

impl fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateLocation({self})")
    }
}

/// Where the password of `scheme://user:password@host/…` sits in `s`, if it has one: the one
/// reading of a URL's credentials, for [`redact_url`] and for scrubbing a driver's message.
///
/// Read by its shape (the userinfo ends at the last `@` before the first `/`, `?` or `#`), not by
/// the `url` crate: that crate refuses URLs this must still hide a password in (a bad port is
/// exactly the URL an error message quotes), and its re-serialization may encode the password
/// differently from the text that carries it.
pub(crate) fn password_span(s: &str) -> Option<std::ops::Range<usize>> {
    let start = s.find("://")? + 3;
    let rest = &s[start..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let at = authority.rfind('@')?;
    let colon = authority[..at].find(':')?;
    Some(start + colon + 1..start + at)
}

/// `scheme://user:password@host/…` with the password replaced by `***`; anything else as it is.
pub fn redact_url(s: &str) -> String {
    match password_span(s) {
        Some(span) => format!("{}***{}", &s[..span.start], &s[span.end..]),
        None => s.to_owned(),
    }
}

/// A command line as it may be recorded (history, lock holder): every URL's password hidden,
/// also inside `--flag=URL` and query strings such as `?password=…`.
pub fn redact_command_line<I: IntoIterator<Item = String>>(args: I) -> String {
    args.into_iter()
        .map(|a| {
            let (prefix, value) = match a.split_once('=') {
                Some((flag, v)) if flag.starts_with("--") => (format!("{flag}="), v.to_owned()),
                _ => (String::new(), a.clone()),
            };
            let mut v = redact_url(&value);
            if let Some(q) = v.find("password=") {
                let end = v[q..].find('&').map(|e| q + e).unwrap_or(v.len());
                v.replace_range(q + "password=".len()..end, "***");
            }
            format!("{prefix}{v}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_a_file() {
        assert_eq!(
            StateLocation::parse("state/x.db").unwrap(),
            StateLocation::file("state/x.db")
        );
        assert_eq!(StateLocation::file("a/b.db").to_string(), "a/b.db");
    }

    #[test]
    fn a_postgres_url_names_a_state_and_never_shows_its_password() {
        let StateLocation::Postgres(pg) =
            StateLocation::parse("postgresql://ci:s3cret@db:5432/cf?sslmode=require&state=prod")
                .unwrap()
        else {
            panic!("not postgres");
        };
        assert_eq!(pg.name(), "prod");
        assert_eq!(pg.schema(), "cardform_prod");
        assert_eq!(
            pg.connect_url(),
            "postgresql://ci:s3cret@db:5432/cf?sslmode=require"
        );
        let shown = StateLocation::Postgres(pg.clone()).to_string();
        assert_eq!(
            shown,
            "postgresql://ci:***@db:5432/cf?sslmode=require&state=prod"
        );
        assert!(!format!("{:?}", StateLocation::Postgres(pg)).contains("s3cret"));

        let StateLocation::Postgres(plain) = StateLocation::parse("postgres://h/db").unwrap()
        else {
            panic!("not postgres");
        };
        assert_eq!(plain.name(), "default");
        assert_eq!(plain.redacted(), "postgres://h/db?state=default");
        let bad = StateLocation::parse("postgres://u:pw@h/db?state=Prod-1").unwrap_err();
        assert!(bad.contains("a-z 0-9 _") && !bad.contains("pw@"), "{bad}");
    }

    #[test]
    fn an_unknown_scheme_is_refused_without_its_password() {
        let e = StateLocation::parse("mysql://bob:hunter2@db/x").unwrap_err();
        assert!(e.contains("mysql://bob:***@db/x"), "{e}");
        assert!(!e.contains("hunter2"));
    }

    #[test]
    fn passwords_never_reach_a_recorded_command_line() {
        let line = redact_command_line(
            [
                "cardform",
                "--state",
                "postgres://ci:s3cret@db:5432/cf?sslmode=require",
                "--state=postgresql://u:p%40ss@h/db",
                "plan",
                "-f",
                "cards.yaml",
                "postgres://h/db?user=x&password=hush&sslmode=off",
            ]
            .map(String::from),
        );
        assert!(!line.contains("s3cret") && !line.contains("p%40ss") && !line.contains("hush"));
        assert!(
            line.contains("postgres://ci:***@db:5432/cf?sslmode=require"),
            "{line}"
        );
        assert!(line.contains("--state=postgresql://u:***@h/db"), "{line}");
        assert!(line.contains("password=***&sslmode=off"), "{line}");
        assert!(line.contains("plan -f cards.yaml"));
    }
}
