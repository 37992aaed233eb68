//! Reading the cards of a snapshot straight from SQLite's C API, on a connection sqlx has handed
//! over (`lock_handle`): the only place this crate calls SQLite itself, and only to read.
//!
//! Why: through sqlx every row crosses from its worker thread over a channel and every value is
//! copied into a row object first, which made reading 100,000 cards take most of a second (packing
//! them into JSON inside SQLite, the workaround before this, cost nearly as much again in JSON
//! encoding and parsing). Stepping the statement here builds each [`CardRecord`] from SQLite's own
//! buffers directly.

use compact_str::CompactString;
use libsqlite3_sys as ffi;
use std::ffi::{CStr, c_int};
use std::ptr::NonNull;

use super::rows::card_columns;
use crate::model::LabelSets;
use crate::state::StateError;
use crate::state::codec::{card_from_columns, corrupt};
use crate::state::model::CardRecord;

/// A prepared statement, finalized when dropped (also on an early return).
struct Statement(NonNull<ffi::sqlite3_stmt>);

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement came from `sqlite3_prepare_v2` and is finalized only here.
        unsafe {
            ffi::sqlite3_finalize(self.0.as_ptr());
        }
    }
}

impl Statement {
    /// Column `i` of the current row as text; `None` for NULL.
    fn text(&self, i: c_int, what: &str) -> Result<Option<&str>, StateError> {
        // SAFETY: the statement is on a row (`step` returned SQLITE_ROW and nothing stepped it
        // since); `sqlite3_column_text` before `sqlite3_column_bytes` is the order SQLite asks
        // for, and the bytes stay valid until the next step, which the borrow of `self` outlives
        // nowhere (every caller copies them out first).
        let bytes = unsafe {
            let p = ffi::sqlite3_column_text(self.0.as_ptr(), i);
            if p.is_null() {
                return Ok(None);
            }
            let n = ffi::sqlite3_column_bytes(self.0.as_ptr(), i);
            std::slice::from_raw_parts(p, usize::try_from(n).unwrap_or(0))
        };
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| corrupt(what, &String::from_utf8_lossy(bytes)))
    }

    /// Column `i` as text that must be there.
    fn required(&self, i: c_int, what: &str) -> Result<&str, StateError> {
        self.text(i, what)?.ok_or_else(|| corrupt(what, "NULL"))
    }

    fn compact(&self, i: c_int, what: &str) -> Result<Option<CompactString>, StateError> {
        Ok(self.text(i, what)?.map(CompactString::from))
    }

    /// Column `i` as an integer, which it must be stored as.
    fn integer(&self, i: c_int, what: &str) -> Result<i64, StateError> {
        // SAFETY: as in `text`.
        unsafe {
            if ffi::sqlite3_column_type(self.0.as_ptr(), i) != ffi::SQLITE_INTEGER {
                return Err(corrupt(what, "not an integer"));
            }
            Ok(ffi::sqlite3_column_int64(self.0.as_ptr(), i))
        }
    }
}

/// SQLite's message for the last failure on `db`.
fn error(db: NonNull<ffi::sqlite3>) -> StateError {
    // SAFETY: `db` is an open connection; the message is copied before any other call.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr())) };
    StateError::Database(msg.to_string_lossy().into_owned())
}

/// Every card, in key order, handed to `each` one at a time (so the caller decides how they are
/// gathered). `db` must be locked away from sqlx's worker for the whole call.
pub(super) fn cards(
    db: NonNull<ffi::sqlite3>,
    mut each: impl FnMut(CardRecord),
) -> Result<(), StateError> {
    const SQL: &str = concat!("SELECT ", card_columns!(), " FROM cards ORDER BY key");
    let mut raw = std::ptr::null_mut();
    // SAFETY: `db` is open and ours alone while the caller holds its lock; SQL is valid UTF-8 of
    // the length given.
    let rc = unsafe {
        ffi::sqlite3_prepare_v2(
            db.as_ptr(),
            SQL.as_ptr().cast(),
            SQL.len() as c_int,
            &mut raw,
            std::ptr::null_mut(),
        )
    };
    let Some(stmt) = NonNull::new(raw).filter(|_| rc == ffi::SQLITE_OK) else {
        return Err(error(db));
    };
    let stmt = Statement(stmt);
    // Cards with the same labels share one copy of them.
    let mut label_sets = LabelSets::default();
    loop {
        // SAFETY: a prepared statement of this connection.
        match unsafe { ffi::sqlite3_step(stmt.0.as_ptr()) } {
            ffi::SQLITE_ROW => each(card(&stmt, &mut label_sets)?),
            ffi::SQLITE_DONE => return Ok(()),
            _ => return Err(error(db)),
        }
    }
}

/// The current row, in [`card_columns!`] order, decoded as every card row is.
fn card(s: &Statement, label_sets: &mut LabelSets) -> Result<CardRecord, StateError> {
    let labels = s.required(5, "labels")?;
    card_from_columns((
        s.required(0, "card key")?.into(),
        s.required(1, "external user id")?.into(),
        s.required(2, "product code")?.into(),
        s.text(3, "initial top-up")?,
        s.required(4, "desired status")?,
        label_sets.share(serde_json::from_str(labels).map_err(|_| corrupt("labels", labels))?),
        s.compact(6, "card id")?,
        s.required(7, "card phase")?,
        s.compact(8, "provider status")?,
        s.compact(9, "last4")?,
        s.required(10, "charged amount")?,
        s.integer(11, "attempt")?,
        s.compact(12, "replaced_by")?,
        s.required(13, "created_at")?.to_owned(),
        s.required(14, "updated_at")?.to_owned(),
        s.text(15, "balance")?,
    ))
}
