//! Debug logging (issue 29): `-v`/`-vv`/`CARDFORM_LOG` show each provider request and answer on
//! stderr (or `CARDFORM_LOG_FILE`), bodies at debug with secrets, card data and personal fields
//! redacted, and nothing changes without them. Through the real binary, against the sandbox,
//! whose cards' PANs and CVVs the test reads back to look for them in the log.

use cardform::sandbox::SandboxConfig;
use cardform::state::Store;
use cardform::wire::Secret;
use rust_decimal::Decimal;
use std::time::Duration;

use crate::harness::*;

const API_KEY: &str = "key-e2e-Zq81mK";
const API_SECRET: &str = "secret-e2e-Pw93xV";

fn env() -> Env {
    Env::with(SandboxConfig {
        api_key: API_KEY.into(),
        api_secret: Secret::new(API_SECRET),
        require_people: true,
        kyc_latency: Duration::from_millis(200),
        balance: Decimal::from(100_000),
        ..fast_sandbox()
    })
}

/// Two people with distinctive personal fields, one card each, and a top-up.
const PERSONAL: [&str; 10] = [
    "Firstnamezz01",
    "Lastnamezz01",
    "1961-04-17",
    "zz01@mail.example.com",
    "+442079000101",
    "Firstnamezz02",
    "Lastnamezz02",
    "1972-11-03",
    "zz02@mail.example.com",
    "+442079000202",
];

fn declare(env: &Env) {
    let p = PERSONAL;
    env.write(
        "people.csv",
        &format!(
            "external_user_id,first_name,last_name,birth_date,email,phone_number_full,country_iso\n\
             u-1,{},{},{},{},{},GB\nu-2,{},{},{},{},{},GB\n",
            p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]
        ),
    );
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  \
         - {key: a, external_user_id: u-1, product_code: VISA_USD_STD, initial_topup: \"20.00\"}\n  \
         - {key: b, external_user_id: u-2, product_code: VISA_USD_STD}\n",
    );
}

const FILES: [&str; 4] = ["-f", "people.csv", "-f", "cards.yaml"];

/// Every PAN and CVV the sandbox issued to this env's cards, read back from the provider.
fn card_data(env: &Env) -> Vec<String> {
    env.rt.block_on(async {
        let store = Store::open_existing(&env.location())
            .await
            .unwrap()
            .unwrap();
        let snap = store.snapshot().await.unwrap();
        store.close().await;
        let client = env.client();
        let mut out = Vec::new();
        for card in snap.cards.values() {
            let id = card.card_id.as_deref().expect("issued");
            let seen = client.get_card(id).await.unwrap();
            out.push(seen.card_number.expect("a PAN").expose().to_owned());
            // Quoted: a bare three-digit number may be anything in a log (a port, a duration).
            out.push(format!("\"{}\"", seen.cvv.expect("a CVV").expose()));
        }
        out
    })
}

#[test]
fn vv_apply_logs_requests_and_answers_and_redacts_every_secret() {
    let env = env();
    declare(&env);
    let mut args = vec![
        "-vv",
        "apply",
        "--auto-approve",
        "--fetch-details",
        "--kyc-wait",
        "60s",
    ];
    args.extend(FILES);
    let out = env.cardform(&args).output().unwrap();
    assert_success(&out);
    let log = stderr(&out);

    // Requests with method, endpoint, host, attempt and idempotency key; answers with status,
    // slug and duration; bodies at debug.
    for endpoint in [
        "users/create",
        "cardholders/create",
        "cards/create",
        "orders/check",
        "cards/get",
    ] {
        assert!(
            log.contains(&format!("request method=\"POST\" endpoint=\"{endpoint}\"")),
            "no {endpoint} request in:\n{log}"
        );
    }
    assert!(log.contains(&format!("host=\"{}\"", env.url())), "{log}");
    assert!(log.contains("attempt=1 idempotency_key=\"cf-"), "{log}");
    assert!(
        log.contains(
            "answer endpoint=\"cards/create\" attempt=1 status=200 slug=\"-\" duration_ms="
        ),
        "{log}"
    );
    assert!(
        log.contains("DEBUG cardform::client: request body endpoint=\"cards/create\""),
        "{log}"
    );
    assert!(log.contains("\"initial_topup_amount\":\"20.00\""), "{log}");
    // The bodies that carry secrets were logged, masked.
    assert!(
        log.contains("\"card_number\":\"[redacted]\",\"cvv\":\"[redacted]\""),
        "{log}"
    );
    assert!(log.contains("\"first_name\":\"[redacted]\""), "{log}");
    assert!(log.contains("lock taken"), "{log}");

    let mut hidden: Vec<String> = PERSONAL.iter().map(|s| s.to_string()).collect();
    hidden.extend([API_KEY.to_owned(), API_SECRET.to_owned()]);
    hidden.extend(card_data(&env));
    assert_eq!(hidden.len(), 16);
    for secret in &hidden {
        assert!(
            !log.contains(secret.as_str()),
            "{secret} in the log:\n{log}"
        );
        assert!(
            !stdout(&out).contains(secret.as_str()),
            "{secret} in stdout"
        );
    }
    // Logs never reach stdout, which carries the plan and summary.
    assert!(
        !stdout(&out).contains("cardform::client"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn cardform_log_sets_the_level_and_cardform_log_file_the_destination() {
    let env = env();
    declare(&env);
    let plan = |vars: &[(&str, &str)], flags: &[&str]| {
        let mut args = flags.to_vec();
        args.push("plan");
        args.extend(FILES);
        let mut cmd = env.cardform(&args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_success(&out);
        out
    };

    let debug = stderr(&plan(&[("CARDFORM_LOG", "debug")], &[]));
    assert!(
        debug.contains("DEBUG cardform::client: request body endpoint=\"cards/products\""),
        "{debug}"
    );
    let info = stderr(&plan(&[("CARDFORM_LOG", "cardform::client=info")], &[]));
    assert!(
        info.contains("INFO cardform::client: request method=\"POST\""),
        "{info}"
    );
    assert!(!info.contains("request body"), "{info}");
    // -v is info, whatever the variable says.
    let v = stderr(&plan(&[("CARDFORM_LOG", "trace")], &["-v"]));
    assert!(
        v.contains("answer endpoint=") && !v.contains("DEBUG"),
        "{v}"
    );

    let file = env.path("cardform.log");
    let to_file = plan(&[("CARDFORM_LOG_FILE", file.to_str().unwrap())], &["-vv"]);
    assert!(
        !stderr(&to_file).contains("cardform::client"),
        "{}",
        stderr(&to_file)
    );
    let written = std::fs::read_to_string(&file).unwrap();
    assert!(
        written.contains("request body endpoint=\"project/balance\""),
        "{written}"
    );

    let bad = env
        .cardform(&["plan", "-f", "cards.yaml"])
        .env("CARDFORM_LOG", "cardform=loud")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("CARDFORM_LOG=cardform=loud"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn without_a_flag_nothing_is_logged_and_stdout_is_the_same_with_one() {
    let env = env();
    declare(&env);
    let run = |flags: &[&str]| {
        let mut args = flags.to_vec();
        args.extend(["plan", "--json"]);
        args.extend(FILES);
        let out = env.cardform(&args).output().unwrap();
        assert_success(&out);
        out
    };
    let quiet = run(&[]);
    let loud = run(&["-vvv"]);
    assert_eq!(
        stderr(&quiet),
        "",
        "a plan without flags writes nothing to stderr"
    );
    assert!(stderr(&loud).contains("TRACE"), "{}", stderr(&loud));
    let strip = |out: &std::process::Output| {
        let mut v: serde_json::Value = serde_json::from_str(&stdout(out)).unwrap();
        // The only thing that differs between two plans of the same state: when each was made.
        v.as_object_mut().unwrap().remove("created_at");
        v
    };
    assert_eq!(strip(&quiet), strip(&loud));
}

#[test]
fn vvv_on_a_postgres_state_logs_its_statements_and_locks_but_never_its_password() {
    let env = Env::postgres();
    env.write(
        "cards.yaml",
        "version: 1\ncards:\n  - {key: a, external_user_id: u-1, product_code: VISA_USD_STD}\n",
    );
    let out = env
        .cardform(&["-vvv", "apply", "-f", "cards.yaml", "--auto-approve"])
        .output()
        .unwrap();
    assert_success(&out);
    let log = stderr(&out);
    assert!(log.contains("sqlx::query"), "no statement logged:\n{log}");
    assert!(
        log.contains("lock taken") && log.contains("lock released"),
        "{log}"
    );
    assert!(log.contains("run finished"), "{log}");
    assert!(
        !log.contains(crate::pg::PASSWORD),
        "the database password is in the log"
    );
}
