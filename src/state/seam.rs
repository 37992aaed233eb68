//! The backend seam: what a backend offers inside one write transaction, and nothing more. Each
//! method is one dialect primitive (read, insert-if-absent, update or delete a row by key, append
//! to the change log, re-key a resource, a bulk read of one resource's orders, the fencing
//! check); the rules that combine them (journal conflicts, the money rule, a record following
//! its orders, renames, fee lessons) live once in `rules`, generic over this trait.
//!
//! Must not decide anything: an implementation runs its statement (texts in `sql`) and decodes
//! what it read. Most primitives are written once, in [`shared_primitives!`], over the shared
//! texts; a third backend is its statement texts, a connection, its reads and that macro.
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
use super::{LockInfo, ObservedFee, RunRecord, StateError};
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
    /// Runs `statement` (`sql::SET_CURRENCY`, `sql::SET_PROVIDER`) with `value` as `$1`.
    fn set_info(&mut self, statement: &'static str, value: &str) -> impl Step<()>;

    // Bulk reads, for the snapshot `rules::snapshot_in` assembles in one read transaction.

    /// The state's lineage and serial.
    fn lineage_serial(&mut self) -> impl Step<(String, u64)>;
    /// Every managed card, by key.
    fn all_cards(&mut self) -> impl Step<BTreeMap<CompactString, CardRecord>>;
    /// Orders not yet terminal of resources state still manages, in journal order.
    fn open_orders(&mut self) -> impl Step<Vec<OrderRecord>>;
    /// The last fee seen per product.
    fn observed_fees(&mut self) -> impl Step<BTreeMap<String, Decimal>>;
    /// Every top-up as its orders say it stands, by address key.
    fn topups(&mut self) -> impl Step<BTreeMap<String, TopupState>>;
    /// The records of `kind` (of every kind but cards, with `None`), by address.
    fn resources(
        &mut self,
        kind: Option<ResourceKind>,
    ) -> impl Step<BTreeMap<Address, ResourceRecord>>;
    /// The keys that left state, with the card orders still under each.
    fn removed_cards(&mut self) -> impl Step<BTreeMap<CompactString, Vec<OrderRecord>>>;

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
    fn topup_orders(&mut self, card: &str) -> impl Step<Vec<OrderRecord>>;
    /// Failed orders charged whose refund is unknown (`sql::REFUND_UNKNOWN`), in journal order.
    fn refunds_unknown(&mut self) -> impl Step<Vec<OrderRecord>>;
    /// Recorded calls in time order, from `from` (microseconds since the epoch) on.
    fn calls(&mut self, from: i64) -> impl Step<Vec<CallRecord>>;
}

/// The `state_info` row: lineage, serial, currency, provider.
pub(super) type StateInfo = (String, i64, Option<String>, Option<String>);

/// `$statement` (`sql::INSERT_ORDER` or `sql::UPSERT_ORDER`) with an order's fields bound in its
/// placeholders' order; a new entry was sent by run `$serial`, under which it is written. Inside
/// a function returning `Result<_, StateError>`.
macro_rules! order_row {
    ($statement:expr, $o:expr, $serial:expr) => {{
        let o = $o;
        sqlx::query($statement)
            .bind(&o.idempotency_key)
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
            .bind($crate::state::codec::serial_i64(
                o.sent_serial.unwrap_or($serial),
            )?)
            .bind(o.refunded.map(|d| d.to_string()))
            .bind($crate::state::codec::serial_i64($serial)?)
    }};
}
pub(super) use order_row;

/// The primitives whose statement text both dialects share (or pick from a [`Dialects`] pair),
/// written once and stamped into each backend's `impl Tx`: `$dialect` names the pair's field
/// (`sqlite`, `postgres`), `$substr` the integer type the dialect's `substr` takes. A backend
/// writes by hand only what it reads back its own way (orders, cards, resources) and the
/// fencing check.
///
/// [`Dialects`]: super::sql::Dialects
macro_rules! shared_primitives {
    ($dialect:ident, $substr:ty) => {
        async fn lineage_serial(&mut self) -> Result<(String, u64), $crate::state::StateError> {
            let (lineage, serial): (String, i64) =
                sqlx::query_as($crate::state::sql::LINEAGE_SERIAL)
                    .fetch_one(&mut *self)
                    .await?;
            Ok((lineage, $crate::state::codec::serial_u64(serial)?))
        }

        async fn observed_fees(
            &mut self,
        ) -> Result<
            std::collections::BTreeMap<String, ::rust_decimal::Decimal>,
            $crate::state::StateError,
        > {
            let rows: Vec<(String, String)> = sqlx::query_as($crate::state::sql::OBSERVED_FEES)
                .fetch_all(&mut *self)
                .await?;
            rows.into_iter()
                .map(|(product, charge)| {
                    Ok((
                        product,
                        $crate::state::codec::decimal("observed fee", &charge)?,
                    ))
                })
                .collect()
        }

        async fn topups(
            &mut self,
        ) -> Result<
            std::collections::BTreeMap<String, $crate::state::TopupState>,
            $crate::state::StateError,
        > {
            let rows: Vec<$crate::state::journal::TopupRow> =
                sqlx::query_as($crate::state::sql::TOPUPS_SQL)
                    .fetch_all(&mut *self)
                    .await?;
            $crate::state::journal::topups_from_rows(rows)
        }

        async fn insert_order(
            &mut self,
            serial: u64,
            o: &$crate::state::OrderRecord,
        ) -> Result<bool, $crate::state::StateError> {
            let q = $crate::state::seam::order_row!($crate::state::sql::INSERT_ORDER, o, serial);
            Ok(q.execute(&mut *self)
                .await
                .map_err(serial_err(serial))?
                .rows_affected()
                > 0)
        }

        async fn update_order(
            &mut self,
            serial: u64,
            o: &$crate::state::OrderRecord,
        ) -> Result<bool, $crate::state::StateError> {
            let q = $crate::state::seam::order_row!($crate::state::sql::UPSERT_ORDER, o, serial);
            Ok(q.execute(&mut *self)
                .await
                .map_err(serial_err(serial))?
                .rows_affected()
                > 0)
        }

        async fn write_card(
            &mut self,
            serial: u64,
            c: &$crate::state::CardRecord,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query($crate::state::sql::WRITE_CARD.$dialect)
                .bind(c.key.as_str())
                .bind(c.external_user_id.as_str())
                .bind(c.product_code.as_str())
                .bind(c.initial_topup.map(|d| d.to_string()))
                .bind(c.desired_status.as_str())
                .bind($crate::state::codec::labels_json(&c.labels)?)
                .bind(c.card_id.as_deref())
                .bind(c.phase.as_str())
                .bind(c.provider_status.as_deref())
                .bind(c.last4.as_deref())
                .bind(c.charged.to_string())
                .bind(i64::from(c.attempt))
                .bind(c.replaced_by.as_deref())
                .bind(c.created_at.as_str())
                .bind(c.updated_at.as_str())
                .bind(c.balance.map(|d| d.to_string()))
                .bind($crate::state::codec::serial_i64(serial)?)
                .execute(&mut *self)
                .await
                .map_err(serial_err(serial))?;
            Ok(())
        }

        async fn write_resource(
            &mut self,
            serial: u64,
            r: &$crate::state::ResourceRecord,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query($crate::state::sql::WRITE_RESOURCE)
                .bind(r.address.kind.as_str())
                .bind(&r.address.key)
                .bind($crate::state::codec::resource_image_json(&r.image)?)
                .bind($crate::state::codec::serial_i64(serial)?)
                .bind(&r.created_at)
                .bind(&r.updated_at)
                .execute(&mut *self)
                .await
                .map_err(serial_err(serial))?;
            Ok(())
        }

        async fn delete(
            &mut self,
            address: &$crate::model::Address,
        ) -> Result<bool, $crate::state::StateError> {
            let done = if address.kind.is_card() {
                sqlx::query($crate::state::sql::DELETE_CARD).bind(&address.key)
            } else {
                sqlx::query($crate::state::sql::DELETE_RESOURCE)
                    .bind(address.kind.as_str())
                    .bind(&address.key)
            }
            .execute(&mut *self)
            .await?;
            Ok(done.rows_affected() > 0)
        }

        async fn log_change(
            &mut self,
            serial: u64,
            address: &$crate::model::Address,
            image: Option<String>,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query($crate::state::sql::LOG_CHANGE)
                .bind(address.kind.as_str())
                .bind(&address.key)
                .bind($crate::state::codec::serial_i64(serial)?)
                .bind(image)
                .execute(&mut *self)
                .await
                .map_err(serial_err(serial))?;
            Ok(())
        }

        async fn rekey_card(
            &mut self,
            old: &str,
            new: &str,
        ) -> Result<(), $crate::state::StateError> {
            for statement in $crate::state::sql::REKEY_CARD {
                sqlx::query(statement)
                    .bind(new)
                    .bind(old)
                    .execute(&mut *self)
                    .await?;
            }
            let (from, to) = $crate::state::codec::topup_key_range(old);
            let after = <$substr>::try_from(old.chars().count() + 1).unwrap_or(<$substr>::MAX);
            for statement in $crate::state::sql::REKEY_TOPUPS {
                sqlx::query(statement)
                    .bind(new)
                    .bind(after)
                    .bind(&from)
                    .bind(&to)
                    .execute(&mut *self)
                    .await?;
            }
            Ok(())
        }

        async fn insert_call(
            &mut self,
            call: &$crate::state::CallRecord,
        ) -> Result<(), $crate::state::StateError> {
            let at_us = $crate::state::codec::timestamp_micros(&call.at)?;
            sqlx::query($crate::state::sql::INSERT_CALL)
                .bind(at_us)
                .bind($crate::state::codec::stored_call_at(&call.at, at_us))
                .bind(&call.endpoint)
                .bind(&call.idempotency_key)
                .bind(&call.order_id)
                .bind(call.address.as_ref().map(|a| a.kind.as_str()))
                .bind(call.address.as_ref().map(|a| a.key.as_str()))
                .bind(&call.result)
                .bind(call.charge.map(|c| c.to_string()))
                .execute(&mut *self)
                .await?;
            Ok(())
        }

        async fn observe_fee(
            &mut self,
            product: &str,
            charge: ::rust_decimal::Decimal,
            o: &$crate::state::OrderRecord,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query($crate::state::sql::OBSERVE_FEE)
                .bind(product)
                .bind(charge.to_string())
                .bind(&o.updated_at)
                .bind(&o.idempotency_key)
                .execute(&mut *self)
                .await?;
            Ok(())
        }

        async fn next_serial(&mut self) -> Result<u64, $crate::state::StateError> {
            let serial: i64 = sqlx::query_scalar($crate::state::sql::NEXT_SERIAL)
                .fetch_one(&mut *self)
                .await?;
            $crate::state::codec::serial_u64(serial)
        }

        async fn insert_run(
            &mut self,
            run: &$crate::state::RunRecord,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query($crate::state::sql::INSERT_RUN)
                .bind($crate::state::codec::serial_i64(run.serial)?)
                .bind(&run.at)
                .bind(&run.finished_at)
                .bind(&run.user)
                .bind(&run.host)
                .bind(&run.command)
                .bind(run.summary.to_string())
                .execute(&mut *self)
                .await?;
            Ok(())
        }

        async fn finish_run(
            &mut self,
            serial: u64,
            at: &str,
            summary: &str,
        ) -> Result<bool, $crate::state::StateError> {
            let done = sqlx::query($crate::state::sql::FINISH_RUN)
                .bind(at)
                .bind(summary)
                .bind($crate::state::codec::serial_i64(serial)?)
                .execute(&mut *self)
                .await?;
            Ok(done.rows_affected() > 0)
        }

        async fn charged_orders(
            &mut self,
        ) -> Result<Vec<(String, String, String, Option<String>)>, $crate::state::StateError> {
            Ok(sqlx::query_as($crate::state::sql::CHARGED_ORDERS_SQL)
                .fetch_all(&mut *self)
                .await?)
        }

        async fn stored_charges(
            &mut self,
        ) -> Result<Vec<(String, String)>, $crate::state::StateError> {
            Ok(sqlx::query_as($crate::state::sql::STORED_CHARGES)
                .fetch_all(&mut *self)
                .await?)
        }

        async fn load_target(&mut self) -> Result<(i64, i64), $crate::state::StateError> {
            Ok(sqlx::query_as($crate::state::sql::LOAD_TARGET.$dialect)
                .fetch_one(&mut *self)
                .await?)
        }

        async fn set_identity(
            &mut self,
            lineage: &str,
            serial: u64,
            currency: Option<&str>,
            provider: Option<&str>,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query($crate::state::sql::SET_IDENTITY)
                .bind(lineage)
                .bind($crate::state::codec::serial_i64(serial)?)
                .bind(currency)
                .bind(provider)
                .execute(&mut *self)
                .await?;
            Ok(())
        }

        async fn insert_observed_fee(
            &mut self,
            fee: &$crate::state::ObservedFee,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query($crate::state::sql::INSERT_OBSERVED_FEE)
                .bind(&fee.product_code)
                .bind(fee.charge.to_string())
                .bind(&fee.observed_at)
                .bind(&fee.idempotency_key)
                .execute(&mut *self)
                .await?;
            Ok(())
        }

        async fn state_info(
            &mut self,
        ) -> Result<$crate::state::seam::StateInfo, $crate::state::StateError> {
            Ok(sqlx::query_as($crate::state::sql::STATE_INFO)
                .fetch_one(&mut *self)
                .await?)
        }

        async fn runs(
            &mut self,
        ) -> Result<Vec<$crate::state::RunRecord>, $crate::state::StateError> {
            let rows: Vec<$crate::state::codec::RunRow> = sqlx::query_as($crate::state::sql::RUNS)
                .fetch_all(&mut *self)
                .await?;
            rows.into_iter()
                .map($crate::state::codec::run_record)
                .collect()
        }

        async fn run_charges(&mut self) -> Result<Vec<(i64, String)>, $crate::state::StateError> {
            Ok(sqlx::query_as($crate::state::sql::RUN_CHARGES.$dialect)
                .fetch_all(&mut *self)
                .await?)
        }

        async fn topups_sent(&mut self) -> Result<Vec<(i64, i64)>, $crate::state::StateError> {
            Ok(sqlx::query_as($crate::state::sql::TOPUPS_SENT_SQL)
                .fetch_all(&mut *self)
                .await?)
        }

        async fn changes_since(
            &mut self,
            serial: u64,
        ) -> Result<Vec<(String, String, i64)>, $crate::state::StateError> {
            Ok(sqlx::query_as($crate::state::sql::CHANGES_SINCE)
                .bind($crate::state::codec::serial_i64(serial)?)
                .fetch_all(&mut *self)
                .await?)
        }

        async fn summary(
            &mut self,
        ) -> Result<(i64, i64, i64, Option<String>), $crate::state::StateError> {
            Ok(sqlx::query_as($crate::state::sql::SUMMARY)
                .fetch_one(&mut *self)
                .await?)
        }

        async fn cards_at(
            &mut self,
            serial: u64,
        ) -> Result<
            std::collections::BTreeMap<::compact_str::CompactString, $crate::state::CardRecord>,
            $crate::state::StateError,
        > {
            let packed: Option<String> = sqlx::query_scalar($crate::state::sql::CARDS_AT.$dialect)
                .bind(i64::try_from(serial).unwrap_or(i64::MAX))
                .fetch_one(&mut *self)
                .await?;
            $crate::state::codec::cards_from_images(packed.as_deref().unwrap_or("{}"))
        }

        async fn resources_at(
            &mut self,
            serial: u64,
        ) -> Result<
            std::collections::BTreeMap<$crate::model::Address, $crate::state::ResourceRecord>,
            $crate::state::StateError,
        > {
            let packed: Option<String> =
                sqlx::query_scalar($crate::state::sql::RESOURCES_AT.$dialect)
                    .bind(i64::try_from(serial).unwrap_or(i64::MAX))
                    .fetch_one(&mut *self)
                    .await?;
            $crate::state::codec::resources_from_changes(packed.as_deref().unwrap_or("[]"))
        }

        async fn insert_lock(
            &mut self,
            mine: &$crate::state::LockInfo,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query($crate::state::sql::INSERT_LOCK)
                .bind(&mine.lock_id)
                .bind(i64::from(mine.pid))
                .bind(&mine.host)
                .bind(&mine.user)
                .bind(&mine.command)
                .bind(&mine.since)
                .execute(&mut *self)
                .await?;
            Ok(())
        }

        async fn set_info(
            &mut self,
            statement: &'static str,
            value: &str,
        ) -> Result<(), $crate::state::StateError> {
            sqlx::query(statement)
                .bind(value)
                .execute(&mut *self)
                .await?;
            Ok(())
        }
    };
}
pub(super) use shared_primitives;
