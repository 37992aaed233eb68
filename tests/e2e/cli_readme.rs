//! The first ten minutes: the README's main command, every example, help and completions, run as
//! a new user would (in a fresh directory, with `--sandbox`).

use assert_cmd::Command;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory holding a copy of `examples/`, like a new user's checkout.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("examples");
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(repo().join("examples")).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

fn cardform(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::cargo_bin("cardform")
        .unwrap()
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("CARDFORM_API_URL")
        .env_remove("CARDFORM_STATE")
        .args(args)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn readme_names_the_two_setup_commands_and_ci_runs_the_test_one() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let main_job =
        "cargo run --release -- apply --sandbox -f examples/onboarding.yaml --auto-approve";
    assert!(readme.contains(main_job));
    assert!(readme.contains("cargo test --locked"));
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(ci.contains("cargo test --locked"));
}

#[test]
fn main_job_twice_is_a_persistent_sandbox() {
    let ws = workspace();
    let args = [
        "apply",
        "--sandbox",
        "-f",
        "examples/onboarding.yaml",
        "--auto-approve",
    ];
    let first = cardform(ws.path(), &args);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(text(&first).contains("issued        3"), "{}", text(&first));
    assert!(ws.path().join("state/sandbox.db").exists());
    assert!(ws.path().join("state/sandbox-world.json").exists());
    let second = cardform(ws.path(), &args);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert!(text(&second).contains("No changes."), "{}", text(&second));
}

#[test]
fn every_example_applies_cleanly_with_the_sandbox() {
    let ws = workspace();
    let fleet = Command::new("bash")
        .arg("examples/gen-fleet.sh")
        .arg("60")
        .current_dir(ws.path())
        .output()
        .unwrap();
    assert!(fleet.status.success());
    std::fs::write(ws.path().join("fleet.yaml"), &fleet.stdout).unwrap();
    for file in [
        "examples/onboarding.yaml",
        "examples/employees.csv",
        "fleet.yaml",
    ] {
        let out = cardform(ws.path(), &["validate", "-f", file]);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out));
    }
    let out = cardform(
        ws.path(),
        &[
            "apply",
            "--sandbox",
            "-f",
            "examples/",
            "-f",
            "fleet.yaml",
            "--auto-approve",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("issued       67"), "{}", text(&out));
    let out = cardform(
        ws.path(),
        &[
            "plan",
            "--sandbox",
            "-f",
            "examples/",
            "-f",
            "fleet.yaml",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn ci_workflow_example_uses_real_flags() {
    // The workflow runs its steps through steps.sh (run for real in `cli_gitops`).
    let wf = std::fs::read_to_string(repo().join("examples/ci/github-actions.yml")).unwrap()
        + &std::fs::read_to_string(repo().join("examples/ci/steps.sh")).unwrap();
    for needle in [
        "cardform plan $(files_args) --format markdown --detailed-exitcode",
        "--out \"$plan_file\"",
        "cardform apply \"$plan_file\"",
        "CARDFORM_FILES: \"cards/\"",
        // The state is the team's, in PostgreSQL: never a file on a runner that starts empty.
        "CARDFORM_STATE: ${{ secrets.CARDFORM_STATE }}",
        "PGPASSWORD: ${{ secrets.CARDFORM_STATE_PASSWORD }}",
    ] {
        assert!(wf.contains(needle), "{needle}");
    }
}

#[test]
fn help_lists_every_command_and_each_has_an_example() {
    let ws = tempfile::tempdir().unwrap();
    let out = cardform(ws.path(), &["--help"]);
    let help = text(&out);
    let commands = [
        "init",
        "validate",
        "plan",
        "apply",
        "force-unlock",
        "sandbox",
        "completions",
    ];
    for c in commands {
        assert!(
            help.contains(&format!("  {c}")),
            "--help lists {c}:\n{help}"
        );
        let sub = text(&cardform(ws.path(), &[c, "--help"]));
        assert!(sub.contains("Example"), "{c} --help has an example:\n{sub}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = cardform(ws.path(), &["completions", shell]);
        assert_eq!(out.status.code(), Some(0));
        assert!(String::from_utf8_lossy(&out.stdout).contains("apply"));
    }
}
