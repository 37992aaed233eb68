//! Which resources each run changed since a given serial, read from the change log: what
//! `apply PLANFILE` asks to decide whether a saved plan is stale for what it touches.
//!
//! Answers the question only; what makes a plan stale is `plan::stale`'s to decide. Read over the
//! seam (`Tx::changes_since`, its text `sql::CHANGES_SINCE`).

use super::seam::Tx;
use super::{Backend, StateError, Store};
use crate::model::Address;

/// One resource changed by the run `serial` (its record written, or removed).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Changed {
    pub serial: u64,
    pub address: Address,
}

impl Store {
    /// Every resource a run after `serial` changed, oldest run first, one entry per resource
    /// and run.
    pub async fn changes_since(&self, serial: u64) -> Result<Vec<Changed>, StateError> {
        let rows = super::on_reader!(self, Tx::changes_since, serial)?;
        rows.into_iter()
            .map(|(kind, key, s)| {
                Ok(Changed {
                    serial: super::codec::serial_u64(s)?,
                    address: super::codec::address(kind, key)?,
                })
            })
            .collect()
    }
}
