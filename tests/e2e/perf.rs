//! Memory-diet checks: the chunked state snapshot must see exactly what the change log says,
//! whatever the number of cards relative to the chunk size.

use cardform::decl::{DesiredStatus, Labels};
use cardform::state::{CardPhase, CardRecord, RunInfo, Store};
use rust_decimal::Decimal;

fn record(key: String, i: usize) -> CardRecord {
    CardRecord {
        key: key.into(),
        external_user_id: format!("user-{i}").into(),
        product_code: "VISA_USD_STD".into(),
        initial_topup: i.is_multiple_of(3).then(|| Decimal::new(i as i64 + 1, 2)),
        desired_status: DesiredStatus::Active,
        labels: Labels::from([("n".to_string(), i.to_string())]),
        card_id: Some(format!("card_{i}").into()),
        phase: if i.is_multiple_of(7) {
            CardPhase::Frozen
        } else {
            CardPhase::Active
        },
        provider_status: Some("active".into()),
        last4: Some(format!("{:04}", i % 10_000).into()),
        charged: Decimal::new(500, 2),
        attempt: 1,
        replaced_by: None,
        balance: None,
        created_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

#[tokio::test]
async fn snapshot_chunks_lose_and_repeat_nothing() {
    // Around the snapshot's chunk size (4096) and a few chunks beyond it.
    for n in [0usize, 1, 4095, 4096, 4097, 8192, 13_001] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::create(&cardform::state::StateLocation::file(
            dir.path().join("s.db"),
        ))
        .await
        .unwrap();
        let serial = store
            .begin_run(RunInfo {
                command: "test".into(),
                user: "u".into(),
                host: "h".into(),
                at: "2026-01-01T00:00:00Z".into(),
            })
            .await
            .unwrap();
        // Keys written out of order, of different lengths, so key order is not write order.
        let items: Vec<_> = (0..n)
            .map(|i| {
                let key = format!("k{}-{}", (i * 7919) % 1000, i);
                (None, Some(record(key, i)))
            })
            .collect();
        store.record_batch(serial, &items).await.unwrap();
        let snap = store.snapshot().await.unwrap();
        assert_eq!(snap.cards.len(), n, "{n} cards");
        // `cards_at` reads the change log in one query: an independent account of the cards.
        assert_eq!(
            snap.cards,
            store.cards_at(serial).await.unwrap(),
            "{n} cards"
        );
        assert!(snap.cards.iter().all(|(k, c)| *k == c.key));
    }
}
