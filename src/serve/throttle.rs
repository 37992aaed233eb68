//! The brake on guessing the token at `POST /login`: each wrong try from a client address makes
//! that address's next tries wait longer (a step more per failure, up to a ceiling), and tries
//! from one address take turns, so parallel connections do not get around the wait. A right
//! token forgets the address. Memory is bounded: at most [`MAX_CLIENTS`] addresses, the least
//! recently seen forgotten first, and an address idle for [`FORGET_AFTER`] starts afresh.
//!
//! Decides when an attempt may be answered; never checks a token, never sleeps (the caller waits
//! until the instant it is given, so tests pass their own clock). Behind a reverse proxy every
//! client shares the proxy's address: the brake then slows everyone's wrong tries together.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The wait added per failure of an address so far.
pub const STEP: Duration = Duration::from_millis(25);
/// The longest wait one attempt adds.
pub const CEILING: Duration = Duration::from_secs(1);
/// The most addresses remembered.
pub const MAX_CLIENTS: usize = 4096;
/// An address not seen for this long is forgotten.
pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Client {
    failures: u32,
    /// When the last attempt's turn ends: the next one waits for it.
    free_at: Instant,
    seen: Instant,
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    clients: Mutex<HashMap<IpAddr, Client>>,
}

impl LoginThrottle {
    /// When an attempt from `ip` arriving at `now` may be answered: at once for an address that
    /// never failed, else after every earlier attempt's turn plus a step per failure.
    pub fn turn(&self, ip: IpAddr, now: Instant) -> Instant {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        let Some(c) = clients.get_mut(&ip) else {
            return now;
        };
        if now.saturating_duration_since(c.seen) > FORGET_AFTER {
            clients.remove(&ip);
            return now;
        }
        let at = c.free_at.max(now) + wait(c.failures);
        c.free_at = at;
        c.seen = now;
        at
    }

    /// A wrong token from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if !clients.contains_key(&ip) && clients.len() >= MAX_CLIENTS {
            make_room(&mut clients, now);
        }
        let c = clients.entry(ip).or_insert(Client {
            failures: 0,
            free_at: now,
            seen: now,
        });
        c.failures = c.failures.saturating_add(1);
        c.seen = now;
    }

    /// The right token from `ip`: its failures are forgotten.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.remove(&ip);
    }

    /// How many addresses are remembered.
    pub fn remembered(&self) -> usize {
        self.clients.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn wait(failures: u32) -> Duration {
    STEP.saturating_mul(failures).min(CEILING)
}

/// Forgets every address idle past [`FORGET_AFTER`], and if none was, the least recently seen.
fn make_room(clients: &mut HashMap<IpAddr, Client>, now: Instant) {
    clients.retain(|_, c| now.saturating_duration_since(c.seen) <= FORGET_AFTER);
    if clients.len() < MAX_CLIENTS {
        return;
    }
    if let Some(oldest) = clients
        .iter()
        .min_by_key(|(_, c)| c.seen)
        .map(|(ip, _)| *ip)
    {
        clients.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(std::net::Ipv4Addr::from(n))
    }

    #[test]
    fn each_failure_adds_a_step_up_to_the_ceiling_and_a_success_forgets() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        assert_eq!(t.turn(ip(1), now), now, "no failure: no wait");
        for _ in 0..3 {
            t.failed(ip(1), now);
        }
        assert_eq!(t.turn(ip(1), now), now + STEP * 3);
        // Tries in parallel take turns: the second waits for the first.
        assert_eq!(t.turn(ip(1), now), now + STEP * 6);
        assert_eq!(t.turn(ip(2), now), now, "another address does not wait");
        for _ in 0..1000 {
            t.failed(ip(1), now);
        }
        let later = now + Duration::from_secs(60);
        assert_eq!(t.turn(ip(1), later), later + CEILING);
        t.succeeded(ip(1));
        assert_eq!(t.turn(ip(1), later), later);
        t.failed(ip(3), now);
        let idle = now + FORGET_AFTER + Duration::from_secs(1);
        assert_eq!(t.turn(ip(3), idle), idle, "an idle address starts afresh");
    }

    #[test]
    fn memory_is_bounded() {
        let t = LoginThrottle::default();
        let now = Instant::now();
        for n in 0..(MAX_CLIENTS as u32 + 100) {
            t.failed(ip(n), now + Duration::from_millis(u64::from(n)));
        }
        assert_eq!(t.remembered(), MAX_CLIENTS);
        // The least recently seen went first; the newest is still braked.
        let last = ip(MAX_CLIENTS as u32 + 99);
        assert!(t.turn(last, now) > now);
        assert_eq!(t.turn(ip(0), now), now);
    }
}
