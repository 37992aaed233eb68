use super::*;
use std::collections::{BTreeSet, HashMap};

/// Checks `text` against the text format 0.0.4 and returns each sample's value by its series
/// (`name{labels}` as written): HELP and TYPE once per family, before its samples; names and
/// label names well formed; label values quoted with only the three escapes; values numbers.
pub(crate) fn parse(text: &str) -> HashMap<String, String> {
    let mut typed: HashMap<String, String> = HashMap::new();
    let mut helped = BTreeSet::new();
    let mut samples = HashMap::new();
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    for (i, line) in text.lines().enumerate() {
        let at = format!("line {}: {line:?}", i + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, _) = rest.split_once(' ').expect(&at);
            assert!(valid_name(name), "{at}");
            assert!(helped.insert(name.to_owned()), "second HELP, {at}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(&at);
            assert!(["counter", "gauge"].contains(&kind), "{at}");
            assert!(
                !samples.keys().any(|s: &String| family(s) == name),
                "TYPE after samples, {at}"
            );
            assert!(
                typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                "second TYPE, {at}"
            );
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{at}");
            let (series, value) = line.rsplit_once(' ').expect(&at);
            let name = family(series);
            assert!(valid_name(name), "{at}");
            let kind = typed
                .get(name)
                .unwrap_or_else(|| panic!("sample before TYPE, {at}"));
            assert_eq!(kind == "counter", name.ends_with("_total"), "{at}");
            if let Some(labels) = series.strip_prefix(name) {
                check_labels(labels, &at);
            }
            assert!(value.parse::<f64>().is_ok(), "value, {at}");
            assert!(
                samples
                    .insert(series.to_owned(), value.to_owned())
                    .is_none(),
                "{at}"
            );
        }
    }
    samples
}

fn family(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn check_labels(labels: &str, at: &str) {
    if labels.is_empty() {
        return;
    }
    let mut rest = labels
        .strip_prefix('{')
        .and_then(|l| l.strip_suffix('}'))
        .unwrap_or_else(|| panic!("labels in braces, {at}"));
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").expect(at);
        assert!(valid_name(name), "label name, {at}");
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().expect(at) {
                (_, '\\') => assert!(matches!(chars.next(), Some((_, '\\' | '"' | 'n'))), "{at}"),
                (i, '"') => break i,
                _ => {}
            }
        };
        rest = &after[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

fn fleet() -> Fleet {
    let mut f = Fleet {
        charged: "12.50".parse().unwrap(),
        currency: Some("USDT".into()),
        ..Fleet::default()
    };
    f.cards.insert(("active".into(), "VISA_USD_STD".into()), 3);
    f.cards.insert(("frozen".into(), "VISA_USD_STD".into()), 1);
    f.cards
        .insert(("pending".into(), "MC \"odd\"\\code".into()), 2);
    f.orders_in_flight.insert("issue".into(), 2);
    f
}

#[test]
fn the_exposition_is_well_formed_and_says_what_state_and_counters_hold() {
    let counters = Counters::default();
    counters.leader.store(true, Ordering::Relaxed);
    counters
        .last_reconcile_millis
        .store(1234, Ordering::Relaxed);
    counters
        .last_success_unix
        .store(1_765_000_000, Ordering::Relaxed);
    Counters::bump(&counters.webhooks_duplicate);
    Counters::bump(&counters.reconciles);
    let mut calls = ClientStats {
        rate_limited: 4,
        ..ClientStats::default()
    };
    calls.results.insert(
        "cards/create".into(),
        [("ok".to_owned(), 7), ("rate_limited".to_owned(), 4)].into(),
    );
    let text = render(&fleet(), &counters, &calls);
    let s = parse(&text);
    assert_eq!(
        s[r#"cardform_cards{status="active",product="VISA_USD_STD"}"#],
        "3"
    );
    assert_eq!(
        s[r#"cardform_cards{status="pending",product="MC \"odd\"\\code"}"#],
        "2"
    );
    assert_eq!(s[r#"cardform_orders_in_flight{kind="issue"}"#], "2");
    // The Decimal's own digits, trailing zero kept: no float went in between.
    assert_eq!(s[r#"cardform_charged{currency="USDT"}"#], "12.50");
    assert_eq!(
        s[r#"cardform_provider_requests_total{endpoint="cards/create",result="rate_limited"}"#],
        "4"
    );
    assert_eq!(s["cardform_provider_rate_limited_total"], "4");
    assert_eq!(s["cardform_leader"], "1");
    assert_eq!(s["cardform_reconcile_duration_seconds"], "1.234");
    assert_eq!(
        s["cardform_last_reconcile_success_timestamp_seconds"],
        "1765000000"
    );
    assert_eq!(s["cardform_reconciles_total"], "1");
    assert_eq!(s[r#"cardform_webhooks_total{result="duplicate"}"#], "1");
    assert_eq!(s[r#"cardform_webhooks_total{result="refused"}"#], "0");
    assert_eq!(s["cardform_pending_approvals"], "0");
}

#[test]
fn the_parser_refuses_what_prometheus_would() {
    for bad in [
        "x 1\n",                                 // no TYPE
        "# TYPE x gauge\nx{a=\"b} 1\n",          // unterminated label
        "# TYPE x gauge\nx 1.2.3\n",             // not a number
        "# TYPE x counter\nx 1\n",               // counter without _total
        "# TYPE x gauge\n# TYPE x gauge\nx 1\n", // two TYPEs
        "# TYPE x gauge\nx{a=\"\\t\"} 1\n",      // unknown escape
    ] {
        assert!(std::panic::catch_unwind(|| parse(bad)).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn a_stale_value_is_read_again_a_fresh_one_is_not() {
    let cache = Cached::new(Duration::from_millis(50));
    let reads = std::sync::atomic::AtomicU32::new(0);
    let load = || async { Ok::<_, ()>(reads.fetch_add(1, Ordering::Relaxed)) };
    assert_eq!(*cache.get(load).await.unwrap(), 0);
    assert_eq!(*cache.get(load).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(*cache.get(load).await.unwrap(), 1);
    // A failed read keeps nothing: the next one tries again.
    let failing = Cached::<u32>::new(Duration::from_secs(60));
    assert!(failing.get(|| async { Err::<u32, _>(()) }).await.is_err());
    assert_eq!(*failing.get(|| async { Ok::<_, ()>(5) }).await.unwrap(), 5);
}

#[tokio::test]
async fn the_route_answers_the_format_from_a_real_state() {
    use tower::ServiceExt;
    let (shared, _dir) = crate::serve::dashboard::test_support::shared().await;
    let app = routes().with_state(shared);
    let resp = app
        .oneshot(
            axum::http::Request::get("/metrics")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let s = parse(std::str::from_utf8(&body).unwrap());
    assert_eq!(s["cardform_leader"], "0");
    assert!(
        !s.keys().any(|k| k.starts_with("cardform_cards{")),
        "an empty state has no cards"
    );
}
