//! The GitOps recipe as written: `examples/ci/steps.sh` (the shell every step of
//! `examples/ci/github-actions.yml` runs) in repositories that hold only declarations, against
//! the sandbox and a state in a throwaway PostgreSQL. Pull requests plan and are commented
//! whatever the outcome; a reviewed plan applies after others' applies and refreshes as long as
//! nothing it touches changed, and is refused naming the card and the run when something did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::harness::{Env, assert_success, stderr, stdout};

const BASE: &str = "version: 1\ncards:\n  - {key: base-1, external_user_id: u-1, product_code: VISA_USD_STD}\n  - {key: base-2, external_user_id: u-2, product_code: VISA_USD_STD}\n";

fn steps_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/steps.sh")
}

/// A repository checkout holding only `cards/cards.yaml`, and a stand-in `gh` that keeps what it
/// was asked to comment.
struct Repo<'a> {
    env: &'a Env,
    dir: PathBuf,
}

impl<'a> Repo<'a> {
    fn new(env: &'a Env, name: &str, cards: &str) -> Self {
        let dir = env.path(name);
        std::fs::create_dir_all(dir.join("cards")).unwrap();
        std::fs::write(dir.join("cards/cards.yaml"), cards).unwrap();
        let bin = env.path("fake-bin");
        std::fs::create_dir_all(&bin).unwrap();
        let gh = bin.join("gh");
        // `gh pr comment N --body-file FILE`: the body as it would be posted, beside its args.
        std::fs::write(
            &gh,
            "#!/bin/sh\necho \"$@\" > \"$GH_LOG.args\"\nwhile [ $# -gt 0 ]; do\n  if [ \"$1\" = --body-file ]; then cp \"$2\" \"$GH_LOG.body\"; fi\n  shift\ndone\n",
        )
        .unwrap();
        std::fs::set_permissions(&gh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        Repo { env, dir }
    }

    fn step(&self, args: &[&str]) -> Output {
        let cardform_dir = Path::new(env!("CARGO_BIN_EXE_cardform")).parent().unwrap();
        let path = format!(
            "{}:{}:{}",
            self.env.path("fake-bin").display(),
            cardform_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .arg(steps_sh())
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.env.path("home"))
            .env("NO_COLOR", "1")
            .env("CARDFORM_STATE", self.env.state_arg())
            .env("CARDFORM_API_URL", self.env.url())
            .env("CARDFORM_API_KEY", &self.env.api_key)
            .env("CARDFORM_API_SECRET", &self.env.api_secret)
            .env("GH_LOG", self.dir.join("gh"))
            .output()
            .unwrap()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    /// Plans, comments and judges as the pull-request job does: (exit code, posted comment,
    /// verdict's output).
    fn pull_request(&self, number: &str) -> (String, String, Output) {
        assert_success(&self.step(&["plan"]));
        assert_success(&self.step(&["comment", number]));
        assert_eq!(
            self.read("gh.args").trim(),
            format!("pr comment {number} --body-file plan.md")
        );
        (
            self.read("plan.exitcode").trim().to_owned(),
            self.read("gh.body"),
            self.step(&["verdict"]),
        )
    }

    /// What merging into `main` does: its declarations, and the reviewed plan fetched beside them.
    fn merge_into(&self, main: &Repo, cards: &str) {
        std::fs::write(main.dir.join("cards/cards.yaml"), cards).unwrap();
        std::fs::copy(self.dir.join("plan.json"), main.dir.join("plan.json")).unwrap();
    }
}

fn with_card(cards: &str, line: &str) -> String {
    format!("{cards}  - {line}\n")
}

#[test]
fn reviewed_plans_apply_after_other_merges_and_go_stale_only_for_what_they_touch() {
    let env = Env::postgres();
    let main = Repo::new(&env, "main", BASE);
    assert_success(
        &env.cardform(&["apply", "-f", "main/cards", "--auto-approve"])
            .output()
            .unwrap(),
    );

    let merged = two_pull_requests_merge_one_after_the_other(&env, &main);
    let merged = drift_and_an_unapplied_merge_leave_a_plan_valid(&env, &main, &merged);
    a_change_to_a_card_a_plan_touches_makes_it_stale(&env, &main, &merged);

    // The backup step: a complete SQLite copy and today's audit.
    assert_success(&main.step(&["backup"]));
    assert!(main.dir.join("state-backup.db").metadata().unwrap().len() > 0);
    assert!(
        main.read("audit.csv").lines().count() > 4,
        "{}",
        main.read("audit.csv")
    );
}

/// A and B plan from the same base; B is applied, a refresh finds no drift, then A (whose merge
/// holds B's card too) still applies as reviewed. Returns the merged declarations.
fn two_pull_requests_merge_one_after_the_other(env: &Env, main: &Repo) -> String {
    let a_cards = with_card(
        BASE,
        "{key: a-1, external_user_id: u-10, product_code: VISA_USD_STD}",
    );
    let b_cards = with_card(
        BASE,
        "{key: b-1, external_user_id: u-20, product_code: VISA_USD_STD}",
    );
    let (a, b) = (
        Repo::new(env, "pr-a", &a_cards),
        Repo::new(env, "pr-b", &b_cards),
    );
    for (pr, number, key) in [(&a, "1", "a-1"), (&b, "2", "b-1")] {
        let (code, comment, verdict) = pr.pull_request(number);
        assert_eq!(code, "2", "changes");
        assert!(
            comment.contains(&format!("`{key}`")) && comment.contains("issue"),
            "{comment}"
        );
        assert_success(&verdict);
    }

    // B merges first and is applied; a refresh that finds no drift runs after it.
    b.merge_into(main, &b_cards);
    assert_success(&main.step(&["apply"]));
    let refresh = env.cardform(&["refresh"]).output().unwrap();
    assert_success(&refresh);
    assert!(
        stdout(&refresh).contains("No drift"),
        "{}",
        stdout(&refresh)
    );

    // A merges (the file now holds B's card too): its reviewed plan still applies.
    let both = with_card(
        &b_cards,
        "{key: a-1, external_user_id: u-10, product_code: VISA_USD_STD}",
    );
    a.merge_into(main, &both);
    let applied = main.step(&["apply"]);
    assert_success(&applied);
    let err = stderr(&applied);
    assert!(err.contains("none to what this plan touches"), "{err}");
    assert!(err.contains("exactly the reviewed changes"), "{err}");
    assert_eq!(
        env.inspect().cards,
        4,
        "base-1, base-2, b-1, a-1, each once"
    );
    both
}

/// E is planned; then base-2 closes at the provider (a refresh records it) and F merges without
/// being applied: E, touching neither, applies as reviewed and notes what the next plan has.
fn drift_and_an_unapplied_merge_leave_a_plan_valid(env: &Env, main: &Repo, both: &str) -> String {
    // E adds a card; before it merges, base-2 is closed at the provider and a refresh records
    // that drift: E's plan, which does not touch base-2, still applies as reviewed.
    let e_cards = with_card(
        both,
        "{key: e-1, external_user_id: u-30, product_code: VISA_USD_STD}",
    );
    let e = Repo::new(env, "pr-e", &e_cards);
    assert_eq!(e.pull_request("6").0, "2");
    let shown = env
        .cardform(&["show", "base-2", "--json"])
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let card_id = shown["card"]["card_id"].as_str().unwrap().to_owned();
    assert!(env.sandbox.as_ref().unwrap().close_card(&card_id));
    let refresh = env.cardform(&["refresh"]).output().unwrap();
    assert!(
        !stdout(&refresh).contains("No drift"),
        "{}",
        stdout(&refresh)
    );
    // F merged meanwhile and is not applied yet (its apply queued behind this one).
    let with_f = with_card(
        &e_cards,
        "{key: f-1, external_user_id: u-40, product_code: VISA_USD_STD}",
    );
    e.merge_into(main, &with_f);
    let applied = main.step(&["apply"]);
    assert_success(&applied);
    let err = stderr(&applied);
    assert!(err.contains("none to what this plan touches"), "{err}");
    assert!(
        err.contains("changes it does not make, of card base-2, card f-1"),
        "names what the next plan has: {err}"
    );
    assert_eq!(
        env.inspect().cards,
        5,
        "e-1 issued, base-2 left for the next plan"
    );
    assert_success(
        &env.cardform(&["apply", "-f", "main/cards", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let plan_again = env
        .cardform(&["plan", "-f", "main/cards", "--detailed-exitcode"])
        .output()
        .unwrap();
    assert_eq!(plan_again.status.code(), Some(0), "{}", stdout(&plan_again));

    with_f
}

/// C freezes base-1; a person relabels base-1 by hand before C merges: C is refused, naming the
/// card and the run, and nothing is sent.
fn a_change_to_a_card_a_plan_touches_makes_it_stale(env: &Env, main: &Repo, with_f: &str) {
    // C freezes base-1; before it merges, a person relabels base-1 by hand.
    let c_cards = with_f.replace(
        "{key: base-1, external_user_id: u-1, product_code: VISA_USD_STD}",
        "{key: base-1, external_user_id: u-1, product_code: VISA_USD_STD, status: frozen}",
    );
    let c = Repo::new(env, "pr-c", &c_cards);
    assert_eq!(c.pull_request("3").0, "2");
    let relabelled = with_f.replace(
        "{key: base-1, external_user_id: u-1, product_code: VISA_USD_STD}",
        "{key: base-1, external_user_id: u-1, product_code: VISA_USD_STD, labels: {team: ops}}",
    );
    Repo::new(env, "hand", &relabelled);
    assert_success(
        &env.cardform(&["apply", "-f", "hand/cards", "--auto-approve"])
            .output()
            .unwrap(),
    );
    let serial = env
        .cardform(&["state", "history", "--json"])
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&serial.stdout).unwrap();
    let last = runs.as_array().unwrap().last().unwrap()["serial"]
        .as_u64()
        .unwrap();
    let orders = env.inspect().orders;
    c.merge_into(main, &c_cards);
    let refused = main.step(&["apply"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stdout(&refused));
    let err = stderr(&refused);
    assert!(err.contains("refusing to apply a stale plan"), "{err}");
    assert!(
        err.contains(&format!("serial {last}: `cardform --state")) && err.contains("hand/cards"),
        "names the run: {err}"
    );
    assert!(err.contains("changed card base-1"), "names the card: {err}");
    assert!(
        !err.contains("card a-1") && !err.contains("card b-1"),
        "only what it touches: {err}"
    );
    assert_eq!(env.inspect().orders, orders, "nothing was sent");
}

#[test]
fn a_plan_that_fails_is_still_commented_and_fails_the_job() {
    let env = Env::postgres();
    let unknown = with_card(
        BASE,
        "{key: odd-1, external_user_id: u-3, product_code: NOPE_PRODUCT}",
    );
    let pr = Repo::new(&env, "pr-odd", &unknown);
    let (code, comment, verdict) = pr.pull_request("4");
    assert_eq!(code, "1");
    assert!(
        comment.contains("cannot be applied") && comment.contains("NOPE_PRODUCT"),
        "{comment}"
    );
    assert_eq!(verdict.status.code(), Some(1));
    assert!(
        stderr(&verdict).contains("the plan failed"),
        "{}",
        stderr(&verdict)
    );

    // A failure before any markdown: the comment is the error text.
    let broken = Repo::new(
        &env,
        "pr-broken",
        "version: 1\ncards:\n  - {key: x, product_code: [\n",
    );
    let (code, comment, verdict) = broken.pull_request("5");
    assert_eq!(code, "1");
    assert!(
        comment.contains("no plan could be made") && comment.contains("cards.yaml"),
        "{comment}"
    );
    assert_eq!(verdict.status.code(), Some(1));
    // Nothing reviewed, nothing applied.
    let nothing = broken.step(&["apply"]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(
        stderr(&nothing).contains("no reviewed plan"),
        "{}",
        stderr(&nothing)
    );
    assert_eq!(env.inspect().orders, 0);
}

#[test]
fn install_takes_the_release_archive_only_when_its_sha256_matches() {
    let env = Env::new();
    let releases = env.path("releases");
    let version = "9.9.9";
    let name = format!("cardform-{version}-x86_64-unknown-linux-gnu");
    let stage = env.path(&format!("stage/{name}"));
    std::fs::create_dir_all(&stage).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_cardform"), stage.join("cardform")).unwrap();
    let dir = releases.join(format!("v{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let archive = dir.join(format!("{name}.tar.gz"));
    let tar = Command::new("tar")
        .arg("-czf")
        .arg(&archive)
        .arg("-C")
        .arg(env.path("stage"))
        .arg(&name)
        .output()
        .unwrap();
    assert_success(&tar);
    let sum = Command::new("sha256sum").arg(&archive).output().unwrap();
    let hash = stdout(&sum).split_whitespace().next().unwrap().to_owned();
    let sha_file = dir.join(format!("{name}.tar.gz.sha256"));
    let install = |bin: &str| {
        Command::new("sh")
            .arg(steps_sh())
            .arg("install")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", env.path("home"))
            .env("CARDFORM_VERSION", version)
            .env(
                "CARDFORM_RELEASES",
                format!("file://{}", releases.display()),
            )
            .env("CARDFORM_BIN_DIR", env.path(bin))
            .output()
            .unwrap()
    };

    std::fs::write(&sha_file, format!("{hash}  {name}.tar.gz\n")).unwrap();
    let ok = install("bin");
    assert_success(&ok);
    assert!(
        stdout(&ok).contains("cardform"),
        "prints the version: {}",
        stdout(&ok)
    );
    let installed = env.path("bin/cardform");
    assert_success(&Command::new(&installed).arg("--version").output().unwrap());

    std::fs::write(&sha_file, format!("{}  {name}.tar.gz\n", "0".repeat(64))).unwrap();
    let refused = install("bin2");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("does not match its published sha256"),
        "{}",
        stderr(&refused)
    );
    assert!(!env.path("bin2/cardform").exists(), "nothing installed");
}

/// The workflow runs each step through steps.sh, and steps.sh knows every step it is asked for.
#[test]
fn the_workflow_runs_its_steps_through_the_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workflow = std::fs::read_to_string(root.join("examples/ci/github-actions.yml")).unwrap();
    let script = std::fs::read_to_string(steps_sh()).unwrap();
    let used: Vec<&str> = workflow
        .lines()
        .filter_map(|l| l.trim().strip_prefix("run: sh \"$STEPS\" "))
        .map(|rest| rest.split_whitespace().next().unwrap())
        .collect();
    for step in ["install", "plan", "comment", "verdict", "apply", "backup"] {
        assert!(used.contains(&step), "the workflow runs `{step}`: {used:?}");
        assert!(
            script.contains(&format!("step_{step}() {{")),
            "steps.sh has `{step}`"
        );
    }
    assert!(
        !workflow.contains("cargo "),
        "a declarations-only repository has no source to build"
    );
}
