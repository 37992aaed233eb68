//! Drawing executor events: a live progress bar on a terminal, plain lines in CI logs (a progress
//! line every few seconds and each failure, so a 100,000-card run does not bury its failures),
//! NDJSON with `--json`, and the end-of-run summary table. Must not decide anything about the run.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::plan::amount;
use super::{Style, safe};
use crate::exec::{Event, Stage};

mod summary;
use summary::charge_warning;
pub use summary::summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A live bar on a terminal.
    Bar,
    /// Plain lines for a log without a terminal: a progress line every `interval` and each
    /// failure on its own line; with `each_card`, also one line per card (the old CI output).
    Lines {
        each_card: bool,
        interval: Duration,
    },
    Json,
}

pub struct Progress {
    mode: Mode,
    style: Style,
    currency: String,
    inner: Arc<Mutex<State>>,
    ticker: Mutex<Option<Ticker>>,
}

#[derive(Default)]
struct State {
    bar: Option<ProgressBar>,
    started: Option<Instant>,
    total: usize,
    done: usize,
    failed: usize,
    skipped: usize,
    in_flight: usize,
    charged: rust_decimal::Decimal,
}

impl State {
    /// A line printed above the bar when there is one, so the bar is drawn again below it.
    fn println(&self, line: String) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// `412/1000 done (41%), 3 failed, in flight 40, 23.8 cards/s, ETA 25s, charged 2060.00 USDT`
    fn line(&self, currency: &str) -> String {
        let secs = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let rate = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        let eta = if rate > 0.0 {
            format!(
                "ETA {}",
                seconds(self.total.saturating_sub(self.done) as f64 / rate)
            )
        } else {
            "ETA -".to_owned()
        };
        let skipped = if self.skipped > 0 {
            format!(", {} skipped", self.skipped)
        } else {
            String::new()
        };
        format!(
            "{}/{} done ({}%), {} failed{skipped}, in flight {}, {rate:.1} cards/s, {eta}, charged {}",
            self.done,
            self.total,
            (self.done * 100).checked_div(self.total).unwrap_or(100),
            self.failed,
            self.in_flight,
            amount(self.charged, currency)
        )
    }
}

/// `42s`, `3m05s`, `1h02m`: an ETA a log reader takes in at a glance.
fn seconds(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// Prints a line from its own thread every `interval` until stopped: a CI log hears from a long
/// run even while no card finishes (orders waiting at the provider, a rate-limit pause).
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(interval: Duration, line: impl Fn() -> Option<String> + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let step = Duration::from_millis(100).min(interval);
            let mut last = Instant::now();
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(step);
                if last.elapsed() >= interval && !stopped.load(Ordering::Relaxed) {
                    last = Instant::now();
                    if let Some(l) = line() {
                        eprintln!("{l}");
                    }
                }
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Progress {
    pub fn new(mode: Mode, style: Style, currency: &str) -> Self {
        let inner = Arc::new(Mutex::new(State::default()));
        let currency = currency.to_uppercase();
        let ticker = match mode {
            Mode::Lines { interval, .. } => {
                let (state, currency) = (inner.clone(), currency.clone());
                Some(Ticker::start(interval, move || {
                    let s = state.lock().ok()?;
                    s.started?;
                    Some(format!("progress: {}", s.line(&currency)))
                }))
            }
            _ => None,
        };
        Self {
            mode,
            style,
            currency,
            inner,
            ticker: Mutex::new(ticker),
        }
    }

    fn each_card(&self) -> bool {
        matches!(
            self.mode,
            Mode::Lines {
                each_card: true,
                ..
            }
        )
    }

    pub fn handle(&self, e: &Event) {
        if self.mode == Mode::Json {
            if let Ok(line) = serde_json::to_string(e) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
            return;
        }
        let mut s = self.inner.lock().expect("progress lock");
        match e {
            Event::Started { total, serial } => self.started(&mut s, *total, *serial),
            Event::OrderCreated { .. } => s.in_flight += 1,
            Event::Done {
                key,
                action,
                card_id,
                charge,
            } => self.done(&mut s, key, *action, card_id.as_deref(), *charge),
            Event::Failed {
                key,
                action,
                slug,
                message,
                hint,
            } => {
                s.done += 1;
                s.failed += 1;
                s.in_flight = s.in_flight.saturating_sub(1);
                let line = self.failed_line(key, *action, slug, message);
                match &s.bar {
                    Some(bar) => bar.println(line),
                    // A log is read after the fact: each failure says what to do about it.
                    None => eprintln!("{line}\n    hint: {hint}"),
                }
            }
            Event::Skipped { key, reason, .. } => {
                s.done += 1;
                s.skipped += 1;
                if self.each_card() {
                    let line = format!("{key}: skipped: {reason}");
                    eprintln!("{} {}", self.style.yellow("-"), safe(&line));
                }
            }
            Event::ChargeDiffers(w) => {
                // Always shown, even without --log-cards: it is money other than planned.
                let line = format!(
                    "{} {}",
                    self.style.yellow("!"),
                    charge_warning(w, &self.currency)
                );
                s.println(line);
            }
            Event::WaitingForKyc {
                key,
                external_user_id,
                waited_secs,
                gives_up_in_secs,
            } => {
                // Told whatever the mode: a wait of minutes must not look like a hang.
                s.println(kyc_wait_line(
                    key,
                    external_user_id,
                    *waited_secs,
                    *gives_up_in_secs,
                ));
            }
            Event::Stage { stage, changes } => s.println(stage_line(*stage, *changes)),
            Event::Finished { .. } => {
                if let Some(bar) = s.bar.take() {
                    bar.finish_and_clear();
                }
                drop(s);
                // Stopped before the summary is printed, so no progress line lands inside it.
                self.ticker.lock().expect("ticker lock").take();
                return;
            }
        }
        self.update_bar(&s);
    }

    /// The run starts: a bar is drawn, or (a log without one line per card) a line says what
    /// the progress lines will be.
    fn started(&self, s: &mut State, total: usize, serial: u64) {
        s.total = total;
        s.started = Some(Instant::now());
        match self.mode {
            Mode::Bar => {
                let bar =
                    ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template(if self.style.color {
                        "{bar:30.green/dim} {pos}/{len} {msg} [ETA {eta}]"
                    } else {
                        // --no-color / NO_COLOR: the bar too.
                        "{bar:30} {pos}/{len} {msg} [ETA {eta}]"
                    })
                    .expect("valid progress template"),
                );
                s.bar = Some(bar);
            }
            Mode::Lines {
                each_card: false,
                interval,
            } => eprintln!(
                "applying {total} change{} as serial {serial}: a progress line every {}, \
                 each failure as it happens (--log-cards for one line per card)",
                if total == 1 { "" } else { "s" },
                seconds(interval.as_secs_f64()),
            ),
            _ => {}
        }
    }

    /// An action went through: counted, and with `--log-cards` a line
    /// `✓ KEY: issue done (card ID), charged AMOUNT`.
    fn done(
        &self,
        s: &mut State,
        key: &str,
        action: crate::plan::ActionKind,
        card_id: Option<&str>,
        charge: rust_decimal::Decimal,
    ) {
        s.done += 1;
        s.in_flight = s.in_flight.saturating_sub(1);
        s.charged += charge;
        if !self.each_card() {
            return;
        }
        eprintln!(
            "{} {}: {} done{}{}",
            self.style.green("✓"),
            safe(key),
            action.as_str(),
            card_id
                .map(|c| format!(" (card {})", safe(c)))
                .unwrap_or_default(),
            if charge.is_zero() {
                String::new()
            } else {
                format!(", charged {}", amount(charge, &self.currency))
            },
        );
    }

    /// `✗ KEY: issue failed: SLUG: MESSAGE`. Key, slug and message are state's and the
    /// provider's text.
    fn failed_line(
        &self,
        key: &str,
        action: crate::plan::ActionKind,
        slug: &str,
        message: &str,
    ) -> String {
        format!(
            "{} {}",
            self.style.red("✗"),
            safe(&format!(
                "{key}: {} failed: {slug}: {message}",
                action.as_str()
            ))
        )
    }

    fn update_bar(&self, s: &State) {
        if let Some(bar) = &s.bar {
            bar.set_position(s.done as u64);
            let secs = bar.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "in flight {}, failed {}, {:.1} cards/s, charged {}",
                s.in_flight,
                s.failed,
                s.done as f64 / secs,
                amount(s.charged, &self.currency),
            ));
        }
    }
}

/// A card waiting for its cardholder's KYC, and how long it will still wait.
fn kyc_wait_line(key: &str, external_user_id: &str, waited: u64, gives_up_in: u64) -> String {
    format!(
        "note: {}",
        safe(&format!(
            "waiting for KYC: card {key} (cardholder {external_user_id}) is not \
             ready after {}; giving up in {} (--kyc-wait)",
            seconds(waited as f64),
            seconds(gives_up_in as f64)
        ))
    )
}

/// A stage of a `--canary` run begins.
fn stage_line(stage: Stage, changes: usize) -> String {
    match stage {
        Stage::Canary => format!(
            "canary: {changes} change{} first (across products); the rest starts \
             only if none fails",
            if changes == 1 { "" } else { "s" }
        ),
        Stage::Rollout => {
            format!("canary passed: rolling out the other {changes} changes")
        }
    }
}

/// Progress of `refresh`: a bar on a terminal; otherwise a line every `interval` (the report at
/// the end says the rest).
pub struct RefreshBar {
    bar: Mutex<Option<ProgressBar>>,
    counts: Arc<Mutex<(Option<Instant>, usize, usize)>>,
    ticker: Mutex<Option<Ticker>>,
}

impl RefreshBar {
    pub fn new(draw: bool, style: Style, interval: Duration) -> Self {
        let bar = draw.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(if style.color {
                    "{bar:30.green/dim} {pos}/{len} read [ETA {eta}]"
                } else {
                    "{bar:30} {pos}/{len} read [ETA {eta}]"
                })
                .expect("valid progress template"),
            );
            bar
        });
        let counts = Arc::new(Mutex::new((None, 0, 0)));
        let ticker = (!draw).then(|| {
            let counts = counts.clone();
            Ticker::start(interval, move || {
                let (started, done, total): (Option<Instant>, usize, usize) =
                    *counts.lock().ok()?;
                let secs = started?.elapsed().as_secs_f64();
                let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
                let eta = if rate > 0.0 {
                    seconds(total.saturating_sub(done) as f64 / rate)
                } else {
                    "-".into()
                };
                Some(format!(
                    "progress: {done}/{total} read, {rate:.1} cards/s, ETA {eta}"
                ))
            })
        });
        Self {
            bar: Mutex::new(bar),
            counts,
            ticker: Mutex::new(ticker),
        }
    }

    pub fn handle(&self, e: &crate::exec::refresh::RefreshEvent) {
        use crate::exec::refresh::RefreshEvent;
        {
            let mut c = self.counts.lock().expect("progress lock");
            match e {
                RefreshEvent::Started { total, .. } => *c = (Some(Instant::now()), 0, *total),
                RefreshEvent::Checked { .. } => c.1 += 1,
                RefreshEvent::Drift { .. } | RefreshEvent::Unread { .. } => {}
            }
        }
        let guard = self.bar.lock().expect("progress lock");
        let Some(bar) = guard.as_ref() else { return };
        match e {
            RefreshEvent::Started { total, .. } => bar.set_length(*total as u64),
            RefreshEvent::Checked { .. } => bar.inc(1),
            RefreshEvent::Drift { .. } | RefreshEvent::Unread { .. } => {}
        }
    }

    pub fn finish(&self) {
        self.ticker.lock().expect("ticker lock").take();
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_currency_follows_the_amount_and_unknown_fees_count_cards() {
        let s = crate::exec::Summary {
            estimated: rust_decimal::Decimal::new(305172770, 2),
            estimated_unknown: 16666,
            ..Default::default()
        };
        let text = summary(&s, Style::PLAIN, "usdt");
        assert!(
            text.contains(
                "Money: estimated 3051727.70 USDT + unknown fees for 16666 cards, actually \
                 charged 0.00 USDT"
            ),
            "{text}"
        );
    }
}
