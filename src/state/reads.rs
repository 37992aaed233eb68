//! Reads outside the snapshot, written once over the seam (`seam::Tx` on a connection of the
//! backend's read pool, see `Store`'s `on_reader!`): the state's identity, the run history and
//! the change log since a serial. Each backend offers the rows; how they combine is here.
//!
//! Reads only: must not write, and must not know a dialect (statement texts are `sql`'s).

use super::seam::Tx;
use super::{RunRecord, StateError, codec, journal};

/// One record per serial, oldest first, each with what its orders were charged and how many
/// top-ups it sent, read from the journal (so a killed run's money is counted too).
pub(super) async fn history_in(tx: &mut impl Tx) -> Result<Vec<RunRecord>, StateError> {
    let mut runs = tx.runs().await?;
    journal::attach_charges(&mut runs, tx.run_charges().await?)?;
    journal::attach_topups_sent(&mut runs, tx.topups_sent().await?)?;
    Ok(runs)
}

pub(super) async fn lineage_in(tx: &mut impl Tx) -> Result<String, StateError> {
    Ok(tx.state_info().await?.0)
}

pub(super) async fn serial_in(tx: &mut impl Tx) -> Result<u64, StateError> {
    codec::serial_u64(tx.state_info().await?.1)
}

pub(super) async fn currency_in(tx: &mut impl Tx) -> Result<Option<String>, StateError> {
    Ok(tx.state_info().await?.2)
}

pub(super) async fn provider_in(tx: &mut impl Tx) -> Result<Option<String>, StateError> {
    Ok(tx.state_info().await?.3)
}
