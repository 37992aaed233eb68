//! `serve`'s log: one JSON object per line on stderr (`ts`, `level`, `msg`, then the fields), for
//! a log collector to parse. Owns the line's shape only: callers pass fields that hold no secret,
//! card number, CVV or personal data (ids, counts, keys, amounts, error texts already made safe).

use std::io::Write;

use serde_json::{Map, Value};

use crate::exec::Event;
use crate::wire::{SystemClock, timestamp::now_rfc3339};

/// Logs `msg` with `fields` (an object; anything else is logged under `value`) at info level.
pub fn info(msg: &str, fields: Value) {
    line("info", msg, fields);
}

/// At warn level: something went wrong and `serve` goes on.
pub fn warn(msg: &str, fields: Value) {
    line("warn", msg, fields);
}

/// At error level: a reconcile failed, or the service cannot do its work.
pub fn error(msg: &str, fields: Value) {
    line("error", msg, fields);
}

/// One line: built whole first and written with one call, so concurrent lines never interleave.
fn line(level: &str, msg: &str, fields: Value) {
    let mut out = Map::new();
    out.insert("ts".into(), Value::String(now_rfc3339(&SystemClock)));
    out.insert("level".into(), Value::String(level.into()));
    out.insert("msg".into(), Value::String(msg.into()));
    match fields {
        Value::Object(map) => out.extend(map),
        Value::Null => {}
        other => {
            out.insert("value".into(), other);
        }
    }
    let mut text = Value::Object(out).to_string();
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// An executor event as a log line. Events name cards by key and orders by id and carry no
/// card data or personal fields; a failure's provider text is made safe for a terminal first.
pub fn event(event: &Event) {
    let Ok(mut value) = serde_json::to_value(event) else {
        return;
    };
    let level = match event {
        Event::Failed { .. } => "warn",
        _ => "info",
    };
    if let Some(map) = value.as_object_mut() {
        for field in ["message", "hint", "reason"] {
            if let Some(Value::String(s)) = map.get_mut(field) {
                *s = crate::render::safe(s).into_owned();
            }
        }
    }
    line(level, "exec", value);
}
