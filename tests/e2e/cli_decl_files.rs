//! What `-f` reads: a FIFO, socket, device or symlink loop, named or inside a directory, is an
//! error naming it at once (never opened, so never blocked on); files a directory holds that are
//! not read are listed by `validate`.

use std::time::{Duration, Instant};

use crate::harness::*;

const CARDS: &str = "version: 1\ncards:\n  - {key: card-000, external_user_id: u-000, product_code: VISA_USD_STD}\n";

fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_named_with_f_is_an_error_at_once() {
    let env = Env::new();
    mkfifo(&env.path("cards.yaml"));
    let t0 = Instant::now();
    let out = env
        .cardform(&["validate", "-f", "cards.yaml"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("`cards.yaml` is a FIFO (named pipe), not a file"),
        "{err}"
    );
    // `plan` reads declarations the same way.
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a FIFO"), "{}", stderr(&out));
}

#[test]
fn a_fifo_and_a_symlink_loop_in_a_directory_are_errors_naming_each() {
    let env = Env::new();
    env.write("fleet/a.yaml", CARDS);
    mkfifo(&env.path("fleet/b.yaml"));
    mkfifo(&env.path("fleet/notes"));
    std::os::unix::fs::symlink("c.yaml", env.path("fleet/c.yaml")).unwrap();
    let t0 = Instant::now();
    let out = env
        .cardform(&["validate", "-f", "fleet"])
        .timeout(Duration::from_secs(10))
        .output()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        "`fleet/b.yaml` is a FIFO (named pipe), not a file",
        "`fleet/notes` is a FIFO (named pipe), not a file",
        "`fleet/c.yaml` is a symlink loop",
    ] {
        assert!(err.contains(expected), "{expected}: {err}");
    }
    // Named directly too.
    let out = env
        .cardform(&["validate", "-f", "fleet/c.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`fleet/c.yaml` is a symlink loop"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn validate_lists_the_files_a_directory_holds_that_are_not_read() {
    let env = Env::new();
    env.write("fleet/a.yaml", CARDS);
    env.write("fleet/README.md", "# the fleet\n");
    env.write("fleet/old/b.yaml", CARDS);
    let out = env.cardform(&["validate", "-f", "fleet"]).output().unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("skipped: fleet/README.md (not .yaml, .yml or .csv)"),
        "{text}"
    );
    assert!(
        text.contains(
            "skipped: fleet/old (a directory: -f reads only the files directly inside one)"
        ),
        "{text}"
    );
    assert!(text.contains("Valid: 1 card declared in 1 file."), "{text}");
}
