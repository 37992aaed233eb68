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

/// The debug log's (`-v`, `CARDFORM_LOG`) events as the same JSON lines, for `serve`: `ts`,
/// `level`, `target`, `msg`, then the event's fields. What is logged, and its redaction, stays
/// with the modules that log (`client::log`).
pub struct JsonLines;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = Map::new();
        event.record(&mut Fields(&mut fields));
        let msg = fields.remove("message").unwrap_or(Value::Null);
        let meta = event.metadata();
        let mut out = Map::new();
        out.insert("ts".into(), Value::String(now_rfc3339(&SystemClock)));
        out.insert(
            "level".into(),
            Value::String(meta.level().as_str().to_ascii_lowercase()),
        );
        out.insert("target".into(), Value::String(meta.target().into()));
        out.insert("msg".into(), msg);
        out.extend(fields);
        writeln!(writer, "{}", Value::Object(out))
    }
}

/// Collects an event's fields as JSON values.
struct Fields<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn debug_events_are_one_json_object_a_line() {
        let buffer = Buffer::default();
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLines)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "cardform::client", status = 200, path = "cards/create", "answer");
            tracing::warn!("second\nline");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "answer");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["status"], 200);
        assert_eq!(lines[0]["path"], "cards/create");
        assert_eq!(lines[1]["msg"], "second\nline");
    }
}
