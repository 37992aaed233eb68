//! Who runs what: the identity recorded with state locks and history entries (command line,
//! user, host, pid). Secrets never appear here: api credentials come from the environment, and a
//! password in a URL argument is hidden before the command line is recorded.

use crate::state::{LockRequest, RunInfo, local_host, redact_command_line};
use crate::wire::{SystemClock, timestamp::now_rfc3339};

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
