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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let inserted = bind_order(
            sqlx::query(concat!(
                "INSERT INTO orders (",
                order_columns!(),
                ", serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
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
        let keys: Vec<String> = sqlx::query_scalar(codec::removed_card_keys_sql(true))
            .fetch_all(&mut *conn)
            .await?;
        let mut orders = Vec::new();
        if !keys.is_empty() {
            for row in &sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM orders WHERE resource_kind = 'card' AND resource_key IN ({}) \
                 ORDER BY seq",
                order_columns!(),
                codec::removed_card_keys_sql(true)
            )))
            .fetch_all(&mut *conn)
            .await?
            {
                orders.push(rows::order(row)?);
            }
        }
        Ok(codec::removed_cards_from(keys, orders))
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
        .bind(serial_i64(o.sent_serial.unwrap_or(serial))?))
}

async fn record_in(
    conn: &mut SqliteConnection,
    serial: u64,
    order: Option<&OrderRecord>,
    card: Option<&CardRecord>,
) -> Result<(), StateError> {
    if let Some(o) = order {
        upsert_order(conn, serial, o).await?;
        follow_order_in(conn, serial, o, None).await?;
    }
    if let Some(c) = card {
        put_card_in(conn, serial, c).await?;
    }
    if let Some(o) = order {
        observe_issue_fee(conn, o, card).await?;
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
            ", serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (idempotency_key) DO UPDATE SET \
               order_id = excluded.order_id, phase = excluded.phase, \
               provider_status = excluded.provider_status, sub_status = excluded.sub_status, \
               error_slug = excluded.error_slug, error_message = excluded.error_message, \
               estimated_charge = excluded.estimated_charge, charge = excluded.charge, \
               updated_at = excluded.updated_at, serial = excluded.serial \
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
            let stored = sqlx::query(concat!(
                "SELECT ",
                card_columns!(),
                " FROM cards WHERE key = ?"
            ))
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?
            .as_ref()
            .map(rows::card)
            .transpose()?;
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
