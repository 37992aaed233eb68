//! The SQLite lock: one row in the `lock` table, taken in a `BEGIN IMMEDIATE` transaction so two
//! processes racing for it cannot both win.

use sqlx::Row;
use std::time::Duration;
use tokio::time::Instant;

use super::SqliteStore;
use crate::state::lock::{is_stale, poll_delay};
use crate::state::{LockInfo, LockRequest, StateError, now};

fn lock_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<LockInfo, StateError> {
    let pid: i64 = row.try_get(1)?;
    let pid = u32::try_from(pid).map_err(|_| StateError::Corrupt(format!("lock pid {pid}")))?;
    let host: String = row.try_get(2)?;
    Ok(LockInfo {
        lock_id: row.try_get(0)?,
        pid,
        stale: is_stale(pid, &host),
        host,
        user: row.try_get(3)?,
        command: row.try_get(4)?,
        since: row.try_get(5)?,
    })
}

const SELECT_LOCK: &str = "SELECT lock_id, pid, host, actor, command, since FROM lock WHERE id = 1";

impl SqliteStore {
    /// Takes the lock, polling until `wait` has elapsed; then [`StateError::Locked`] naming the
    /// holder. A zero `wait` fails fast after one look.
    pub(crate) async fn acquire_lock(
        &self,
        who: LockRequest,
        wait: Duration,
    ) -> Result<LockInfo, StateError> {
        let deadline = Instant::now() + wait;
        let mut attempt = 0u32;
        loop {
            match self.try_lock(&who).await? {
                Ok(mine) => return Ok(mine),
                Err(holder) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(StateError::Locked(holder));
                    }
                    tokio::time::sleep(poll_delay(attempt).min(deadline - now)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One attempt: `Ok(Ok(mine))` when taken, `Ok(Err(holder))` when someone else holds it.
    async fn try_lock(&self, who: &LockRequest) -> Result<Result<LockInfo, LockInfo>, StateError> {
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        if let Some(row) = sqlx::query(SELECT_LOCK).fetch_optional(&mut *tx).await? {
            let holder = lock_from_row(&row)?;
            tx.rollback().await?;
            return Ok(Err(holder));
        }
        let mine = LockInfo {
            lock_id: uuid::Uuid::new_v4().to_string(),
            pid: who.pid,
            host: who.host.clone(),
            user: who.user.clone(),
            command: who.command.clone(),
            since: now(),
            stale: false,
        };
        sqlx::query(
            "INSERT INTO lock (id, lock_id, pid, host, actor, command, since) \
             VALUES (1, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&mine.lock_id)
        .bind(i64::from(mine.pid))
        .bind(&mine.host)
        .bind(&mine.user)
        .bind(&mine.command)
        .bind(&mine.since)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(mine))
    }

    /// Releases the lock if `lock_id` still holds it. Releasing a lock that is already gone (say,
    /// force-unlocked by the user) is not an error: the caller's work is done either way.
    pub(crate) async fn release_lock(&self, lock_id: &str) -> Result<(), StateError> {
        sqlx::query("DELETE FROM lock WHERE lock_id = ?")
            .bind(lock_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Removes the lock `lock_id` whoever holds it, returning who held it.
    pub(crate) async fn force_unlock(&self, lock_id: &str) -> Result<LockInfo, StateError> {
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        let holder = match sqlx::query(SELECT_LOCK).fetch_optional(&mut *tx).await? {
            Some(row) => lock_from_row(&row)?,
            None => {
                return Err(StateError::NotFound(format!(
                    "no lock is held (asked for {lock_id})"
                )));
            }
        };
        if holder.lock_id != lock_id {
            return Err(StateError::NotFound(format!(
                "no lock {lock_id}; the state is locked by {} (pid {} on {})",
                holder.lock_id, holder.pid, holder.host
            )));
        }
        sqlx::query("DELETE FROM lock WHERE lock_id = ?")
            .bind(lock_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(holder)
    }

    pub(crate) async fn current_lock(&self) -> Result<Option<LockInfo>, StateError> {
        sqlx::query(SELECT_LOCK)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(lock_from_row)
            .transpose()
    }
}
