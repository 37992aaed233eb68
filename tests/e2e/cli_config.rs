//! `cardform.toml`, the project file: found from a nested directory, giving `-f`, the state and
//! the provider URL, below flags and environment variables; secrets refused; `cardform config`
//! says where each setting came from; `cardform init --config` writes a starter file.

use crate::harness::*;
use std::path::Path;

/// `cardform ARGS` in `dir`, with this env's sandbox credentials but none of the harness's
/// `--state` / `CARDFORM_API_URL`: everything else must come from cardform.toml.
fn bare(env: &Env, dir: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("cardform").unwrap();
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CARDFORM_API_KEY", &env.api_key)
        .env("CARDFORM_API_SECRET", &env.api_secret)
        .args(args)
        .timeout(std::time::Duration::from_secs(120));
    cmd
}

const ONE_CARD: &str = "version: 1\ncards:\n  - key: dave-sales\n    external_user_id: u-2001\n    product_code: VISA_USD_STD\n";

/// A repository: cardform.toml at its root naming `cards/` and the env's state, the onboarding
/// cards in `cards/`, and a nested directory to run from.
fn repo(env: &Env) -> std::path::PathBuf {
    env.write("repo/cards/onboarding.yaml", ONBOARDING);
    env.write(
        "repo/cardform.toml",
        &format!(
            "# the team's settings\nfiles = [\"cards/\"]\nstate = \"../state/cardform.db\"\napi_url = \"{}\"\nmax_prune = 3\n",
            env.url()
        ),
    );
    let nested = env.path("repo/docs/runbooks");
    std::fs::create_dir_all(&nested).unwrap();
    nested
}

#[test]
fn plan_from_a_nested_directory_needs_no_flags() {
    let env = Env::new();
    let nested = repo(&env);
    let out = bare(&env, &nested, &["plan"]).output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("alice-travel") && text.contains("carol-premium"),
        "{text}"
    );
    assert!(text.contains("3 to issue"), "{text}");
    // The suggested command needs no --state: the file gives it.
    assert!(!text.contains("--state"), "{text}");

    // apply too, then a plan that finds nothing to do: the state the file names was written.
    let out = bare(&env, &nested, &["apply", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let out = env.cardform(&["state", "list"]).output().unwrap();
    assert!(stdout(&out).contains("alice-travel"), "{}", stdout(&out));
}

#[test]
fn flags_and_environment_override_the_file() {
    let env = Env::new();
    let nested = repo(&env);
    env.write("other/one.yaml", ONE_CARD);
    // -f replaces the file's `files`.
    let other = env.path("other/one.yaml");
    let out = bare(&env, &nested, &["plan", "-f", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("dave-sales") && !text.contains("alice-travel"),
        "{text}"
    );

    // --state and CARDFORM_STATE replace the file's `state`; the flag wins over the variable.
    let out = bare(&env, &nested, &["config"])
        .env("CARDFORM_STATE", "from-env.db")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains("from-env.db") && stdout(&out).contains("env CARDFORM_STATE"),
        "{}",
        stdout(&out)
    );
    let out = bare(&env, &nested, &["--state", "from-flag.db", "config"])
        .env("CARDFORM_STATE", "from-env.db")
        .output()
        .unwrap();
    assert!(stdout(&out).contains("from-flag.db   "), "{}", stdout(&out));
    assert!(stdout(&out).contains("flag --state"), "{}", stdout(&out));

    // CARDFORM_API_URL replaces `api_url`: a dead port proves which one was used.
    let out = bare(&env, &nested, &["plan", "--request-timeout", "2s"])
        .env("CARDFORM_API_URL", "http://127.0.0.1:9")
        .env("CARDFORM_STATE", env.state())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("127.0.0.1:9"), "{}", stderr(&out));

    // A flag default from the file is overridden by the flag.
    let out = bare(&env, &nested, &["config"]).output().unwrap();
    assert!(
        stdout(&out).contains("max_prune         3 "),
        "{}",
        stdout(&out)
    );
}

#[test]
fn config_shows_each_setting_and_where_it_came_from() {
    let env = Env::new();
    let nested = repo(&env);
    let toml = env.path("repo/cardform.toml").display().to_string();
    let out = bare(&env, &nested, &["config"]).output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains(&format!("Project file: {toml}\n")), "{text}");
    assert!(
        text.contains(&format!("{toml}:2")),
        "files from line 2: {text}"
    );
    assert!(
        text.contains(&format!("{toml}:3")),
        "state from line 3: {text}"
    );
    assert!(
        text.contains(&format!("{toml}:4")),
        "api_url from line 4: {text}"
    );
    assert!(
        text.contains(&format!("{toml}:5")),
        "max_prune from line 5: {text}"
    );
    assert!(text.contains("default"), "{text}");
    // Secrets: whether they are set, never their value.
    assert!(text.contains("CARDFORM_API_KEY: set (env)"), "{text}");
    assert!(
        !text.contains(&env.api_key) && !text.contains(&env.api_secret),
        "{text}"
    );

    let out = bare(&env, &nested, &["config", "--json"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["project_file"], toml.as_str());
    assert_eq!(doc["settings"]["max_prune"]["value"], "3");
    assert_eq!(doc["settings"]["max_prune"]["source"], format!("{toml}:5"));
    assert_eq!(doc["settings"]["parallelism"]["source"], "default");
    assert_eq!(doc["secrets"]["CARDFORM_API_SECRET"]["set"], true);
    assert!(!stdout(&out).contains(&env.api_secret));
    assert_eq!(doc["settings"]["log"]["source"], "default");

    // Debug logging shows where its filter and its file come from, as the other settings do.
    let log_file = env.path("debug.log");
    let out = bare(&env, &nested, &["config"])
        .env("CARDFORM_LOG", "debug")
        .env("CARDFORM_LOG_FILE", &log_file)
        .output()
        .unwrap();
    let text = stdout(&out);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row: {text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(row("log"), ["log", "cardform=debug", "env", "CARDFORM_LOG"]);
    assert_eq!(
        row("log_file"),
        [
            "log_file",
            log_file.to_str().unwrap(),
            "env",
            "CARDFORM_LOG_FILE"
        ]
    );
}

#[test]
fn a_secret_in_the_file_is_refused_naming_where_secrets_belong() {
    let env = Env::new();
    let nested = repo(&env);
    for (line, key) in [
        ("api_secret = \"s3cr3t-value\"", "api_secret"),
        ("api_key = \"s3cr3t-value\"", "api_key"),
        ("github_token = \"s3cr3t-value\"", "github_token"),
    ] {
        env.write(
            "repo/cardform.toml",
            &format!("files = [\"cards/\"]\n{line}\n"),
        );
        let out = bare(&env, &nested, &["plan"]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("cardform.toml:2: `{key}` looks like a secret")),
            "{err}"
        );
        assert!(
            err.contains("CARDFORM_API_KEY and CARDFORM_API_SECRET"),
            "{err}"
        );
        assert!(!err.contains("s3cr3t-value"), "{err}");
    }
    env.write(
        "repo/cardform.toml",
        "state = \"postgres://ci:s3cr3t-value@db/cards\"\n",
    );
    let out = bare(&env, &nested, &["config"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("PGPASSWORD") && err.contains("CARDFORM_STATE"),
        "{err}"
    );
    assert!(!err.contains("s3cr3t-value"), "{err}");

    env.write("repo/cardform.toml", "file = [\"cards/\"]\n");
    let out = bare(&env, &nested, &["plan"]).output().unwrap();
    assert!(
        stderr(&out).contains("unknown key `file` (did you mean `files`?)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_sandbox_keeps_its_own_state() {
    let env = Env::new();
    let nested = repo(&env);
    let out = bare(&env, &nested, &["--sandbox", "config"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("state/sandbox.db") && !text.contains("cardform.db"),
        "{text}"
    );
}

#[test]
fn init_config_writes_a_starter_file_and_never_overwrites_one() {
    let env = Env::new();
    let dir = env.path("fresh");
    std::fs::create_dir_all(&dir).unwrap();
    let out = bare(&env, &dir, &["init", "--config"]).output().unwrap();
    assert_success(&out);
    let written = std::fs::read_to_string(dir.join("cardform.toml")).unwrap();
    assert!(written.contains("files = [\"cards/\"]"), "{written}");
    assert!(written.contains("CARDFORM_API_SECRET"), "{written}");
    // The starter file is one cardform reads.
    let out = bare(&env, &dir, &["config"]).output().unwrap();
    assert_success(&out);

    std::fs::write(dir.join("cardform.toml"), "# mine\n").unwrap();
    let out = bare(&env, &dir, &["init", "--write-config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("cardform.toml already exists: refusing to overwrite it"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("cardform.toml")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn sandbox_help_lists_no_flag_it_ignores() {
    let env = Env::new();
    let out = bare(&env, env.dir.path(), &["sandbox", "--help"])
        .output()
        .unwrap();
    assert_success(&out);
    let help = stdout(&out);
    assert!(
        !help.contains("--state") && !help.contains("--sandbox"),
        "{help}"
    );
    let out = bare(&env, env.dir.path(), &["sandbox", "--state", "x.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--state does nothing with `cardform sandbox`"),
        "{}",
        stderr(&out)
    );
    let out = bare(&env, env.dir.path(), &["--help"]).output().unwrap();
    let help = stdout(&out);
    assert!(!help.contains("State database file"), "{help}");
    assert!(help.contains("postgres:// URL"), "{help}");
}
