//! The SQLite lock. Two parts, because each alone falls short:
//!
//! - An OS lock (`flock`, through std's `File::try_lock`) on the state file itself. The kernel
//!   frees it when its holder dies, so a killed `apply` leaves nothing a human must clean up: the
//!   next run just takes it. On Linux it is independent of SQLite's own `fcntl` byte-range locks on the same file.
//! - A row in the `lock` table, written by whoever holds the OS lock, saying who, where, with
//!   which command and since when: an OS lock names nobody, and the error must.
//!
//! A row whose writer no longer holds the OS lock was left by a dead process and is replaced by
//! the next acquirer. On a network filesystem an OS lock cannot be trusted to reach the other
//! machines, so there the row alone is the lock, as before, and a dead holder's row needs
//! `cardform force-unlock`.

use sqlx::Row;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::SqliteStore;
use crate::state::lock::is_stale;
use crate::state::seam::Tx;
use crate::state::{LockInfo, LockRequest, StateError};

/// One handle's OS lock on the state file, shared by the handle's clones.
///
/// The descriptor stays open for the handle's whole life and is unlocked, not closed, on release:
/// closing any descriptor of a file drops every `fcntl` lock this process holds on it, SQLite's
/// included, and a connection that lost its locks can have its WAL checkpointed and deleted by
/// another process under it.
#[derive(Debug, Clone)]
pub(super) struct OsLock(Arc<Mutex<OsLockState>>);

#[derive(Debug)]
struct OsLockState {
    /// `None` on a network filesystem, where the row alone is the lock, and once the handle is
    /// closed.
    file: Option<File>,
    /// The lock id this handle holds the OS lock for. The OS lock alone cannot tell: `flock` on a
    /// descriptor that already holds it succeeds again, so two tasks sharing a handle would both
    /// "win".
    held: Option<String>,
    /// For error messages.
    path: String,
}

/// What one non-blocking `flock` found.
enum Flock {
    Taken,
    Busy,
    /// No OS lock on this filesystem: fall back to the row alone.
    Unavailable,
}

impl OsLock {
    /// Opens the descriptor the OS lock is taken on, locking nothing yet. Call it before SQLite
    /// opens the file: on a network filesystem the descriptor is closed at once (see the type).
    pub(super) fn open(path: &Path) -> Result<OsLock, StateError> {
        let file = File::open(path).map_err(super::io_err(path))?;
        let file = (!on_network_filesystem(&file)).then_some(file);
        Ok(OsLock(Arc::new(Mutex::new(OsLockState {
            file,
            held: None,
            path: path.display().to_string(),
        }))))
    }

    fn state(&self) -> MutexGuard<'_, OsLockState> {
        // The state is a descriptor and an id, valid whatever a panicking holder was doing.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the OS lock for `lock_id`, without waiting.
    fn try_take(&self, lock_id: &str) -> Result<Flock, StateError> {
        let mut s = self.state();
        if s.held.is_some() {
            return Ok(Flock::Busy);
        }
        let got = s.try_lock()?;
        if matches!(got, Flock::Taken) {
            s.held = Some(lock_id.to_string());
        }
        Ok(got)
    }

    /// Gives up the OS lock if this handle holds it for `lock_id`; a lock held under another id
    /// (a later acquisition through the same handle) stays.
    fn give_up(&self, lock_id: &str) {
        let mut s = self.state();
        if s.held.as_deref() == Some(lock_id) {
            s.held = None;
            s.unlock();
        }
    }

    /// Whether this handle holds the OS lock (under any id).
    fn held_here(&self) -> bool {
        self.state().held.is_some()
    }

    /// Drops the descriptor, freeing the OS lock for good. Only once the handle's connections are
    /// closed (see the type's docs).
    pub(super) fn close(&self) {
        let mut s = self.state();
        s.held = None;
        s.file = None;
    }
}

impl OsLockState {
    /// One exclusive, non-blocking `flock` (std's `File::try_lock` is exactly that on Unix).
    fn try_lock(&self) -> Result<Flock, StateError> {
        let Some(file) = &self.file else {
            return Ok(Flock::Unavailable);
        };
        let e = match file.try_lock() {
            Ok(()) => return Ok(Flock::Taken),
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Flock::Busy),
            Err(std::fs::TryLockError::Error(e)) => e,
        };
        match e.raw_os_error() {
            // Interrupted, it is simply tried again at the next poll.
            Some(libc::EINTR) => Ok(Flock::Busy),
            // A filesystem we did not recognise as networked that has no flock either.
            Some(libc::ENOLCK | libc::EOPNOTSUPP | libc::EINVAL) => Ok(Flock::Unavailable),
            _ if e.kind() == std::io::ErrorKind::Unsupported => Ok(Flock::Unavailable),
            _ => Err(StateError::Io {
                location: self.path.clone(),
                source: e,
            }),
        }
    }

    fn unlock(&self) {
        if let Some(file) = &self.file {
            // Unlocking cannot fail in a way worth reporting: at worst the lock stays until the
            // descriptor is closed.
            let _ = file.unlock();
        }
    }
}

/// Whether `file` lives on NFS or SMB, where an OS lock may stay on this machine while another
/// machine runs cardform on the same file.
#[cfg(target_os = "linux")]
fn on_network_filesystem(file: &File) -> bool {
    const NFS: i64 = 0x6969;
    const SMB: i64 = 0x517b;
    const CIFS: i64 = 0xff53_4d42;
    const SMB2: i64 = 0xfe53_4d42;
    // SAFETY: fstatfs only writes into the struct we pass.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    // `f_type` is signed on some targets; the magic numbers are 32-bit.
    #[allow(clippy::unnecessary_cast)]
    let magic = (st.f_type as i64) & 0xffff_ffff;
    matches!(magic, NFS | SMB | CIFS | SMB2)
}

#[cfg(not(target_os = "linux"))]
fn on_network_filesystem(_: &File) -> bool {
    false
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

/// The holder of an OS lock that has no row (yet, or any more: it is writing it, has just deleted
/// it, or was force-unlocked while still running). An empty id is how the message knows.
fn unnamed_holder() -> LockInfo {
    LockInfo {
        lock_id: String::new(),
        pid: 0,
        host: String::new(),
        user: String::new(),
        command: String::new(),
        since: String::new(),
        stale: false,
    }
}

impl SqliteStore {
    /// One attempt: `Ok(Ok(mine))` when taken, `Ok(Err(holder))` when someone else holds it.
    pub(in crate::state) async fn try_lock(
        &self,
        who: &LockRequest,
    ) -> Result<Result<LockInfo, LockInfo>, StateError> {
        let mine = LockInfo::taken_by(who);
        let lock_id = mine.lock_id.clone();
        match self.os_lock.try_take(&lock_id)? {
            Flock::Taken => {
                // The OS lock is ours, so whoever wrote a row still there is gone.
                let taken = self.take_row(mine, true).await;
                if let Err(_) | Ok(Err(_)) = &taken {
                    self.os_lock.give_up(&lock_id);
                }
                taken
            }
            Flock::Busy => {
                // Whoever holds the OS lock is alive whatever its pid says (another host's pid, a
                // test's made-up one).
                let holder = match sqlx::query(crate::state::sql::SELECT_LOCK)
                    .fetch_optional(&self.reader)
                    .await?
                {
                    Some(row) => LockInfo {
                        stale: false,
                        ..lock_from_row(&row)?
                    },
                    None => unnamed_holder(),
                };
                Ok(Err(holder))
            }
            Flock::Unavailable => self.take_row(mine, false).await,
        }
    }

    /// Writes `mine` as the lock row in one `BEGIN IMMEDIATE` transaction, so two processes
    /// racing cannot both win. A row already there is replaced when `replace` (its writer is known
    /// gone), and otherwise is the holder.
    async fn take_row(
        &self,
        mine: LockInfo,
        replace: bool,
    ) -> Result<Result<LockInfo, LockInfo>, StateError> {
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        if let Some(row) = sqlx::query(crate::state::sql::SELECT_LOCK)
            .fetch_optional(&mut *tx)
            .await?
        {
            if !replace {
                let holder = lock_from_row(&row)?;
                tx.rollback().await?;
                return Ok(Err(holder));
            }
            sqlx::query("DELETE FROM lock WHERE id = 1")
                .execute(&mut *tx)
                .await?;
        }
        tx.insert_lock(&mine).await?;
        tx.commit().await?;
        self.fence.hold(&mine.lock_id);
        Ok(Ok(mine))
    }

    /// Releases the lock if `lock_id` still holds it. Releasing a lock that is already gone (say,
    /// force-unlocked by the user) is not an error: the caller's work is done either way.
    pub(crate) async fn release_lock(&self, lock_id: &str) -> Result<(), StateError> {
        // The row goes first: freed first, the OS lock would let the next acquirer in while our
        // row still names us (harmless, it replaces it, but it would report us as the holder).
        let deleted = sqlx::query(crate::state::sql::DELETE_LOCK)
            .bind(lock_id)
            .execute(self.writer())
            .await;
        // Even when the row could not be deleted: holding on would block every later run, while
        // a row without an OS lock behind it is replaced by the next acquirer.
        self.os_lock.give_up(lock_id);
        self.fence.release(lock_id);
        deleted?;
        Ok(())
    }

    /// Removes the lock `lock_id` whoever holds it, returning who held it. A holder that is still
    /// running keeps its OS lock (it lives in that process), so the state stays locked until it
    /// ends; what this is for is a lock the OS lock cannot see (a network filesystem).
    pub(crate) async fn force_unlock(&self, lock_id: &str) -> Result<LockInfo, StateError> {
        let mut tx = self.writer().begin_with("BEGIN IMMEDIATE").await?;
        let held = match sqlx::query(crate::state::sql::SELECT_LOCK)
            .fetch_optional(&mut *tx)
            .await?
        {
            Some(row) => Some(lock_from_row(&row)?),
            None => None,
        };
        let holder = crate::state::lock::unlock_target(held, lock_id)?;
        sqlx::query(crate::state::sql::DELETE_LOCK)
            .bind(lock_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        // When this very handle holds it, the lock can go entirely.
        self.os_lock.give_up(lock_id);
        self.fence.release(lock_id);
        Ok(holder)
    }

    /// The lock row, if any. Its `stale` is the pid's verdict (unless this handle holds it): the
    /// OS lock cannot be looked at without taking it, and a look that took it for a moment could
    /// make a concurrent acquirer fail. Only acquiring says for sure, and then takes over.
    pub(crate) async fn current_lock(&self) -> Result<Option<LockInfo>, StateError> {
        let Some(row) = sqlx::query(crate::state::sql::SELECT_LOCK)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let holder = lock_from_row(&row)?;
        Ok(Some(LockInfo {
            stale: holder.stale && !self.os_lock.held_here(),
            ..holder
        }))
    }
}
