//! The PostgreSQL side of the write seam ([`Tx`] on a connection inside a fenced transaction):
//! the reads it decodes its own way (rows packed as JSON, see the module header of `postgres`)
//! and its bulk read of cards; every other primitive is `seam::shared_primitives!`, stamped here
//! with the PostgreSQL texts of `state::sql`, and every other read a default method of [`Tx`]
//! over these. The rules that combine them are `state::rules`'. Must decide nothing.

use sqlx::PgConnection;

use super::{
    CALL_PACKED, CALLS_JOINED, CARD_PACKED, ORDER_PACKED, PgStore, RESOURCE_PACKED, serial_err,
};
use crate::state::StateError;
use crate::state::codec::{self, cards_from_packed, resources_from_packed};
use crate::state::model::{CardRecord, OrderRecord, ResourceRecord};
use crate::state::seam::Tx;
use compact_str::CompactString;
use std::collections::BTreeMap;

impl Tx for PgConnection {
    async fn orders_where(
        &mut self,
        filter: &'static str,
        binds: &[&str],
    ) -> Result<Vec<OrderRecord>, StateError> {
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({ORDER_PACKED} ORDER BY seq), '[]')::text FROM orders \
             WHERE ({filter})"
        )));
        for bind in binds {
            query = query.bind(*bind);
        }
        let packed: String = query.fetch_one(&mut *self).await?;
        codec::orders_from_packed(&packed)
    }

    async fn resources_where(
        &mut self,
        filter: &'static str,
        binds: &[&str],
    ) -> Result<Vec<ResourceRecord>, StateError> {
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({RESOURCE_PACKED} ORDER BY resource_kind, resource_key), \
               '[]')::text FROM resources WHERE ({filter})"
        )));
        for bind in binds {
            query = query.bind(*bind);
        }
        let packed: String = query.fetch_one(&mut *self).await?;
        Ok(resources_from_packed(&packed)?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    async fn card(&mut self, key: &str) -> Result<Option<CardRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg({CARD_PACKED}), '[]')::text FROM cards WHERE key = $1"
        )))
        .bind(key)
        .fetch_one(&mut *self)
        .await?;
        Ok(cards_from_packed(&packed)?.into_values().next())
    }

    crate::state::seam::shared_primitives!(postgres, i32);

    async fn all_cards(&mut self) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        PgStore::all_cards_in(self).await
    }

    async fn dump_rows(&mut self, table: crate::state::dump::Dumped) -> Result<String, StateError> {
        Ok(
            sqlx::query_scalar(sqlx::AssertSqlSafe(super::dump::dump_text(table)))
                .fetch_one(&mut *self)
                .await?,
        )
    }

    async fn calls(&mut self, from: i64) -> Result<Vec<crate::state::CallRecord>, StateError> {
        let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT coalesce(json_agg(json_build_array({CALL_PACKED}) ORDER BY c.at_us, c.id), \
               '[]')::text FROM {CALLS_JOINED} WHERE c.at_us >= $1"
        )))
        .bind(from)
        .fetch_one(&mut *self)
        .await?;
        codec::calls_from_packed(&packed)
    }
}
