//! A wrong `CARDFORM_API_URL` is reported at once, naming the URL and what to check, instead of
//! after a minute of retries; a provider that goes away in the middle of a run is still retried.
//! Loopback only: a closed port, and TLS spoken to the plain-HTTP sandbox.

use crate::harness::*;
use cardform::client::{Client, ClientConfig, ClientError};
use cardform::wire::Secret;
use std::time::{Duration, Instant};

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// `cardform ARGS` with `CARDFORM_API_URL=url`: fails within 5 s; returns stderr.
fn fails_fast(env: &Env, url: &str, args: &[&str]) -> String {
    let start = Instant::now();
    let out = env
        .cardform(args)
        .env("CARDFORM_API_URL", url)
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let err = stderr(&out);
    assert!(err.contains("is CARDFORM_API_URL right"), "{err}");
    assert!(!err.contains(&env.api_key), "api key echoed: {err}");
    assert!(!err.contains(&env.api_secret), "api secret echoed: {err}");
    err
}

#[test]
fn connection_refused_names_the_url() {
    let env = Env::new();
    env.write("cards.yaml", ONBOARDING);
    let url = format!("http://127.0.0.1:{}", closed_port());
    for args in [&["products"][..], &["plan", "-f", "cards.yaml"]] {
        let err = fails_fast(&env, &url, args);
        assert!(
            err.contains(&format!("cannot reach the provider at {url}")),
            "{err}"
        );
    }
    let out = env
        .cardform(&["apply", "-f", "cards.yaml", "--auto-approve"])
        .env("CARDFORM_API_URL", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&url), "{}", stderr(&out));
    assert_eq!(env.inspect().calls.values().sum::<u64>(), 0);
}

#[test]
fn credentials_in_the_url_are_not_shown() {
    let env = Env::new();
    let port = closed_port();
    let err = fails_fast(
        &env,
        &format!("http://ops:hunter2@127.0.0.1:{port}/?token=abc123"),
        &["products"],
    );
    assert!(err.contains(&format!("http://127.0.0.1:{port}")), "{err}");
    assert!(!err.contains("hunter2") && !err.contains("abc123"), "{err}");
}

#[test]
fn tls_to_a_plain_http_server_fails_fast() {
    let env = Env::new();
    let url = env.url().replace("http://", "https://");
    let err = fails_fast(&env, &url, &["products"]);
    assert!(err.contains(&url), "{err}");
}

#[test]
fn a_provider_lost_mid_run_is_still_retried() {
    let mut env = Env::new();
    let client = Client::new(ClientConfig {
        base_url: env.url(),
        api_key: Secret::new(env.api_key.clone()),
        api_secret: Secret::new(env.api_secret.clone()),
        max_retries: 2,
        backoff_base: Duration::from_millis(10),
        ..Default::default()
    })
    .unwrap();
    env.rt.block_on(client.balance()).unwrap();
    let sandbox = env.sandbox.take().unwrap();
    env.rt.block_on(sandbox.shutdown());
    let e = env.rt.block_on(client.balance()).unwrap_err();
    assert!(
        matches!(e, ClientError::Exhausted { attempts: 3, .. }),
        "{e:?}"
    );
}

/// A host that takes connections and never answers: a line says what the run waits for after a
/// few seconds, and the run fails within `--request-timeout`, naming the host and what to check.
#[test]
fn a_host_that_never_answers_is_waited_for_aloud_then_given_up() {
    let env = Env::new();
    let quiet = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", quiet.local_addr().unwrap());
    std::thread::spawn(move || {
        // Held open, never answered.
        let mut held = Vec::new();
        for conn in quiet.incoming() {
            held.push(conn);
        }
    });
    let start = Instant::now();
    let out = env
        .cardform(&["products", "--request-timeout", "7s"])
        .env("CARDFORM_API_URL", &url)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    let took = start.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        took >= Duration::from_secs(6) && took < Duration::from_secs(20),
        "took {took:?}"
    );
    let err = stderr(&out);
    assert!(
        err.contains(&format!("note: waiting for {url}")) && err.contains("no answer for"),
        "{err}"
    );
    assert!(err.contains("did not answer"), "{err}");
    assert!(
        err.contains("takes connections but does not answer"),
        "{err}"
    );
}
