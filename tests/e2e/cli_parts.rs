//! `apply` of a fleet larger than `--part-size`, carried out a part at a time: the same changes,
//! each sent once, as all at once; and a part edited while the run goes on is never sent.

use crate::harness::*;
use cardform::model::Part;
use cardform::sandbox::SandboxConfig;
use std::time::{Duration, Instant};

/// `n` cards from `from`, each of `product`, labelled `batch`.
fn cards(from: usize, n: usize, product: &str, batch: &str) -> String {
    (from..from + n)
        .map(|i| {
            format!(
                "  - {{key: card-{i:03}, external_user_id: u-{i:03}, product_code: {product}, \
                 labels: {{batch: {batch}}}}}\n"
            )
        })
        .collect()
}

/// A sandbox whose orders take `latency`, and a file of `n` cards for it.
fn slow_fleet(latency: Duration, n: usize) -> (Env, String) {
    let env = Env::with(SandboxConfig {
        order_latency: latency,
        ..fast_sandbox()
    });
    let f = env.write(
        "cards.yaml",
        &format!("version: 1\ncards:\n{}", cards(0, n, "VISA_USD_STD", "one")),
    );
    let f = f.to_str().unwrap().to_owned();
    (env, f)
}

/// `apply -f file --part-size size` started, once its first card is sent (output captured).
fn apply_until_sent(env: &Env, file: &str, size: &str) -> std::process::Child {
    let child = env
        .process(&["apply", "-f", file, "--auto-approve", "--part-size", size])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while env.inspect().calls_to("cards/create") == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "it never sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// A second run over a fleet with every kind of change a part can hold: new cards (some with
/// top-ups), relabelled and frozen cards, cards no longer declared, top-ups of cards in state.
fn second_run(env: &Env, args: &[&str]) -> std::process::Output {
    let first = format!(
        "version: 1\ncards:\n{}",
        cards(0, 30, "VISA_USD_STD", "one")
    );
    let f = env.write("cards.yaml", &first);
    let f = f.to_str().unwrap().to_owned();
    assert_success(
        &env.cardform(&["apply", "-f", &f, "--auto-approve"])
            .output()
            .unwrap(),
    );
    let mut next = String::from("version: 1\ncards:\n");
    next.push_str(&cards(0, 10, "VISA_USD_STD", "one"));
    next.push_str(&cards(10, 5, "VISA_USD_STD", "two"));
    next.push_str(&cards(15, 5, "VISA_USD_STD", "one").replace(
        "labels: {batch: one}}",
        "labels: {batch: one}, status: frozen}",
    ));
    next.push_str(&cards(30, 25, "MC_EUR_PREMIUM", "new"));
    env.write("cards.yaml", &next);
    let mut topups = String::from("key,topup_id,amount\n");
    for i in (0..15).chain(30..40) {
        topups.push_str(&format!("card-{i:03},t1,60\n"));
    }
    let t = env.write("topups.csv", &topups);
    let mut all = vec![
        "apply",
        "-f",
        &f,
        "-f",
        t.to_str().unwrap(),
        "--auto-approve",
    ];
    all.extend(args);
    env.cardform(&all).output().unwrap()
}

#[test]
fn a_fleet_applied_in_parts_gets_what_it_gets_at_once() {
    let whole = Env::new();
    let at_once = second_run(&whole, &[]);
    assert_success(&at_once);
    let parted = Env::new();
    let in_parts = second_run(&parted, &["--part-size", "8"]);
    assert_success(&in_parts);
    let err = stderr(&in_parts);
    assert!(
        err.contains("carried out in 6 parts of about 8 cards"),
        "{err}"
    );
    assert!(!stderr(&at_once).contains("parts of about"));
    // The same plan and summary, line for line: what was issued, changed, topped up, charged.
    let text = |env: &Env, out| stdout(out).replace(&env.state_arg(), "STATE");
    assert_eq!(text(&parted, &in_parts), text(&whole, &at_once));
    let (a, b) = (whole.inspect(), parted.inspect());
    assert_eq!(a.issue_orders, b.issue_orders);
    assert!(b.issue_orders.iter().all(|c| c.count == 1), "{b:?}");
    assert_eq!(a.total_charged, b.total_charged);
    assert_eq!(b.calls_to("cards/topup"), 25);
    assert_eq!(b.calls_to("cards/freeze"), 5);
    let plan = parted
        .cardform(&["plan", "-f", "cards.yaml", "-f", "topups.csv"])
        .output()
        .unwrap();
    assert_success(&plan);
    assert!(
        stdout(&plan).contains("Plan: no changes;"),
        "{}",
        stdout(&plan)
    );
}

#[test]
fn the_canary_of_a_run_in_parts_comes_from_its_first_part() {
    let env = Env::new();
    let f = env.write(
        "cards.yaml",
        &format!(
            "version: 1\ncards:\n{}",
            cards(0, 20, "VISA_USD_STD", "one")
        ),
    );
    let out = env
        .cardform(&[
            "apply",
            "-f",
            f.to_str().unwrap(),
            "--auto-approve",
            "--canary",
            "3",
            "--part-size",
            "5",
        ])
        .output()
        .unwrap();
    assert_success(&out);
    let err = stderr(&out);
    assert!(
        err.contains("canary passed: rolling out the other 17 changes"),
        "{err}"
    );
    let seen = env.inspect();
    assert_eq!(seen.issue_orders.len(), 20);
    assert!(seen.issue_orders.iter().all(|c| c.count == 1));
}

/// Each part is planned again just before it starts, and must be what was approved: a file
/// edited while the first part is in flight stops the run before the next part sends anything.
#[test]
fn a_part_edited_while_the_run_goes_on_is_never_sent() {
    let (env, f) = slow_fleet(Duration::from_secs(2), 12);
    let child = apply_until_sent(&env, &f, "4");
    // The first part is in flight (its orders take 2 s): every card of the rest now says
    // another product.
    env.write(
        "cards.yaml",
        &format!(
            "version: 1\ncards:\n{}",
            cards(0, 12, "VIRTUAL_NOFEES", "one")
        ),
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("the declarations changed while apply ran (this part no longer plans as approved): part 2 of 3"),
        "{text}"
    );
    let first: Vec<String> = (0..12)
        .map(|i| format!("card-{i:03}"))
        .filter(|k| Part::holding(k, 3).index() == 0)
        .collect();
    let seen = env.inspect();
    assert_eq!(
        seen.calls_to("cards/create") as usize,
        first.len(),
        "{seen:?}"
    );
    assert_eq!(seen.issue_count("u-000", "VIRTUAL_NOFEES"), 0);
    // What was not sent is planned again, as the files say now.
    let plan = env.cardform(&["plan", "-f", &f]).output().unwrap();
    let plan = stdout(&plan);
    assert!(
        plan.contains(&format!("{} to issue", 12 - first.len())),
        "{plan}"
    );
}

/// `apply -f file --auto-approve`, with parts of 4 cards and at once.
fn in_parts_and_whole(env: &Env, file: &str) -> (std::process::Output, std::process::Output) {
    let run = |more: &[&str]| {
        let mut args = vec!["apply", "-f", file, "--auto-approve"];
        args.extend(more);
        env.cardform(&args).output().unwrap()
    };
    (run(&["--part-size", "4"]), run(&[]))
}

/// Read a part at a time, the declarations are still checked whole before anything is sent:
/// every problem of every part is reported, as a whole read reports them, and a plan with
/// problems shows the same text either way.
#[test]
fn problems_in_a_fleet_read_in_parts_are_reported_whole_and_nothing_is_sent() {
    let env = Env::new();
    let mut text = format!(
        "version: 1\ncards:\n{}",
        cards(0, 20, "VISA_USD_STD", "one")
    );
    text.push_str(&cards(3, 1, "VISA_USD_STD", "again"));
    text.push_str(&cards(17, 1, "VISA_USD_STD", "again"));
    let f = env.write("cards.yaml", &text);
    let f = f.to_str().unwrap().to_owned();
    let (parted, whole) = in_parts_and_whole(&env, &f);
    assert_eq!(parted.status.code(), Some(1));
    let err = stderr(&parted);
    assert!(err.contains("duplicate card key `card-003`"), "{err}");
    assert!(err.contains("duplicate card key `card-017`"), "{err}");
    assert_eq!(err, stderr(&whole));

    let mut text = format!(
        "version: 1\ncards:\n{}",
        cards(0, 20, "VISA_USD_STD", "one")
    );
    text.push_str(&cards(20, 3, "VISA_USD_STDD", "typo"));
    env.write("cards.yaml", &text);
    let (parted, whole) = in_parts_and_whole(&env, &f);
    assert_eq!(parted.status.code(), Some(1));
    let out = stdout(&parted);
    assert!(
        out.contains("product VISA_USD_STDD does not exist at the provider"),
        "{out}"
    );
    assert!(out.contains("card-020, card-021, card-022"), "{out}");
    assert_eq!(out, stdout(&whole));
    assert_eq!(env.inspect().calls_to("cards/create"), 0);
}

/// Ctrl-C in a run in parts: what is in flight is tracked to its end, no later part is read or
/// sent, the summary counts the parts never started as skipped, and a re-run issues the rest,
/// each card once.
#[test]
fn ctrl_c_in_a_run_in_parts_leaves_the_rest_for_the_next_run() {
    let (env, f) = slow_fleet(Duration::from_secs(1), 30);
    let child = apply_until_sent(&env, &f, "6");
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let created = env.inspect().calls_to("cards/create") as usize;
    assert!(created < 30, "no later part started ({created} created)");
    let text = stdout(&out);
    assert!(text.contains("interrupted"), "{text}");
    assert!(
        text.contains(&format!("skipped      {:>2}", 30 - created)),
        "every change not started is counted: {text}"
    );
    let again = env
        .cardform(&["apply", "-f", &f, "--auto-approve", "--part-size", "6"])
        .output()
        .unwrap();
    assert_success(&again);
    let seen = env.inspect();
    assert_eq!(seen.issue_orders.len(), 30);
    assert!(seen.issue_orders.iter().all(|c| c.count == 1), "{seen:?}");
}
