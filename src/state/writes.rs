//! [`Store`]'s writes, once for every backend: each opens the backend's fenced write
//! transaction, applies a rule of `rules` through the backend's [`seam::Tx`](super::seam::Tx),
//! and commits. Must hold no SQL; what each write means is documented on the method.

use super::model::{CardRecord, OrderRecord, ResourceRecord};
use super::seam::Tx;
use super::{Backend, CallRecord, RunInfo, StateError, Store, rules, sql};
use crate::model::Address;

/// Runs `$body` (an expression of `$tx`, the open transaction's connection) in a fenced write
/// transaction of whichever backend this store has, and commits it when the body succeeds.
macro_rules! in_write {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.backend {
            Backend::Sqlite(b) => {
                let mut t = b.write().await?;
                let $tx = &mut *t;
                let out = $body.await?;
                t.commit().await?;
                Ok(out)
            }
            Backend::Postgres(b) => {
                let mut t = b.write().await?;
                let $tx = &mut *t;
                let out = $body.await?;
                t.commit().await?;
                Ok(out)
            }
        }
    };
}

impl Store {
    pub async fn set_currency(&self, currency: &str) -> Result<(), StateError> {
        in_write!(self, |tx| tx.set_info(sql::SET_CURRENCY, currency))
    }

    pub async fn set_provider(&self, provider: &str) -> Result<(), StateError> {
        in_write!(self, |tx| tx.set_info(sql::SET_PROVIDER, provider))
    }

    /// Starts a run: the serial goes up by one and the run is recorded under it.
    pub async fn begin_run(&self, info: RunInfo) -> Result<u64, StateError> {
        in_write!(self, |tx| rules::begin_run_in(tx, &info))
    }

    pub async fn finish_run(
        &self,
        serial: u64,
        summary: &serde_json::Value,
    ) -> Result<(), StateError> {
        in_write!(self, |tx| rules::finish_run_in(tx, serial, summary))
    }

    pub async fn put_card(&self, serial: u64, card: &CardRecord) -> Result<(), StateError> {
        in_write!(self, |tx| rules::put_card_costed_in(tx, serial, card))
    }

    /// Forgets a card (state only) and logs a tombstone; `false` when there was no such card.
    pub async fn remove_card(&self, serial: u64, key: &str) -> Result<bool, StateError> {
        in_write!(self, |tx| rules::remove_in(tx, serial, &Address::card(key)))
    }

    /// Gives card `old` the key `new`, with its journal, charges and audit trail; the change log
    /// records it as `old` removed and `new` added under `serial`. `false` without such a card.
    pub async fn rename_card(&self, serial: u64, old: &str, new: &str) -> Result<bool, StateError> {
        in_write!(self, |tx| rules::rename_card_in(tx, serial, old, new))
    }

    /// Journals an order before its request is sent. Committed when this returns. Journaling the
    /// same key again with the same request is a no-op (the existing entry, with whatever
    /// progress it recorded, is kept); with a different request it is a
    /// [`StateError::JournalConflict`].
    ///
    /// Every write of an order of a resource that is not a card (this, [`Store::record`],
    /// [`Store::record_batch`], [`Store::record_answer`]) brings that resource's record up to the
    /// order in the same transaction; a resource without a record gets the one the order implies.
    ///
    /// Returns the serial of the run that first journaled the entry when it was there already
    /// (its money is that run's, whoever sends it again), or `None` when this call journaled it.
    pub async fn journal_order(
        &self,
        serial: u64,
        order: &OrderRecord,
    ) -> Result<Option<u64>, StateError> {
        in_write!(self, |tx| rules::journal_in(tx, serial, order, None))
    }

    /// [`Store::journal_order`] for a resource that is not a card, with its record as declared
    /// now (its labels): the entry and the record are committed together. Journaling again keeps
    /// where the record's orders stand and takes the declared fields.
    pub async fn journal_order_with(
        &self,
        serial: u64,
        order: &OrderRecord,
        record: &ResourceRecord,
    ) -> Result<Option<u64>, StateError> {
        in_write!(self, |tx| rules::journal_in(
            tx,
            serial,
            order,
            Some(record)
        ))
    }

    /// Updates an order and/or its card in one transaction.
    pub async fn record(
        &self,
        serial: u64,
        order: Option<&OrderRecord>,
        card: Option<&CardRecord>,
    ) -> Result<(), StateError> {
        in_write!(self, |tx| rules::record_in(tx, serial, order, card))
    }

    /// Many [`Store::record`]s in one transaction: all or none are written.
    pub async fn record_batch(
        &self,
        serial: u64,
        items: &[(Option<OrderRecord>, Option<CardRecord>)],
    ) -> Result<(), StateError> {
        in_write!(self, |tx| async move {
            for (order, card) in items {
                rules::record_in(tx, serial, order.as_ref(), card.as_ref()).await?;
            }
            Ok::<_, StateError>(())
        })
    }

    /// Writes the record of a resource that is not a card (cards have [`Store::put_card`]) and
    /// logs its after-image under `serial`.
    pub async fn put_resource(
        &self,
        serial: u64,
        record: &ResourceRecord,
    ) -> Result<(), StateError> {
        in_write!(self, |tx| rules::put_resource_in(tx, serial, record))
    }

    /// Forgets a resource's record (state only) and logs a tombstone; `false` when there was none.
    pub async fn remove_resource(
        &self,
        serial: u64,
        address: &Address,
    ) -> Result<bool, StateError> {
        in_write!(self, |tx| rules::remove_in(tx, serial, address))
    }

    pub async fn record_call(&self, entry: &CallRecord) -> Result<(), StateError> {
        in_write!(self, |tx| tx.insert_call(entry))
    }

    /// An order's progress and the audit row of the answer that moved it, in one transaction.
    pub async fn record_answer(
        &self,
        serial: u64,
        order: &OrderRecord,
        call: &CallRecord,
    ) -> Result<(), StateError> {
        in_write!(self, |tx| rules::record_answer_in(tx, serial, order, call))
    }
}
