//! Reading the records of resources other than cards in the SQLite state (`resources`), now and as
//! the change log says they were after a run. Writing them, and the rule that a record follows
//! its orders, are `state::rules`'. Generic over the kind: a new kind of resource is a new
//! [`ResourceImage`](crate::state::ResourceImage) variant, never new SQL here.

use sqlx::sqlite::SqliteConnection;
use std::collections::BTreeMap;

use super::*;
use crate::model::ResourceKind;
use crate::state::codec::resources_from_packed;
use crate::state::model::ResourceRecord;

/// The columns of a resource row packed into one JSON array (see `codec::resources_from_packed`).
macro_rules! resource_packed {
    () => {
        "json_array(resource_kind, resource_key, json(image), created_at, updated_at, serial)"
    };
}
pub(super) use resource_packed;

impl SqliteStore {}

/// Every resource record (of `kind`, or of every kind), by address.
pub(super) async fn resources_in(
    conn: &mut SqliteConnection,
    kind: Option<ResourceKind>,
) -> Result<BTreeMap<Address, ResourceRecord>, StateError> {
    let packed: Option<String> = sqlx::query_scalar(concat!(
        "SELECT json_group_array(",
        resource_packed!(),
        ") FROM (SELECT * FROM resources WHERE ?1 IS NULL OR resource_kind = ?1 \
           ORDER BY resource_kind, resource_key)"
    ))
    .bind(kind.map(ResourceKind::as_str))
    .fetch_one(&mut *conn)
    .await?;
    Ok(resources_from_packed(packed.as_deref().unwrap_or("[]"))?
        .into_iter()
        .map(|(r, _)| (r.address.clone(), r))
        .collect())
}
