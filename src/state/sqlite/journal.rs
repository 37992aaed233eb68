//! Reading the order journal of a SQLite state (entries, the orders still open, refunds not yet
//! known) and the schema-7 recomputation of what cards cost. Writing it is `state::rules`' over
//! `tx.rs`. Must not decide what to send.

use sqlx::sqlite::SqliteConnection;

use super::rows::{self, order_columns};
use super::*;
use compact_str::CompactString;
use std::collections::BTreeMap;

impl SqliteStore {
    /// Orders not yet terminal, of cards state still manages, oldest first. An order of a card
    /// removed with `state rm` stays in the journal (its key is never reused) but is not tracked.
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
        Ok(crate::state::journal::removed_cards_from(keys, orders))
    }
}
