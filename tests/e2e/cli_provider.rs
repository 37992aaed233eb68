//! A state belongs to one provider (issue 25, item 4): `--sandbox` never takes its state from
//! `CARDFORM_STATE`; a state applied against one provider refuses `plan`, `apply` and `refresh`
//! against another before anything is sent, naming both; `state replace-provider` moves it, as a
//! serial of its own. On SQLite and PostgreSQL, through the real binary.

use std::time::Duration;

use crate::harness::*;

const CARDS: &str = "version: 1\ncards:\n  - {key: k1, external_user_id: u-1, product_code: VISA_USD_STD}\n  - {key: k2, external_user_id: u-2, product_code: VISA_USD_STD}\n";

fn recorded_provider(location: &cardform::state::StateLocation) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = cardform::state::Store::open_existing(location)
            .await
            .unwrap()
            .expect("a state");
        let p = store.provider().await.unwrap();
        store.close().await;
        p
    })
}

#[test]
fn the_sandbox_leaves_the_state_in_cardform_state_alone() {
    let env = Env::new();
    env.write("cards.yaml", CARDS);
    let team = env.path("team/cardform.db");
    let out = assert_cmd::Command::cargo_bin("cardform")
        .unwrap()
        .current_dir(env.dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .env("CARDFORM_STATE", &team)
        .args(["--sandbox", "apply", "-f", "cards.yaml", "--auto-approve"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stderr(&out).contains(
            "note: CARDFORM_STATE is ignored with --sandbox: its state is state/sandbox.db"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!team.exists(), "the team's state must not be created");
    assert!(!env.path("team").exists());
    let sandbox_state = env.path("state/sandbox.db");
    assert!(sandbox_state.exists());
    assert_eq!(
        recorded_provider(&cardform::state::StateLocation::file(&sandbox_state)).as_deref(),
        Some("sandbox")
    );
}

fn another_provider_is_refused_until_the_state_is_moved(backend: Backend) {
    let first = Env::on(backend, fast_sandbox());
    let cards = first.write("cards.yaml", CARDS);
    let cards = cards.to_str().unwrap();
    let out = first
        .cardform(&["apply", "-f", cards, "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(
        recorded_provider(&first.location()),
        Some(first.url()),
        "the first writer's provider is recorded (the origin of its URL)"
    );

    // Another provider (a second sandbox, another port) pointed at the first one's state.
    let second = Env::with(fast_sandbox());
    let state = first.state_arg();
    for args in [
        &["plan", "-f", cards][..],
        &["apply", "-f", cards, "--auto-approve"],
        &["refresh"],
        &["plan", "--refresh", "-f", cards],
        &["import", "k9", "card_from_elsewhere"],
    ] {
        let out = second.cardform_at(&state, args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "this state belongs to provider {}, but this run would use {}",
                first.url(),
                second.url()
            )),
            "{args:?}: {err}"
        );
        assert!(err.contains("nothing was sent to the provider"), "{err}");
        assert!(
            err.contains("state replace-provider` to record that"),
            "{err}"
        );
    }
    // The built-in sandbox is another provider too.
    let out = second
        .cardform_at(&state, &["--sandbox", "plan", "-f", cards])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "belongs to provider {}, but this run would use sandbox",
            first.url()
        )),
        "{}",
        stderr(&out)
    );
    let seen = second.inspect();
    assert!(
        seen.calls.values().all(|&n| n == 0),
        "nothing may be sent to the other provider: {:?}",
        seen.calls
    );
    assert_eq!(seen.orders, 0);

    // Reading the state is not refused.
    for args in [&["show"][..], &["state", "list"], &["state", "history"]] {
        let out = second.cardform_at(&state, args).output().unwrap();
        assert_success(&out);
    }

    // Moving it is explicit: without a terminal it needs --auto-approve.
    let out = second
        .cardform_at(&state, &["state", "replace-provider"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("pass --auto-approve to record provider"),
        "{}",
        stderr(&out)
    );
    assert_eq!(recorded_provider(&first.location()), Some(first.url()));
    let out = second
        .cardform_at(&state, &["state", "replace-provider", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    assert!(
        stdout(&out).contains(&format!(
            "now belongs to provider {} (was {})",
            second.url(),
            first.url()
        )),
        "{}",
        stdout(&out)
    );
    assert_eq!(recorded_provider(&first.location()), Some(second.url()));

    // History lists the move with its command line and both providers.
    let out = second
        .cardform_at(&state, &["state", "history", "--json"])
        .output()
        .unwrap();
    assert_success(&out);
    let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let moved = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["command"].as_str().unwrap().contains("replace-provider"))
        .unwrap_or_else(|| panic!("no replace-provider run: {runs:#}"));
    assert_eq!(moved["summary"]["provider_from"], first.url());
    assert_eq!(moved["summary"]["provider_to"], second.url());
    let out = second
        .cardform_at(&state, &["state", "history"])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains(&format!("provider {} → {}", first.url(), second.url())),
        "{}",
        stdout(&out)
    );

    // The run now proceeds against the new provider, and the old one is refused in turn.
    let out = second
        .cardform_at(&state, &["plan", "-f", cards])
        .output()
        .unwrap();
    assert_success(&out);
    let out = first.cardform(&["plan", "-f", cards]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

on_both_backends!(another_provider_is_refused_until_the_state_is_moved);

#[test]
fn a_state_without_a_provider_adopts_the_first_writers() {
    let env = Env::new();
    env.write("cards.yaml", CARDS);
    assert_eq!(recorded_provider(&env.location()), None);
    // Reading and planning record nothing.
    let out = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(recorded_provider(&env.location()), None);
    let out = env.cardform(&["refresh"]).output().unwrap();
    assert_success(&out);
    assert_eq!(recorded_provider(&env.location()), Some(env.url()));
}

#[test]
fn a_first_apply_that_never_reached_its_provider_binds_nothing() {
    let env = Env::new();
    env.write("cards.yaml", CARDS);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .env("CARDFORM_API_URL", format!("http://127.0.0.1:{closed}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(recorded_provider(&env.location()), None);
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(recorded_provider(&env.location()), Some(env.url()));
}
