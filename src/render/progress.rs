//! Drawing executor events: a live progress bar on a terminal, plain lines in CI logs, NDJSON with
//! `--json`, and the end-of-run summary table.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Write as _;
use std::io::Write;
use std::sync::Mutex;

use super::Style;
use super::plan::{amount, money};
use crate::exec::{Event, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
    Json,
}

pub struct Progress {
    mode: Mode,
    style: Style,
    currency: String,
    inner: Mutex<State>,
}

#[derive(Default)]
struct State {
    bar: Option<ProgressBar>,
    total: usize,
    done: usize,
    failed: usize,
    in_flight: usize,
    charged: rust_decimal::Decimal,
}

impl Progress {
    pub fn new(mode: Mode, style: Style, currency: &str) -> Self {
        Self {
            mode,
            style,
            currency: currency.to_uppercase(),
            inner: Mutex::new(State::default()),
        }
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
            Event::Started { total, .. } => {
                s.total = *total;
                if self.mode == Mode::Bar {
                    let bar = ProgressBar::with_draw_target(
                        Some(*total as u64),
                        ProgressDrawTarget::stderr(),
                    );
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
            }
            Event::OrderCreated { .. } => s.in_flight += 1,
            Event::Done {
                key,
                action,
                card_id,
                charge,
            } => {
                s.done += 1;
                s.in_flight = s.in_flight.saturating_sub(1);
                s.charged += *charge;
                if self.mode == Mode::Lines {
                    eprintln!(
                        "{} {key}: {} done{}{}",
                        self.style.green("✓"),
                        action.as_str(),
                        card_id
                            .as_deref()
                            .map(|c| format!(" (card {c})"))
                            .unwrap_or_default(),
                        if charge.is_zero() {
                            String::new()
                        } else {
                            format!(", charged {}", amount(*charge, &self.currency))
                        },
                    );
                }
            }
            Event::Failed {
                key,
                action,
                slug,
                message,
                ..
            } => {
                s.done += 1;
                s.failed += 1;
                s.in_flight = s.in_flight.saturating_sub(1);
                let line = format!(
                    "{} {key}: {} failed: {slug}: {message}",
                    self.style.red("✗"),
                    action.as_str()
                );
                match &s.bar {
                    Some(bar) => bar.println(line),
                    None => eprintln!("{line}"),
                }
            }
            Event::Skipped { key, reason, .. } => {
                s.done += 1;
                if self.mode == Mode::Lines {
                    eprintln!("{} {key}: skipped: {reason}", self.style.yellow("-"));
                }
            }
            Event::Finished { .. } => {
                if let Some(bar) = s.bar.take() {
                    bar.finish_and_clear();
                }
                return;
            }
        }
        if let Some(bar) = &s.bar {
            bar.set_position(s.done as u64);
            let secs = bar.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!(
                "in flight {}, failed {}, {:.1} cards/s, charged {} {}",
                s.in_flight,
                s.failed,
                s.done as f64 / secs,
                money(s.charged),
                self.currency
            ));
        }
    }
}

/// The end-of-run table: counts, failures by slug with a hint each, money estimated vs actual.
pub fn summary(s: &Summary, style: Style, currency: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n{}", style.bold("Apply summary"));
    let _ = writeln!(out, "  issued   {:>6}", s.issued);
    let _ = writeln!(out, "  changed  {:>6}", s.changed);
    let _ = writeln!(out, "  resumed  {:>6}", s.resumed);
    let _ = writeln!(out, "  failed   {:>6}", s.failed);
    if s.skipped > 0 {
        let _ = writeln!(out, "  skipped  {:>6}", s.skipped);
    }
    for (slug, g) in &s.failures {
        let more = if g.count > g.keys.len() {
            format!(", … {} more", g.count - g.keys.len())
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "  {} {slug} × {}: {}{more}\n      hint: {}",
            style.red("✗"),
            g.count,
            g.keys.join(", "),
            g.hint
        );
    }
    let unknown = if s.estimated_unknown > 0 {
        format!(" + unknown for {}", s.estimated_unknown)
    } else {
        String::new()
    };
    let cur = currency.to_uppercase();
    let _ = writeln!(
        out,
        "Money: estimated {}{unknown} {cur}, actually charged {} {cur}",
        money(s.estimated),
        money(s.charged)
    );
    if !s.charged_earlier.is_empty() {
        // Orders a killed or interrupted run sent: their money is that run's, not this one's.
        let earlier: Vec<String> = s
            .charged_earlier
            .iter()
            .map(|(serial, amount)| {
                format!("{} {cur} charged earlier by run {serial}", money(*amount))
            })
            .collect();
        let _ = writeln!(
            out,
            "       plus {} (orders it sent, finished here)",
            earlier.join(", ")
        );
    }
    if s.interrupted {
        let _ = writeln!(
            out,
            "{} interrupted: in-flight orders were tracked and saved; run the same apply again to finish.",
            style.yellow("!")
        );
    } else if s.failed > 0 {
        let _ = writeln!(
            out,
            "{} re-running apply is safe: it resumes open orders and never re-creates them.",
            style.yellow("!")
        );
    }
    out
}

/// A progress bar for `refresh` on a terminal; silent otherwise (the report says it all).
pub struct RefreshBar(Mutex<Option<ProgressBar>>);

impl RefreshBar {
    pub fn new(draw: bool, style: Style) -> Self {
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
        Self(Mutex::new(bar))
    }

    pub fn handle(&self, e: &crate::exec::refresh::RefreshEvent) {
        use crate::exec::refresh::RefreshEvent;
        let guard = self.0.lock().expect("progress lock");
        let Some(bar) = guard.as_ref() else { return };
        match e {
            RefreshEvent::Started { total, .. } => bar.set_length(*total as u64),
            RefreshEvent::Checked { .. } => bar.inc(1),
            RefreshEvent::Drift { .. } | RefreshEvent::Unread { .. } => {}
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = self.0.lock().expect("progress lock").take() {
            bar.finish_and_clear();
        }
    }
}
