//! `cardform workspace list | new | delete`: the named states of the PostgreSQL database `--state`
//! points into, listed, created and deleted (Terraform's workspaces). A SQLite `--state` is one
//! state: `list` shows it, `new` and `delete` say to use another file.
//!
//! Owns the wording, the table, the confirmation and the refusal to delete the selected state;
//! what a state's summary is and every other refusal are `state::named`'s.

use serde_json::json;
use std::io::IsTerminal;

use super::out::print;
use super::settings::Global;
use super::{CliError, Outcome};
use crate::render::safe;
use crate::state::named::{self, NamedError, StateSummary};
use crate::state::{PgLocation, StateLocation};

impl From<NamedError> for CliError {
    fn from(e: NamedError) -> Self {
        match e {
            NamedError::State(e) => CliError::State(e),
            other => {
                // One line: the message is escaped as a whole when shown.
                let mut text = other.to_string();
                if let Some(help) = miette::Diagnostic::help(&other) {
                    text.push_str(&format!("; {help}"));
                }
                CliError::refused(text)
            }
        }
    }
}

/// The PostgreSQL location `--state` names, or the error a SQLite file gets for `verb`.
fn postgres<'a>(global: &'a Global, verb: &'static str) -> Result<&'a PgLocation, CliError> {
    match &global.state {
        StateLocation::Postgres(pg) => Ok(pg),
        file => Err(NamedError::OneFileOneState {
            location: file.to_string(),
            verb,
        }
        .into()),
    }
}

/// `workspace list`.
pub async fn ls(json: bool, global: &Global) -> Result<Outcome, CliError> {
    let states = named::list(&global.state).await?;
    let (database, selected) = match &global.state {
        StateLocation::Postgres(pg) => (named::database(pg), pg.name().to_owned()),
        file => (file.to_string(), file.to_string()),
    };
    let selected_by = global.state_source_shown().to_string();
    if json {
        let rows: Vec<_> = states
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).unwrap_or_default();
                v["selected"] = json!(s.name == selected);
                v
            })
            .collect();
        let doc = json!({
            "database": database,
            "selected": selected,
            "selected_by": selected_by,
            "states": rows,
        });
        return print(&format!("{doc:#}\n"));
    }
    print(&table(&database, &selected, &selected_by, &states, global))
}

fn table(
    database: &str,
    selected: &str,
    selected_by: &str,
    states: &[StateSummary],
    global: &Global,
) -> String {
    let mut out = match global.state {
        StateLocation::Postgres(_) => format!("States in {}:\n", safe(database)),
        StateLocation::File(_) => format!(
            "State in {} (a SQLite file holds one state; named states live in PostgreSQL):\n",
            safe(database)
        ),
    };
    if states.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let width = states
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        out.push_str(&format!(
            "  {:width$}  {:>6}  {:>6}  {:>6}  LAST RUN\n",
            "NAME", "SERIAL", "CARDS", "LIVE"
        ));
        for s in states {
            let mark = if s.name == selected { "*" } else { " " };
            let mut line = format!(
                "{mark} {:width$}  {:>6}  {:>6}  {:>6}  {}",
                safe(&s.name),
                s.serial,
                s.cards,
                s.live_cards,
                s.last_run.as_deref().unwrap_or("never")
            );
            if s.locked {
                line.push_str("  (locked)");
            }
            if let Some(problem) = &s.problem {
                line.push_str(&format!("  not a cardform state: {}", safe(problem)));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    let found = states.iter().any(|s| s.name == selected);
    out.push_str(&format!(
        "\n{} {} (from {}){}\n",
        global.style.bold("Selected:"),
        safe(selected),
        safe(selected_by),
        if found {
            String::new()
        } else {
            format!(
                "; it does not exist yet: `cardform workspace new {}` creates it",
                safe(selected)
            )
        }
    ));
    out
}

/// `workspace new NAME`.
pub async fn new(name: &str, global: &Global) -> Result<Outcome, CliError> {
    let pg = postgres(global, "create")?;
    let store = named::create(pg, name).await?;
    let lineage = store.lineage().await;
    store.close().await;
    print(&format!(
        "Created state {name} in {} (schema {}, lineage {}).\nSelect it with ?state={name} in \
         the URL of --state, CARDFORM_STATE or `state` in cardform.toml.\n",
        safe(&named::database(pg)),
        crate::state::SCHEMA_VERSION,
        lineage?,
    ))
}

/// `workspace delete NAME [--force]`.
pub async fn delete(name: &str, force: bool, global: &Global) -> Result<Outcome, CliError> {
    let pg = postgres(global, "delete")?;
    if name == pg.name() {
        return Err(CliError::refused(format!(
            "refusing to delete state {name}: it is the state selected now (from {}); select \
             another one with --state '…?state=OTHER' first",
            global.state_source_shown()
        )));
    }
    let found = named::find(pg, name).await?;
    if found.locked {
        // The deletion checks again under the lock itself; this says who holds it, before asking.
        let holder = named::lock_holder(pg, name).await?;
        return Err(CliError::State(crate::state::StateError::Locked(holder)));
    }
    let what = format!(
        "state {name} in {} (serial {}, {}, {} live, last run {})",
        named::database(pg),
        found.serial,
        cards(found.cards),
        found.live_cards,
        found.last_run.as_deref().unwrap_or("never")
    );
    if !force {
        if found.live_cards > 0 {
            return Err(NamedError::LiveCards {
                name: name.to_owned(),
                live: found.live_cards,
            }
            .into());
        }
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(format!(
                "workspace delete needs confirmation, but standard input is not a terminal: pass \
                 --force to delete {what}"
            )));
        }
        println!("{} {}.", global.style.bold("Delete"), safe(&what));
        println!("Its history, journal and audit trail go with it; this cannot be undone.");
        let Some(yes) = super::apply::confirmed("Do you want to delete this state?")? else {
            return Err(CliError::Usage(
                "standard input is no longer a terminal".into(),
            ));
        };
        if !yes {
            println!("State delete cancelled: {name} is still there.");
            return Ok(Outcome::Success);
        }
    }
    let gone = named::delete(pg, name, force).await?;
    print(&format!(
        "Deleted state {name} (serial {}, {}, {} live).\n",
        gone.serial,
        cards(gone.cards),
        gone.live_cards
    ))
}

fn cards(n: u64) -> String {
    if n == 1 {
        "1 card".into()
    } else {
        format!("{n} cards")
    }
}
