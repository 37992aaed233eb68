//! `cardform config`: every setting this run would use and where it came from (flag, environment
//! variable, cardform.toml line, or built-in default), so "why does CI use that state?" has an
//! answer. Never prints a secret: the API key and secret are shown as set or not.

use super::provider::{ENV_KEY, ENV_SECRET};
use super::settings::{Global, Source, env_var};
use super::{CliError, Outcome};
use crate::render::safe;

/// One resolved setting.
struct Row {
    name: &'static str,
    value: String,
    source: Source,
}

pub fn run(json: bool, global: &Global) -> Result<Outcome, CliError> {
    let rows = rows(global)?;
    let file = global
        .project
        .as_ref()
        .map(|p| p.path.display().to_string());
    let secrets: Vec<(&str, bool)> = [ENV_KEY, ENV_SECRET]
        .into_iter()
        .map(|v| (v, env_var(v).is_some()))
        .collect();
    if json {
        let settings: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|r| {
                (
                    r.name.to_owned(),
                    serde_json::json!({ "value": r.value, "source": r.source.to_string() }),
                )
            })
            .collect();
        let doc = serde_json::json!({
            "project_file": file,
            "settings": settings,
            "secrets": secrets
                .iter()
                .map(|(v, set)| (v.to_string(), serde_json::json!({ "set": set, "source": "env" })))
                .collect::<serde_json::Map<_, _>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(Outcome::Success);
    }
    let mut out = match &file {
        Some(f) => format!("Project file: {}\n\n", safe(f)),
        None => "Project file: none (no cardform.toml here or above; `cardform init --config` \
                 writes one)\n\n"
            .to_owned(),
    };
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let value_width = rows
        .iter()
        .map(|r| r.value.len())
        .max()
        .unwrap_or(0)
        .min(60);
    for r in &rows {
        out.push_str(&format!(
            "{:width$}  {:value_width$}  {}\n",
            r.name,
            safe(&r.value),
            global.style.dim(&r.source.to_string()),
        ));
    }
    out.push('\n');
    for (var, set) in secrets {
        out.push_str(&format!(
            "{var}: {}\n",
            if set { "set (env)" } else { "not set" }
        ));
    }
    print!("{out}");
    Ok(Outcome::Success)
}

/// The settings as a command with no flags of its own would resolve them.
fn rows(global: &Global) -> Result<Vec<Row>, CliError> {
    let mut rows = Vec::new();
    match global.files_sourced(&[]) {
        Ok((files, source)) => rows.push(Row {
            name: "files",
            value: files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            source,
        }),
        Err(_) => rows.push(Row {
            name: "files",
            value: "(none: pass -f)".into(),
            source: Source::Default,
        }),
    }
    rows.push(Row {
        name: "state",
        value: global.state.to_string(),
        source: global.state_source_shown(),
    });
    rows.push(Row {
        name: "provider",
        value: match (&global.api_url, global.sandbox) {
            (_, true) => "the built-in sandbox".into(),
            (Some((url, _)), false) => crate::state::redact_url(url),
            (None, false) => "(none: set CARDFORM_API_URL or api_url)".into(),
        },
        source: match (&global.api_url, global.sandbox) {
            (_, true) => Source::Flag("--sandbox"),
            (Some((_, source)), false) => source.clone(),
            (None, false) => Source::Default,
        },
    });
    let rate = global.rate(None)?;
    rows.push(Row {
        name: "rate",
        value: rate
            .as_ref()
            .map_or("unlimited (slowing down on 429)".into(), |(r, _)| {
                format!("{r}/s")
            }),
        source: rate.map_or(Source::Default, |(_, s)| s),
    });
    let (n, source) = global.parallelism(None, None)?;
    rows.push(Row {
        name: "parallelism",
        value: n.to_string(),
        source,
    });
    let (_, raw, source) = global.max_prune(None)?;
    rows.push(Row {
        name: "max_prune",
        value: raw,
        source,
    });
    let (_, raw, source) = global.max_failure_rate(None)?;
    rows.push(Row {
        name: "max_failure_rate",
        value: raw,
        source,
    });
    rows.extend(logging_rows());
    rows.extend(
        super::serve::shown(global)
            .into_iter()
            .map(|(name, value, source)| Row {
                name,
                value,
                source,
            }),
    );
    Ok(rows)
}

/// Debug logging as `CARDFORM_LOG` and `CARDFORM_LOG_FILE` set it (`-v` on a command wins over
/// the variable, for that command).
fn logging_rows() -> [Row; 2] {
    use super::logging::{ENV_LOG, ENV_LOG_FILE, directives};
    let filter = env_var(ENV_LOG);
    let file = env_var(ENV_LOG_FILE);
    [
        Row {
            name: "log",
            value: directives(0, filter.as_deref())
                .unwrap_or_else(|| "off (-v turns it on)".into()),
            source: filter.map_or(Source::Default, |_| Source::Env(ENV_LOG)),
        },
        Row {
            name: "log_file",
            value: file.clone().unwrap_or_else(|| "(stderr)".into()),
            source: file.map_or(Source::Default, |_| Source::Env(ENV_LOG_FILE)),
        },
    ]
}
