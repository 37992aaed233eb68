//! Resources other than cards in a PostgreSQL state: their records, each write logged in the
//! change log, and the rule that a record follows its orders in the transaction that writes them
//! (the SQLite backend's `resources.rs`, in this dialect). Generic over the kind of resource.

use sqlx::PgConnection;
use std::collections::BTreeMap;

use super::{PgStore, serial_err};
use crate::model::{Address, ResourceKind};
use crate::state::codec::{
    self, record_after_order, resource_change_json, resource_image_json, resources_from_changes,
    resources_from_packed, serial_i64,
};
use crate::state::model::{OrderRecord, ResourceRecord};
use crate::state::{StateError, now};

pub(super) const RESOURCE_PACKED: &str =
    "json_build_array(resource_kind, resource_key, image::json, created_at, updated_at, serial)";

impl PgStore {
    pub(in crate::state) async fn put_resource(
        &self,
        serial: u64,
        record: &ResourceRecord,
    ) -> Result<(), StateError> {
        let mut tx = self.write().await?;
        put_resource_in(&mut tx, serial, record).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(in crate::state) async fn remove_resource(
        &self,
        serial: u64,
        address: &Address,
    ) -> Result<bool, StateError> {
        let mut tx = self.write().await?;
        let gone = remove_resource_in(&mut tx, serial, address).await?;
        tx.commit().await?;
        Ok(gone)
    }

    pub(in crate::state) async fn get_resource(
        &self,
        address: &Address,
    ) -> Result<Option<ResourceRecord>, StateError> {
        let mut conn = self.pool.acquire().await?;
        get_resource_in(&mut conn, address).await
    }

    pub(in crate::state) async fn resources(
        &self,
        kind: Option<ResourceKind>,
    ) -> Result<Vec<ResourceRecord>, StateError> {
        let mut conn = self.pool.acquire().await?;
        Ok(resources_in(&mut conn, kind).await?.into_values().collect())
    }

    pub(in crate::state) async fn topup_records_of(
        &self,
        card: &str,
    ) -> Result<Vec<ResourceRecord>, StateError> {
        let mut conn = self.pool.acquire().await?;
        Ok(topup_records_in(&mut conn, card)
            .await?
            .into_iter()
            .map(|(r, _)| r)
            .collect())
    }

    pub(in crate::state) async fn resources_at(
        &self,
        serial: u64,
    ) -> Result<BTreeMap<Address, ResourceRecord>, StateError> {
        let packed: String = sqlx::query_scalar(
            "SELECT coalesce(json_agg(c.image::json), '[]')::text FROM changes AS c \
             WHERE c.resource_kind <> 'card' AND c.image IS NOT NULL \
               AND c.serial = (SELECT max(l.serial) FROM changes AS l \
                               WHERE l.resource_kind = c.resource_kind \
                                 AND l.resource_key = c.resource_key AND l.serial <= $1)",
        )
        .bind(i64::try_from(serial).unwrap_or(i64::MAX))
        .fetch_one(&self.pool)
        .await?;
        resources_from_changes(&packed)
    }
}

pub(super) async fn resources_in(
    conn: &mut PgConnection,
    kind: Option<ResourceKind>,
) -> Result<BTreeMap<Address, ResourceRecord>, StateError> {
    let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(json_agg({RESOURCE_PACKED} ORDER BY resource_kind, resource_key), \
         '[]')::text FROM resources WHERE $1::text IS NULL OR resource_kind = $1"
    )))
    .bind(kind.map(ResourceKind::as_str))
    .fetch_one(&mut *conn)
    .await?;
    Ok(resources_from_packed(&packed)?
        .into_iter()
        .map(|(r, _)| (r.address.clone(), r))
        .collect())
}

async fn get_resource_in(
    conn: &mut PgConnection,
    address: &Address,
) -> Result<Option<ResourceRecord>, StateError> {
    let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(json_agg({RESOURCE_PACKED}), '[]')::text FROM resources \
         WHERE resource_kind = $1 AND resource_key = $2"
    )))
    .bind(address.kind.as_str())
    .bind(&address.key)
    .fetch_one(&mut *conn)
    .await?;
    Ok(resources_from_packed(&packed)?.pop().map(|(r, _)| r))
}

pub(super) async fn put_resource_in(
    conn: &mut PgConnection,
    serial: u64,
    r: &ResourceRecord,
) -> Result<(), StateError> {
    if r.image.kind() != r.address.kind {
        return Err(StateError::Corrupt(format!(
            "a {} image for {}",
            r.image.kind(),
            r.address
        )));
    }
    let s = serial_i64(serial)?;
    sqlx::query(
        "INSERT INTO resources (resource_kind, resource_key, image, serial, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (resource_kind, resource_key) DO UPDATE SET image = excluded.image, \
           serial = excluded.serial, created_at = excluded.created_at, \
           updated_at = excluded.updated_at",
    )
    .bind(r.address.kind.as_str())
    .bind(&r.address.key)
    .bind(resource_image_json(&r.image)?)
    .bind(s)
    .bind(&r.created_at)
    .bind(&r.updated_at)
    .execute(&mut *conn)
    .await
    .map_err(serial_err(serial))?;
    log_change(conn, serial, &r.address, Some(resource_change_json(r)?)).await
}

async fn remove_resource_in(
    conn: &mut PgConnection,
    serial: u64,
    address: &Address,
) -> Result<bool, StateError> {
    let gone = sqlx::query("DELETE FROM resources WHERE resource_kind = $1 AND resource_key = $2")
        .bind(address.kind.as_str())
        .bind(&address.key)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0;
    if gone {
        log_change(conn, serial, address, None).await?;
    }
    Ok(gone)
}

async fn log_change(
    conn: &mut PgConnection,
    serial: u64,
    address: &Address,
    image: Option<String>,
) -> Result<(), StateError> {
    sqlx::query(
        "INSERT INTO changes (resource_kind, resource_key, serial, image) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (resource_kind, resource_key, serial) DO UPDATE SET image = excluded.image",
    )
    .bind(address.kind.as_str())
    .bind(&address.key)
    .bind(serial_i64(serial)?)
    .bind(image)
    .execute(&mut *conn)
    .await
    .map_err(serial_err(serial))?;
    Ok(())
}

/// Brings the record of `order`'s resource up to the order, in the transaction writing the order.
pub(super) async fn follow_order_in(
    conn: &mut PgConnection,
    serial: u64,
    order: &OrderRecord,
    declared: Option<&ResourceRecord>,
) -> Result<(), StateError> {
    if order.address.kind.is_card() {
        return Ok(());
    }
    let stored = get_resource_in(conn, &order.address).await?;
    // Only a top-up's record says what it cost.
    let orders = match order.address.kind {
        ResourceKind::Topup => super::orders_of_in(conn, &order.address).await?,
        _ => Vec::new(),
    };
    if let Some(record) = record_after_order(stored, declared, order, &orders) {
        put_resource_in(conn, serial, &record).await?;
    }
    Ok(())
}

async fn topup_records_in(
    conn: &mut PgConnection,
    card: &str,
) -> Result<Vec<(ResourceRecord, u64)>, StateError> {
    let (from, to) = codec::topup_key_range(card);
    let packed: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT coalesce(json_agg({RESOURCE_PACKED} ORDER BY resource_key), '[]')::text \
         FROM resources WHERE resource_kind = 'topup' AND resource_key >= $1 \
           AND resource_key < $2"
    )))
    .bind(from)
    .bind(to)
    .fetch_one(&mut *conn)
    .await?;
    resources_from_packed(&packed)
}

/// Moves the records of card `old`'s top-ups to card `new` (a card rename).
pub(super) async fn rename_topups_in(
    conn: &mut PgConnection,
    serial: u64,
    old: &str,
    new: &str,
) -> Result<(), StateError> {
    for (mut r, _) in topup_records_in(conn, old).await? {
        remove_resource_in(conn, serial, &r.address).await?;
        let Some(id) = r.address.topup_id().map(str::to_owned) else {
            continue;
        };
        r.address = Address::topup(new, &id);
        if let crate::state::ResourceImage::Topup(t) = &mut r.image {
            t.card = new.to_owned();
        }
        r.updated_at = now();
        put_resource_in(conn, serial, &r).await?;
    }
    Ok(())
}
