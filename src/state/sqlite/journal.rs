//! The order journal in the SQLite state: entries committed before a request is sent, their
//! progress, the orders still open, and the observed fees kept current as orders settle. An
//! entry's identity (resource, kind, attempt, request) never changes under its key.

use rust_decimal::Decimal;
use sqlx::sqlite::SqliteConnection;

use super::cards::put_card_in;
use super::resources::follow_order_in;
use super::rows::{self, card_columns, order_columns};
use super::*;
use crate::state::codec;
use crate::state::codec::FeeLesson;
use crate::state::money;
use compact_str::CompactString;
use std::collections::BTreeMap;

impl SqliteStore {
    /// Journals an order before its request is sent. Committed when this returns. Journaling the
    /// same key again with the same request is a no-op (the existing entry, with whatever
    /// progress it recorded, is kept); with a different request it is a
    /// [`StateError::JournalConflict`].
    pub(in crate::state) async fn journal_order(
        &self,
        serial: u64,
        order: &OrderRecord,
    ) -> Result<Option<u64>, StateError> {
        self.journal_in(serial, order, None).await
    }

    /// [`Self::journal_order`] for a resource that is not a card, with its record as declared:
    /// the entry and the record are committed together.
    pub(in crate::state) async fn journal_order_with(
        &self,
        serial: u64,
        order: &OrderRecord,
        record: &ResourceRecord,
    ) -> Result<Option<u64>, StateError> {
        self.journal_in(serial, order, Some(record)).await
    }

    async fn journal_in(
        &self,
        serial: u64,
        order: &OrderRecord,
        declared: Option<&ResourceRecord>,
    ) -> Result<Option<u64>, StateError> {
        let mut tx = self.write().await?;
        let inserted = bind_order(
            sqlx::query(concat!(
                "INSERT INTO orders (",
                order_columns!(),
                ", serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (idempotency_key) DO NOTHING"
            )),
            order,
            serial,
        )?
        .bind(serial_i64(serial)?)
        .execute(&mut *tx)
        .await
        .map_err(serial_err(serial))?
        .rows_affected()
            > 0;
        let mut first_sent = None;
        if !inserted {
            let same: Option<i64> = sqlx::query_scalar(
                "SELECT sent_serial FROM orders WHERE idempotency_key = ? AND resource_kind = ? \
                 AND resource_key = ? AND kind = ? AND attempt = ? AND request = ?",
            )
            .bind(&order.idempotency_key)
            .bind(order.address.kind.as_str())
            .bind(&order.address.key)
            .bind(order.kind.as_str())
            .bind(i64::from(order.attempt))
            .bind(&order.request)
            .fetch_optional(&mut *tx)
            .await?;
            match same {
                Some(s) => first_sent = Some(serial_u64(s)?),
                None => {
                    return Err(StateError::JournalConflict {
                        key: order.idempotency_key.clone(),
                    });
                }
            }
        }
        follow_order_in(&mut tx, serial, order, declared).await?;
        tx.commit().await?;
        Ok(first_sent)
    }

    /// Updates an order and/or its card in one transaction.
    pub(in crate::state) async fn record(
        &self,
        serial: u64,
        order: Option<&OrderRecord>,
        card: Option<&CardRecord>,
    ) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        record_in(&mut tx, serial, order, card).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Many [`Store::record`]s in one transaction: all or none are written.
    pub(in crate::state) async fn record_batch(
        &self,
        serial: u64,
        items: &[(Option<OrderRecord>, Option<CardRecord>)],
    ) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        for (order, card) in items {
            record_in(&mut tx, serial, order.as_ref(), card.as_ref()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every order ever journaled for `key`, oldest first.
    pub(in crate::state) async fn orders_of(
        &self,
        address: &Address,
    ) -> Result<Vec<OrderRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE resource_kind = ? AND resource_key = ? ORDER BY seq"
        ))
        .bind(address.kind.as_str())
        .bind(&address.key)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(rows::order)
        .collect()
    }

    /// Every order of card `card`'s top-ups, oldest first (a key range: see `codec`).
    pub(in crate::state) async fn topup_orders_of(
        &self,
        card: &str,
    ) -> Result<Vec<OrderRecord>, StateError> {
        let (from, to) = crate::state::codec::topup_key_range(card);
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE resource_kind = 'topup' AND resource_key >= ? \
              AND resource_key < ? ORDER BY seq"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(rows::order)
        .collect()
    }

    /// Orders not yet terminal, of cards state still manages, oldest first. An order of a card
    /// removed with `state rm` stays in the journal (its key is never reused) but is not tracked.
    pub(in crate::state) async fn open_orders(&self) -> Result<Vec<OrderRecord>, StateError> {
        let mut conn = self.reader.acquire().await?;
        Self::open_orders_in(&mut conn).await
    }

    pub(super) async fn open_orders_in(
        conn: &mut SqliteConnection,
    ) -> Result<Vec<OrderRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE phase IN ('prepared', 'open') \
             AND (resource_kind <> 'card' \
                  OR EXISTS (SELECT 1 FROM cards WHERE cards.key = orders.resource_key)) \
             ORDER BY seq"
        ))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rows::order)
        .collect()
    }

    /// The keys that left state, with the card orders still under each (see
    /// [`Snapshot::removed_cards`]): from the change log's tombstones, an index of them.
    pub(super) async fn removed_cards_in(
        conn: &mut SqliteConnection,
    ) -> Result<BTreeMap<CompactString, Vec<OrderRecord>>, StateError> {
        let keys: Vec<String> = sqlx::query_scalar(crate::state::sql::removed_card_keys_sql(true))
            .fetch_all(&mut *conn)
            .await?;
        let mut orders = Vec::new();
        if !keys.is_empty() {
            for row in &sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM orders WHERE resource_kind = 'card' AND resource_key IN ({}) \
                 ORDER BY seq",
                order_columns!(),
                crate::state::sql::removed_card_keys_sql(true)
            )))
            .fetch_all(&mut *conn)
            .await?
            {
                orders.push(rows::order(row)?);
            }
        }
        Ok(codec::removed_cards_from(keys, orders))
    }

    pub(in crate::state) async fn refunds_unknown(&self) -> Result<Vec<OrderRecord>, StateError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM orders WHERE {} ORDER BY seq",
            order_columns!(),
            crate::state::sql::REFUND_UNKNOWN
        )))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(rows::order)
        .collect()
    }

    pub(in crate::state) async fn get_order(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<OrderRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            order_columns!(),
            " FROM orders WHERE idempotency_key = ?"
        ))
        .bind(idempotency_key)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(rows::order)
        .transpose()
    }
}

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Binds the fields of [`order_columns!`] in order; a new entry was sent by run `serial`.
fn bind_order<'q>(
    q: SqliteQuery<'q>,
    o: &'q OrderRecord,
    serial: u64,
) -> Result<SqliteQuery<'q>, StateError> {
    Ok(q.bind(&o.idempotency_key)
        .bind(o.address.kind.as_str())
        .bind(&o.address.key)
        .bind(o.kind.as_str())
        .bind(i64::from(o.attempt))
        .bind(&o.request)
        .bind(&o.order_id)
        .bind(o.phase.as_str())
        .bind(&o.provider_status)
        .bind(&o.sub_status)
        .bind(&o.error_slug)
        .bind(&o.error_message)
        .bind(o.estimated_charge.map(|d| d.to_string()))
        .bind(o.charge.map(|d| d.to_string()))
        .bind(&o.created_at)
        .bind(&o.updated_at)
        .bind(serial_i64(o.sent_serial.unwrap_or(serial))?)
        .bind(o.refunded.map(|d| d.to_string())))
}

async fn record_in(
    conn: &mut SqliteConnection,
    serial: u64,
    order: Option<&OrderRecord>,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    if let Some(o) = order {
        write_order_in(conn, serial, o).await?;
    }
    if let Some(c) = card {
        put_card_costed_in(conn, serial, c).await?;
    }
    if let Some(o) = order {
        if let Some(key) = o.address.card_key()
            && card.is_none_or(|c| c.key != key)
        {
            recost_card_in(conn, serial, key).await?;
        }
        observe_issue_fee(conn, o, card).await?;
    }
    Ok(())
}

/// Writes an order's progress with what follows from it in the same transaction: its resource's
/// record, and the audit row of a refund the provider just reported (once, however often the
/// order is settled).
pub(super) async fn write_order_in(
    conn: &mut SqliteConnection,
    serial: u64,
    o: &OrderRecord,
) -> Result<(), StateError> {
    let before = order_in(conn, &o.idempotency_key).await?;
    if codec::is_late_write(before.as_ref(), o)? {
        return Ok(());
    }
    upsert_order(conn, serial, o).await?;
    follow_order_in(conn, serial, o, None).await?;
    if let Some(amount) = money::new_refund(before.as_ref(), o) {
        super::runs::insert_call(conn, &money::refund_call(o, amount, &o.updated_at)).await?;
    }
    Ok(())
}

/// The journal entry under `key`, as the transaction sees it.
async fn order_in(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<Option<OrderRecord>, StateError> {
    sqlx::query(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE idempotency_key = ?"
    ))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(rows::order)
    .transpose()
}

/// Every order of `address`, oldest first, as the transaction sees them.
pub(super) async fn orders_of_in(
    conn: &mut SqliteConnection,
    address: &Address,
) -> Result<Vec<OrderRecord>, StateError> {
    sqlx::query(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE resource_kind = ? AND resource_key = ? ORDER BY seq"
    ))
    .bind(address.kind.as_str())
    .bind(&address.key)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(rows::order)
    .collect()
}

/// Every order of card `key` and of its top-ups: what its `charged` is derived from.
async fn card_orders_in(
    conn: &mut SqliteConnection,
    key: &str,
) -> Result<Vec<OrderRecord>, StateError> {
    let mut orders = orders_of_in(conn, &Address::card(key)).await?;
    let (from, to) = codec::topup_key_range(key);
    for row in &sqlx::query(concat!(
        "SELECT ",
        order_columns!(),
        " FROM orders WHERE resource_kind = 'topup' AND resource_key >= ? \
          AND resource_key < ? ORDER BY seq"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(&mut *conn)
    .await?
    {
        orders.push(rows::order(row)?);
    }
    Ok(orders)
}

/// Writes `card` with `charged` derived from its orders (see [`money`]): whatever the caller
/// computed, the journal decides what a card cost.
pub(super) async fn put_card_costed_in(
    conn: &mut SqliteConnection,
    serial: u64,
    card: &CardRecord,
) -> Result<(), StateError> {
    let cost = money::resource_cost(&card_orders_in(conn, &card.key).await?);
    if cost == card.charged {
        return put_card_in(conn, serial, card).await;
    }
    let mut costed = card.clone();
    costed.charged = cost;
    put_card_in(conn, serial, &costed).await
}

/// The card record under `key`, as the transaction sees it.
async fn card_in(conn: &mut SqliteConnection, key: &str) -> Result<Option<CardRecord>, StateError> {
    sqlx::query(concat!(
        "SELECT ",
        card_columns!(),
        " FROM cards WHERE key = ?"
    ))
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?
    .as_ref()
    .map(rows::card)
    .transpose()
}

/// Brings the stored card `key`'s `charged` up to its orders, when one of them changed without
/// the card being written (a top-up's order, an acknowledged issue order).
pub(super) async fn recost_card_in(
    conn: &mut SqliteConnection,
    serial: u64,
    key: &str,
) -> Result<(), StateError> {
    let Some(card) = card_in(conn, key).await? else {
        return Ok(());
    };
    let cost = money::resource_cost(&card_orders_in(conn, key).await?);
    if cost != card.charged {
        put_card_in(
            conn,
            serial,
            &CardRecord {
                charged: cost,
                ..card
            },
        )
        .await?;
    }
    Ok(())
}

/// Writes an order's progress. The identity of a journaled order (card, kind, attempt, request)
/// never changes under its key: that is what makes resending the key safe.
pub(super) async fn upsert_order(
    conn: &mut SqliteConnection,
    serial: u64,
    o: &OrderRecord,
) -> Result<(), StateError> {
    let written = bind_order(
        sqlx::query(concat!(
            "INSERT INTO orders (",
            order_columns!(),
            ", serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (idempotency_key) DO UPDATE SET \
               order_id = excluded.order_id, phase = excluded.phase, \
               provider_status = excluded.provider_status, sub_status = excluded.sub_status, \
               error_slug = excluded.error_slug, error_message = excluded.error_message, \
               estimated_charge = excluded.estimated_charge, charge = excluded.charge, \
               refunded = excluded.refunded, updated_at = excluded.updated_at, \
               serial = excluded.serial \
             WHERE orders.resource_kind = excluded.resource_kind \
               AND orders.resource_key = excluded.resource_key AND orders.kind = excluded.kind \
               AND orders.attempt = excluded.attempt AND orders.request = excluded.request"
        )),
        o,
        serial,
    )?
    .bind(serial_i64(serial)?)
    .execute(&mut *conn)
    .await
    .map_err(serial_err(serial))?
    .rows_affected();
    if written == 0 {
        return Err(StateError::JournalConflict {
            key: o.idempotency_key.clone(),
        });
    }
    Ok(())
}

/// Keeps `observed_fees` current (the rule is [`FeeLesson`]'s); reads the stored card only when
/// neither the request nor the batch says what the order was for.
async fn observe_issue_fee(
    conn: &mut SqliteConnection,
    o: &OrderRecord,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    let lesson = match FeeLesson::of(o, card) {
        FeeLesson::NeedsStoredCard(key) => {
            let stored = card_in(conn, &key).await?;
            FeeLesson::with_stored(o, stored.as_ref())
        }
        lesson => lesson,
    };
    match lesson {
        FeeLesson::Fee { product, charge } => upsert_observed_fee(conn, &product, charge, o).await,
        _ => Ok(()),
    }
}

async fn upsert_observed_fee(
    conn: &mut SqliteConnection,
    product: &str,
    charge: Decimal,
    o: &OrderRecord,
) -> Result<(), StateError> {
    // Most recent wins; an older order recorded late (a resumed run) does not overwrite it.
    sqlx::query(
        "INSERT INTO observed_fees (product_code, charge, observed_at, idempotency_key) \
         VALUES (?, ?, ?, ?) \
         ON CONFLICT (product_code) DO UPDATE SET charge = excluded.charge, \
           observed_at = excluded.observed_at, idempotency_key = excluded.idempotency_key \
         WHERE excluded.observed_at >= observed_fees.observed_at",
    )
    .bind(product)
    .bind(charge.to_string())
    .bind(&o.updated_at)
    .bind(&o.idempotency_key)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The upgrade to schema 7: every card's `charged` recomputed from its orders (a lost lock could
/// have added an order's charge twice; refunds were not counted). The cards whose figure changes
/// are written under a run of their own, so history and diff show the correction. Returns how
/// many changed.
pub(super) async fn recompute_charged_in(conn: &mut SqliteConnection) -> Result<u64, StateError> {
    let rows: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as(crate::state::sql::CHARGED_ORDERS_SQL)
            .fetch_all(&mut *conn)
            .await?;
    let costs = codec::card_costs(rows)?;
    let stored: Vec<(String, String)> = sqlx::query_as("SELECT key, charged FROM cards")
        .fetch_all(&mut *conn)
        .await?;
    let wrong = codec::misstated(stored, &costs)?;
    if wrong.is_empty() {
        return Ok(0);
    }
    let serial: i64 = sqlx::query_scalar(
        "UPDATE state_info SET serial = serial + 1 WHERE id = 1 RETURNING serial",
    )
    .fetch_one(&mut *conn)
    .await?;
    let at = now();
    let summary = serde_json::json!({ "recomputed_charged": wrong.len() });
    sqlx::query(
        "INSERT INTO runs (serial, at, finished_at, actor, host, command, summary) \
         VALUES (?, ?, ?, 'cardform', ?, ?, ?)",
    )
    .bind(serial)
    .bind(&at)
    .bind(&at)
    .bind(crate::state::local_host())
    .bind(money::RECOMPUTE_COMMAND)
    .bind(summary.to_string())
    .execute(&mut *conn)
    .await?;
    let serial = serial_u64(serial)?;
    for (key, charged) in &wrong {
        // Like the PostgreSQL store's: a card in `wrong` was read from this transaction.
        if let Some(card) = card_in(conn, key).await? {
            put_card_in(
                conn,
                serial,
                &CardRecord {
                    charged: *charged,
                    ..card
                },
            )
            .await?;
        }
    }
    Ok(wrong.len() as u64)
}
