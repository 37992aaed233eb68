//! The command line: clap arguments → resolved settings → one function per command. Exit codes are
//! decided here and nowhere else. Holds no domain logic: it wires decl, state, client, plan, exec
//! and render together.

// `CliError` carries a state lock holder inline; errors are rare and end the process, so their
// size costs nothing worth boxing for.
#![allow(clippy::result_large_err)]

mod apply;
mod approve;
mod args;
mod config;
mod dist;
mod error;
mod history;
mod init;
mod logging;
mod migrate;
mod out;
mod plan;
mod project;
mod provider;
mod rebind;
mod refresh;
mod sandbox;
mod sandbox_settings;
mod serve;
mod session;
mod settings;
mod show;
mod stale;
mod states;
mod surgery;
mod validate;
mod who;

pub use error::CliError;

use clap::CommandFactory;

use std::process::ExitCode;

use args::{Cli, Command, StateCommand, WorkspaceCommand};
use settings::Global;

/// How a command ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// `--detailed-exitcode` and the plan has changes.
    Changes,
    /// Ctrl-C: stopped starting new work, saved, exit 130.
    Interrupted,
}

/// The whole program. `main.rs` calls this and nothing else.
pub fn main() -> ExitCode {
    // clap exits 2 on a usage error, which a pipeline using `--detailed-exitcode` would read as
    // "changes present": usage errors are errors (1) here, like every other.
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let json_log = matches!(cli.command, Command::Serve(_));
    if let Err(e) = logging::init(cli.global.verbose, json_log) {
        eprint!("{}", e.render(crate::render::Style::PLAIN));
        return ExitCode::from(1);
    }
    let global = match project_for(&cli).and_then(|p| Global::resolve(&cli.global, p)) {
        Ok(g) => g,
        Err(e) => {
            eprint!("{}", e.render(crate::render::Style::PLAIN));
            return ExitCode::from(1);
        }
    };
    if global.state_source == (settings::StateSource::Default { env_ignored: true }) {
        // Not an error: a demo beside a team's setup is normal; it just must not touch that state.
        eprintln!(
            "note: {} is ignored with --sandbox: its state is {} (pass --state to use another).",
            settings::ENV_STATE,
            global.state
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(run(cli.command, &global));
    // Everything the command wrote is committed by now. Dropping the runtime would wait for every
    // task to stop, and sqlx 0.9's pool maintenance task was seen spinning without yielding once a
    // pool's last connection closed (about one command in a hundred hung after its output until
    // killed): wait a moment for the tasks, then leave them.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    exit(result, &global)
}

/// How long the end of a command waits for the runtime's tasks to stop (see `main`).
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_millis(500);

/// The global flags that mean nothing to `cardform sandbox` (it keeps no state and talks to no
/// provider): hidden from its `--help`, and refused there.
const NOT_FOR_SANDBOX: &[&str] = &["state", "sandbox", "config_file", "request_timeout"];

/// clap's parse, with `sandbox --help` left without the global flags it ignores.
fn parse_cli() -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    let command = Cli::command();
    // Global flags are copied into each subcommand when the command is built, unless it has
    // its own: the sandbox gets its own hidden copies.
    let hidden: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|a| NOT_FOR_SANDBOX.contains(&a.get_id().as_str()))
        .map(|a| a.clone().hide(true))
        .collect();
    let command = command.mut_subcommand("sandbox", |sub| sub.args(hidden));
    let matches = command.try_get_matches()?;
    if let Some(("sandbox", sub)) = matches.subcommand() {
        for id in NOT_FOR_SANDBOX {
            if sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
                let flag = format!("--{}", id.replace('_', "-"));
                return Err(clap::Error::raw(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "{flag} does nothing with `cardform sandbox`, which runs the provider \
                         stand-in and keeps no cardform state (its world persists with --world \
                         PATH)\n"
                    ),
                ));
            }
        }
    }
    Cli::from_arg_matches(&matches)
}

/// The project file for this run: `--config-file`, else `CARDFORM_CONFIG`, else the nearest
/// cardform.toml. Commands that use none of its settings (the sandbox server, completions,
/// writing a starter file) never read it, so a broken file cannot stop them.
fn project_for(cli: &Cli) -> Result<Option<project::Project>, CliError> {
    match &cli.command {
        Command::Sandbox(_)
        | Command::Completions { .. }
        | Command::GenerateMan { .. }
        | Command::GenerateCompletions { .. } => return Ok(None),
        Command::Init(a) if a.config => return Ok(None),
        _ => {}
    }
    let explicit = cli
        .global
        .config_file
        .clone()
        .or_else(|| settings::env_var(project::ENV_CONFIG).map(Into::into));
    let cwd = std::env::current_dir().map_err(|e| CliError::io("the working directory", e))?;
    project::Project::load(explicit.as_deref(), &cwd).map_err(|e| CliError::Usage(e.to_string()))
}

async fn run(command: Command, global: &Global) -> Result<Outcome, CliError> {
    match command {
        Command::Validate(a) => validate::run(&a, global),
        Command::Plan(a) => plan::run(&a, global).await,
        Command::Apply(a) => apply::run(&a, global).await,
        Command::Init(a) => init::run(&a, global).await,
        Command::Show(a) => show::show(&a, global).await,
        Command::State(c) => match c {
            StateCommand::List(a) => show::list(&a, global).await,
            StateCommand::History { json } => history::history(json, global).await,
            StateCommand::Diff(a) => history::diff(&a, global).await,
            StateCommand::Export(a) => history::export(&a, global).await,
            StateCommand::Rm(a) => surgery::rm(&a, global).await,
            StateCommand::Mv(a) => surgery::mv(&a, global).await,
            StateCommand::Audit(a) => history::audit(&a, global).await,
            StateCommand::Migrate(a) => migrate::run(&a, global).await,
            StateCommand::Backup(a) => migrate::backup(&a, global).await,
            StateCommand::ReplaceProvider(a) => rebind::replace_provider(&a, global).await,
        },
        Command::Workspace(c) => match c {
            WorkspaceCommand::List { json } => states::ls(json, global).await,
            WorkspaceCommand::New { name } => states::new(&name, global).await,
            WorkspaceCommand::Delete { name, force } => states::delete(&name, force, global).await,
        },
        Command::Import(a) => surgery::import(&a, global).await,
        Command::Refresh(a) => refresh::refresh(&a, global).await,
        Command::ForceUnlock { lock_id, force } => {
            apply::force_unlock(&lock_id, force, global).await
        }
        Command::Sandbox(a) => sandbox::run(&a).await,
        Command::Serve(a) => serve::run(&a, global).await,
        Command::Approve(a) => approve::run(&a, global).await,
        Command::Products { json } => products(json, global).await,
        Command::Config { json } => config::run(json, global),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "cardform",
                &mut std::io::stdout(),
            );
            Ok(Outcome::Success)
        }
        Command::GenerateMan { dir } => dist::man(&dir),
        Command::GenerateCompletions { dir } => dist::completions(&dir),
    }
}

/// `cardform products`: what can be declared as `product_code`, straight from the provider.
async fn products(json: bool, global: &Global) -> Result<Outcome, CliError> {
    let provider = provider::Provider::connect(global, None).await?;
    let facts = provider.facts().await;
    provider.shutdown().await;
    let facts = facts?;
    let text = if json {
        crate::render::plan::products_json(&facts)
    } else {
        crate::render::plan::products_table(&facts, global.style)
    };
    print!("{text}");
    Ok(Outcome::Success)
}

/// The exit-code policy: 0 success, 1 any error, 2 changes (with `--detailed-exitcode`),
/// 130 interrupted.
fn exit(result: Result<Outcome, CliError>, global: &Global) -> ExitCode {
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Changes) => ExitCode::from(2),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) => {
            let text = global.with_flags(&e.render(global.err_style));
            if !text.is_empty() {
                eprint!("{text}");
            }
            ExitCode::from(1)
        }
    }
}
