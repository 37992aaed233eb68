//! Who runs what: the identity recorded with state locks and history entries (command line,
//! user, host, pid). Secrets never appear here: they come from the environment, not arguments.

use crate::state::{LockRequest, RunInfo, local_host};
use crate::wire::{SystemClock, timestamp::now_rfc3339};

pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cardform {}", args.join(" "))
}

pub fn username() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
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
