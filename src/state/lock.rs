//! The state lock as every backend describes it: who asks, who holds, whether a holder is known
//! dead, and the message that names it. How a backend takes the lock lives with the backend. Must
//! hold no SQL.
//!
//! A lock is taken over automatically only where the backend has proof its holder is gone (an OS
//! lock that died with its process). A pid that no longer runs is not such proof (pids are
//! reused, and another host's mean nothing here), so staleness judged by pid is only reported:
//! stealing a live lock could let two applies spend money on the same state.

use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::StateError;

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
    /// The holder's process no longer exists on this host. Never set for a holder the backend
    /// sees alive through an OS lock, whatever its pid.
    pub stale: bool,
}

/// The fencing token of the lock a store handle holds, shared by the handle's clones: every write
/// the handle makes while it holds a lock first checks that the lock row still names this token,
/// in the write's own transaction. A run whose lock was taken over (its database session ended,
/// or `force-unlock`) so writes nothing more: its orders in flight stay open in the journal, and
/// the next holder resumes them.
#[derive(Debug, Clone, Default)]
pub(super) struct Fence(Arc<Mutex<Option<String>>>);

impl Fence {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        // The token is a plain string, valid whatever a panicking holder was doing.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The handle holds lock `lock_id` from now on.
    pub(super) fn hold(&self, lock_id: &str) {
        *self.slot() = Some(lock_id.to_owned());
    }

    /// The handle gave lock `lock_id` up; a later lock it holds stays.
    pub(super) fn release(&self, lock_id: &str) {
        let mut slot = self.slot();
        if slot.as_deref() == Some(lock_id) {
            *slot = None;
        }
    }

    /// The token every write must still hold, while the handle holds a lock.
    pub(super) fn token(&self) -> Option<String> {
        self.slot().clone()
    }
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

pub(super) fn is_stale(pid: u32, host: &str) -> bool {
    // A pid means nothing on another machine (shared network file systems): never call that stale.
    host == local_host() && pid_is_dead(pid)
}

impl LockInfo {
    /// The lock `who` takes now, under a new id.
    pub(super) fn taken_by(who: &LockRequest) -> LockInfo {
        LockInfo {
            lock_id: uuid::Uuid::new_v4().to_string(),
            pid: who.pid,
            host: who.host.clone(),
            user: who.user.clone(),
            command: who.command.clone(),
            since: super::now(),
            stale: false,
        }
    }
}

/// What `force-unlock` removes: the lock named `lock_id`, and only while it is that one that is
/// held (a lock taken since by someone else is never removed by an old id).
pub(super) fn unlock_target(
    holder: Option<LockInfo>,
    lock_id: &str,
) -> Result<LockInfo, StateError> {
    let Some(holder) = holder else {
        return Err(StateError::NotFound(format!(
            "no lock is held (asked for {lock_id})"
        )));
    };
    if holder.lock_id != lock_id {
        return Err(StateError::NotFound(format!(
            "no lock {lock_id}; the state is locked by {} (pid {} on {})",
            holder.lock_id, holder.pid, holder.host
        )));
    }
    Ok(holder)
}

pub(super) fn locked_message(l: &LockInfo) -> String {
    if l.lock_id.is_empty() {
        // A backend saw a live holder through its OS lock but found no record of it: it is just
        // starting or finishing, or its record was force-unlocked while it kept running.
        return "state is locked by a running cardform that has not recorded itself (it is \
                starting or finishing, or its lock record was removed while it runs); wait for \
                it to finish, or pass --lock-timeout to wait for it"
            .to_string();
    }
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
        format!(
            "{base}; it is still running: wait for it to finish, or pass --lock-timeout to wait for it"
        )
    }
}

/// Waiting for a lock held by someone else, the same for every backend (only one attempt is the
/// backend's): look again, backing off, until `wait` has elapsed; then [`StateError::Locked`]
/// naming the holder. A zero `wait` gives up after the first look.
pub(super) struct Waiting {
    deadline: tokio::time::Instant,
    tries: u32,
}

impl Waiting {
    pub(super) fn new(wait: Duration) -> Self {
        Waiting {
            deadline: tokio::time::Instant::now() + wait,
            tries: 0,
        }
    }

    /// After a look that found `holder`: sleep until the next look, or give up.
    pub(super) async fn again(&mut self, holder: LockInfo) -> Result<(), StateError> {
        let now = tokio::time::Instant::now();
        if now >= self.deadline {
            return Err(StateError::Locked(holder));
        }
        tokio::time::sleep(poll_delay(self.tries).min(self.deadline - now)).await;
        self.tries += 1;
        Ok(())
    }
}

/// How often a waiting acquirer looks again: short at first (a finishing run frees it soon),
/// then backing off so a long wait does not hammer the file.
fn poll_delay(attempt: u32) -> Duration {
    Duration::from_millis((50u64 << attempt.min(3)).min(500))
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
        assert!(m.contains("--lock-timeout"));
        l.stale = true;
        assert!(locked_message(&l).contains("cardform force-unlock L1"));
    }

    #[test]
    fn a_holder_without_a_record_is_still_a_reason_to_wait() {
        let l = LockInfo {
            lock_id: String::new(),
            pid: 0,
            host: String::new(),
            user: String::new(),
            command: String::new(),
            since: String::new(),
            stale: false,
        };
        let m = locked_message(&l);
        assert!(m.contains("--lock-timeout") && !m.contains("pid 0"), "{m}");
    }
}
