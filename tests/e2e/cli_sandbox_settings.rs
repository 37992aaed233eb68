//! A sandbox you can size (issue 27, item 4): the in-process `--sandbox` takes its balance and
//! its faults from `CARDFORM_SANDBOX`, funds a saved world up to a larger `--balance` without
//! touching its ledger of charges and refunds, says once that it runs with settings, refuses a
//! bad value naming the variable, and the header of `examples/gen-fleet.sh` works as written.
//! And a card waiting for KYC is never silent (item 2): it says so, naming the card.

use std::path::Path;
use std::time::Duration;

use crate::harness::*;
use cardform::sandbox::SandboxConfig;
use rust_decimal::Decimal;

const ENV_SANDBOX: &str = "CARDFORM_SANDBOX";

/// `cardform --sandbox ARGS` in `dir`, a new user's environment (no provider variables), with
/// `CARDFORM_SANDBOX` set to `settings` when given.
fn sandbox_run(dir: &Path, settings: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = assert_cmd::Command::cargo_bin("cardform").unwrap();
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .arg("--sandbox")
        .args(args)
        .timeout(Duration::from_secs(120));
    if let Some(s) = settings {
        cmd.env(ENV_SANDBOX, s);
    }
    cmd.output().unwrap()
}

/// A figure of the saved sandbox world (`balance`, `total_charged`, ...).
fn world_figure(dir: &Path, field: &str) -> Decimal {
    let bytes = std::fs::read(dir.join("state/sandbox-world.json")).unwrap();
    let world: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    match &world[field] {
        serde_json::Value::String(s) => s.parse().unwrap(),
        serde_json::Value::Number(n) => n.to_string().parse().unwrap(),
        serde_json::Value::Null => Decimal::ZERO,
        other => panic!("{field}: {other}"),
    }
}

fn balance_before(out: &std::process::Output) -> Decimal {
    let plan: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
    plan["totals"]["balance_before"]
        .as_str()
        .unwrap_or_else(|| panic!("{plan}"))
        .parse()
        .unwrap()
}

const CARDS: &str = "version: 1\ncards:\n  - {key: k1, external_user_id: u-1, product_code: VISA_USD_STD, initial_topup: 100}\n  - {key: k2, external_user_id: u-2, product_code: MC_EUR_PREMIUM}\n";

#[test]
fn the_balance_setting_sizes_a_new_world() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cards.yaml"), CARDS).unwrap();
    let out = sandbox_run(
        dir.path(),
        Some("--balance 25000"),
        &["plan", "--json", "-f", "cards.yaml"],
    );
    assert_success(&out);
    assert_eq!(balance_before(&out), Decimal::from(25_000));
    let err = stderr(&out);
    assert_eq!(
        err.matches("note: the sandbox runs with CARDFORM_SANDBOX=\"--balance 25000\"")
            .count(),
        1,
        "{err}"
    );
    // A new world starts with it: nothing was deposited.
    assert_eq!(world_figure(dir.path(), "total_deposited"), Decimal::ZERO);
    assert_eq!(world_figure(dir.path(), "balance"), Decimal::from(25_000));
    // Without the variable, nothing is said.
    let out = sandbox_run(dir.path(), None, &["plan", "--json", "-f", "cards.yaml"]);
    assert_success(&out);
    assert!(!stderr(&out).contains(ENV_SANDBOX), "{}", stderr(&out));
}

#[test]
fn the_balance_setting_funds_a_saved_world_up_and_leaves_its_ledger_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cards.yaml"), CARDS).unwrap();
    let out = sandbox_run(
        dir.path(),
        None,
        &["apply", "-f", "cards.yaml", "--auto-approve"],
    );
    assert_success(&out);
    let (balance, charged, refunded) = (
        world_figure(dir.path(), "balance"),
        world_figure(dir.path(), "total_charged"),
        world_figure(dir.path(), "total_refunded"),
    );
    assert!(charged > Decimal::ZERO);
    assert_eq!(balance, Decimal::from(10_000) - charged + refunded);

    let out = sandbox_run(
        dir.path(),
        Some("--balance 50000"),
        &["plan", "--json", "-f", "cards.yaml"],
    );
    assert_success(&out);
    assert_eq!(balance_before(&out), Decimal::from(50_000));
    let deposited = Decimal::from(50_000) - balance;
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "note: the sandbox runs with CARDFORM_SANDBOX=\"--balance 50000\" (deposited \
             {deposited} USDT: the master balance is now 50000.00 USDT)"
        )),
        "{err}"
    );
    assert_eq!(world_figure(dir.path(), "balance"), Decimal::from(50_000));
    assert_eq!(world_figure(dir.path(), "total_deposited"), deposited);
    assert_eq!(world_figure(dir.path(), "total_charged"), charged);
    assert_eq!(world_figure(dir.path(), "total_refunded"), refunded);

    // A smaller --balance takes nothing back.
    let out = sandbox_run(
        dir.path(),
        Some("--balance 20000"),
        &["plan", "--json", "-f", "cards.yaml"],
    );
    assert_success(&out);
    assert_eq!(balance_before(&out), Decimal::from(50_000));
    assert_eq!(world_figure(dir.path(), "total_deposited"), deposited);
}

#[test]
fn a_fault_from_the_setting_fails_that_product() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cards.yaml"), CARDS).unwrap();
    let out = sandbox_run(
        dir.path(),
        Some("--fail-product MC_EUR_PREMIUM --order-latency 100ms"),
        &["apply", "-f", "cards.yaml", "--auto-approve"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("k2: issue failed"), "{all}");
    assert!(!all.contains("k1: issue failed"), "{all}");
    // The same world, without the fault: k2 goes through.
    let out = sandbox_run(
        dir.path(),
        None,
        &["apply", "-f", "cards.yaml", "--auto-approve"],
    );
    assert_success(&out);
}

#[test]
fn a_bad_setting_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cards.yaml"), CARDS).unwrap();
    for (settings, says) in [
        (
            "--balance lots",
            "CARDFORM_SANDBOX: --balance \"lots\": expected a decimal",
        ),
        ("--fail-rate 2", "CARDFORM_SANDBOX: --fail-rate 2"),
        ("--no-such-flag", "CARDFORM_SANDBOX: unexpected argument"),
        (
            "--help",
            "CARDFORM_SANDBOX: the settings are the flags of cardform sandbox",
        ),
        (
            "--listen 127.0.0.1:9",
            "CARDFORM_SANDBOX: --listen is not a setting of --sandbox",
        ),
        (
            "--world w.json",
            "CARDFORM_SANDBOX: --world is not a setting of --sandbox",
        ),
        (
            "--fail-product 'open",
            "CARDFORM_SANDBOX: a single quote is not closed",
        ),
    ] {
        let out = sandbox_run(dir.path(), Some(settings), &["plan", "-f", "cards.yaml"]);
        assert_eq!(out.status.code(), Some(1), "{settings}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{settings}: {}", stderr(&out));
    }
}

/// The header's command line, run as written (with `cardform` on PATH), in a fresh directory
/// where `examples/` is the repository's.
#[test]
fn the_gen_fleet_header_works_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("examples/gen-fleet.sh")).unwrap();
    let header = script
        .lines()
        .find_map(|l| l.strip_prefix("#   examples/gen-fleet.sh"))
        .map(|rest| format!("examples/gen-fleet.sh{rest}"))
        .expect("a command line in the header");
    assert!(header.contains("CARDFORM_SANDBOX=\"--balance "), "{header}");
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root.join("examples"), dir.path().join("examples")).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_cardform")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |line: &str| {
        assert_cmd::Command::new("bash")
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .args(["-c", line])
            .timeout(Duration::from_secs(300))
            .output()
            .unwrap()
    };
    // Without the setting the 10,000 cards do not fit, and the error says how to size it.
    let without = header.replace(
        &header[header.find("CARDFORM_SANDBOX=").unwrap()..header.find(" cardform ").unwrap() + 1],
        "",
    );
    assert!(!without.contains(ENV_SANDBOX), "{without}");
    let out = run(&without);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stdout(&out).contains("top up at least"), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(
            "hint: the --sandbox balance is a setting: CARDFORM_SANDBOX=\"--balance 50000\""
        ),
        "{}",
        stderr(&out)
    );
    // As written: it plans, on the very world the failed plan saved.
    let out = run(&header);
    assert_success(&out);
    assert!(stdout(&out).contains("10000 to issue"), "{}", stdout(&out));
}

/// A card waiting ~7 s for its cardholder's KYC says so, naming the card, and the run succeeds.
#[test]
fn a_card_waiting_for_kyc_says_so() {
    for json in [false, true] {
        let env = Env::with(SandboxConfig {
            require_people: true,
            kyc_latency: Duration::from_secs(7),
            ..fast_sandbox()
        });
        env.write(
            "people.csv",
            "external_user_id,first_name,last_name,birth_date,email,phone_number_full,country_iso\n\
             kyc-u1,Firstnamexq,Lastnamexq,1980-01-02,kycxq@mail.example.com,+442079000001,GB\n",
        );
        env.write(
            "cards.csv",
            "key,external_user_id,product_code,initial_topup,status\nkyc-c1,kyc-u1,VISA_USD_STD,,active\n",
        );
        let mut args = vec![
            "apply",
            "--auto-approve",
            "-f",
            "people.csv",
            "-f",
            "cards.csv",
        ];
        if json {
            args.push("--json");
        }
        let out = env.cardform(&args).output().unwrap();
        assert_success(&out);
        if json {
            let waits: Vec<serde_json::Value> = stdout(&out)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["event"] == "waiting_for_kyc")
                .collect();
            assert!(!waits.is_empty(), "{}", stdout(&out));
            let w = &waits[0];
            assert_eq!(w["key"], "kyc-c1");
            assert_eq!(w["external_user_id"], "kyc-u1");
            assert!(w["waited_secs"].as_u64().unwrap() >= 5, "{w}");
            assert!(w["gives_up_in_secs"].as_u64().unwrap() <= 295, "{w}");
        } else {
            let err = stderr(&out);
            assert!(
                err.contains(
                    "note: waiting for KYC: card kyc-c1 (cardholder kyc-u1) is not ready after"
                ),
                "{err}"
            );
            assert!(err.contains("(--kyc-wait)"), "{err}");
            // Nothing personal in it.
            assert!(!err.contains("xq"), "{err}");
        }
    }
}

/// The setting is for the in-process sandbox only: against a real provider it is said to be
/// ignored, not taken for one that applies.
#[test]
fn the_setting_is_ignored_without_the_sandbox() {
    let env = Env::new();
    env.write("cards.yaml", CARDS);
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .env(ENV_SANDBOX, "--balance 100000")
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stderr(&out).contains("note: CARDFORM_SANDBOX is ignored without --sandbox"),
        "{}",
        stderr(&out)
    );
}
