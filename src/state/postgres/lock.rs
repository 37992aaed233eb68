//! The PostgreSQL lock: a session advisory lock held on a connection of its own for as long as
//! the holder runs. It dies with that connection (a killed process, a lost CI runner, a dropped
//! network), so nobody has to remove it by hand. The `lock` row only says who holds it; a row
//! whose advisory lock is free was left by a holder that died, and the next acquirer replaces it.

use sha2::{Digest, Sha256};
use sqlx::{Connection, PgConnection, Row};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::PgStore;
use crate::state::location::PgLocation;
use crate::state::seam::Tx;
use crate::state::{LockInfo, LockRequest, StateError, now};

/// How often the session holding the lock is checked: a dead one means the lock is gone, and no
/// new order may start after that.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// A lock this process holds.
pub(super) struct Held {
    pub(super) lock_id: String,
    lost: AtomicBool,
}

/// The advisory lock key of one purpose (`state`, `migrate`) of one state: advisory locks are
/// database-wide, and several states share a database.
pub(super) fn key(location: &PgLocation, purpose: &str) -> i64 {
    let digest = Sha256::digest(format!("cardform\0{purpose}\0{}", location.schema()));
    // Non-negative, so `pg_locks` (which shows it as two unsigned halves) can be matched exactly.
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) & i64::MAX
}

fn lock_from_row(row: &sqlx::postgres::PgRow, alive: bool) -> Result<LockInfo, StateError> {
    let pid: i64 = row.try_get(1)?;
    let pid = u32::try_from(pid).map_err(|_| StateError::Corrupt(format!("lock pid {pid}")))?;
    Ok(LockInfo {
        lock_id: row.try_get(0)?,
        pid,
        host: row.try_get(2)?,
        user: row.try_get(3)?,
        command: row.try_get(4)?,
        since: row.try_get(5)?,
        stale: !alive,
    })
}

impl PgStore {
    fn state_key(&self) -> i64 {
        key(&self.location, "state")
    }

    /// One attempt: `Ok(Ok(mine))` when taken, `Ok(Err(holder))` when someone else holds it.
    pub(in crate::state) async fn try_lock(
        &self,
        who: &LockRequest,
    ) -> Result<Result<LockInfo, LockInfo>, StateError> {
        // The slot holds a connection exactly while this handle holds the lock: advisory locks are
        // re-entrant per session, so asking again on that session would "win" a second time.
        let mut slot = self.lock_conn.lock().await;
        let got = match slot.as_ref() {
            Some(_) => None,
            None => {
                let mut conn = PgConnection::connect_with(&self.options).await?;
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(self.state_key())
                    .fetch_one(&mut conn)
                    .await?;
                if got {
                    Some(conn)
                } else {
                    let _ = conn.close().await;
                    None
                }
            }
        };
        let Some(conn) = got else {
            drop(slot);
            let holder = match sqlx::query(crate::state::sql::SELECT_LOCK)
                .fetch_optional(&self.pool)
                .await?
            {
                Some(row) => lock_from_row(&row, true)?,
                // Taken a moment ago, its row not written yet: name what can be named.
                None => LockInfo {
                    lock_id: "(being taken)".into(),
                    pid: 0,
                    host: "?".into(),
                    user: "?".into(),
                    command: "?".into(),
                    since: now(),
                    stale: false,
                },
            };
            return Ok(Err(holder));
        };
        let mine = LockInfo::taken_by(who);
        // Any row here was left by a holder whose session is gone: ours replaces it.
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM lock").execute(&mut *tx).await?;
        tx.insert_lock(&mine).await?;
        tx.commit().await?;
        *slot = Some(conn);
        drop(slot);
        let held = Arc::new(Held {
            lock_id: mine.lock_id.clone(),
            lost: AtomicBool::new(false),
        });
        *self.held.lock().expect("never poisoned") = Some(held.clone());
        tokio::spawn(watch(self.lock_conn.clone(), self.held.clone(), held));
        Ok(Ok(mine))
    }

    /// The lock this handle holds, or the error that it was lost.
    pub(super) fn held_lock(&self) -> Result<Option<Arc<Held>>, StateError> {
        let held = self.held.lock().expect("never poisoned").clone();
        match held {
            Some(h) if h.lost.load(Ordering::SeqCst) => Err(StateError::LockLost),
            h => Ok(h),
        }
    }

    pub(in crate::state) async fn release_lock(&self, lock_id: &str) -> Result<(), StateError> {
        self.held.lock().expect("never poisoned").take();
        sqlx::query(crate::state::sql::DELETE_LOCK)
            .bind(lock_id)
            .execute(&self.pool)
            .await?;
        if let Some(mut conn) = self.lock_conn.lock().await.take() {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(self.state_key())
                .execute(&mut conn)
                .await;
            // Closing the session frees the lock even if the unlock above did not get through.
            let _ = conn.close().await;
        }
        Ok(())
    }

    /// Removes the holder row of `lock_id` and ends the session that holds the advisory lock, if
    /// one still does: what a person asks for when they know that holder is gone for good.
    pub(in crate::state) async fn force_unlock(
        &self,
        lock_id: &str,
    ) -> Result<LockInfo, StateError> {
        let mut tx = self.pool.begin().await?;
        let held = match sqlx::query(crate::state::sql::SELECT_LOCK)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => Some(lock_from_row(&row, true)?),
            None => None,
        };
        let holder = crate::state::lock::unlock_target(held, lock_id)?;
        sqlx::query(crate::state::sql::DELETE_LOCK)
            .bind(lock_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let k = self.state_key();
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND granted AND objsubid = 1 AND database = (SELECT oid FROM pg_database \
             WHERE datname = current_database()) \
             AND ((classid::bigint << 32) | objid::bigint) = $1 AND pid <> pg_backend_pid()",
        )
        .bind(k)
        .execute(&self.pool)
        .await?;
        Ok(holder)
    }

    pub(in crate::state) async fn current_lock(&self) -> Result<Option<LockInfo>, StateError> {
        let Some(row) = sqlx::query(crate::state::sql::SELECT_LOCK)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let alive: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = $1)",
        )
        .bind(self.state_key())
        .fetch_one(&self.pool)
        .await?;
        lock_from_row(&row, alive).map(Some)
    }
}

/// Pings the session that holds `held` until the lock is released; marks it lost when the
/// session dies (a dropped connection, a failover, a terminated backend).
async fn watch(
    conn: Arc<tokio::sync::Mutex<Option<PgConnection>>>,
    current: Arc<std::sync::Mutex<Option<Arc<Held>>>>,
    held: Arc<Held>,
) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let still_ours = current
            .lock()
            .expect("never poisoned")
            .as_ref()
            .is_some_and(|h| Arc::ptr_eq(h, &held));
        if !still_ours {
            return;
        }
        let mut slot = conn.lock().await;
        let Some(c) = slot.as_mut() else { return };
        if c.ping().await.is_err() {
            held.lost.store(true, Ordering::SeqCst);
            return;
        }
    }
}
