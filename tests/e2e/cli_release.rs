//! A release (issue 29): the man pages and completions the binary writes for packaging, the
//! archive `scripts/package.sh` packs from the built binary, `scripts/install.sh` installing it
//! (and refusing one whose checksum does not match), and the container image, built and run
//! where a container engine answers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{assert_success, stderr, stdout};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cardform(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cardform"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// `scripts/package.sh` on the test's own binary, at gzip level 1 (a debug binary is ~100 MB).
fn package(out_dir: &Path) -> PathBuf {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_cardform")).parent().unwrap();
    let out = Command::new("bash")
        .arg(root().join("scripts/package.sh"))
        .arg(bin_dir)
        .arg(out_dir)
        .arg("x86_64-test-target")
        .env("CARDFORM_GZIP_LEVEL", "1")
        .output()
        .unwrap();
    assert_success(&out);
    let archive = PathBuf::from(stdout(&out).lines().last().unwrap());
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        archive,
        out_dir.join(format!("cardform-{version}-x86_64-test-target.tar.gz"))
    );
    archive
}

/// `sh scripts/install.sh --from ARCHIVE --prefix PREFIX`, with no ambient PREFIX or HOME to fall
/// back on.
fn install(archive: &Path, prefix: &Path, home: &Path) -> Output {
    Command::new("sh")
        .arg(root().join("scripts/install.sh"))
        .arg("--from")
        .arg(archive)
        .arg("--prefix")
        .arg(prefix)
        .env_remove("PREFIX")
        .env_remove("CARDFORM_INSTALL_SHA256")
        .env("HOME", home)
        .output()
        .unwrap()
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn man_pages_and_completions_are_written_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let man = dir.path().join("man1");
    let out = cardform(&["generate-man", man.to_str().unwrap()]);
    assert_success(&out);
    let page = std::fs::read_to_string(man.join("cardform.1")).unwrap();
    assert!(page.starts_with(".ie \\n(.g .ds Aq"), "{page}");
    assert!(page.contains(".TH cardform 1"), "{page}");
    assert!(page.contains(env!("CARGO_PKG_VERSION")), "{page}");
    assert!(page.contains("Infrastructure\\-as\\-code for virtual payment cards"));
    let plan = std::fs::read_to_string(man.join("cardform-plan.1")).unwrap();
    assert!(plan.contains("detailed\\-exitcode"), "{plan}");
    assert!(man.join("cardform-state-list.1").is_file());
    // The packaging commands are hidden: no page, and not in --help.
    assert!(!man.join("cardform-generate-man.1").exists());
    assert!(!stdout(&cardform(&["--help"])).contains("generate-"));

    let comp = dir.path().join("completions");
    assert_success(&cardform(&["generate-completions", comp.to_str().unwrap()]));
    let bash = std::fs::read_to_string(comp.join("cardform.bash")).unwrap();
    assert!(bash.contains("complete -F _cardform"), "{bash}");
    let zsh = std::fs::read_to_string(comp.join("_cardform")).unwrap();
    assert!(zsh.starts_with("#compdef cardform"), "{zsh}");
    let fish = std::fs::read_to_string(comp.join("cardform.fish")).unwrap();
    assert!(fish.contains("complete -c cardform"), "{fish}");
    assert!(bash.contains("force-unlock") && fish.contains("force-unlock"));
}

#[test]
fn install_script_installs_a_locally_built_archive_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let archive = package(&dir.path().join("dist"));
    let sum_file = std::fs::read_to_string(archive.with_extension("gz.sha256")).unwrap();
    let name = archive.file_name().unwrap().to_str().unwrap();
    assert_eq!(sum_file, format!("{}  {name}\n", sha256_hex(&archive)));

    let prefix = dir.path().join("prefix");
    let out = install(&archive, &prefix, dir.path());
    assert_success(&out);
    let said = stdout(&out);
    let installed = prefix.join("bin/cardform");
    assert!(
        said.contains(&format!("verified sha256 {}", sha256_hex(&archive))),
        "{said}"
    );
    assert!(
        said.contains(&format!("installed {}", installed.display())),
        "{said}"
    );

    let ours = stdout(&cardform(&["--version"]));
    let out = Command::new(&installed).arg("--version").output().unwrap();
    assert_success(&out);
    assert_eq!(stdout(&out), ours);
    assert!(ours.starts_with(&format!("cardform {} (", env!("CARGO_PKG_VERSION"))));

    let share = prefix.join("share");
    for file in [
        "man/man1/cardform.1",
        "man/man1/cardform-apply.1",
        "bash-completion/completions/cardform",
        "zsh/site-functions/_cardform",
        "fish/vendor_completions.d/cardform.fish",
    ] {
        let path = share.join(file);
        assert!(path.is_file(), "{} missing after install", path.display());
        assert!(
            said.contains(path.parent().unwrap().to_str().unwrap()),
            "{said}"
        );
    }
    assert!(said.contains("not on your PATH"), "{said}");
}

#[test]
fn install_script_refuses_a_tampered_archive_and_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let archive = package(&dir.path().join("dist"));
    let good = sha256_hex(&archive);
    // One byte flipped in the middle: still a file of the right name and size.
    let mut bytes = std::fs::read(&archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&archive, &bytes).unwrap();
    let bad = sha256_hex(&archive);

    let prefix = dir.path().join("prefix");
    let out = install(&archive, &prefix, dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("checksum mismatch"), "{err}");
    assert!(
        err.contains(&format!("expected sha256 {good}, got {bad}")),
        "{err}"
    );
    assert!(err.contains("nothing was installed"), "{err}");
    assert!(!prefix.exists(), "the prefix was created");

    // No checksum at all is no better than a wrong one.
    std::fs::remove_file(archive.with_extension("gz.sha256")).unwrap();
    let out = install(&archive, &prefix, dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no checksum"), "{}", stderr(&out));
    assert!(!prefix.exists());
}

/// Why no container engine can be used here, or `None` when `docker info` answers.
fn no_container_engine() -> Option<String> {
    let child = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return Some(format!("no docker client ({e})")),
    };
    // A daemon that does not answer must not hold the suite up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait().unwrap() {
            Some(status) if status.success() => return None,
            Some(_) => {
                let out = child.wait_with_output().unwrap();
                let why = stderr(&out);
                let why = why.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("");
                return Some(format!("`docker info` failed: {}", why.trim()));
            }
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Some("`docker info` did not answer within 20 s".to_owned());
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().unwrap()
}

/// Builds the image from the Dockerfile (the dist profile: several minutes) and runs it. Where no
/// engine answers it says SKIPPED and why, after one `docker info`.
#[test]
fn container_image_builds_and_runs_as_non_root() {
    if let Some(why) = no_container_engine() {
        eprintln!("SKIPPED container_image_builds_and_runs_as_non_root: {why}");
        return;
    }
    let tag = format!("cardform-e2e:{}", std::process::id());
    let commit = "e2e0123456789";
    let out = docker(&[
        "build",
        "--tag",
        &tag,
        "--build-arg",
        &format!("CARDFORM_GIT_COMMIT={commit}"),
        root().to_str().unwrap(),
    ]);
    assert_success(&out);
    let checks = std::panic::catch_unwind(|| smoke_test_image(&tag, commit));
    docker(&["image", "rm", "--force", &tag]);
    if let Err(panic) = checks {
        std::panic::resume_unwind(panic);
    }
}

fn smoke_test_image(tag: &str, commit: &str) {
    let out = docker(&["run", "--rm", tag, "--version"]);
    assert_success(&out);
    let version = stdout(&out);
    let expected = format!("cardform {} ({commit}, built ", env!("CARGO_PKG_VERSION"));
    assert!(version.starts_with(&expected), "{version}");

    let out = docker(&["run", "--rm", "--entrypoint", "id", tag, "-u"]);
    assert_success(&out);
    assert_ne!(stdout(&out).trim(), "0", "the image runs as root");

    // HTTPS to a real provider needs the system's roots (rustls-platform-verifier reads them).
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "test",
        tag,
        "-s",
        "/etc/ssl/certs/ca-certificates.crt",
    ]);
    assert_success(&out);

    // The sandbox's state goes to the working directory, which the non-root user can write.
    let examples = format!("{}:/cards:ro", root().join("examples").display());
    let out = docker(&[
        "run",
        "--rm",
        "-e",
        "NO_COLOR=1",
        "-v",
        &examples,
        tag,
        "plan",
        "--sandbox",
        "-f",
        "/cards/onboarding.yaml",
    ]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("Plan: 3 to issue"),
        "{}",
        stdout(&out)
    );
}
