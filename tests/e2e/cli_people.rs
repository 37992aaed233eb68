//! Onboarding people (issue 12): declared users and cardholders are created once each, ahead of
//! the cards that need them, cards wait for KYC without holding up anyone else, a rejected KYC
//! stops only that person's cards, a kill -9 at any moment loses and repeats nothing, and no
//! personal field reaches state, plans or logs.

use crate::harness::*;
use cardform::sandbox::{self, SandboxConfig};
use rust_decimal::Decimal;
use std::time::Duration;

fn people_mode() -> SandboxConfig {
    SandboxConfig {
        require_people: true,
        kyc_latency: Duration::from_millis(800),
        balance: Decimal::from(1_000_000),
        ..fast_sandbox()
    }
}

/// Person `i`'s personal fields: distinctive strings, so a scan cannot miss them.
fn person(i: usize) -> [String; 5] {
    [
        format!("Firstname{i:04}x"),
        format!("Lastname{i:04}x"),
        format!("19{:02}-0{}-1{}", 50 + i % 40, 1 + i % 9, i % 10),
        format!("person{i:04}@mail.example.com"),
        format!("+4420790{i:05}"),
    ]
}

/// A people CSV and a cards CSV for `n` people with one card each (HR-export style).
fn hr_export(env: &Env, n: usize) {
    let mut people = String::from(
        "external_user_id,first_name,last_name,birth_date,email,phone_number_full,country_iso\n",
    );
    let mut cards = String::from("key,external_user_id,product_code,initial_topup,status\n");
    for i in 0..n {
        let [first, last, birth, email, phone] = person(i);
        people.push_str(&format!(
            "u{i:04},{first},{last},{birth},{email},{phone},GB\n"
        ));
        cards.push_str(&format!("c{i:04},u{i:04},VISA_USD_STD,,active\n"));
    }
    env.write("people.csv", &people);
    env.write("cards.csv", &cards);
}

const FILES: [&str; 4] = ["-f", "people.csv", "-f", "cards.csv"];

fn apply_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["apply", "--auto-approve"];
    args.extend(FILES);
    args.extend(extra);
    args
}

/// Exactly one user, one cardholder and one card issue order per person.
fn assert_once_each(env: &Env, n: usize) {
    let seen = env.inspect();
    assert_eq!(seen.users, n as u64, "{seen:?}");
    assert_eq!(seen.cardholders, n as u64, "{seen:?}");
    for i in 0..n {
        let uid = format!("u{i:04}");
        let p = seen.person(&uid).unwrap_or_else(|| panic!("{uid} unknown"));
        assert_eq!((p.users, p.cardholders), (1, 1), "{uid}: {p:?}");
        assert_eq!(seen.issue_count(&uid, "VISA_USD_STD"), 1, "{uid}");
    }
}

#[test]
fn two_hundred_new_people_with_kyc_delays_are_onboarded_once_each() {
    let env = Env::with(people_mode());
    hr_export(&env, 200);
    let plan = env
        .cardform(&["plan", "--json", "-f", "people.csv", "-f", "cards.csv"])
        .output()
        .unwrap();
    assert_success(&plan);
    let plan: serde_json::Value = serde_json::from_str(&stdout(&plan)).unwrap();
    let counts = &plan["totals"]["counts"];
    assert_eq!(
        (
            &counts["create_user"],
            &counts["create_cardholder"],
            &counts["issue"]
        ),
        (&200.into(), &200.into(), &200.into()),
        "{counts}"
    );

    let out = env
        .cardform(&apply_args(&["--kyc-wait", "60s"]))
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("people      400"), "{}", stdout(&out));
    assert_once_each(&env, 200);
    let seen = env.inspect();
    // Every card waited for KYC at least once (refusals bind no key and charge nothing)...
    assert!(seen.calls_to("cards/create") > 200, "{:?}", seen.calls);
    // ...and the money is exactly 200 issue fees.
    assert_eq!(seen.total_charged, Decimal::from(1000));

    let again = env
        .cardform(&[
            "plan",
            "--detailed-exitcode",
            "-f",
            "people.csv",
            "-f",
            "cards.csv",
        ])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}

on_both_backends!(a_killed_onboarding_resumes_without_repeating_anyone);

fn a_killed_onboarding_resumes_without_repeating_anyone(backend: Backend) {
    let env = Env::on(
        backend,
        SandboxConfig {
            drop_rate: 0.05,
            ..people_mode()
        },
    );
    hr_export(&env, 60);
    let args = apply_args(&["--parallelism", "8", "--kyc-wait", "60s"]);
    // Killed while users are being created, then while cardholders are, then while cards are.
    for (endpoint, until) in [
        ("users/create", 10),
        ("cardholders/create", 30),
        ("cards/create", 40),
    ] {
        let mut child = env
            .process(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while env.inspect().calls_to(endpoint) < until && t0.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL, mid-run
        child.wait().unwrap();
    }
    let out = env.cardform(&args).output().unwrap();
    if !out.status.success() {
        // A lost response can leave the outcome of the last calls unknown: one more run learns it.
        let out = env.cardform(&args).output().unwrap();
        assert_success(&out);
    }
    assert_once_each(&env, 60);
    assert_eq!(env.inspect().total_charged, Decimal::from(300));
}

/// A KYC that ended `status` (rejected, or expired) stops that person's cards at once, not after
/// `--kyc-wait`, with a slug and a hint; everyone else's cards are issued, and the next plan says
/// why.
fn a_dead_end_kyc_stops_that_persons_cards_and_nobody_elses(config: SandboxConfig, status: &str) {
    let env = Env::with(config);
    hr_export(&env, 5);
    let t0 = std::time::Instant::now();
    let out = env
        .cardform(&apply_args(&["--kyc-wait", "60s"]))
        .output()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(30), "stopped at once");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("c0002: issue failed: kyc_rejected"), "{text}");
    assert!(text.contains(&format!("KYC {status}")), "{text}");
    assert!(
        text.contains("resolve it with the provider"),
        "a hint: {text}"
    );
    assert!(text.contains("issued        4"), "{text}");
    let seen = env.inspect();
    assert_eq!(seen.issue_count("u0002", "VISA_USD_STD"), 0);
    assert_eq!(seen.total_charged, Decimal::from(20), "nothing for u0002");
    assert_eq!(
        seen.person("u0002").unwrap().kyc[sandbox::SUBPROVIDER],
        status
    );
    // State knows why, and the next plan says so.
    let plan = env
        .cardform(&["plan", "-f", "people.csv", "-f", "cards.csv"])
        .output()
        .unwrap();
    assert!(
        stdout(&plan).contains(&format!(
            "cardholder u0002 at {}: KYC {status}",
            sandbox::SUBPROVIDER
        )),
        "{}",
        stdout(&plan)
    );
}

#[test]
fn a_rejected_kyc_stops_that_persons_cards_and_nobody_elses() {
    a_dead_end_kyc_stops_that_persons_cards_and_nobody_elses(
        SandboxConfig {
            kyc_rejected_users: vec!["u0002".into()],
            ..people_mode()
        },
        "rejected",
    );
}

#[test]
fn an_expired_kyc_stops_that_persons_cards_like_a_rejection() {
    a_dead_end_kyc_stops_that_persons_cards_and_nobody_elses(
        SandboxConfig {
            kyc_expired_users: vec!["u0002".into()],
            ..people_mode()
        },
        "expired",
    );
}

/// Onboarding in two steps: people first (their KYC takes time), cards later. People without
/// cards need no `--allow-empty` while state holds no card; once it does, `-f people.csv` alone
/// is refused as the forgotten `-f cards.csv` it most likely is.
#[test]
fn people_may_be_declared_before_their_cards() {
    let env = Env::with(people_mode());
    hr_export(&env, 2);
    let run = |args: &[&str]| env.cardform(args).output().unwrap();
    let out = run(&["validate", "-f", "people.csv"]);
    assert_success(&out);
    assert!(
        stdout(&out).contains("0 cards and 2 cardholders"),
        "{}",
        stdout(&out)
    );
    let out = run(&["plan", "-f", "people.csv"]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains("create user (2)"), "{text}");
    // A cardholder belongs to the subprovider of a card's product: it waits for a card, and the
    // plan says so rather than leave KYC silently unstarted.
    assert!(
        text.contains("u0000, u0001 are declared without a card: only their users are created"),
        "{text}"
    );
    assert_success(&run(&["apply", "--auto-approve", "-f", "people.csv"]));
    let seen = env.inspect();
    assert_eq!((seen.users, seen.cardholders, seen.cards), (2, 0, 0));

    assert_success(&run(&apply_args(&["--kyc-wait", "60s"])));
    assert_once_each(&env, 2);
    let calls = env.inspect().calls;
    for args in [
        &["plan", "-f", "people.csv"][..],
        &["apply", "--auto-approve", "--prune", "-f", "people.csv"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(
                "only people are declared in people.csv, no cards, while state holds 2 cards"
            ) && err.contains("--allow-empty"),
            "{err}"
        );
    }
    let after = env.inspect().calls;
    for mutation in [
        "cards/freeze",
        "users/create",
        "cardholders/create",
        "cards/create",
    ] {
        assert_eq!(after.get(mutation), calls.get(mutation), "{mutation}");
    }
    let out = run(&["plan", "-f", "people.csv", "--allow-empty"]);
    assert_success(&out);
    assert!(stdout(&out).contains("undeclared"), "{}", stdout(&out));
}

#[test]
fn a_card_still_waiting_for_kyc_is_left_for_the_next_run() {
    let env = Env::with(SandboxConfig {
        kyc_latency: Duration::from_secs(3600),
        ..people_mode()
    });
    hr_export(&env, 2);
    let t0 = std::time::Instant::now();
    let out = env
        .cardform(&apply_args(&["--kyc-wait", "2s"]))
        .output()
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(text.contains("waiting for KYC   2: c0000, c0001"), "{text}");
    assert!(text.contains("failed        0"), "{text}");
    let seen = env.inspect();
    assert_eq!((seen.users, seen.cardholders), (2, 2));
    assert_eq!(seen.total_charged, Decimal::ZERO);
    // The next run sends the cards again, and only the cards.
    let plan = env
        .cardform(&["plan", "-f", "people.csv", "-f", "cards.csv"])
        .output()
        .unwrap();
    let text = stdout(&plan);
    assert!(text.contains("Plan: 2 to re-issue; 0 unchanged."), "{text}");
}

#[test]
fn people_the_provider_has_already_are_adopted() {
    let env = Env::with(people_mode());
    hr_export(&env, 3);
    assert_success(
        &env.cardform(&apply_args(&["--kyc-wait", "60s"]))
            .output()
            .unwrap(),
    );
    // Another team's state, the same people, a card of their own each.
    let mut cards = String::from("key,external_user_id,product_code\n");
    for i in 0..3 {
        cards.push_str(&format!("travel-{i},u{i:04},VISA_USD_STD\n"));
    }
    env.write("travel.csv", &cards);
    let other = format!("{}/other.db", env.dir.path().display());
    assert_success(&env.cardform_at(&other, &["init"]).output().unwrap());
    let out = env
        .cardform_at(
            &other,
            &[
                "apply",
                "--auto-approve",
                "-f",
                "people.csv",
                "-f",
                "travel.csv",
            ],
        )
        .output()
        .unwrap();
    assert_success(&out);
    assert!(stdout(&out).contains("people        6"), "{}", stdout(&out));
    let seen = env.inspect();
    assert_eq!(
        (seen.users, seen.cardholders),
        (3, 3),
        "adopted, not created"
    );
    assert_eq!(seen.cards, 6);
}

#[test]
fn a_saved_plan_takes_its_kyc_fields_from_its_declarations_only() {
    let env = Env::with(people_mode());
    hr_export(&env, 2);
    assert_success(
        &env.cardform(&[
            "plan",
            "-f",
            "people.csv",
            "-f",
            "cards.csv",
            "--out",
            "plan.json",
        ])
        .output()
        .unwrap(),
    );
    let saved = std::fs::read_to_string(env.path("plan.json")).unwrap();
    for field in person(0).iter().chain(person(1).iter()) {
        assert!(!saved.contains(field.as_str()), "{field} in the plan file");
    }
    assert!(saved.contains("F. L., GB"), "shown by initials: {saved}");
    // Without the declaration files there is nothing to send for a cardholder: those changes
    // fail with a hint, the rest of the plan goes ahead.
    std::fs::rename(env.path("people.csv"), env.path("people.bak")).unwrap();
    let out = env
        .cardform(&["apply", "plan.json", "--kyc-wait", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(text.contains("kyc_not_declared"), "{text}");
    assert_eq!(env.inspect().cardholders, 0);
    assert_eq!(env.inspect().users, 2);
    // With them, a plan made again finishes the job.
    std::fs::rename(env.path("people.bak"), env.path("people.csv")).unwrap();
    assert_success(
        &env.cardform(&[
            "plan",
            "-f",
            "people.csv",
            "-f",
            "cards.csv",
            "--out",
            "plan.json",
        ])
        .output()
        .unwrap(),
    );
    assert_success(
        &env.cardform(&["apply", "plan.json", "--kyc-wait", "60s"])
            .output()
            .unwrap(),
    );
    assert_once_each(&env, 2);
}

/// A saved plan's fingerprint covers people's personal fields only through digests under the
/// journal's key: the plan file gives nothing to check a guessed birth date against, yet a changed
/// one still makes the plan stale.
#[test]
fn a_saved_plan_is_stale_when_a_persons_field_changes() {
    let env = Env::with(people_mode());
    hr_export(&env, 2);
    let plan = |out: &str| {
        let o = env
            .cardform(&["plan", "-f", "people.csv", "-f", "cards.csv", "--out", out])
            .output()
            .unwrap();
        assert_success(&o);
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(env.path(out)).unwrap()).unwrap();
        doc["declarations"]["fingerprint"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let validated = |args: &[&str]| {
        let o = env.cardform(args).output().unwrap();
        assert_success(&o);
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        v["fingerprint"].as_str().unwrap().to_owned()
    };
    let saved = plan("plan.json");
    assert_eq!(plan("again.json"), saved, "deterministic");
    let unkeyed = validated(&["validate", "--json", "-f", "people.csv", "-f", "cards.csv"]);
    assert_ne!(saved, unkeyed, "the plan's fingerprint is keyed");

    let born = person(0)[2].clone();
    let people = std::fs::read_to_string(env.path("people.csv")).unwrap();
    assert!(people.contains(&born));
    env.write("people.csv", &people.replace(&born, "1970-01-01"));
    assert_eq!(
        validated(&["validate", "--json", "-f", "people.csv", "-f", "cards.csv"]),
        unkeyed,
        "validate's fingerprint holds no personal value, keyed or not"
    );
    let out = env.cardform(&["apply", "plan.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("refusing to apply a stale plan")
            && err.contains("the declared people or moves"),
        "{err}"
    );
    assert!(!err.contains("1970-01-01") && !err.contains(&born), "{err}");
    assert_eq!(env.inspect().users, 0, "nothing was sent");

    env.write("people.csv", &people);
    assert_success(
        &env.cardform(&["apply", "plan.json", "--kyc-wait", "60s"])
            .output()
            .unwrap(),
    );
    assert_once_each(&env, 2);
}

/// The raw bytes of everything cardform wrote or printed hold no name, birth date, email or
/// phone number of anyone declared.
#[test]
fn no_personal_data_in_state_plans_or_logs() {
    let env = Env::with(people_mode());
    hr_export(&env, 20);
    let mut seen = Vec::new();
    let mut run = |args: &[&str]| {
        let out = env.cardform(args).output().unwrap();
        seen.extend(out.stdout);
        seen.extend(out.stderr);
    };
    run(&[
        "plan",
        "-f",
        "people.csv",
        "-f",
        "cards.csv",
        "--out",
        "plan.json",
    ]);
    run(&["plan", "--json", "-f", "people.csv", "-f", "cards.csv"]);
    run(&[
        "plan",
        "--format",
        "markdown",
        "-f",
        "people.csv",
        "-f",
        "cards.csv",
    ]);
    run(&["apply", "plan.json", "--kyc-wait", "60s"]);
    run(&[
        "apply",
        "--auto-approve",
        "--json",
        "-f",
        "people.csv",
        "-f",
        "cards.csv",
    ]);
    run(&[
        "apply",
        "--auto-approve",
        "--log-cards",
        "-f",
        "people.csv",
        "-f",
        "cards.csv",
    ]);
    run(&["show"]);
    run(&["show", "c0001"]);
    run(&["state", "history"]);
    run(&["state", "audit"]);
    run(&["state", "export"]);
    run(&["state", "export", "--format", "json"]);
    run(&["state", "export", "--format", "csv", "--kind", "person"]);
    run(&["state", "list", "--people"]);
    run(&["show", "u0003"]);
    run(&["state", "diff"]);
    run(&["state", "diff", "--json"]);
    // A bad person: its problem names the place and field, never the value.
    env.write(
        "bad.csv",
        "external_user_id,first_name,last_name,birth_date,email,phone_number_full,country_iso\n\
         u9999,Secretname,Lastname0000x,1990-01-01,not-an-email,+442079000000,GB\n",
    );
    run(&["validate", "-f", "bad.csv"]);
    assert_once_each(&env, 20);
    seen.extend(std::fs::read(env.path("plan.json")).unwrap());
    seen.extend(env.state_bytes());
    for f in std::fs::read_dir(env.path("state")).unwrap() {
        seen.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    let haystack = String::from_utf8_lossy(&seen);
    let mut secrets: Vec<String> = (0..20).flat_map(person).collect();
    secrets.extend(["Secretname".to_owned(), "not-an-email".to_owned()]);
    for s in &secrets {
        assert!(!haystack.contains(s.as_str()), "{s} leaked");
    }
    assert!(haystack.contains("u0001"), "the scan saw the outputs");
}

#[test]
fn people_plans_read_well() {
    let env = Env::with(people_mode());
    env.write(
        "people.yaml",
        "version: 1\ncardholders:\n  - external_user_id: u-1001\n    first_name: Alice\n    \
         last_name: Smith\n    birth_date: 1990-04-01\n    email: alice@example.com\n    \
         phone_number_full: \"+15551234567\"\n    country_iso: US\ncards:\n  - key: alice-travel\n    \
         external_user_id: u-1001\n    product_code: VISA_USD_STD\n  - key: alice-eu\n    \
         external_user_id: u-1001\n    product_code: MC_EUR_PREMIUM\n  - key: bob-ops\n    \
         external_user_id: u-1002\n    product_code: VISA_USD_STD\n",
    );
    let plan = |extra: &[&str]| {
        let mut args = vec!["plan", "-f", "people.yaml"];
        args.extend(extra);
        let out = env.cardform(&args).output().unwrap();
        assert_success(&out);
        stdout(&out)
    };
    insta::assert_snapshot!("people_plan_human", plan(&[]));
    insta::assert_snapshot!(
        "people_plan_markdown",
        plan(&["--format", "markdown"])
            .lines()
            .filter(|l| !l.starts_with("<sub>state"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut json: serde_json::Value = serde_json::from_str(&plan(&["--json"])).unwrap();
    for volatile in ["created_at", "state", "declarations"] {
        json[volatile] = "[…]".into();
    }
    insta::assert_snapshot!(
        "people_plan_json",
        serde_json::to_string_pretty(&json).unwrap()
    );
}

#[test]
fn the_hr_example_onboards_from_nothing() {
    let env = Env::with(people_mode());
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hr");
    let out = env
        .cardform(&["apply", "--auto-approve", "-f", dir])
        .output()
        .unwrap();
    assert_success(&out);
    let seen = env.inspect();
    // Four people; Idris has cards at two subproviders, so two cardholders.
    assert_eq!(
        (seen.users, seen.cardholders, seen.cards),
        (4, 5, 5),
        "{seen:?}"
    );
    let again = env
        .cardform(&["plan", "--detailed-exitcode", "-f", dir])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stdout(&again));
}

#[test]
fn one_persons_kyc_holds_up_no_one_else() {
    // One slot only: a card parked for KYC must give it up, or everyone queues behind u0000.
    let env = Env::with(SandboxConfig {
        not_ready_users: vec!["u0000".into()],
        kyc_latency: Duration::ZERO,
        ..people_mode()
    });
    hr_export(&env, 5);
    let out = env
        .cardform(&apply_args(&[
            "--parallelism",
            "1",
            "--kyc-wait",
            "4s",
            "--json",
        ]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let at = |event: &str, key: &str| {
        events
            .iter()
            .position(|e| e["event"] == event && e["key"] == key)
            .unwrap_or_else(|| panic!("no {event} of {key}: {events:?}"))
    };
    let waited = at("failed", "c0000");
    assert_eq!(events[waited]["slug"], "kyc_pending");
    for i in 1..5 {
        // Issued while c0000 was still waiting, not after it gave up.
        assert!(at("done", &format!("c{i:04}")) < waited, "{events:?}");
    }
    let seen = env.inspect();
    for i in 1..5 {
        assert_eq!(seen.issue_count(&format!("u{i:04}"), "VISA_USD_STD"), 1);
    }
}

#[test]
fn people_are_in_every_report() {
    let env = Env::with(SandboxConfig {
        kyc_rejected_users: vec!["u0001".into()],
        ..people_mode()
    });
    hr_export(&env, 3);
    let out = env
        .cardform(&apply_args(&["--kyc-wait", "30s"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "u0001's KYC is rejected");
    // Tables are compared with single spaces: column widths are not what is tested here.
    let run = |args: &[&str]| {
        let out = env.cardform(args).output().unwrap();
        assert_success(&out);
        stdout(&out)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let list = run(&["state", "list", "--people"]);
    assert!(
        list.contains("3 users, 3 cardholders (2 with KYC approved)."),
        "{list}"
    );
    let rejected = run(&["state", "list", "--people", "--status", "rejected"]);
    assert!(rejected.contains("u0001 cardholder"), "{rejected}");
    assert!(!rejected.contains("u0000"), "{rejected}");
    let shown = run(&["show", "u0001"]);
    assert!(shown.contains("completed failed rejected"), "{shown}");
    let export = env
        .cardform(&["state", "export", "--format", "json"])
        .output()
        .unwrap();
    let export: serde_json::Value = serde_json::from_str(&stdout(&export)).unwrap();
    let people = export["people"].as_array().unwrap();
    assert_eq!(people.len(), 6);
    assert_eq!(people[3]["address"], "cardholder.u0001:sandbox");
    assert_eq!(people[3]["kyc_status"], "rejected");
    let diff = run(&["state", "diff"]);
    assert!(
        diff.contains("people: 6 added, 0 removed, 0 changed"),
        "{diff}"
    );
    let history = run(&["state", "history"]);
    assert!(history.contains("people 6"), "{history}");
    let audit = stdout(
        &env.cardform(&["state", "audit", "--format", "csv"])
            .output()
            .unwrap(),
    );
    assert_eq!(
        audit.matches("cardholders/create").count(),
        3,
        "one create per person: {audit}"
    );
    assert!(audit.contains(",user.u0002"), "{audit}");

    // A label changed in the HR export follows into state; nothing is sent.
    let people_csv = std::fs::read_to_string(env.path("people.csv")).unwrap();
    let relabelled = people_csv
        .replacen("country_iso\n", "country_iso,label.team\n", 1)
        .replace(",GB\n", ",GB,ops\n");
    env.write("people.csv", &relabelled);
    let calls_before = env.inspect().calls.values().sum::<u64>();
    let plan = run(&["plan", "-f", "people.csv", "-f", "cards.csv"]);
    assert!(plan.contains("~ update labels (6)"), "{plan}");
    let out = env
        .cardform(&apply_args(&["--kyc-wait", "1s"]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "u0001 still cannot get a card");
    let list = run(&["state", "list", "--people", "--label", "team=ops"]);
    assert!(list.contains("3 users, 3 cardholders"), "{list}");
    // The relabel sent nothing; only u0001's card was tried again.
    let sent: u64 = env.inspect().calls.values().sum::<u64>() - calls_before;
    assert!(
        env.inspect().calls_to("users/create") == 3 && sent < 20,
        "{sent} calls"
    );
}

#[test]
fn a_canary_of_new_people_takes_the_people_its_cards_wait_for() {
    let env = Env::with(people_mode());
    hr_export(&env, 10);
    let out = env
        .cardform(&apply_args(&[
            "--canary",
            "2",
            "--kyc-wait",
            "30s",
            "--json",
        ]))
        .output()
        .unwrap();
    assert_success(&out);
    let stages: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["event"] == "stage")
        .collect();
    // Two cards, their two users and two cardholders; then the other 8 people and cards.
    assert_eq!(stages[0]["stage"], "canary", "{stages:?}");
    assert_eq!(stages[0]["changes"], 6, "{stages:?}");
    assert_eq!(stages[1]["changes"], 24, "{stages:?}");
    assert_once_each(&env, 10);
}
