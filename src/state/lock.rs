//! The state lock: one row in the `lock` table, taken in a `BEGIN IMMEDIATE` transaction so two
//! processes racing for it cannot both win. Staleness is only reported, never acted on: stealing a
//! lock automatically could let two applies spend money on the same state.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use std::time::Duration;
use tokio::time::Instant;

use super::store::Store;
use super::{StateError, now};

/// Who asks for the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    pub command: String,
    pub pid: u32,
    pub host: String,
    pub user: String,
}

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub lock_id: String,
    pub pid: u32,
    pub host: String,
    pub user: String,
    pub command: String,
    /// RFC 3339.
    pub since: String,
    /// The holder's process no longer exists on this host.
    pub stale: bool,
}

/// This machine's host name, as locks and runs record it.
pub fn local_host() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `len` bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether `pid` is known dead. Only a definite "no such process" counts: a process of another
/// user answers EPERM and is alive.
fn pid_is_dead(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn is_stale(pid: u32, host: &str) -> bool {
    // A pid means nothing on another machine (shared network file systems): never call that stale.
    host == local_host() && pid_is_dead(pid)
}

pub(super) fn locked_message(l: &LockInfo) -> String {
    let base = format!(
        "state is locked by lock {} (pid {} on {}, user {}, command `{}`, since {})",
        l.lock_id, l.pid, l.host, l.user, l.command, l.since
    );
    if l.stale {
        format!(
            "{base}; the lock is stale: that process is no longer running. If no other cardform \
             uses this state, remove it with `cardform force-unlock {}`",
            l.lock_id
        )
    } else {
        format!("{base}; wait for it to finish, or pass --lock-timeout to wait for it")
    }
}

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

const SELECT_LOCK: &str = "SELECT lock_id, pid, host, user, command, since FROM lock WHERE id = 1";

/// How often a waiting acquirer looks again: short at first (a finishing run frees it soon),
/// then backing off so a long wait does not hammer the file.
fn poll_delay(attempt: u32) -> Duration {
    Duration::from_millis((50u64 << attempt.min(3)).min(500))
}

impl Store {
    /// Takes the lock, polling until `wait` has elapsed; then [`StateError::Locked`] naming the
    /// holder. A zero `wait` fails fast after one look.
    pub async fn acquire_lock(
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
            "INSERT INTO lock (id, lock_id, pid, host, user, command, since) \
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
    pub async fn release_lock(&self, lock_id: &str) -> Result<(), StateError> {
        sqlx::query("DELETE FROM lock WHERE lock_id = ?")
            .bind(lock_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Removes the lock `lock_id` whoever holds it, returning who held it.
    pub async fn force_unlock(&self, lock_id: &str) -> Result<LockInfo, StateError> {
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

    pub async fn current_lock(&self) -> Result<Option<LockInfo>, StateError> {
        sqlx::query(SELECT_LOCK)
            .fetch_optional(self.reader())
            .await?
            .as_ref()
            .map(lock_from_row)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_reaped_child_is_dead() {
        assert!(!pid_is_dead(std::process::id()));
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("spawn true");
        let pid = child.id();
        child.wait().expect("wait");
        assert!(pid_is_dead(pid));
        assert!(is_stale(pid, &local_host()));
        assert!(!is_stale(pid, "some-other-host.invalid"));
    }

    #[test]
    fn message_names_holder_and_the_way_out() {
        let mut l = LockInfo {
            lock_id: "L1".into(),
            pid: 42,
            host: "h".into(),
            user: "u".into(),
            command: "apply".into(),
            since: "2025-01-01T00:00:00Z".into(),
            stale: false,
        };
        let m = locked_message(&l);
        assert!(m.contains("L1") && m.contains("pid 42") && m.contains("apply"));
        assert!(!m.contains("force-unlock"));
        l.stale = true;
        assert!(locked_message(&l).contains("cardform force-unlock L1"));
    }
}
