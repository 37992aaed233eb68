//! The SQLite store (sqlx): schema migrations, snapshots, the order journal and history. The only
//! place that holds SQL. Must not decide what to do.

pub mod model;
pub use model::*;
