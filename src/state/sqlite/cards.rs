//! Cards in the SQLite state: the snapshot plan reads, one card's read, and the cards as the
//! change log says they were after a run. Writing a card is `state::rules`'. Must not touch the
//! journal beyond what a snapshot reads.

use compact_str::CompactString;
use sqlx::sqlite::SqliteConnection;
use std::collections::BTreeMap;

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
        let snapshot = crate::state::rules::snapshot_in(&mut *tx).await?;
        tx.commit().await?;
        Ok(snapshot)
    }

    /// Every managed card, read in key order straight from SQLite (see `raw` for why not
    /// through sqlx), inside the caller's transaction.
    pub(super) async fn cards_in(
        conn: &mut SqliteConnection,
    ) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        let mut handle = conn.lock_handle().await?;
        let mut runs = Runs::new(SNAPSHOT_CHUNK);
        raw::cards(handle.as_raw_handle(), |card| runs.push(card))?;
        Ok(runs.finish())
    }
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
            created_at: Default::default(),
            updated_at: Default::default(),
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
