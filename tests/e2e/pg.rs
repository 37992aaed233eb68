//! A real, throwaway PostgreSQL server for the tests: one per test process, started on first
//! use in a temp dir of its own, reachable only on 127.0.0.1 (and a socket inside that dir),
//! stopped and deleted when the process exits.
//!
//! It owns that server and every database on it, and nothing else: it must not touch a cluster
//! the machine already runs (no system service, default port or shared socket dir), and it must
//! not let a test skip silently when PostgreSQL is missing; it panics saying how to install it.

use sqlx::{Connection, PgConnection};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The superuser `postgres`'s password; every connection authenticates with it (SCRAM).
pub const PASSWORD: &str = "cardform-test-pw";

const INSTALL_HINT: &str = "the PostgreSQL tests need a real server: install it with \
     `apt-get install postgresql` (initdb and pg_ctl are looked for on PATH, then under \
     /usr/lib/postgresql/*/bin)";

pub struct PgServer {
    dir: PathBuf,
    port: u16,
    pg_ctl: PathBuf,
    /// The OS user (uid, gid) the server runs as when the tests run as root, which initdb and
    /// pg_ctl refuse to be.
    owner: Option<(u32, u32)>,
    databases: AtomicUsize,
}

// The outcome, not just the server, so a failed start is tried once and every test that asks
// afterwards fails with the same message instead of trying again.
static SERVER: OnceLock<Result<PgServer, String>> = OnceLock::new();

/// The process's server, started on the first call.
pub fn server() -> &'static PgServer {
    match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(why) => panic!("{why}"),
    }
}

impl PgServer {
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Ends every session connected to `database`, as a failover or a network cut would.
    pub fn terminate_connections(&self, database: &str) {
        let admin = self.url("postgres");
        let database = database.to_owned();
        std::thread::spawn(move || {
            block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = $1 AND pid <> pg_backend_pid()",
                )
                .bind(&database)
                .execute(&mut conn)
                .await?;
                conn.close().await
            })
        })
        .join()
        .expect("the thread ending sessions panicked")
        .expect("end the sessions of a test database");
    }

    /// A new, empty database that no other test uses; returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("t_{n}_{}", std::process::id());
        let admin = self.url("postgres");
        let create = format!(r#"CREATE DATABASE "{name}""#);
        // A thread of its own because the caller may be inside a tokio runtime already, where
        // blocking on another one panics.
        let created = std::thread::spawn(move || {
            block_on(async {
                let mut conn = PgConnection::connect(&admin).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(create))
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
        })
        .join()
        .expect("the thread creating a database panicked");
        if let Err(e) = created {
            panic!("creating database {name}: {e}");
        }
        self.url(&name)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// A command run as the server's owner, from a directory that owner can enter.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.dir);
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn initdb(&self, initdb: &Path) -> Result<(), String> {
        let pwfile = self.dir.join("pwfile");
        std::fs::write(&pwfile, PASSWORD).map_err(|e| format!("writing {pwfile:?}: {e}"))?;
        self.give_to_owner(&[&self.dir, &pwfile])?;
        let out = self
            .command(initdb)
            .arg("-D")
            .arg(self.data())
            .args(["--auth=scram-sha-256", "--username=postgres"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--locale=C", "--no-sync"])
            .output();
        succeeded("initdb", out)
    }

    fn start(&mut self) -> Result<(), String> {
        let sock = self.dir.join("sock");
        std::fs::create_dir(&sock).map_err(|e| format!("creating {sock:?}: {e}"))?;
        self.give_to_owner(&[&sock])?;
        // The free port is free only until we let go of it; another process may take it before
        // the server binds, so a port clash is worth another try with another port.
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let options = format!(
                "-p {port} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off \
                 -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
                sock.display()
            );
            let out = self
                .command(&self.pg_ctl)
                .arg("-D")
                .arg(self.data())
                .arg("-l")
                .arg(self.log())
                .args(["-o", &options, "-w", "start"])
                .output();
            let Err(why) = succeeded("pg_ctl start", out) else {
                self.port = port;
                return Ok(());
            };
            // pg_ctl may have given up waiting on a postmaster that is still coming up.
            self.pg_ctl_stop();
            let clash = std::fs::read_to_string(self.log())
                .is_ok_and(|log| log.contains("Address already in use"));
            if !clash || attempt == 3 {
                return Err(why);
            }
            attempt += 1;
        }
    }

    fn give_to_owner(&self, paths: &[&Path]) -> Result<(), String> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        for path in paths {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("chown {path:?} to the postgres user: {e}"))?;
        }
        Ok(())
    }

    fn pg_ctl_stop(&self) {
        let _ = self
            .command(&self.pg_ctl)
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs at exit, so it must not panic: there is nobody left to report to.
    fn stop_and_remove(&self) {
        self.pg_ctl_stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

fn start() -> Result<PgServer, String> {
    let bin = bin_dir().ok_or_else(|| format!("initdb and pg_ctl not found; {INSTALL_HINT}"))?;
    let owner = if unsafe { libc::geteuid() } == 0 {
        let missing = "running as root, which initdb refuses, and there is no `postgres` OS user";
        Some(postgres_user().ok_or_else(|| format!("{missing} to run it as; {INSTALL_HINT}"))?)
    } else {
        None
    };
    let dir = tempfile::Builder::new()
        .prefix("cardform-pg-")
        .tempdir()
        .map_err(|e| format!("creating a temp dir for PostgreSQL: {e}"))?
        .keep();
    let mut server = PgServer {
        dir,
        port: 0,
        pg_ctl: bin.join("pg_ctl"),
        owner,
        databases: AtomicUsize::new(0),
    };
    if let Err(why) = server
        .initdb(&bin.join("initdb"))
        .and_then(|()| server.start())
    {
        let tail = server.log_tail();
        server.stop_and_remove();
        return Err(format!(
            "could not start PostgreSQL from {bin:?}: {why}\n{INSTALL_HINT}\n\
             --- server log (last lines) ---\n{tail}"
        ));
    }
    extern "C" fn stop_at_exit() {
        if let Some(Ok(server)) = SERVER.get() {
            server.stop_and_remove();
        }
    }
    // At exit rather than on drop: statics are never dropped, and a failing test binary still
    // leaves through exit(), so this is what keeps a failed run from leaving a server behind.
    unsafe { libc::atexit(stop_at_exit) };
    Ok(server)
}

/// The first directory holding both initdb and pg_ctl: PATH, then Debian's versioned
/// directories, newest first.
fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    on_path
        .into_iter()
        .chain(versioned.into_iter().map(|(_, dir)| dir))
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn postgres_user() -> Option<(u32, u32)> {
    // getpwnam's result lives in static storage; it is read before anything else can call it
    // again, and only from inside the OnceLock's initialisation.
    let pw = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    (!pw.is_null()).then(|| unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("finding a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

fn succeeded(what: &str, out: std::io::Result<Output>) -> Result<(), String> {
    let out = out.map_err(|e| format!("running {what}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(future)
}

#[test]
fn server_answers() {
    let url = server().fresh_database();
    let one: i32 = block_on(async {
        let mut conn = PgConnection::connect(&url).await?;
        sqlx::query_scalar("SELECT 1").fetch_one(&mut conn).await
    })
    .unwrap();
    assert_eq!(one, 1);
}

#[test]
fn wrong_password_is_refused() {
    let url = format!(
        "postgres://postgres:not-{PASSWORD}@127.0.0.1:{}/postgres",
        server().port()
    );
    let err = block_on(PgConnection::connect(&url)).expect_err("a wrong password connected");
    let code = err.as_database_error().and_then(|e| e.code());
    // 28P01: invalid_password, i.e. refused by authentication, not by anything else.
    assert_eq!(code.as_deref(), Some("28P01"), "{err}");
}
