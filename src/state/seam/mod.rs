//! The backend seam: what a backend offers inside one write transaction, and nothing more. Each
//! method is one dialect primitive (read, insert-if-absent, update or delete a row by key, append
//! to the change log, re-key a resource, a bulk read of one resource's orders, the fencing
//! check); the rules that combine them (journal conflicts, the money rule, a record following
//! its orders, renames, fee lessons) live once in `rules`, generic over this trait.
//!
//! Must not decide anything: an implementation runs its statement (texts in `sql`) and decodes
//! what it read. Most primitives are written once, in [`shared_primitives!`] (`primitives.rs`),
//! over the shared texts, and every read of orders and resources is a default method here over
//! the two a backend decodes its own way ([`Tx::orders_where`], [`Tx::resources_where`], with
//! the filters of `sql`). A backend writes by hand only those two, a card by key, its bulk read
//! of cards and the audit read: a third backend is its statement texts, a connection, these five
//! reads and that macro.
//!
//! A small trait rather than sqlx's `Any` driver or a generic over `sqlx::Database`: `Any` loses
//! the column types and the fast SQLite reads, and a generic over the database needs an
//! `Encode + Type` bound for every bound value; here each backend keeps its own decoding (columns
//! on SQLite, packed JSON on PostgreSQL) behind the same few methods, as atuin's `Database`
//! trait and jj's `Backend` do.

use compact_str::CompactString;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::future::Future;

use super::model::{CardRecord, OrderRecord, ResourceRecord, TopupState};
use super::sql::{self, Dialects};
use super::{Approval, LockInfo, ObservedFee, RunRecord, StateError};
use super::{codec, journal};
use crate::model::{Address, ResourceKind};
use crate::state::CallRecord;

/// Result of a primitive, as a future the executor's tasks can hold across threads.
pub(super) trait Step<T>: Future<Output = Result<T, StateError>> + Send {}
impl<T, F: Future<Output = Result<T, StateError>> + Send> Step<T> for F {}

/// One open write transaction of a backend (its connection, between `BEGIN` and `COMMIT`), or a
/// connection of its read pool for the reads written once in `reads` and `Store`.
pub(super) trait Tx: Send {
    /// Whether the lock row still names `lock_id` (the fencing check; PostgreSQL also holds the
    /// row against a takeover until the commit).
    fn holds_lock(&mut self, lock_id: &str) -> impl Step<bool>;
    /// Writes the lock row of `mine` (the backend has made room for it).
    fn insert_lock(&mut self, mine: &LockInfo) -> impl Step<()>;

    /// The statement of `pair` in this backend's dialect.
    fn pick(pair: &Dialects) -> &'static str;

    /// The journal entries `filter` selects (a condition of `sql`, `binds` as `$1`.. in order), in
    /// journal order: the one read of the journal every other is written over.
    fn orders_where(&mut self, filter: &'static str, binds: &[&str])
    -> impl Step<Vec<OrderRecord>>;
    /// The resource records (not cards) `filter` selects, as [`Tx::orders_where`], in address
    /// order.
    fn resources_where(
        &mut self,
        filter: &'static str,
        binds: &[&str],
    ) -> impl Step<Vec<ResourceRecord>>;

    /// The journal entry under an idempotency key.
    fn order(&mut self, key: &str) -> impl Step<Option<OrderRecord>> {
        async move { Ok(self.orders_where(sql::ORDER_BY_KEY, &[key]).await?.pop()) }
    }
    /// Inserts a new journal entry sent by run `serial`; `false` when the key is taken.
    fn insert_order(&mut self, serial: u64, o: &OrderRecord) -> impl Step<bool>;
    /// Writes an entry's progress under `serial`, inserting it when absent; `false` when the key
    /// holds an entry of another identity (resource, kind, attempt, request), which is untouched.
    fn update_order(&mut self, serial: u64, o: &OrderRecord) -> impl Step<bool>;
    /// Every order of `address`, in journal order.
    fn orders_of(&mut self, address: &Address) -> impl Step<Vec<OrderRecord>> {
        async move {
            let binds = [address.kind.as_str(), address.key.as_str()];
            self.orders_where(sql::OF_ADDRESS, &binds).await
        }
    }
    /// Every order of card `key` and of its top-ups: what its `charged` is derived from.
    fn card_orders(&mut self, key: &str) -> impl Step<Vec<OrderRecord>> {
        async move {
            let (from, to) = codec::topup_key_range(key);
            self.orders_where(sql::CARD_ORDERS, &[key, &from, &to])
                .await
        }
    }

    fn card(&mut self, key: &str) -> impl Step<Option<CardRecord>>;
    /// Writes the card row (not its change log: see `rules::put_card_in`).
    fn write_card(&mut self, serial: u64, c: &CardRecord) -> impl Step<()>;
    fn resource(&mut self, address: &Address) -> impl Step<Option<ResourceRecord>> {
        async move {
            let binds = [address.kind.as_str(), address.key.as_str()];
            Ok(self.resources_where(sql::OF_ADDRESS, &binds).await?.pop())
        }
    }
    /// Writes the resource row (not its change log).
    fn write_resource(&mut self, serial: u64, r: &ResourceRecord) -> impl Step<()>;
    /// The records of card `card`'s top-ups, in address order.
    fn topup_records(&mut self, card: &str) -> impl Step<Vec<ResourceRecord>> {
        async move {
            let (from, to) = codec::topup_key_range(card);
            self.resources_where(sql::OF_TOPUPS, &[&from, &to]).await
        }
    }
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
    /// `journal::card_costs`.
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
    /// Writes `approvals` under their own ids, then lets the next new one follow them.
    fn insert_approvals(&mut self, approvals: &[Approval]) -> impl Step<()>;
    /// Runs `statement` (`sql::SET_CURRENCY`, `sql::SET_PROVIDER`) with `value` as `$1`.
    fn set_info(&mut self, statement: &'static str, value: &str) -> impl Step<()>;

    // Bulk reads, for the snapshot `rules::snapshot_in` assembles in one read transaction.

    /// The state's lineage and serial.
    fn lineage_serial(&mut self) -> impl Step<(String, u64)>;
    /// Every managed card, by key.
    fn all_cards(&mut self) -> impl Step<BTreeMap<CompactString, CardRecord>>;
    /// Orders not yet terminal of resources state still manages, in journal order.
    fn open_orders(&mut self) -> impl Step<Vec<OrderRecord>> {
        self.orders_where(sql::OPEN_ORDERS, &[])
    }
    /// The last fee seen per product.
    fn observed_fees(&mut self) -> impl Step<BTreeMap<String, Decimal>>;
    /// Every top-up as its orders say it stands, by address key.
    fn topups(&mut self) -> impl Step<BTreeMap<String, TopupState>>;
    /// The records of `kind` (of every kind but cards, with `None`), by address.
    fn resources(
        &mut self,
        kind: Option<ResourceKind>,
    ) -> impl Step<BTreeMap<Address, ResourceRecord>> {
        async move {
            let records = match kind {
                Some(kind) => self.resources_where(sql::OF_KIND, &[kind.as_str()]).await?,
                None => self.resources_where(sql::EVERY, &[]).await?,
            };
            Ok(records
                .into_iter()
                .map(|r| (r.address.clone(), r))
                .collect())
        }
    }
    /// The keys that left state, by the change log's tombstones, no card record holds now.
    fn removed_card_keys(&mut self) -> impl Step<Vec<String>>;
    /// The keys that left state, with the card orders still under each.
    fn removed_cards(&mut self) -> impl Step<BTreeMap<CompactString, Vec<OrderRecord>>> {
        async move {
            let keys = self.removed_card_keys().await?;
            let orders = match keys.is_empty() {
                true => Vec::new(),
                false => {
                    let filter = Self::pick(&sql::REMOVED_CARD_ORDERS);
                    self.orders_where(filter, &[]).await?
                }
            };
            Ok(journal::removed_cards_from(keys, orders))
        }
    }

    // Reads outside the snapshot (`reads.rs`), also on a connection of the read pool.

    /// The identity row: lineage, serial, currency, provider.
    fn state_info(&mut self) -> impl Step<StateInfo>;
    /// Every run, oldest first, as stored (`charged` and `topups_sent` not attached).
    fn runs(&mut self) -> impl Step<Vec<RunRecord>>;
    /// `(sent_serial, terms)` per run: the rows of `journal::attach_charges`.
    fn run_charges(&mut self) -> impl Step<Vec<(i64, String)>>;
    /// `(sent_serial, count)` of top-up orders per run.
    fn topups_sent(&mut self) -> impl Step<Vec<(i64, i64)>>;
    /// `(kind, key, serial)` of every change logged after `serial`.
    fn changes_since(&mut self, serial: u64) -> impl Step<Vec<(String, String, i64)>>;
    /// Serial, cards, live cards and when the last run began (`named::summary_of`'s row).
    fn summary(&mut self) -> impl Step<(i64, i64, i64, Option<String>)>;
    /// The managed cards as they were at the end of run `serial`.
    fn cards_at(&mut self, serial: u64) -> impl Step<BTreeMap<CompactString, CardRecord>>;
    /// The records of resources that are not cards as they were at the end of run `serial`.
    fn resources_at(&mut self, serial: u64) -> impl Step<BTreeMap<Address, ResourceRecord>>;
    /// Every order of card `card`'s top-ups, in journal order (a key range: see
    /// `codec::topup_key_range`).
    fn topup_orders(&mut self, card: &str) -> impl Step<Vec<OrderRecord>> {
        async move {
            let (from, to) = codec::topup_key_range(card);
            self.orders_where(sql::OF_TOPUPS, &[&from, &to]).await
        }
    }
    /// Failed orders charged whose refund is unknown (`sql::REFUND_UNKNOWN`), in journal order.
    fn refunds_unknown(&mut self) -> impl Step<Vec<OrderRecord>> {
        self.orders_where(sql::REFUND_UNKNOWN, &[])
    }
    /// Recorded calls in time order, from `from` (microseconds since the epoch) on.
    fn calls(&mut self, from: i64) -> impl Step<Vec<CallRecord>>;
    /// Every approval, oldest first.
    fn approvals(&mut self) -> impl Step<Vec<Approval>>;
    /// `table` whole, packed as `dump::Dumped` says, for `dump::dump_in`.
    fn dump_rows(&mut self, table: super::dump::Dumped) -> impl Step<String>;
}

/// The `state_info` row: lineage, serial, currency, provider.
pub(super) type StateInfo = (String, i64, Option<String>, Option<String>);

mod primitives;
pub(super) use primitives::{order_row, shared_primitives};
