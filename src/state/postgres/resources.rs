//! Reading the records of resources other than cards in a PostgreSQL state, now and as the change
//! log says they were after a run (the SQLite backend's `resources.rs`, in this dialect). Writing
//! them is `state::rules`'. Generic over the kind of resource.

use sqlx::PgConnection;
use std::collections::BTreeMap;

use super::PgStore;
use crate::model::{Address, ResourceKind};
use crate::state::StateError;
use crate::state::codec::resources_from_packed;
use crate::state::model::ResourceRecord;

pub(super) const RESOURCE_PACKED: &str =
    "json_build_array(resource_kind, resource_key, image::json, created_at, updated_at, serial)";

impl PgStore {}

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
