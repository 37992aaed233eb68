//! Cards in the SQLite state: the snapshot plan reads, one card's reads and writes, and the change
//! log that history, diff and export replay. Must not touch the journal beyond what a snapshot
//! reads.

use compact_str::CompactString;
use sqlx::Row;
use sqlx::sqlite::SqliteConnection;
use std::collections::BTreeMap;

use super::rows::{self, card_columns};
use super::*;

/// Cards arriving in key order, gathered into one map with bounded extra memory: chunks of
/// `limit` cards become small trees, merged like a binary counter (two trees of about the same
/// size become one), so each card is moved a logarithmic number of times rather than once per
/// later chunk. One `collect` of all cards would hold them twice at the end (the buffer and the
/// tree), and inserting them one by one in order would leave the tree's nodes half empty. Large
/// chunks (a few megabytes) keep the merges few: at a million cards, four.
struct Runs {
    limit: usize,
    chunk: Vec<(CompactString, CardRecord)>,
    runs: Vec<BTreeMap<CompactString, CardRecord>>,
}

impl Runs {
    fn new(limit: usize) -> Self {
        Runs {
            limit: limit.max(1),
            chunk: Vec::new(),
            runs: Vec::new(),
        }
    }

    fn push(&mut self, card: CardRecord) {
        self.chunk.push((card.key.clone(), card));
        if self.chunk.len() >= self.limit {
            self.flush();
        }
    }

    fn flush(&mut self) {
        // In key order already: `collect` is a linear bulk build.
        let mut tree: BTreeMap<CompactString, CardRecord> =
            std::mem::take(&mut self.chunk).into_iter().collect();
        while let Some(last) = self.runs.last_mut() {
            if last.len() > tree.len() {
                break;
            }
            // `append` rebuilds packed nodes from both sorted trees.
            last.append(&mut tree);
            tree = self.runs.pop().unwrap_or_default();
        }
        self.runs.push(tree);
    }

    fn finish(mut self) -> BTreeMap<CompactString, CardRecord> {
        self.flush();
        let mut cards = BTreeMap::new();
        while let Some(mut run) = self.runs.pop() {
            run.append(&mut cards);
            cards = run;
        }
        cards
    }
}

impl SqliteStore {
    /// Everything plan needs, read in one transaction so it is a consistent picture.
    pub(in crate::state) async fn snapshot(&self) -> Result<Snapshot, StateError> {
        let mut tx = self.reader.begin().await?;
        let info = sqlx::query("SELECT lineage, serial FROM state_info WHERE id = 1")
            .fetch_one(&mut *tx)
            .await?;
        let lineage: String = info.try_get(0)?;
        let serial = serial_u64(info.try_get(1)?)?;

        let cards = Self::cards_in(&mut tx).await?;

        let mut open_orders: BTreeMap<Address, Vec<OrderRecord>> = BTreeMap::new();
        for o in Self::open_orders_in(&mut tx).await? {
            open_orders.entry(o.address.clone()).or_default().push(o);
        }

        let mut observed_issue_fees = BTreeMap::new();
        for row in sqlx::query("SELECT product_code, charge FROM observed_fees")
            .fetch_all(&mut *tx)
            .await?
        {
            let product: String = row.try_get(0)?;
            let charge: String = row.try_get(1)?;
            observed_issue_fees.insert(product, rows::decimal("observed fee", &charge)?);
        }
        let rows: Vec<crate::state::codec::TopupRow> =
            sqlx::query_as(crate::state::sql::TOPUPS_SQL)
                .fetch_all(&mut *tx)
                .await?;
        let topups = crate::state::codec::topups_from_rows(rows)?;
        let resources = super::resources::resources_in(&mut tx, None).await?;
        let removed_cards = Self::removed_cards_in(&mut tx).await?;
        tx.commit().await?;
        Ok(Snapshot {
            removed_cards,
            lineage,
            serial,
            cards,
            open_orders,
            observed_issue_fees,
            topups,
            resources,
        })
    }

    /// Every managed card, read in key order straight from SQLite (see `raw` for why not
    /// through sqlx), inside the caller's transaction.
    async fn cards_in(
        conn: &mut SqliteConnection,
    ) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        let mut handle = conn.lock_handle().await?;
        let mut runs = Runs::new(SNAPSHOT_CHUNK);
        raw::cards(handle.as_raw_handle(), |card| runs.push(card))?;
        Ok(runs.finish())
    }

    pub(in crate::state) async fn put_card(
        &self,
        serial: u64,
        card: &CardRecord,
    ) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        super::journal::put_card_costed_in(&mut tx, serial, card).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a card (state only) and logs a tombstone; `false` when there was no such card.
    pub(in crate::state) async fn remove_card(
        &self,
        serial: u64,
        key: &str,
    ) -> Result<bool, StateError> {
        let s = serial_i64(serial)?;
        let mut tx = self.write().await?;
        let gone = sqlx::query("DELETE FROM cards WHERE key = ?")
            .bind(key)
            .execute(&mut *tx)
            .await?
            .rows_affected()
            > 0;
        if gone {
            sqlx::query(
                "INSERT INTO changes (resource_kind, resource_key, serial, image) \
                 VALUES ('card', ?, ?, NULL) \
                 ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = NULL",
            )
            .bind(key)
            .bind(s)
            .execute(&mut *tx)
            .await
            .map_err(serial_err(serial))?;
        }
        tx.commit().await?;
        Ok(gone)
    }

    pub(in crate::state) async fn rename_card(
        &self,
        serial: u64,
        old: &str,
        new: &str,
    ) -> Result<bool, StateError> {
        let s = serial_i64(serial)?;
        let mut tx = self.write().await?;
        let card_of = |key: &str| {
            sqlx::query(concat!(
                "SELECT ",
                card_columns!(),
                " FROM cards WHERE key = ?"
            ))
            .bind(key.to_owned())
        };
        let Some(row) = card_of(old).fetch_optional(&mut *tx).await? else {
            return Ok(false);
        };
        let mut card = rows::card(&row)?;
        if card_of(new).fetch_optional(&mut *tx).await?.is_some() {
            return Err(StateError::KeyExists(new.to_owned()));
        }
        sqlx::query("DELETE FROM cards WHERE key = ?")
            .bind(old)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO changes (resource_kind, resource_key, serial, image) \
             VALUES ('card', ?, ?, NULL) \
             ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = NULL",
        )
        .bind(old)
        .bind(s)
        .execute(&mut *tx)
        .await
        .map_err(serial_err(serial))?;
        card.key = new.into();
        card.updated_at = now();
        put_card_in(&mut tx, serial, &card).await?;
        // The journal and the audit follow the card; its idempotency keys stay what they were.
        for sql in [
            "UPDATE orders SET resource_key = ? WHERE resource_kind = 'card' AND resource_key = ?",
            "UPDATE calls SET resource_key = ? WHERE resource_kind = 'card' AND resource_key = ?",
            "UPDATE cards SET replaced_by = ? WHERE replaced_by = ?",
        ] {
            sqlx::query(sql)
                .bind(new)
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        // So do its top-ups (`OLD:ID` becomes `NEW:ID`): the journal says they were sent, and a
        // top-up left under the old key would be sent again under the new one.
        let (from, to) = crate::state::codec::topup_key_range(old);
        for table in ["orders", "calls"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE {table} SET resource_key = ?1 || substr(resource_key, ?2) \
                 WHERE resource_kind = 'topup' AND resource_key >= ?3 AND resource_key < ?4"
            )))
            .bind(new)
            .bind(i64::try_from(old.chars().count() + 1).unwrap_or(i64::MAX))
            .bind(&from)
            .bind(&to)
            .execute(&mut *tx)
            .await?;
        }
        super::resources::rename_topups_in(&mut tx, serial, old, new).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(in crate::state) async fn get_card(
        &self,
        key: &str,
    ) -> Result<Option<CardRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            card_columns!(),
            " FROM cards WHERE key = ?"
        ))
        .bind(key)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(rows::card)
        .transpose()
    }

    /// The managed cards as they were at the end of run `serial`: per key, the latest image at or
    /// before it, unless that image is a removal.
    pub(in crate::state) async fn cards_at(
        &self,
        serial: u64,
    ) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        // Per card, the image of its latest serial up to `serial` (a seek on the primary key);
        // the images are then handed over as one JSON object (see `snapshot` for why).
        let packed: Option<String> = sqlx::query_scalar(
            "SELECT json_group_object(c.resource_key, json(c.image)) FROM changes AS c \
             WHERE c.resource_kind = 'card' AND c.image IS NOT NULL \
               AND c.serial = (SELECT MAX(l.serial) FROM changes AS l \
                               WHERE l.resource_kind = c.resource_kind \
                                 AND l.resource_key = c.resource_key AND l.serial <= ?)",
        )
        .bind(i64::try_from(serial).unwrap_or(i64::MAX))
        .fetch_one(&self.reader)
        .await?;
        rows::cards_from_images(packed.as_deref().unwrap_or("{}"))
    }
}

pub(super) async fn put_card_in(
    conn: &mut SqliteConnection,
    serial: u64,
    c: &CardRecord,
) -> Result<(), StateError> {
    let s = serial_i64(serial)?;
    sqlx::query(concat!(
        "INSERT OR REPLACE INTO cards (",
        card_columns!(),
        ", serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(c.key.as_str())
    .bind(c.external_user_id.as_str())
    .bind(c.product_code.as_str())
    .bind(c.initial_topup.map(|d| d.to_string()))
    .bind(c.desired_status.as_str())
    .bind(rows::labels_json(&c.labels)?)
    .bind(c.card_id.as_deref())
    .bind(c.phase.as_str())
    .bind(c.provider_status.as_deref())
    .bind(c.last4.as_deref())
    .bind(c.charged.to_string())
    .bind(i64::from(c.attempt))
    .bind(c.replaced_by.as_deref())
    .bind(&c.created_at)
    .bind(&c.updated_at)
    .bind(c.balance.map(|d| d.to_string()))
    .bind(s)
    .execute(&mut *conn)
    .await
    .map_err(serial_err(serial))?;
    // Only the last image per (key, serial) matters: history is per run, not per write.
    sqlx::query(
        "INSERT INTO changes (resource_kind, resource_key, serial, image) \
         VALUES ('card', ?, ?, ?) \
         ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = excluded.image",
    )
    .bind(c.key.as_str())
    .bind(s)
    .bind(rows::card_image(c)?)
    .execute(&mut *conn)
    .await
    .map_err(serial_err(serial))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(key: String) -> CardRecord {
        CardRecord {
            key: key.into(),
            external_user_id: "u".into(),
            product_code: "p".into(),
            initial_topup: None,
            desired_status: crate::decl::DesiredStatus::Active,
            labels: Default::default(),
            card_id: None,
            phase: crate::state::CardPhase::Active,
            provider_status: None,
            last4: None,
            charged: Default::default(),
            attempt: 1,
            replaced_by: None,
            created_at: String::new(),
            updated_at: String::new(),
            balance: None,
        }
    }

    /// Whatever the number of cards against the chunk size, each is there once, under its key.
    #[test]
    fn runs_lose_and_repeat_nothing() {
        for limit in [1, 2, 3, 7] {
            for n in 0..60 {
                let mut runs = Runs::new(limit);
                for i in 0..n {
                    runs.push(card(format!("k{i:03}")));
                }
                let cards = runs.finish();
                let keys: Vec<_> = cards.keys().cloned().collect();
                let want: Vec<_> = (0..n).map(|i| format!("k{i:03}")).collect();
                assert_eq!(keys, want, "{n} cards in chunks of {limit}");
                assert!(cards.iter().all(|(k, c)| *k == c.key));
            }
        }
    }
}
