//! Starting `cardform serve` for a test: a free loopback port, the token, waiting for
//! `/healthz`, plain HTTP/1.1 requests over a `TcpStream` (no client library to get in the
//! way of what is on the wire), SIGTERM and `kill -9`. The process's JSON log lines go to a
//! file in the env's temp dir, for [`Serve::log`].

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Env;

/// The token every test's `serve` runs with.
pub const TOKEN: &str = "e2e-serve-token-0123456789abcdef";

/// A running `cardform serve`.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cardform serve --listen 127.0.0.1:PORT ARGS` with [`TOKEN`], waited for until `/healthz`
/// answers. `name` tells replicas' log files apart.
pub fn start(env: &Env, name: &str, args: &[&str]) -> Serve {
    let serve = spawn(env, name, args, Some(TOKEN));
    serve.wait_healthy();
    serve
}

/// Like [`start`] without waiting, and with `token` (none: unset).
pub fn spawn(env: &Env, name: &str, args: &[&str], token: Option<&str>) -> Serve {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let log_path = env.path(&format!("serve-{name}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut cmd = env.process(&["serve", "--listen", &addr.to_string()]);
    cmd.args(args)
        .env_remove("CARDFORM_SERVE_TOKEN")
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(token) = token {
        cmd.env("CARDFORM_SERVE_TOKEN", token);
    }
    Serve {
        child: cmd.spawn().unwrap(),
        addr,
        log_path,
    }
}

impl Serve {
    /// Waits (up to 20 s) until `/healthz` answers 200.
    pub fn wait_healthy(&self) {
        let t0 = Instant::now();
        loop {
            if let Ok(a) = self.try_request("GET", "/healthz", &[], "")
                && a.status == 200
            {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "serve never became healthy:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What it logged so far (JSON lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Its log lines, parsed (lines that are not JSON are skipped).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        self.log()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// How many log lines have `msg`.
    pub fn count(&self, msg: &str) -> usize {
        self.log_lines().iter().filter(|l| l["msg"] == msg).count()
    }

    /// Waits up to `within` for `done`, failing with the log.
    pub fn wait_for(&self, what: &str, within: Duration, mut done: impl FnMut(&Serve) -> bool) {
        let t0 = Instant::now();
        while !done(self) {
            assert!(
                t0.elapsed() < within,
                "{what}: not within {within:?}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether it leads, as `/readyz` says.
    pub fn leads(&self) -> bool {
        self.try_request("GET", "/readyz", &[("authorization", &bearer())], "")
            .ok()
            .and_then(|a| serde_json::from_str::<serde_json::Value>(&a.body).ok())
            .is_some_and(|v| v["leader"] == true)
    }

    /// `GET path` with the token.
    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[("authorization", &bearer())], "")
    }

    /// `POST path` with the token.
    pub fn post(&self, path: &str, body: &str) -> Answer {
        self.request("POST", path, &[("authorization", &bearer())], body)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()))
    }

    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> std::io::Result<Answer> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(15)))?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
            self.addr,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        parse(&String::from_utf8_lossy(&raw))
    }

    /// SIGTERM, then waits (up to `within`) for it to exit.
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        // SAFETY: signals a child this test started and has not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                t0.elapsed() < within,
                "serve did not exit within {within:?} of SIGTERM\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `kill -9`: nothing runs after it, as a crashed host.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// `Bearer TOKEN`.
pub fn bearer() -> String {
    format!("Bearer {TOKEN}")
}

fn parse(raw: &str) -> std::io::Result<Answer> {
    let bad = || std::io::Error::other(format!("not an HTTP answer: {raw:?}"));
    let (head, body) = raw.split_once("\r\n\r\n").ok_or_else(bad)?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(bad)?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.to_owned(),
    })
}
