//! A whole state as a [`StateDump`], for `state migrate` and `state backup`, once for every
//! backend over the seam: which rows a dump holds, in the order they were written, decoded by
//! `codec`. Each backend opens the one read transaction the dump is taken in (a consistent
//! moment even while an apply writes) and packs each table its own way
//! ([`Tx::dump_rows`]); loading a dump is `rules::load_in`'s. Reads only; holds no SQL.

use super::codec;
use super::seam::Tx;
use super::{StateDump, StateError};

/// The tables a backend packs whole for a dump, each row with the serial it was last written
/// under where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dumped {
    /// `[packed card, serial]` in key order.
    Cards,
    /// `[packed order, serial]` in journal order.
    Orders,
    /// Packed resources (their serial inside) in address order.
    Resources,
    /// `[kind, key, serial, image]` in serial, then address order.
    Changes,
    /// `[product, charge, observed_at, idempotency_key]` in product order.
    ObservedFees,
}

/// Every row of the state `tx` reads, inside the caller's read transaction.
pub(super) async fn dump_in<T: Tx + ?Sized>(tx: &mut T) -> Result<StateDump, StateError> {
    let (lineage, serial, currency, provider) = tx.state_info().await?;
    let runs = tx.runs().await?;
    let calls = tx.calls(i64::MIN).await?;
    let cards = tx.dump_rows(Dumped::Cards).await?;
    let orders = tx.dump_rows(Dumped::Orders).await?;
    let resources = tx.dump_rows(Dumped::Resources).await?;
    let changes = tx.dump_rows(Dumped::Changes).await?;
    let fees = tx.dump_rows(Dumped::ObservedFees).await?;
    let approvals = tx.approvals().await?;
    Ok(StateDump {
        lineage,
        currency,
        provider,
        serial: codec::serial_u64(serial)?,
        runs,
        cards: codec::cards_with_serial_from_packed(&cards)?,
        orders: codec::orders_with_serial_from_packed(&orders)?,
        resources: codec::resources_from_packed(&resources)?,
        changes: codec::changes_from_packed(&changes)?,
        calls,
        observed_fees: codec::observed_fees_from_packed(&fees)?,
        approvals,
    })
}
