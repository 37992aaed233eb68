//! The sandbox's users and cardholders over real HTTP (issue 12, item 5): one cardholder per
//! (external_user_id, subprovider), KYC that takes time and can end rejected, people mode, the
//! `kyc_status` of `cardholder_not_ready`, idempotency keys and lost responses on the creates, and
//! the world file. Driven by the raw caller of `sandbox.rs`, not by `cardform::client`.

use std::time::Duration;

use cardform::sandbox::{self, SandboxConfig};
use cardform::wire::body::Decoded;
use serde_json::{Value, json};

use crate::sandbox::{FakeClock, Raw, Resp, base_config, d, start};

/// A valid cardholder form for `uid` at `subprovider`.
fn form(uid: &str, subprovider: &str) -> Value {
    json!({
        "external_user_id": uid, "subprovider_code": subprovider, "first_name": "Ada",
        "last_name": "Lovelace", "birth_date": "1990-12-10", "email": "ada@example.com",
        "phone_number_full": "+441234567890", "country_iso": "GB"
    })
}

fn card(uid: &str, product: &str) -> Value {
    json!({"external_user_id": uid, "product_code": product})
}

/// The `kyc_status` field of an error answer.
fn kyc_status(r: &Resp) -> Option<String> {
    match &r.decoded {
        Decoded::Error(e) => e.kyc_status.as_ref().map(|k| k.as_str().to_owned()),
        Decoded::Success(v) => panic!("expected an error, got {v}"),
    }
}

/// `cards/create` refused with `cardholder_not_ready` carrying this `kyc_status`.
async fn not_ready(raw: &Raw, uid: &str, product: &str, key: &str, status: &str) {
    let r = raw
        .fails(
            "cards/create",
            card(uid, product),
            Some(key),
            400,
            "cardholder_not_ready",
        )
        .await;
    assert_eq!(kyc_status(&r).as_deref(), Some(status), "{:?}", r.decoded);
}

async fn onboard(raw: &Raw, uid: &str, subprovider: &str) -> Value {
    raw.ok("users/create", json!({"external_user_id": uid}), None)
        .await;
    raw.ok("cardholders/create", form(uid, subprovider), None)
        .await
}

fn people() -> SandboxConfig {
    SandboxConfig {
        require_people: true,
        ..base_config()
    }
}

#[tokio::test]
async fn kyc_takes_its_latency_and_a_refused_request_keeps_its_key() {
    let clock = FakeClock::new();
    let (sb, raw) = start(SandboxConfig {
        kyc_latency: Duration::from_secs(30),
        clock: clock.clone(),
        ..people()
    })
    .await;
    let holder = onboard(&raw, "u-1", sandbox::SUBPROVIDER).await;
    assert_eq!(
        (
            &holder["registration_status"],
            &holder["kyc_status"],
            &holder["kyc_level"]
        ),
        (&json!("pending"), &json!("pending"), &json!("none"))
    );
    assert!(holder["cardholder_id"].is_string());
    assert_eq!(holder["subprovider_code"], "sandbox");

    // Pending: refused, nothing charged, and the key stays free.
    not_ready(&raw, "u-1", "VISA_USD_STD", "issue-u-1", "pending").await;
    clock.advance(Duration::from_secs(29));
    not_ready(&raw, "u-1", "VISA_USD_STD", "issue-u-1", "pending").await;
    let ins = sb.inspect();
    assert_eq!((ins.orders, ins.balance), (0, d("10000.00")));
    assert_eq!(ins.kyc.get("pending"), Some(&1));
    assert_eq!(ins.person("u-1").unwrap().kyc["sandbox"], "pending");

    // Approved at exactly the latency: the same key and body now create the card, once.
    clock.advance(Duration::from_secs(1));
    let order = raw
        .ok(
            "cards/create",
            card("u-1", "VISA_USD_STD"),
            Some("issue-u-1"),
        )
        .await;
    assert_eq!(order["order_type"], "card_issue");
    let again = raw
        .ok(
            "cards/create",
            card("u-1", "VISA_USD_STD"),
            Some("issue-u-1"),
        )
        .await;
    assert_eq!(again["order_id"], order["order_id"]);
    let ins = sb.inspect();
    assert_eq!((ins.orders, ins.idempotent_replays), (1, 1));
    assert_eq!(ins.issue_count("u-1", "VISA_USD_STD"), 1);
    assert_eq!(ins.total_charged, d("5.00"));
    assert_eq!(ins.people_count("u-1"), (1, 1));
    assert_eq!(ins.kyc.get("approved"), Some(&1));
    assert_eq!(ins.person("u-1").unwrap().kyc["sandbox"], "approved");
    sb.shutdown().await;
}

#[tokio::test]
async fn a_rejected_kyc_is_told_by_the_error_and_not_ready_stays_pending() {
    let clock = FakeClock::new();
    let (sb, raw) = start(SandboxConfig {
        kyc_latency: Duration::from_secs(5),
        kyc_rejected_users: vec!["u-rej".into()],
        kyc_expired_users: vec!["u-exp".into()],
        not_ready_users: vec!["u-slow".into()],
        clock: clock.clone(),
        ..people()
    })
    .await;
    onboard(&raw, "u-rej", sandbox::SUBPROVIDER).await;
    onboard(&raw, "u-exp", sandbox::SUBPROVIDER).await;
    onboard(&raw, "u-slow", sandbox::SUBPROVIDER).await;
    not_ready(&raw, "u-rej", "VISA_USD_STD", "k-rej", "pending").await;
    not_ready(&raw, "u-exp", "VISA_USD_STD", "k-exp", "pending").await;
    clock.advance(Duration::from_secs(5));
    not_ready(&raw, "u-rej", "VISA_USD_STD", "k-rej", "rejected").await;
    not_ready(&raw, "u-exp", "VISA_USD_STD", "k-exp", "expired").await;
    clock.advance(Duration::from_secs(3600));
    not_ready(&raw, "u-rej", "VISA_USD_STD", "k-rej", "rejected").await;
    not_ready(&raw, "u-slow", "VISA_USD_STD", "k-slow", "pending").await;
    // A second cardholder for a rejected person is refused like any other duplicate.
    raw.fails(
        "cardholders/create",
        form("u-rej", sandbox::SUBPROVIDER),
        None,
        409,
        "cardholder_already_exists",
    )
    .await;
    let ins = sb.inspect();
    assert_eq!(ins.orders, 0);
    assert_eq!(ins.balance, d("10000.00"));
    assert_eq!(ins.person("u-rej").unwrap().kyc["sandbox"], "rejected");
    assert_eq!(ins.person("u-exp").unwrap().kyc["sandbox"], "expired");
    assert_eq!(ins.person("u-slow").unwrap().kyc["sandbox"], "pending");
    sb.shutdown().await;

    // Outside people mode, a person never created has an implicit cardholder: rejected for
    // --kyc-reject-user, pending for --not-ready-user, each error carrying its kyc_status.
    let (sb, raw) = start(SandboxConfig {
        kyc_rejected_users: vec!["r".into()],
        kyc_expired_users: vec!["e".into()],
        not_ready_users: vec!["p".into()],
        ..base_config()
    })
    .await;
    not_ready(&raw, "r", "VISA_USD_STD", "k1", "rejected").await;
    not_ready(&raw, "e", "VISA_USD_STD", "k4", "expired").await;
    not_ready(&raw, "p", "MC_EUR_PREMIUM", "k2", "pending").await;
    raw.issue("anyone", "VISA_USD_STD", None, "k3").await;
    sb.shutdown().await;
}

#[tokio::test]
async fn one_cardholder_per_person_and_subprovider() {
    let (sb, raw) = start(people()).await;
    let products = raw.ok("cards/products", json!({}), None).await;
    let sub = |code: &str| {
        products["products"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["product_code"] == code)
            .unwrap()["subprovider_code"]
            .clone()
    };
    assert_eq!(sub("VISA_USD_STD"), "sandbox");
    assert_eq!(sub("MC_EUR_PREMIUM"), "sandbox-eu");

    onboard(&raw, "u-1", sandbox::SUBPROVIDER).await;
    raw.issue("u-1", "VISA_USD_STD", None, "k-visa").await;
    // No cardholder at the EUR product's subprovider yet.
    raw.fails(
        "cards/create",
        card("u-1", "MC_EUR_PREMIUM"),
        Some("k-eur"),
        400,
        "cardholder_not_found",
    )
    .await;
    let mut other = form("u-1", sandbox::SUBPROVIDER);
    other["first_name"] = json!("Augusta");
    for body in [form("u-1", sandbox::SUBPROVIDER), other] {
        raw.fails(
            "cardholders/create",
            body,
            None,
            409,
            "cardholder_already_exists",
        )
        .await;
    }
    let eu = raw
        .ok(
            "cardholders/create",
            form("u-1", sandbox::SUBPROVIDER_EU),
            None,
        )
        .await;
    assert_eq!(eu["subprovider_code"], "sandbox-eu");
    // The refused cards/create did not bind its key.
    raw.issue("u-1", "MC_EUR_PREMIUM", None, "k-eur").await;

    let ins = sb.inspect();
    assert_eq!((ins.users, ins.cardholders, ins.cards), (1, 2, 2));
    assert_eq!(ins.people_count("u-1"), (1, 2));
    let p = ins.person("u-1").unwrap();
    assert_eq!(
        p.kyc.keys().collect::<Vec<_>>(),
        vec!["sandbox", "sandbox-eu"]
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn people_mode_knows_no_one_until_created() {
    let (sb, raw) = start(SandboxConfig {
        unknown_users: vec!["ghost".into()],
        ..people()
    })
    .await;
    // Nobody exists: not even a person outside --unknown-user.
    raw.fails(
        "cards/create",
        card("u-1", "VISA_USD_STD"),
        Some("c1"),
        400,
        "cardholder_not_found",
    )
    .await;
    // A cardholder needs its user first; the refusal does not bind the key.
    raw.fails(
        "cardholders/create",
        form("u-1", sandbox::SUBPROVIDER),
        Some("h1"),
        404,
        "user_not_found",
    )
    .await;
    raw.ok(
        "users/create",
        json!({"external_user_id": "u-1"}),
        Some("u1"),
    )
    .await;
    // A user without a cardholder still gets no card.
    raw.fails(
        "cards/create",
        card("u-1", "VISA_USD_STD"),
        Some("c1"),
        400,
        "cardholder_not_found",
    )
    .await;
    raw.ok(
        "cardholders/create",
        form("u-1", sandbox::SUBPROVIDER),
        Some("h1"),
    )
    .await;
    raw.issue("u-1", "VISA_USD_STD", None, "c1").await;
    let ins = sb.inspect();
    assert_eq!((ins.users, ins.cardholders, ins.orders), (1, 1, 1));
    assert_eq!(
        ins.total_charged,
        d("5.00"),
        "nothing charged on the refusals"
    );
    assert_eq!(ins.people_count("ghost"), (0, 0));
    assert_eq!(ins.people.len(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn cardholder_form_is_checked_strictly() {
    let clock = FakeClock::new(); // 2025-06-15
    let (sb, raw) = start(SandboxConfig {
        clock: clock.clone(),
        ..base_config()
    })
    .await;
    let bad: [(&str, Value); 14] = [
        ("birth_date", json!("2025-06-16")), // tomorrow, by the world's clock
        ("birth_date", json!("1899-12-31")),
        ("birth_date", json!("1990-02-30")),
        ("birth_date", json!("1990-2-3")),
        ("country_iso", json!("UK")),
        ("country_iso", json!("XX")),
        ("country_iso", json!("gb")),
        ("country_iso", json!("GBR")),
        ("email", json!("ada@example")),
        ("email", json!("ada example.com")),
        ("phone_number_full", json!("441234567890")),
        ("phone_number_full", json!("+44 1234 567890")),
        ("subprovider_code", json!("nowhere")),
        ("last_name", json!(" ")),
    ];
    for (field, value) in bad {
        let mut f = form("u-1", sandbox::SUBPROVIDER);
        f[field] = value;
        raw.fails("cardholders/create", f, None, 400, "invalid_request")
            .await;
    }
    let mut today = form("u-1", sandbox::SUBPROVIDER);
    today["birth_date"] = json!("2025-06-15");
    raw.ok("cardholders/create", today, None).await;
    assert_eq!(sb.inspect().cardholders, 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn the_creates_honour_idempotency_keys() {
    let (sb, raw) = start(people()).await;
    let user = raw
        .ok(
            "users/create",
            json!({"external_user_id": "u-1"}),
            Some("user-u-1"),
        )
        .await;
    let replay = raw
        .ok(
            "users/create",
            json!({"external_user_id": "u-1"}),
            Some("user-u-1"),
        )
        .await;
    assert_eq!(replay, user, "the first answer, replayed");
    raw.fails(
        "users/create",
        json!({"external_user_id": "u-2"}),
        Some("user-u-1"),
        409,
        "idempotency_key_conflict",
    )
    .await;
    raw.fails(
        "users/create",
        json!({"external_user_id": "u-1"}),
        None,
        409,
        "external_user_id_exists",
    )
    .await;
    raw.fails(
        "users/create",
        json!({"external_user_id": "u-1"}),
        Some("user-u-1-again"),
        409,
        "external_user_id_exists",
    )
    .await;

    let holder = raw
        .ok(
            "cardholders/create",
            form("u-1", sandbox::SUBPROVIDER),
            Some("ch-u-1"),
        )
        .await;
    let replay = raw
        .ok(
            "cardholders/create",
            form("u-1", sandbox::SUBPROVIDER),
            Some("ch-u-1"),
        )
        .await;
    assert_eq!(replay["cardholder_id"], holder["cardholder_id"]);
    let mut changed = form("u-1", sandbox::SUBPROVIDER);
    changed["email"] = json!("ada@example.org");
    raw.fails(
        "cardholders/create",
        changed,
        Some("ch-u-1"),
        409,
        "idempotency_key_conflict",
    )
    .await;
    // A key of one endpoint is not a key of another.
    raw.fails(
        "cards/create",
        card("u-1", "VISA_USD_STD"),
        Some("ch-u-1"),
        409,
        "idempotency_key_conflict",
    )
    .await;
    // Keys stay optional on the creates (required only on the card mutations).
    raw.ok("users/create", json!({"external_user_id": "u-3"}), None)
        .await;
    let ins = sb.inspect();
    assert_eq!(
        (ins.users, ins.cardholders, ins.idempotent_replays),
        (2, 1, 2)
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn lost_responses_and_server_errors_on_the_creates() {
    let (sb, raw) = start(SandboxConfig {
        drop_rate: 1.0,
        ..people()
    })
    .await;
    // users/create: carried out, then no answer.
    let lost = raw
        .try_call(
            "users/create",
            json!({"external_user_id": "u-1"}),
            Some("user-u-1"),
        )
        .await;
    assert!(lost.is_err(), "closed without a response: {lost:?}");
    let ins = sb.inspect();
    assert_eq!((ins.users, ins.dropped), (1, 1));
    // The retry under the same key gets the first answer; without it, the slug.
    let user = raw
        .ok(
            "users/create",
            json!({"external_user_id": "u-1"}),
            Some("user-u-1"),
        )
        .await;
    assert_eq!(user["external_user_id"], "u-1");
    raw.fails(
        "users/create",
        json!({"external_user_id": "u-1"}),
        None,
        409,
        "external_user_id_exists",
    )
    .await;

    // cardholders/create, with and without a key.
    let lost = raw
        .try_call(
            "cardholders/create",
            form("u-1", sandbox::SUBPROVIDER),
            Some("ch-u-1"),
        )
        .await;
    assert!(lost.is_err(), "{lost:?}");
    let holder = raw
        .ok(
            "cardholders/create",
            form("u-1", sandbox::SUBPROVIDER),
            Some("ch-u-1"),
        )
        .await;
    assert_eq!(holder["kyc_status"], "approved");
    let lost = raw
        .try_call(
            "cardholders/create",
            form("u-1", sandbox::SUBPROVIDER_EU),
            None,
        )
        .await;
    assert!(lost.is_err(), "{lost:?}");
    raw.fails(
        "cardholders/create",
        form("u-1", sandbox::SUBPROVIDER_EU),
        None,
        409,
        "cardholder_already_exists",
    )
    .await;
    let ins = sb.inspect();
    assert_eq!((ins.users, ins.cardholders, ins.dropped), (1, 2, 3));
    assert_eq!(ins.people_count("u-1"), (1, 2));
    sb.shutdown().await;

    // --error-rate answers 5xx before doing anything, on the creates too.
    let (sb, raw) = start(SandboxConfig {
        error_rate: 1.0,
        ..people()
    })
    .await;
    for (path, body) in [
        ("users/create", json!({"external_user_id": "u-1"})),
        ("cardholders/create", form("u-1", sandbox::SUBPROVIDER)),
    ] {
        let r = raw.call(path, body, Some("k")).await;
        assert!(r.status >= 500 && r.plain, "{path}: {}", r.status);
    }
    let ins = sb.inspect();
    assert_eq!((ins.users, ins.cardholders, ins.injected_errors), (0, 0, 2));
    sb.shutdown().await;
}

#[tokio::test]
async fn people_and_their_kyc_timing_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("world.json");
    let clock = FakeClock::new();
    let config = |latency: u64| SandboxConfig {
        world_file: Some(path.clone()),
        kyc_latency: Duration::from_secs(latency),
        kyc_rejected_users: vec!["u-rej".into()],
        clock: clock.clone(),
        ..people()
    };
    let (sb, raw) = start(config(60)).await;
    raw.ok("users/create", json!({"external_user_id": "u-1"}), None)
        .await;
    let holder = raw
        .ok(
            "cardholders/create",
            form("u-1", sandbox::SUBPROVIDER),
            Some("ch-u-1"),
        )
        .await;
    onboard(&raw, "u-rej", sandbox::SUBPROVIDER).await;
    sb.shutdown().await;

    let bytes = std::fs::read(&path).expect("world file");
    let text = String::from_utf8_lossy(&bytes);
    for pii in [
        "Lovelace",
        "Ada",
        "ada@example.com",
        "1990-12-10",
        "441234567890",
    ] {
        assert!(!text.contains(pii), "the world file holds {pii}");
    }

    // Restarted with another latency: the cardholders keep the timing they were created with.
    clock.advance(Duration::from_secs(30));
    let (sb, raw) = start(config(0)).await;
    not_ready(&raw, "u-1", "VISA_USD_STD", "k-1", "pending").await;
    not_ready(&raw, "u-rej", "VISA_USD_STD", "k-2", "pending").await;
    let replay = raw
        .ok(
            "cardholders/create",
            form("u-1", sandbox::SUBPROVIDER),
            Some("ch-u-1"),
        )
        .await;
    assert_eq!(replay, holder, "keys of the creates survive a restart");
    raw.fails(
        "users/create",
        json!({"external_user_id": "u-1"}),
        None,
        409,
        "external_user_id_exists",
    )
    .await;
    raw.fails(
        "cardholders/create",
        form("u-1", sandbox::SUBPROVIDER),
        None,
        409,
        "cardholder_already_exists",
    )
    .await;
    clock.advance(Duration::from_secs(30));
    raw.issue("u-1", "VISA_USD_STD", None, "k-1").await;
    not_ready(&raw, "u-rej", "VISA_USD_STD", "k-2", "rejected").await;
    let ins = sb.inspect();
    assert_eq!((ins.users, ins.cardholders, ins.orders), (2, 2, 1));
    assert_eq!(ins.people_count("u-1"), (1, 1));
    assert_eq!(ins.people_count("u-rej"), (1, 1));
    sb.shutdown().await;
}

#[test]
fn the_sandbox_cli_takes_the_people_flags() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_cardform"))
        .args([
            "sandbox",
            "--listen",
            "127.0.0.1:0",
            "--require-people",
            "--kyc-latency",
            "1500ms",
            "--kyc-reject-user",
            "u-x",
            "--kyc-reject",
            "u-y",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("cardform sandbox starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = String::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                banner.push_str(&line);
                banner.push('\n');
                if line.contains("kyc latency") {
                    break Some(line);
                }
            }
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = found.unwrap_or_else(|| panic!("no kyc latency line in {banner}"));
    assert!(
        line.contains("1.5s") && line.contains("people mode"),
        "{line}"
    );

    let bad = Command::new(env!("CARGO_BIN_EXE_cardform"))
        .args(["sandbox", "--kyc-latency", "soon"])
        .output()
        .expect("runs");
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--kyc-latency"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
