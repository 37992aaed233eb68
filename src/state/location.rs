//! Where a state lives, parsed once from `--state` / `CARDFORM_STATE`. Owns the syntax of a state
//! location and how it is shown; must not open anything. Its `Display` is what every message,
//! history entry and lock record shows, so it never carries a credential.

use std::fmt;
use std::path::{Path, PathBuf};

/// A state: today a local SQLite file.
#[derive(Clone, PartialEq, Eq)]
pub enum StateLocation {
    File(PathBuf),
}

impl StateLocation {
    /// Parses what the user typed. A path is a file; anything else is refused with the forms
    /// that are understood.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.trim().is_empty() {
            return Err("--state is empty: give a file path such as state/cardform.db".into());
        }
        if let Some((scheme, _)) = raw.split_once("://") {
            return Err(format!(
                "--state {}: `{scheme}://` state is not supported; give a file path such as \
                 state/cardform.db",
                redact_url(raw)
            ));
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
        }
    }

    /// The `--state` argument that points another command at this state, for the commands that
    /// cardform suggests.
    pub fn as_arg(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateLocation::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl fmt::Debug for StateLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StateLocation({self})")
    }
}

/// `scheme://user:password@host/…` with the password replaced by `***`; anything else as it is.
pub fn redact_url(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else {
        return s.to_owned();
    };
    // The userinfo ends at the last `@` before the first `/`, `?` or `#`.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return s.to_owned();
    };
    let userinfo = &authority[..at];
    let user = match userinfo.split_once(':') {
        Some((user, _password)) => format!("{user}:***"),
        None => return s.to_owned(),
    };
    format!("{scheme}://{user}{}", &rest[at..])
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
