//! Writing a [`PlanDocument`] out, and reading one back: `--json` prints the document as it
//! always has (pretty, format 1), streamed to its writer; `--out` saves a plan file (format 2):
//! the same document, compact, one action a line, each action without the fields it shares with
//! the file's `action_defaults` (the values most of its actions hold: kind, reason, product,
//! attempt, estimate, the declared attributes cards have in common): format 2 files are under a
//! fifth of format 1's size (docs/design/measurements.md).
//!
//! Reading fills each action's left-out fields back from `action_defaults` before the action is
//! read as usual, so a format 2 file reads as the document that was written; a format 1 file
//! reads as it always did. Must not decide what a plan means: only how it is written.

use serde_json::{Map, Value};
use std::collections::HashMap;
use std::io::Write;

use super::PlanDocument;

/// The plan file's format: format 1 with `action_defaults` (see the module's header).
pub const FILE_FORMAT_VERSION: u32 = 2;

/// Formats a plan file or `--json` may be in, and this cardform reads.
pub const READS: [u32; 2] = [super::FORMAT_VERSION, FILE_FORMAT_VERSION];

/// How many actions, from the first, the defaults are chosen from.
const SAMPLE: usize = 1_000;

/// The document as `--json` prints it, streamed (pretty, format 1), and a newline.
pub fn write_json(doc: &PlanDocument, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut out, doc)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The document as a plan file (format 2), streamed: the fields before the actions, the
/// defaults, the actions a line each, then the fields after them.
pub fn write_file(doc: &mut PlanDocument, out: impl Write) -> std::io::Result<()> {
    let actions = std::mem::take(&mut doc.plan.actions);
    let head = serde_json::to_value(&*doc);
    doc.plan.actions = actions;
    let Value::Object(mut fields) = head? else {
        unreachable!("a plan document serializes as an object");
    };
    fields.insert("format_version".into(), FILE_FORMAT_VERSION.into());
    let defaults = defaults(doc)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    out.write_all(b"{")?;
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_field(&mut out, name)?;
        if name != "actions" {
            serde_json::to_writer(&mut out, value)?;
            continue;
        }
        out.write_all(b"[")?;
        for (n, action) in doc.plan.actions.iter().enumerate() {
            out.write_all(if n == 0 { b"\n" } else { b",\n" })?;
            let mut action = serde_json::to_value(action)?;
            strip(&mut action, &defaults);
            serde_json::to_writer(&mut out, &action)?;
        }
        out.write_all(b"\n],")?;
        write_field(&mut out, "action_defaults")?;
        serde_json::to_writer(&mut out, &defaults)?;
    }
    out.write_all(b"}\n")?;
    out.flush()
}

fn write_field(out: &mut impl Write, name: &str) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, name)?;
    out.write_all(b":")
}

/// A plan document from the text of a plan file or of `--json`, in any format this cardform
/// reads (the caller checks `format_version`); a format 2 file is read as the format 1 document
/// it was written from.
pub fn read(text: &str) -> serde_json::Result<PlanDocument> {
    if !text.contains("\"action_defaults\"") {
        return serde_json::from_str(text);
    }
    let mut doc: Value = serde_json::from_str(text)?;
    if let Value::Object(fields) = &mut doc
        && let Some(Value::Object(defaults)) = fields.remove("action_defaults")
        && let Some(Value::Array(actions)) = fields.get_mut("actions")
    {
        for action in actions {
            if let Value::Object(action) = action {
                fill(action, &defaults);
            }
        }
        // What is read is the document in format 1 (`--json`'s), whatever the file's.
        if fields.get("format_version") == Some(&FILE_FORMAT_VERSION.into()) {
            fields.insert("format_version".into(), super::FORMAT_VERSION.into());
        }
    }
    serde_json::from_value(doc)
}

/// For each field, the value most of the first [`SAMPLE`] actions hold (more than half of
/// them); for a field whose value is an object, the same one level down.
fn defaults(doc: &PlanDocument) -> serde_json::Result<Map<String, Value>> {
    let sample = doc.plan.actions.iter().take(SAMPLE);
    let sample: Vec<Value> = sample.map(serde_json::to_value).collect::<Result<_, _>>()?;
    let objects: Vec<&Map<String, Value>> = sample.iter().filter_map(Value::as_object).collect();
    let mut defaults = majority(&objects, |name| name != "key");
    for (name, value) in defaults.iter_mut() {
        if value.is_object() {
            let inner: Vec<&Map<String, Value>> = objects
                .iter()
                .filter_map(|a| a.get(name)?.as_object())
                .collect();
            *value = Value::Object(majority(&inner, |_| true));
        }
    }
    Ok(defaults)
}

/// The fields `wanted` of `objects` whose most common value more than half of them hold, as
/// that value; an object-valued field by its most common kind (its contents are chosen apart).
fn majority(objects: &[&Map<String, Value>], wanted: impl Fn(&str) -> bool) -> Map<String, Value> {
    let mut counts: HashMap<(&str, String), (usize, &Value)> = HashMap::new();
    for object in objects {
        for (name, value) in object.iter().filter(|(n, _)| wanted(n)) {
            let seen = match value {
                Value::Object(_) => "{}".to_owned(),
                other => other.to_string(),
            };
            counts.entry((name, seen)).or_insert((0, value)).0 += 1;
        }
    }
    let mut best: Vec<(&str, usize, &Value)> = Vec::new();
    for ((name, _), (count, value)) in counts {
        if count * 2 <= objects.len() {
            continue;
        }
        best.push((name, count, value));
    }
    // In the order the fields come in, so the defaults read like an action.
    let order = |name: &str| {
        objects
            .first()
            .and_then(|o| o.keys().position(|k| k == name))
    };
    best.sort_by_key(|(name, ..)| order(name));
    best.into_iter()
        .map(|(name, _, value)| {
            let value = match value {
                Value::Object(_) => Value::Object(Map::new()),
                other => other.clone(),
            };
            (name.to_owned(), value)
        })
        .collect()
}

/// Leaves out of `action` what equals `defaults`; a field the defaults have and the action does
/// not is written `null` (which reading takes for "not set").
fn strip(action: &mut Value, defaults: &Map<String, Value>) {
    let Value::Object(action) = action else {
        return;
    };
    for (name, default) in defaults {
        match (action.get_mut(name), default) {
            (None, _) => {
                action.insert(name.clone(), Value::Null);
            }
            (Some(value), _) if value == default => {
                action.remove(name);
            }
            (Some(Value::Object(inner)), Value::Object(default)) => {
                for (name, default) in default {
                    match inner.get(name) {
                        None => {
                            inner.insert(name.clone(), Value::Null);
                        }
                        Some(value) if value == default => {
                            inner.remove(name);
                        }
                        Some(_) => {}
                    }
                }
            }
            _ => {}
        }
    }
}

/// The inverse of [`strip`]: fields left out take their defaults, and a `null` where the
/// defaults have a field means "not set".
fn fill(action: &mut Map<String, Value>, defaults: &Map<String, Value>) {
    for (name, default) in defaults {
        match action.get_mut(name) {
            None => {
                action.insert(name.clone(), default.clone());
            }
            Some(Value::Null) => {
                action.remove(name);
            }
            Some(Value::Object(inner)) => {
                let Value::Object(default) = default else {
                    continue;
                };
                for (name, default) in default {
                    match inner.get(name) {
                        None => {
                            inner.insert(name.clone(), default.clone());
                        }
                        Some(Value::Null) => {
                            inner.remove(name);
                        }
                        Some(_) => {}
                    }
                }
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// What is left out is filled back, whatever the action holds of the defaults.
    #[test]
    fn strip_then_fill_gives_the_action_back() {
        let defaults = map(serde_json::json!({
            "action": "issue", "before": null, "attempt": 1,
            "after": {"product_code": "P", "status": "active", "labels": {"t": "x"}},
            "estimate": {"fee": "5.00", "source": "pricing"}
        }));
        for action in [
            serde_json::json!({"key": "a", "action": "issue", "before": null, "attempt": 1,
                "after": {"external_user_id": "u", "product_code": "P", "status": "active",
                    "labels": {"t": "x"}},
                "estimate": {"fee": "5.00", "topup": "0.00", "source": "pricing"}}),
            serde_json::json!({"key": "b", "action": "prune", "attempt": 2,
                "before": {"external_user_id": "u", "product_code": "Q", "status": "frozen"},
                "after": null, "estimate": {"fee": null, "topup": "0", "source": "none"}}),
            serde_json::json!({"key": "c", "action": "issue", "before": null, "attempt": 1,
                "after": {"external_user_id": "u", "product_code": "P", "status": "active"},
                "estimate": {"topup": "0.00", "source": "pricing"}}),
        ] {
            let mut stripped = action.clone();
            strip(&mut stripped, &defaults);
            let mut filled = map(stripped.clone());
            fill(&mut filled, &defaults);
            // `null` fields read as absent ones.
            let without_nulls = |mut m: Map<String, Value>| {
                m.retain(|_, v| !v.is_null());
                for v in m.values_mut() {
                    if let Value::Object(inner) = v {
                        inner.retain(|_, v| !v.is_null());
                    }
                }
                m
            };
            let (filled, want) = (without_nulls(filled), without_nulls(map(action.clone())));
            assert_eq!(Value::Object(filled), Value::Object(want), "{stripped}");
        }
    }
}
