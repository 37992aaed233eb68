//! A `Shared` over a fresh SQLite state in a temp dir, for the router tests of `serve`'s parts
//! (`serve` itself refuses SQLite; the parts only read through the `Store` seam).

use std::sync::Arc;

use crate::client::{Client, ClientConfig};
use crate::serve::{Shared, State};
use crate::state::{StateLocation, Store};
use crate::wire::Secret;

/// The state and the temp dir that holds it (dropped with the dir).
pub(crate) async fn shared() -> (State, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::create(&StateLocation::file(dir.path().join("state.db")))
        .await
        .expect("a new state");
    let client = Client::new(ClientConfig {
        api_key: Secret::new("test-key"),
        api_secret: Secret::new("test-secret"),
        ..ClientConfig::default()
    })
    .expect("a client");
    let token = Secret::new("test-token-0123456789");
    (Arc::new(Shared::new(store, client, token)), dir)
}
