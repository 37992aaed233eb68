//! The primitives of [`Tx`](super::Tx) whose statement text both dialects share (or pick from a
//! `sql::Dialects` pair), written once as macros and stamped into each backend's `impl Tx`: a
//! backend's `impl Tx` is its own decoding of what it reads, and these. Must not decide
//! anything: each runs its statement and decodes its rows.

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
pub(in crate::state) use order_row;

/// The primitives whose statement text both dialects share (or pick from a [`Dialects`] pair),
/// written once and stamped into each backend's `impl Tx`: `$dialect` names the pair's field
/// (`sqlite`, `postgres`), `$substr` the integer type the dialect's `substr` takes. A backend
/// writes by hand only what it reads back its own way (orders, cards, resources) and the
/// fencing check.
///
/// [`Dialects`]: super::sql::Dialects
macro_rules! shared_primitives {
    ($dialect:ident, $substr:ty) => {
        fn pick(pair: &$crate::state::sql::Dialects) -> &'static str {
            pair.$dialect
        }

        async fn holds_lock(&mut self, lock_id: &str) -> Result<bool, $crate::state::StateError> {
            let ours = sqlx::query($crate::state::sql::HOLDS_LOCK.$dialect)
                .bind(lock_id)
                .fetch_optional(&mut *self)
                .await?;
            Ok(ours.is_some())
        }

        async fn removed_card_keys(&mut self) -> Result<Vec<String>, $crate::state::StateError> {
            Ok(
                sqlx::query_scalar($crate::state::sql::REMOVED_CARD_KEYS.$dialect)
                    .fetch_all(&mut *self)
                    .await?,
            )
        }

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

        async fn insert_approvals(
            &mut self,
            approvals: &[$crate::state::Approval],
        ) -> Result<(), $crate::state::StateError> {
            for a in approvals {
                let row = $crate::state::approvals::to_row(a)?;
                sqlx::query($crate::state::sql::INSERT_APPROVAL_AS.$dialect)
                    .bind(row.0)
                    .bind(row.1)
                    .bind(row.2)
                    .bind(row.3)
                    .bind(row.4)
                    .bind(row.5)
                    .bind(row.6)
                    .bind(row.7)
                    .bind(row.8)
                    .bind(row.9)
                    .bind(row.10)
                    .execute(&mut *self)
                    .await?;
            }
            sqlx::query($crate::state::sql::SYNC_APPROVAL_IDS.$dialect)
                .execute(&mut *self)
                .await?;
            Ok(())
        }

        async fn approvals(
            &mut self,
        ) -> Result<Vec<$crate::state::Approval>, $crate::state::StateError> {
            let rows: Vec<$crate::state::approvals::Row> =
                sqlx::query_as($crate::state::sql::APPROVALS)
                    .fetch_all(&mut *self)
                    .await?;
            rows.into_iter()
                .map($crate::state::approvals::from_row)
                .collect()
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
pub(in crate::state) use shared_primitives;
