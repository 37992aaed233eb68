//! The backend seam: what a backend offers inside one write transaction, and nothing more. Each
//! method is one dialect primitive (read, insert-if-absent, update or delete a row by key, append
//! to the change log, re-key a resource, a bulk read of one resource's orders, the fencing
//! check); the rules that combine them (journal conflicts, the money rule, a record following
//! its orders, renames, fee lessons) live once in `rules`, generic over this trait.
//!
//! Must not decide anything: an implementation runs its statement (texts in `sql`) and decodes
//! what it read, so a third backend is statement texts, a connection and this impl.
//!
//! A small trait rather than sqlx's `Any` driver or a generic over `sqlx::Database`: `Any` loses
//! the column types and the fast SQLite reads, and a generic over the database needs an
//! `Encode + Type` bound for every bound value; here each backend keeps its own decoding (columns
//! on SQLite, packed JSON on PostgreSQL) behind the same few methods, as atuin's `Database`
//! trait and jj's `Backend` do.

use rust_decimal::Decimal;
use std::future::Future;

use super::model::{CardRecord, OrderRecord, ResourceRecord};
use super::{ObservedFee, RunRecord, StateError};
use crate::model::Address;
use crate::state::CallRecord;

/// Result of a primitive, as a future the executor's tasks can hold across threads.
pub(super) trait Step<T>: Future<Output = Result<T, StateError>> + Send {}
impl<T, F: Future<Output = Result<T, StateError>> + Send> Step<T> for F {}

/// One open write transaction of a backend (its connection, between `BEGIN` and `COMMIT`).
pub(super) trait Tx: Send {
    /// Whether the lock row still names `lock_id` (the fencing check; PostgreSQL also holds the
    /// row against a takeover until the commit).
    fn holds_lock(&mut self, lock_id: &str) -> impl Step<bool>;

    /// The journal entry under an idempotency key.
    fn order(&mut self, key: &str) -> impl Step<Option<OrderRecord>>;
    /// Inserts a new journal entry sent by run `serial`; `false` when the key is taken.
    fn insert_order(&mut self, serial: u64, o: &OrderRecord) -> impl Step<bool>;
    /// Writes an entry's progress under `serial`, inserting it when absent; `false` when the key
    /// holds an entry of another identity (resource, kind, attempt, request), which is untouched.
    fn update_order(&mut self, serial: u64, o: &OrderRecord) -> impl Step<bool>;
    /// Every order of `address`, in journal order.
    fn orders_of(&mut self, address: &Address) -> impl Step<Vec<OrderRecord>>;
    /// Every order of card `key` and of its top-ups: what its `charged` is derived from.
    fn card_orders(&mut self, key: &str) -> impl Step<Vec<OrderRecord>>;

    fn card(&mut self, key: &str) -> impl Step<Option<CardRecord>>;
    /// Writes the card row (not its change log: see `rules::put_card_in`).
    fn write_card(&mut self, serial: u64, c: &CardRecord) -> impl Step<()>;
    fn resource(&mut self, address: &Address) -> impl Step<Option<ResourceRecord>>;
    /// Writes the resource row (not its change log).
    fn write_resource(&mut self, serial: u64, r: &ResourceRecord) -> impl Step<()>;
    /// The records of card `card`'s top-ups, in address order.
    fn topup_records(&mut self, card: &str) -> impl Step<Vec<ResourceRecord>>;
    /// Deletes the record at `address` (a card's or another resource's); `false` when none was.
    fn delete(&mut self, address: &Address) -> impl Step<bool>;

    /// The image of `address` after run `serial` (`None`: removed); the last one per run wins.
    fn log_change(
        &mut self,
        serial: u64,
        address: &Address,
        image: Option<String>,
    ) -> impl Step<()>;
    /// Moves card `old`'s journal and audit rows, its top-ups' and `replaced_by` links to `new`.
    fn rekey_card(&mut self, old: &str, new: &str) -> impl Step<()>;
    fn insert_call(&mut self, call: &CallRecord) -> impl Step<()>;
    /// Records the fee an issue order of `product` was charged, unless a later one is known.
    fn observe_fee(&mut self, product: &str, charge: Decimal, o: &OrderRecord) -> impl Step<()>;

    /// The next serial: `state_info`'s goes up by one.
    fn next_serial(&mut self) -> impl Step<u64>;
    /// Records a run as given (`charged` and `topups_sent` are read from the journal, never
    /// stored).
    fn insert_run(&mut self, run: &RunRecord) -> impl Step<()>;
    /// `false` when no run has `serial`.
    fn finish_run(&mut self, serial: u64, at: &str, summary: &str) -> impl Step<bool>;
    /// Every charged order of a card or top-up, `(kind, key, charge, refunded)`: the rows of
    /// `codec::card_costs`.
    fn charged_orders(&mut self) -> impl Step<Vec<(String, String, String, Option<String>)>>;
    /// Every card's `(key, charged)` as stored.
    fn stored_charges(&mut self) -> impl Step<Vec<(String, String)>>;
    /// The serial and the number of runs of a state about to be loaded into.
    fn load_target(&mut self) -> impl Step<(i64, i64)>;
    fn set_identity(
        &mut self,
        lineage: &str,
        serial: u64,
        currency: Option<&str>,
        provider: Option<&str>,
    ) -> impl Step<()>;
    fn insert_observed_fee(&mut self, fee: &ObservedFee) -> impl Step<()>;
    /// Runs `statement` (`sql::SET_CURRENCY`, `sql::SET_PROVIDER`) with `value` as `$1`.
    fn set_info(&mut self, statement: &'static str, value: &str) -> impl Step<()>;
}
