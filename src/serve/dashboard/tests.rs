use super::summary::{DayCharge, subcommand_for_test};
use super::*;
use crate::serve::metrics::Fleet;
use crate::state::RunRecord;
use axum::body::Body;
use axum::http::Request;
use rust_decimal::Decimal;
use tower::ServiceExt;

async fn get_path(path: &str) -> (StatusCode, String, String) {
    let (shared, _dir) = test_support::shared().await;
    let resp = routes()
        .with_state(shared)
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_their_types() {
    let (status, ct, html) = get_path("/").await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(html.contains(r#"<script src="/assets/app.js" defer></script>"#));
    for (path, ty) in [
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/app.css", "text/css; charset=utf-8"),
        ("/assets/icon.svg", "image/svg+xml"),
    ] {
        let (status, ct, body) = get_path(path).await;
        assert_eq!((status, ct.as_str()), (StatusCode::OK, ty), "{path}");
        assert!(!body.is_empty());
    }
    assert_eq!(
        get_path("/assets/../Cargo.toml").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get_path("/assets/secret.js").await.0, StatusCode::NOT_FOUND);
}

/// `default-src 'self'` refuses inline script, inline style and event-handler attributes: the
/// page must have none, or it breaks under the CSP `serve` sets.
#[test]
fn the_page_has_nothing_inline_the_csp_would_block() {
    let scripts = INDEX.matches("<script").count();
    assert_eq!(
        scripts,
        INDEX.matches("<script src=").count(),
        "inline script"
    );
    assert!(!INDEX.contains("<style"), "inline style element");
    assert!(!INDEX.contains(" style="), "style attribute");
    assert!(
        !INDEX.contains(" on"),
        "event handler attribute (or stray ' on')"
    );
    assert!(
        !APP_JS.contains("innerHTML"),
        "markup from data: text nodes only"
    );
    assert!(
        !APP_JS.contains("parseFloat") && !APP_JS.contains("toFixed"),
        "money is not a float"
    );
}

#[tokio::test]
async fn the_summary_of_an_empty_state_is_json_with_every_part() {
    let (status, ct, body) = get_path("/api/summary").await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/json"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["cards"]["total"], 0);
    assert_eq!(v["cards"]["charged"], "0");
    for part in [
        "orders_in_flight",
        "money_by_day",
        "runs",
        "generated_at",
        "live",
    ] {
        assert!(v.get(part).is_some(), "{part} in {v}");
    }
    assert_eq!(v["live"]["leader"], false);
    assert_eq!(v["live"]["last_success_at"], serde_json::Value::Null);
}

fn run(serial: u64, user: &str, command: &str, charged: Option<&str>) -> RunRecord {
    RunRecord {
        serial,
        at: format!("2026-12-0{serial}T10:00:00Z"),
        finished_at: None,
        user: user.into(),
        host: "build-host-7".into(),
        command: command.into(),
        summary: serde_json::json!({}),
        charged: charged.map(|c| c.parse().unwrap()),
        topups_sent: None,
    }
}

#[test]
fn the_summary_adds_up_and_names_nobody() {
    let mut fleet = Fleet {
        charged: "31.00".parse().unwrap(),
        currency: Some("USDT".into()),
        ..Fleet::default()
    };
    fleet.cards.insert(("active".into(), "VISA".into()), 3);
    fleet.cards.insert(("active".into(), "MC".into()), 2);
    fleet.cards.insert(("frozen".into(), "VISA".into()), 1);
    fleet.labels.insert("team=ops".into(), 4);
    let d = |s: &str| Some(s.parse::<Decimal>().unwrap());
    let charges = [
        ("2026-12-01T09:00:00Z", d("10.50")),
        ("2026-12-01T23:59:59Z", d("0.50")),
        ("2026-12-02T00:00:00Z", d("21.00")),
        ("2026-12-02T01:00:00Z", d("-1.00")),
        ("2026-12-02T02:00:00Z", None),
    ];
    let history = [
        run(
            1,
            "jane.doe",
            "cardform apply -f ./cards/jane-doe-4111.yaml --auto-approve",
            d("11.00").map(|x| x.to_string()).as_deref(),
        ),
        run(2, "Jane Q Public", "cardform state rm web-1", None),
    ];
    let s = Summary::from_parts("now".into(), &fleet, charges, &history);
    assert_eq!(s.cards.total, 6);
    assert_eq!(s.cards.by_status["active"], 5);
    assert_eq!(s.cards.by_product["VISA"], 4);
    assert_eq!(s.cards.by_label["team=ops"], 4);
    assert_eq!(
        s.money_by_day,
        [
            DayCharge {
                day: "2026-12-01".into(),
                charged: "11.00".parse().unwrap()
            },
            DayCharge {
                day: "2026-12-02".into(),
                charged: "20.00".parse().unwrap()
            },
        ]
    );
    assert_eq!(s.runs[0].serial, 2, "newest first");
    assert_eq!(
        (s.runs[0].by.as_str(), s.runs[0].command.as_str()),
        ("JQP", "state rm")
    );
    assert_eq!(
        (s.runs[1].by.as_str(), s.runs[1].command.as_str()),
        ("JD", "apply")
    );
    let json = serde_json::to_string(&s).unwrap();
    for leak in [
        "jane",
        "Jane",
        "Public",
        "4111",
        "web-1",
        "build-host",
        "auto-approve",
    ] {
        assert!(!json.contains(leak), "{leak} in {json}");
    }
    assert!(
        json.contains(r#""charged":"31.00""#),
        "money as the decimal's string: {json}"
    );
}

#[test]
fn initials_and_subcommands() {
    assert_eq!(initials("jane.doe"), "JD");
    assert_eq!(initials("Émile  Zola"), "ÉZ");
    assert_eq!(initials("root"), "R");
    assert_eq!(initials("a-b-c-d"), "ABC");
    assert_eq!(initials(""), "?");
    assert_eq!(subcommand_for_test("cardform plan"), "plan");
    assert_eq!(
        subcommand_for_test("cardform --state postgres://db/x serve --listen 127.0.0.1:1 -f cards"),
        "serve"
    );
    assert_eq!(subcommand_for_test("cardform import card-7 id"), "import");
    assert_eq!(subcommand_for_test("cardform state rm web-1"), "state rm");
    assert_eq!(subcommand_for_test("cardform -v state --json"), "state");
    assert_eq!(subcommand_for_test("cardform frobnicate apply-me"), "");
}
