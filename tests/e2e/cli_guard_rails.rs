//! Guard rails a newcomer hits in the first ten minutes: an empty declaration set, a prune that
//! would freeze most of a fleet, a plan file written over the declarations, declarations given
//! where a plan file goes. Each is refused before anything is sent, and says what to do instead.

use crate::harness::*;

fn fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in 0..n {
        s.push_str(&format!(
            "  - {{key: c{i:02}, external_user_id: u{i:02}, product_code: VISA_USD_STD}}\n"
        ));
    }
    s
}

fn freezes(env: &Env) -> u64 {
    env.inspect().calls_to("cards/freeze")
}

#[test]
fn an_empty_declaration_set_is_refused_unless_allowed() {
    let env = Env::new();
    env.write("cards.yaml", &fleet(3));
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    env.write("empty/cards.yaml", "version: 1\ncards: []\n");
    env.write("nothing/README.txt", "no declarations here");
    let calls = env.inspect().calls;
    for args in [
        &["validate", "-f", "empty"][..],
        &["plan", "-f", "empty"],
        &["plan", "-f", "nothing"],
        &["apply", "-f", "empty", "--prune", "--auto-approve"],
    ] {
        let out = env.cardform(args).output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "`{}`: {err}", args.join(" "));
        assert!(
            err.contains("no cards are declared") && err.contains("--allow-empty"),
            "`{}`: {err}",
            args.join(" ")
        );
    }
    assert_eq!(env.inspect().calls, calls, "nothing may reach the provider");

    // Allowed on purpose, the prune limit still guards the fleet: 3 of 3 is over 10%.
    let out = env
        .cardform(&[
            "apply",
            "-f",
            "empty",
            "--prune",
            "--auto-approve",
            "--allow-empty",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("more than --max-prune 10%"),
        "{}",
        stdout(&out)
    );
    assert_eq!(freezes(&env), 0);
    let out = env
        .cardform(&["validate", "-f", "empty", "--allow-empty"])
        .output()
        .unwrap();
    assert_success(&out);
}

#[test]
fn prune_is_limited_to_a_share_of_the_fleet() {
    let env = Env::new();
    env.write("cards.yaml", &fleet(40));
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    // Five cards leave the declarations: 12.5% of the fleet.
    env.write("cards.yaml", &fleet(35));
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--prune"])
        .output()
        .unwrap();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("prune (freeze) (5, 12.5% of the 40 cards in state):"),
        "{text}"
    );
    assert!(
        text.contains(
            "--prune would freeze 5 of the 40 cards in state (12.5%), more than --max-prune 10%"
        ),
        "{text}"
    );
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--prune", "--auto-approve"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(freezes(&env), 0, "refused before anything was sent");

    for allow in ["5", "15%"] {
        let out = env
            .cardform(&["plan", "-f", "cards.yaml", "--prune", "--max-prune", allow])
            .output()
            .unwrap();
        assert_success(&out);
    }
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--prune", "--max-prune", "4"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--prune", "--max-prune", "ten"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--max-prune \"ten\""),
        "{}",
        stderr(&out)
    );

    let out = env
        .cardform(&[
            "apply",
            "-f",
            "cards.yaml",
            "--prune",
            "--max-prune",
            "5",
            "--auto-approve",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(freezes(&env), 5);
}

#[test]
fn a_plan_is_never_written_over_declarations_or_foreign_files() {
    let env = Env::new();
    let decl = fleet(2);
    env.write("cards.yaml", &decl);
    env.write("notes.txt", "my notes");
    for (out_path, why) in [
        ("cards.yaml", "one of the declaration files"),
        ("notes.txt", "not a cardform plan"),
    ] {
        let out = env
            .cardform(&["plan", "-f", "cards.yaml", "--out", out_path])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
    }
    assert_eq!(
        std::fs::read_to_string(env.path("cards.yaml")).unwrap(),
        decl
    );
    assert_eq!(
        std::fs::read_to_string(env.path("notes.txt")).unwrap(),
        "my notes"
    );
    // A directory of declarations protects every file in it.
    let out = env
        .cardform(&["plan", "-f", ".", "--out", "cards.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    // An earlier plan may be replaced.
    for _ in 0..2 {
        let out = env
            .cardform(&["plan", "-f", "cards.yaml", "--out", "plan.json"])
            .output()
            .unwrap();
        assert_success(&out);
    }
}

#[test]
fn declarations_where_a_plan_file_goes_say_to_use_dash_f() {
    let env = Env::new();
    let decl = fleet(2);
    env.write("cards.yaml", &decl);
    let out = env.cardform(&["apply", "cards.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "`cardform --state {} apply -f cards.yaml`",
            env.state_arg()
        )),
        "{err}"
    );
    assert!(
        !err.contains("--out cards.yaml"),
        "never suggest clobbering it: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("cards.yaml")).unwrap(),
        decl
    );
    assert_eq!(env.inspect().orders, 0);
}

fn leftovers(env: &Env) -> Vec<String> {
    ["-wal", "-shm"]
        .iter()
        .map(|s| format!("{}{s}", env.state().display()))
        .filter(|p| std::path::Path::new(p).exists())
        .collect()
}

#[test]
fn every_command_leaves_the_state_file_whole() {
    let env = Env::new();
    env.write("cards.yaml", &fleet(3));
    for args in [
        &["apply", "-f", "cards.yaml", "--auto-approve"][..],
        &["plan", "-f", "cards.yaml"],
        &["show"],
        &["show", "c01"],
        &["state", "list"],
        &["state", "history"],
        &["state", "diff"],
        &["state", "export"],
        &["state", "audit"],
        &["refresh"],
        &["state", "rm", "c02"],
    ] {
        assert_success(&env.cardform(args).output().unwrap());
        assert_eq!(
            leftovers(&env),
            Vec::<String>::new(),
            "after `{}`",
            args.join(" ")
        );
    }
    // So copying the one file is enough.
    let copy = env.path("copy.db");
    std::fs::copy(env.state(), &copy).unwrap();
    let out = env
        .cardform_at(
            copy.to_str().unwrap(),
            &["state", "export", "--format", "json"],
        )
        .output()
        .unwrap();
    assert_success(&out);
    let original = env
        .cardform(&["state", "export", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), stdout(&original));
}

fn backup_while_an_apply_runs(backend: Backend) {
    let env = Env::on(
        backend,
        cardform::sandbox::SandboxConfig {
            order_latency: std::time::Duration::from_secs(2),
            ..fast_sandbox()
        },
    );
    env.write("cards.yaml", &fleet(5));
    let mut child = env.spawn_until_sent(&["apply", "-f", "cards.yaml", "--auto-approve"], 5);
    // The apply holds the lock and its orders are open: the backup neither waits nor fails.
    let started = std::time::Instant::now();
    let out = env
        .cardform(&["state", "backup", "mid-run.db"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the apply was still running"
    );
    assert!(child.wait().unwrap().success());

    // The copy is a whole state of that moment: its open orders are there to resume.
    let out = env
        .cardform_at("mid-run.db", &["show", "c00", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let card: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(card["card"]["status"], "pending", "{card:#}");
    // Not over an existing file.
    let out = env
        .cardform(&["state", "backup", "mid-run.db"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("refusing to overwrite"),
        "{}",
        stderr(&out)
    );
    // A backup taken now matches the state it copies.
    assert_success(
        &env.cardform(&["state", "backup", "after.db"])
            .output()
            .unwrap(),
    );
    for args in [
        &["state", "export", "--format", "json"][..],
        &["state", "history"],
    ] {
        let a = env.cardform(args).output().unwrap();
        let b = env.cardform_at("after.db", args).output().unwrap();
        assert_eq!(stdout(&a), stdout(&b), "{}", args.join(" "));
    }
}

on_both_backends!(backup_while_an_apply_runs);

fn big_fleet(n: usize) -> String {
    let mut s = String::from("version: 1\ncards:\n");
    for i in 0..n {
        let product = if i % 3 == 0 {
            "MC_EUR_PREMIUM"
        } else {
            "VISA_USD_STD"
        };
        s.push_str(&format!(
            "  - {{key: employee-with-a-long-key-{i:05}, external_user_id: u{i:05}, product_code: {product}, initial_topup: \"50.00\", labels: {{team: t{}, cost_center: cc{}}}}}\n",
            i % 7,
            i % 3
        ));
    }
    s
}

#[test]
fn the_markdown_plan_fits_one_pull_request_comment_at_any_size() {
    let env = Env::with(cardform::sandbox::SandboxConfig {
        balance: "10000000.00".parse().unwrap(),
        ..fast_sandbox()
    });
    env.write("cards.yaml", &big_fleet(5000));
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--format", "markdown"])
        .output()
        .unwrap();
    assert_success(&out);
    let md = stdout(&out);
    assert!(
        md.chars().count() < 60_000,
        "{} characters",
        md.chars().count()
    );
    assert!(md.contains("5000 to issue"), "totals cover every change");
    assert!(
        md.contains("**By product**") && md.contains("| MC_EUR_PREMIUM | 1667 |"),
        "{md}"
    );
    assert!(
        md.contains("**By label**") && md.contains("`team=t3`"),
        "{md}"
    );
    assert!(md.contains("more changes, not listed here"), "{md}");
    assert!(md.contains("--out plan.json"), "says where all of them are");
    assert!(md.contains("employee-with-a-long-key-00000"));

    // A terminal summarises large groups unless asked for every change.
    env.write("some.yaml", &big_fleet(40));
    let grouped = stdout(&env.cardform(&["plan", "-f", "some.yaml"]).output().unwrap());
    assert!(
        !grouped.contains("employee-with-a-long-key-00039"),
        "{grouped}"
    );
    assert!(
        grouped.contains(&format!(
            "`cardform --state {} plan --detail`",
            env.state_arg()
        )),
        "{grouped}"
    );
    let every = stdout(
        &env.cardform(&["plan", "-f", "some.yaml", "--detail"])
            .output()
            .unwrap(),
    );
    for i in 0..40 {
        assert!(
            every.contains(&format!("employee-with-a-long-key-{i:05}")),
            "{i}"
        );
    }
}

#[test]
fn an_outlier_amount_is_flagged_for_review() {
    let env = Env::new();
    let mut yaml = String::from("version: 1\ndefaults:\n  product_code: VISA_USD_STD\ncards:\n");
    for i in 0..6 {
        let topup = if i == 4 { "4500.00" } else { "50.00" };
        yaml.push_str(&format!(
            "  - {{key: c{i}, external_user_id: u{i}, initial_topup: \"{topup}\"}}\n"
        ));
    }
    env.write("cards.yaml", &yaml);
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("c4: topup 4500.00 is more than 10x the median topup of VISA_USD_STD"),
        "{text}"
    );
    assert!(!text.contains("c3: topup"), "{text}");
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["plan"]["warnings"].as_array().map(Vec::len),
        None,
        "{doc:#}"
    );
}

#[test]
fn a_stale_plan_names_the_files_and_keys_that_changed() {
    let env = Env::new();
    env.write("cards.yaml", ONBOARDING);
    assert_success(
        &env.cardform(&["plan", "-f", "cards.yaml", "--out", "plan.json"])
            .output()
            .unwrap(),
    );
    // After review: a top-up edited, a card added, a card removed.
    let edited = ONBOARDING
        .replace("initial_topup: \"50.00\"", "initial_topup: \"75.00\"")
        .replace(
            "  - key: bob-ops\n    external_user_id: u-1002\n",
            "  - key: dave\n    external_user_id: u-1004\n",
        );
    assert_ne!(edited, ONBOARDING);
    env.write("cards.yaml", &edited);
    let out = env.cardform(&["apply", "plan.json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("changed since the plan was made in cards.yaml"),
        "{err}"
    );
    for what in [
        "alice-travel (changed)",
        "dave (newly declared)",
        "bob-ops (no longer declared)",
    ] {
        assert!(err.contains(what), "{what}: {err}");
    }
    assert!(!err.contains("carol-premium"), "{err}");
    assert_eq!(env.inspect().orders, 0, "nothing was sent");
}

fn a_moved_key_keeps_its_card(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    env.write("cards.yaml", ONBOARDING);
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let before: serde_json::Value = serde_json::from_slice(
        &env.cardform(&["show", "bob-ops", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let (orders, charged) = (env.inspect().orders, env.inspect().total_charged);

    // A rename in the declarations alone would plan a new card, and a new fee.
    let renamed = ONBOARDING.replace("key: bob-ops", "key: bob-operations");
    env.write("cards.yaml", &renamed);
    let text = stdout(
        &env.cardform(&["plan", "-f", "cards.yaml"])
            .output()
            .unwrap(),
    );
    assert!(text.contains("1 to issue"), "{text}");
    assert!(
        text.contains(
            "renamed? declare `moved: [{from: bob-ops, to: bob-operations}]` to keep the card"
        ),
        "the plan says how to keep it: {text}"
    );

    for (args, why) in [
        (&["state", "mv", "nobody", "x"][..], "no card \"nobody\""),
        (
            &["state", "mv", "bob-ops", "alice-travel"],
            "alice-travel is already in state",
        ),
        (&["state", "mv", "bob-ops", "bad key"], "invalid card key"),
    ] {
        let out = env.cardform(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", args.join(" "));
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
    }
    let out = env
        .cardform(&["state", "mv", "bob-ops", "bob-operations"])
        .output()
        .unwrap();
    assert_success(&out);
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "no new card: {}", stdout(&out));
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    assert_eq!(env.inspect().orders, orders, "nothing was sent");
    assert_eq!(env.inspect().total_charged, charged);

    let after: serde_json::Value = serde_json::from_slice(
        &env.cardform(&["show", "bob-operations", "--json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(after["card"]["card_id"], before["card"]["card_id"]);
    assert_eq!(after["card"]["charged"], before["card"]["charged"]);
    assert_eq!(after["orders"], before["orders"], "its journal came along");
    let audit = stdout(
        &env.cardform(&["state", "audit", "--format", "csv"])
            .output()
            .unwrap(),
    );
    assert!(audit.contains(",bob-operations,ok,"), "{audit}");
    let diff = stdout(&env.cardform(&["state", "diff"]).output().unwrap());
    assert!(
        diff.contains("bob-ops") && diff.contains("bob-operations"),
        "{diff}"
    );
}

on_both_backends!(a_moved_key_keeps_its_card);

/// The sum of a JSON array's `field` amounts.
fn total(rows: &serde_json::Value, field: &str) -> rust_decimal::Decimal {
    rows.as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r[field].as_str())
        .map(|c| c.parse::<rust_decimal::Decimal>().unwrap())
        .sum()
}

fn money_belongs_to_the_run_that_sent_it(backend: Backend) {
    let env = Env::on(
        backend,
        cardform::sandbox::SandboxConfig {
            order_latency: std::time::Duration::from_secs(2),
            ..fast_sandbox()
        },
    );
    env.write("cards.yaml", &fleet(20));
    let mut child = env.spawn_until_sent(
        &[
            "apply",
            "-f",
            "cards.yaml",
            "--auto-approve",
            "--parallelism",
            "4",
        ],
        8,
    );
    child.kill().unwrap(); // SIGKILL: the run never writes its summary
    child.wait().unwrap();
    // The provider charges at creation: what it holds now, the killed run spent.
    let spent_by_killed_run = env.inspect().total_charged;
    assert!(spent_by_killed_run > rust_decimal::Decimal::ZERO);
    let history = |env: &Env| -> serde_json::Value {
        serde_json::from_str(&stdout(
            &env.cardform(&["state", "history", "--json"])
                .output()
                .unwrap(),
        ))
        .unwrap()
    };

    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let provider_total = env.inspect().total_charged;
    let runs = history(&env);
    let applies: Vec<&serde_json::Value> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["command"].as_str().unwrap().contains("apply"))
        .collect();
    assert_eq!(applies.len(), 2, "{runs:#}");
    let killed = applies[0]["serial"].as_u64().unwrap();
    let summary = &applies[1]["summary"];
    let money = |v: &serde_json::Value| {
        v.as_str()
            .unwrap()
            .parse::<rust_decimal::Decimal>()
            .unwrap()
    };
    // The resuming run reports the charges of the killed run's orders it finished apart from
    // its own.
    let finished_here = money(&summary["charged_earlier"][killed.to_string()]);
    assert!(finished_here > rust_decimal::Decimal::ZERO && finished_here <= spent_by_killed_run);
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "actually charged {} USDT",
            provider_total - spent_by_killed_run
        )) && text.contains(&format!(
            "plus {finished_here} USDT charged earlier by run {killed}"
        )),
        "{text}"
    );

    assert_eq!(
        money(&summary["charged"]),
        provider_total - spent_by_killed_run,
        "{summary:#}"
    );
    // History puts each charge on the run that sent it, the killed one included.
    assert_eq!(
        money(&applies[0]["charged"]),
        spent_by_killed_run,
        "{runs:#}"
    );
    assert_eq!(
        money(&applies[1]["charged"]),
        provider_total - spent_by_killed_run
    );
    assert_eq!(total(&runs, "charged"), provider_total);
    // The audit adds up to the provider's own record too: each charge once.
    let audit: serde_json::Value = serde_json::from_str(&stdout(
        &env.cardform(&["state", "audit", "--format", "json"])
            .output()
            .unwrap(),
    ))
    .unwrap();
    assert_eq!(total(&audit, "charge"), provider_total, "{audit:#}");
    let history = stdout(&env.cardform(&["state", "history"]).output().unwrap());
    assert!(
        history.contains(&format!("charged {spent_by_killed_run}")),
        "{history}"
    );
}

on_both_backends!(money_belongs_to_the_run_that_sent_it);

/// `moved:` in the declarations: a rename reviewed in a pull request applies with no new card,
/// no order and no fee, through a saved plan as well.
fn a_declared_move_keeps_its_card(backend: Backend) {
    let env = Env::on(backend, fast_sandbox());
    env.write("cards.yaml", ONBOARDING);
    assert_success(
        &env.cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let show = |key: &str| -> serde_json::Value {
        serde_json::from_slice(
            &env.cardform(&["show", key, "--json"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
    };
    let before = show("bob-ops");
    let (orders, charged) = (env.inspect().orders, env.inspect().total_charged);

    let renamed = ONBOARDING.replace("key: bob-ops", "key: bob-operations")
        + "moved:\n  - {from: bob-ops, to: bob-operations}\n";
    env.write("cards.yaml", &renamed);
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--out", "rename.plan"])
        .output()
        .unwrap();
    assert_success(&out);
    let text = stdout(&out);
    assert!(
        text.contains("-> move") && text.contains("bob-ops  -> bob-operations"),
        "{text}"
    );
    assert!(text.contains("Plan: 1 to move"), "{text}");
    assert!(
        !text.contains("to issue") && !text.contains("renamed?"),
        "{text}"
    );
    let md = stdout(
        &env.cardform(&["plan", "-f", "cards.yaml", "--format", "markdown"])
            .output()
            .unwrap(),
    );
    assert!(md.contains("`bob-ops` → `bob-operations`"), "{md}");

    let out = env.cardform(&["apply", "rename.plan"]).output().unwrap();
    assert_success(&out);
    assert_eq!(env.inspect().orders, orders, "nothing was sent");
    assert_eq!(env.inspect().total_charged, charged);
    let after = show("bob-operations");
    assert_eq!(after["card"]["card_id"], before["card"]["card_id"]);
    assert_eq!(after["orders"], before["orders"], "its journal came along");

    // The move may stay in the declarations: it has nothing left to do.
    let out = env
        .cardform(&["plan", "-f", "cards.yaml", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    // A move onto a key that is in state already is refused before anything is sent.
    let both = renamed.replace(
        "moved:\n  - {from: bob-ops, to: bob-operations}\n",
        "moved:\n  - {from: bob-operations, to: carol-premium}\n",
    );
    env.write(
        "cards.yaml",
        &both.replace("key: bob-operations", "key: carol-premium-2"),
    );
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(said.contains("both keys are in state"), "{said}");
    // One sentence, one space between words (a line break in its source once put 18 there).
    assert!(
        said.replace('\n', " ")
            .contains("so the move cannot apply; remove the move if"),
        "{said}"
    );
}

on_both_backends!(a_declared_move_keeps_its_card);
