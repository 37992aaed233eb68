//! The SQLite side of the write seam ([`Tx`] on a connection inside `BEGIN IMMEDIATE`): the reads
//! it decodes its own way (rows in `rows`' column order, resources packed by SQLite's JSON
//! functions) and its bulk read of cards; every other primitive is `seam::shared_primitives!`,
//! stamped here with the SQLite texts of `state::sql`, and every other read a default method of
//! [`Tx`] over these. The rules that combine them are `state::rules`'. Must decide nothing.

use sqlx::sqlite::SqliteConnection;

use super::SqliteStore;
use super::rows::{self, call_columns, calls_joined, card_columns, order_columns, resource_packed};
use super::serial_err;
use crate::state::StateError;
use crate::state::codec::resources_from_packed;
use crate::state::model::{CardRecord, OrderRecord, ResourceRecord};
use crate::state::seam::Tx;
use compact_str::CompactString;
use std::collections::BTreeMap;

pub(super) const CARD_BY_KEY: &str =
    concat!("SELECT ", card_columns!(), " FROM cards WHERE key = $1");

impl Tx for SqliteConnection {
    async fn orders_where(
        &mut self,
        filter: &'static str,
        binds: &[&str],
    ) -> Result<Vec<OrderRecord>, StateError> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM orders WHERE ({filter}) ORDER BY seq",
            order_columns!()
        )));
        for bind in binds {
            query = query.bind(*bind);
        }
        query
            .fetch_all(&mut *self)
            .await?
            .iter()
            .map(rows::order)
            .collect()
    }

    async fn resources_where(
        &mut self,
        filter: &'static str,
        binds: &[&str],
    ) -> Result<Vec<ResourceRecord>, StateError> {
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT json_group_array({}) FROM (SELECT * FROM resources WHERE ({filter}) \
               ORDER BY resource_kind, resource_key)",
            resource_packed!()
        )));
        for bind in binds {
            query = query.bind(*bind);
        }
        let packed: Option<String> = query.fetch_one(&mut *self).await?;
        Ok(resources_from_packed(packed.as_deref().unwrap_or("[]"))?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    async fn card(&mut self, key: &str) -> Result<Option<CardRecord>, StateError> {
        sqlx::query(CARD_BY_KEY)
            .bind(key)
            .fetch_optional(&mut *self)
            .await?
            .as_ref()
            .map(rows::card)
            .transpose()
    }

    crate::state::seam::shared_primitives!(sqlite, i64);

    async fn all_cards(&mut self) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
        SqliteStore::cards_in(self).await
    }

    async fn dump_rows(&mut self, table: crate::state::dump::Dumped) -> Result<String, StateError> {
        let packed: Option<String> = sqlx::query_scalar(super::dump::dump_text(table))
            .fetch_one(&mut *self)
            .await?;
        Ok(packed.unwrap_or_else(|| "[]".into()))
    }

    async fn calls(&mut self, from: i64) -> Result<Vec<crate::state::CallRecord>, StateError> {
        sqlx::query(concat!(
            "SELECT ",
            call_columns!(),
            " FROM ",
            calls_joined!(),
            " WHERE c.at_us >= ? ORDER BY c.at_us, c.id"
        ))
        .bind(from)
        .fetch_all(&mut *self)
        .await?
        .iter()
        .map(rows::call)
        .collect()
    }
}
