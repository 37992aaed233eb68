//! The client-side rate limit, shared by every clone of a `Client`: it decides when the next
//! request may leave, so that a provider limit of R requests per second is never exceeded
//! whatever its shape (sliding window, fixed window, token bucket; REFERENCE.md §1).
//!
//! Owns pacing only. It must not retry, classify responses or sleep for backoff: the call loop
//! takes a send slot with [`RateLimiter::acquire`] and reports how that send ended
//! ([`RateLimiter::on_success`], [`RateLimiter::on_throttled`]).
//!
//! How it paces, given a limit L (configured with `--rate`, or estimated):
//! - Evenly, one send every 1/r s with r a little under L ([`pace`]): no burst, because a burst on
//!   top of a steady rate is exactly what trips a sliding window.
//! - Never more than ⌈r⌉ sends in any trailing one-second window of its own send times, so a
//!   stall (late timers, a busy machine) cannot come back as a catch-up burst. The margin between
//!   r and L absorbs the jitter between when a request leaves and when the provider counts it.
//! - `Retry-After` pauses every caller; slots that fell inside the pause are handed out again
//!   after it, evenly, rather than all at once when it ends.
//!
//! How it learns L when none is configured: it sends freely until the first 429, then takes as L
//! the number of sends the provider accepted in the second before the refused one (the best such
//! count over that wave of 429s), and holds just under it. That count is exact for a sliding
//! window, and an over-estimate by at most the burst for a fixed window or a bucket.
//!
//! Later 429s (a wrong `--rate`, an over-estimate, jitter) lower L to 90 % of what the provider
//! accepted in the trailing second, and the ceiling it may recover to to 98 % of the old L or just
//! over that accepted count, whichever is lower; L then climbs back to the ceiling over a few
//! seconds. A wave of 429s from requests already in flight is one signal.
//!
//! Time is `tokio::time::Instant`, so tests run it on a paused clock.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

use crate::wire::assumed::RATE_WINDOW_MICROS;

/// The provider's counting window.
const WINDOW: Duration = Duration::from_micros(RATE_WINDOW_MICROS);
/// Pacing stays this share of the limit under it (at least [`HEADROOM_MIN`] requests/s): the
/// jitter between send and arrival it absorbs is about this share of a second.
const HEADROOM: f64 = 0.03;
const HEADROOM_MIN: f64 = 1.0;
/// How far back sends are remembered, for the counts an estimate needs.
const HISTORY: Duration = Duration::from_secs(3);
/// 429s within this long of the one that started a wave (or within its pause) are one signal:
/// they answer requests that were already in flight.
const EPISODE: Duration = Duration::from_secs(1);
/// On a 429 while limited: the new limit, as a share of what the provider just accepted.
const DECREASE: f64 = 0.9;
/// On a 429 while limited: the ceiling recovery climbs back to, as a share of the old limit.
const CEILING_STEP: f64 = 0.98;
/// A trailing second counts as a measurement only if at least this share of the pace was sent.
const EVIDENCE: f64 = 0.5;
/// After a wave of 429s, the limit climbs back by this share of the ceiling per second.
const RECOVERY_PER_SEC: f64 = 0.02;
/// The limit never drops below this (nor below the configured rate, if smaller).
const MIN_RATE: f64 = 0.5;

/// The pacing rate for a provider limit of `limit` requests/s.
pub(crate) fn pace(limit: f64) -> f64 {
    (limit - (limit * HEADROOM).max(HEADROOM_MIN)).max(limit / 2.0)
}

pub(crate) struct RateLimiter {
    floor: f64,
    inner: Mutex<State>,
}

struct State {
    /// The provider's limit as believed; `None` while unknown and nothing is configured.
    limit: Option<f64>,
    /// What the limit may recover to: the configured rate, or the estimate, lowered by 429s.
    ceiling: f64,
    /// The earliest slot the next reservation may get.
    next_slot: Instant,
    /// Sends and reserved slots of the last [`HISTORY`], in slot order.
    log: VecDeque<Send>,
    paused_until: Option<Instant>,
    episode: Option<Episode>,
    /// Recovery has been credited up to here.
    recovered_at: Instant,
}

#[derive(Clone, Copy)]
struct Send {
    at: Instant,
    outcome: Outcome,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Pending,
    Ok,
    Throttled,
    /// A slot inside a pause, given up and reserved again after it.
    Cancelled,
}

/// A wave of 429s, counted as one signal.
struct Episode {
    until: Instant,
    /// Started without a limit: every 429 of the wave may raise the estimate.
    discovering: bool,
    /// The refused send the estimate is measured against, and the accepted count before it.
    reference: Instant,
    best: usize,
}

impl RateLimiter {
    pub(crate) fn new(configured: Option<f64>) -> Self {
        let now = Instant::now();
        Self {
            floor: configured.map_or(MIN_RATE, |c| c.min(MIN_RATE)),
            inner: Mutex::new(State {
                limit: configured,
                ceiling: configured.unwrap_or(f64::INFINITY),
                next_slot: now,
                log: VecDeque::new(),
                paused_until: None,
                episode: None,
                recovered_at: now,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the numbers inconsistent in a way that
        // matters for pacing, so a poisoned lock is simply reused.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until one request may be sent; the returned slot names this send when reporting
    /// its outcome.
    pub(crate) async fn acquire(&self) -> Instant {
        loop {
            let slot = self.reserve_at(Instant::now());
            tokio::time::sleep_until(slot).await;
            // A 429 that arrived while this caller waited: its slot is void, queue again.
            let mut st = self.lock();
            if st.paused_until.is_none_or(|p| p <= slot) {
                return slot;
            }
            // Usually cancelled by the 429 already; not if it was due just before it arrived.
            if let Some(s) = find(&mut st.log, slot, Outcome::Pending) {
                s.outcome = Outcome::Cancelled;
            }
        }
    }

    /// Books the next send slot at or after `now`.
    fn reserve_at(&self, now: Instant) -> Instant {
        let mut st = self.lock();
        let st = &mut *st;
        st.recover(now);
        prune(&mut st.log, now);
        let mut slot = now.max(st.next_slot);
        if let Some(p) = st.paused_until {
            slot = slot.max(p);
        }
        if let Some(limit) = st.limit {
            let rate = pace(limit);
            let cap = (rate.ceil() as usize).max(1);
            // Slots are booked in order, so everything logged is at or before `slot`.
            loop {
                let nth = st
                    .log
                    .iter()
                    .rev()
                    .filter(|s| s.outcome != Outcome::Cancelled)
                    .take_while(|s| s.at + WINDOW > slot)
                    .nth(cap - 1);
                match nth {
                    Some(s) => slot = s.at + WINDOW + Duration::from_micros(1),
                    None => break,
                }
            }
            st.next_slot = slot + Duration::from_secs_f64(1.0 / rate);
        } else {
            st.next_slot = slot;
        }
        st.log.push_back(Send {
            at: slot,
            outcome: Outcome::Pending,
        });
        slot
    }

    /// The send of `slot` got an answer that was not a 429.
    pub(crate) fn on_success(&self, slot: Instant) {
        self.on_success_at(slot, Instant::now());
    }

    fn on_success_at(&self, slot: Instant, now: Instant) {
        let mut st = self.lock();
        if let Some(s) = find(&mut st.log, slot, Outcome::Pending) {
            s.outcome = Outcome::Ok;
        }
        // An accepted send that answers late still belongs to the estimate of its wave.
        let st = &mut *st;
        if let Some(ep) = st
            .episode
            .as_mut()
            .filter(|e| e.discovering && now < e.until)
            && slot <= ep.reference
            && slot + WINDOW >= ep.reference
        {
            ep.best += 1;
            let estimate = (ep.best as f64).max(self.floor);
            st.limit = Some(estimate);
            st.ceiling = estimate;
        }
    }

    /// The send of `slot` was answered 429: pause everyone for `retry_after` and re-estimate.
    pub(crate) fn on_throttled(&self, slot: Instant, retry_after: Option<Duration>) {
        self.on_throttled_at(slot, retry_after, Instant::now());
    }

    fn on_throttled_at(&self, slot: Instant, retry_after: Option<Duration>, now: Instant) {
        let mut guard = self.lock();
        let st = &mut *guard;
        if let Some(s) = find(&mut st.log, slot, Outcome::Pending) {
            s.outcome = Outcome::Throttled;
        }
        if let Some(ra) = retry_after {
            let until = now + ra;
            let until = st.paused_until.map_or(until, |p| p.max(until));
            st.paused_until = Some(until);
            for s in st.log.iter_mut() {
                if s.outcome == Outcome::Pending && s.at > now && s.at < until {
                    s.outcome = Outcome::Cancelled;
                }
            }
        }
        // What the provider accepted, and what it was sent, in the second before this send.
        let (accepted, sent) = st
            .log
            .iter()
            .filter(|s| s.at <= slot && s.at + WINDOW >= slot)
            .fold((0usize, 0usize), |(a, n), s| match s.outcome {
                Outcome::Ok => (a + 1, n + 1),
                Outcome::Cancelled => (a, n),
                _ => (a, n + 1),
            });
        match &mut st.episode {
            Some(ep) if now < ep.until => {
                if ep.discovering && accepted > ep.best {
                    ep.best = accepted;
                    ep.reference = slot;
                    let estimate = (accepted as f64).max(self.floor);
                    st.limit = Some(estimate);
                    st.ceiling = estimate;
                }
            }
            _ => {
                let discovering = st.limit.is_none();
                match st.limit {
                    // No evidence of a rate yet: only the pause applies.
                    None if accepted == 0 => {}
                    None => {
                        let estimate = (accepted as f64).max(self.floor);
                        st.limit = Some(estimate);
                        st.ceiling = estimate;
                    }
                    Some(limit) => {
                        // Counts over a second in which little was sent say little about the
                        // provider (its window may be full of someone else's requests).
                        let measured = sent as f64 >= EVIDENCE * pace(limit);
                        let mut ceiling = st.ceiling.min(limit) * CEILING_STEP;
                        let mut base = limit;
                        if measured {
                            // What it accepted in the second before refusing is about its limit
                            // (exactly, for a sliding window).
                            base = base.min(accepted as f64);
                            ceiling = ceiling.min(accepted as f64 * (1.0 + HEADROOM));
                        }
                        st.ceiling = ceiling.max(self.floor);
                        st.limit = Some((base * DECREASE).clamp(self.floor, st.ceiling));
                    }
                }
                let until = st.paused_until.map_or(now, |p| p.max(now)) + EPISODE;
                st.recovered_at = until;
                st.episode = Some(Episode {
                    until,
                    discovering,
                    reference: slot,
                    best: accepted,
                });
            }
        }
        // Slots given up to the pause are booked again, spaced from the last one kept.
        let last_kept = st
            .log
            .iter()
            .rev()
            .find(|s| s.outcome != Outcome::Cancelled)
            .map(|s| s.at);
        let spacing = st
            .limit
            .map_or(Duration::ZERO, |l| Duration::from_secs_f64(1.0 / pace(l)));
        st.next_slot = last_kept.map_or(now, |l| l + spacing);
    }

    /// The pacing rate in force (requests/s), `None` while unlimited.
    pub(crate) fn current_rate(&self) -> Option<f64> {
        self.lock().limit.map(pace)
    }
}

impl State {
    fn recover(&mut self, now: Instant) {
        let Some(limit) = self.limit else { return };
        if now <= self.recovered_at || limit >= self.ceiling {
            return;
        }
        let dt = now.duration_since(self.recovered_at).as_secs_f64();
        self.recovered_at = now;
        self.limit = Some((limit + RECOVERY_PER_SEC * self.ceiling * dt).min(self.ceiling));
    }
}

/// The logged send of `slot` in state `outcome` (slots may repeat on a paused clock).
fn find(log: &mut VecDeque<Send>, slot: Instant, outcome: Outcome) -> Option<&mut Send> {
    let start = log.partition_point(|s| s.at < slot);
    log.range_mut(start..)
        .take_while(|s| s.at == slot)
        .find(|s| s.outcome == outcome)
}

fn prune(log: &mut VecDeque<Send>, now: Instant) {
    while log.front().is_some_and(|s| s.at + HISTORY < now) {
        log.pop_front();
    }
}

#[cfg(test)]
mod tests;
