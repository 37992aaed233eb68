//! Who runs what: the identity recorded with state locks and history entries (command line,
//! user, host, pid). Secrets never appear here: api credentials come from the environment, and a
//! password in a URL argument is hidden before the command line is recorded.

use crate::state::{
    LockInfo, LockRequest, RunInfo, StateError, Store, local_host, redact_command_line,
};
use crate::wire::{SystemClock, timestamp::now_rfc3339};
use std::time::Duration;

pub fn command_line() -> String {
    redact_command_line(std::iter::once("cardform".to_owned()).chain(std::env::args().skip(1)))
}

pub fn username() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(account_name)
        .unwrap_or_else(|| "unknown".into())
}

/// The account name of this process's user, for shells and CI runners that set no `USER`.
fn account_name() -> Option<String> {
    // SAFETY: getpwuid returns null or a pointer to a static record valid until the next call;
    // the name is copied out at once and nothing else in this process calls getpw* concurrently.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The history entry of a state-writing command that starts now.
pub fn run_info() -> RunInfo {
    RunInfo {
        command: command_line(),
        user: username(),
        host: local_host(),
        at: now_rfc3339(&SystemClock),
    }
}

/// This process, as the holder of a state lock. The host must be `local_host()`: stale-lock
/// detection compares it with the host that checks.
pub fn lock_request() -> LockRequest {
    LockRequest {
        command: command_line(),
        pid: std::process::id(),
        host: local_host(),
        user: username(),
    }
}

/// How often a run waiting for the state lock says it still waits.
const STILL_WAITING_EVERY: Duration = Duration::from_secs(30);

/// Takes the state lock for this process, waiting up to `wait` for a holder to finish, and never
/// silently: a wait begins with a line naming the holder (pid, host, command, since when) and how
/// long this run will wait, and goes on with a line every half minute.
pub async fn acquire_lock(store: &Store, wait: Duration) -> Result<LockInfo, StateError> {
    let holder = match store.acquire_lock(lock_request(), Duration::ZERO).await {
        Err(StateError::Locked(holder)) if !wait.is_zero() => holder,
        taken => return taken,
    };
    eprintln!(
        "note: waiting up to {}s for the state lock: {}",
        wait.as_secs(),
        holder_text(&holder)
    );
    let started = tokio::time::Instant::now();
    loop {
        let left = wait.saturating_sub(started.elapsed());
        match store
            .acquire_lock(lock_request(), left.min(STILL_WAITING_EVERY))
            .await
        {
            Err(StateError::Locked(holder)) if started.elapsed() < wait => eprintln!(
                "note: still waiting for the state lock after {}s (of {}s): {}",
                started.elapsed().as_secs(),
                wait.as_secs(),
                holder_text(&holder)
            ),
            done => return done,
        }
    }
}

/// "held by pid 42 on ci-7 (`cardform apply …`, user alice, since …)".
fn holder_text(l: &LockInfo) -> String {
    if l.lock_id.is_empty() {
        return "held by a cardform that has not recorded itself yet".to_owned();
    }
    // What the lock row says came from another process: shown with its controls escaped.
    crate::render::safe(&format!(
        "held by pid {} on {} (`{}`, user {}, since {})",
        l.pid, l.host, l.command, l.user, l.since
    ))
    .into_owned()
}

/// Whether `pid` on `host` is a process of this host that still runs: a lock it holds is not
/// stale, whatever its record says. Only a definite "no such process" counts as gone (another
/// user's process answers EPERM and runs); a pid of another host says nothing here.
pub fn runs_here(host: &str, pid: u32) -> bool {
    if host != local_host() {
        return false;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission; nothing is delivered.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}
