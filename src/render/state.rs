//! Text renderings of what state holds: card tables and details, run history, the canonical
//! export (YAML, JSON, CSV), diffs between serials (unified via `similar`, or structured JSON),
//! the audit of provider calls and the drift a refresh found.
//!
//! Turns data into text and decides nothing. The canonical form is built from [`CardRecord`]s,
//! which cannot hold a PAN or CVV, so no rendering here can print one. Output is deterministic:
//! maps are sorted, money always has two decimals, nothing depends on the clock.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Style;
use crate::exec::refresh::{Drift, RefreshReport};
use crate::state::{CallRecord, CardPhase, CardRecord, OrderRecord, RunRecord};

/// Money as export writes it: exactly two decimals, rounded half away from zero.
pub fn money(d: Decimal) -> String {
    let mut r = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r.to_string()
}

fn opt_money(d: Option<Decimal>) -> Option<String> {
    d.map(money)
}

/// One card in canonical form: fixed field order, money as strings. `updated_at` is left out on
/// purpose: it moves on every touch, and an export committed for review should change only when
/// the card does (`state history` says when).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanonicalCard {
    pub key: String,
    pub card_id: Option<String>,
    pub status: String,
    pub provider_status: Option<String>,
    pub last4: Option<String>,
    pub external_user_id: String,
    pub product_code: String,
    pub initial_topup: Option<String>,
    pub desired_status: String,
    pub labels: crate::decl::Labels,
    pub charged: String,
    pub attempt: u32,
    pub replaced_by: Option<String>,
    pub created_at: String,
}

impl From<&CardRecord> for CanonicalCard {
    fn from(c: &CardRecord) -> Self {
        CanonicalCard {
            key: c.key.clone(),
            card_id: c.card_id.clone(),
            status: c.phase.as_str().to_owned(),
            provider_status: c.provider_status.clone(),
            last4: c.last4.clone(),
            external_user_id: c.external_user_id.clone(),
            product_code: c.product_code.clone(),
            initial_topup: opt_money(c.initial_topup),
            desired_status: c.desired_status.as_str().to_owned(),
            labels: c.labels.clone(),
            charged: money(c.charged),
            attempt: c.attempt,
            replaced_by: c.replaced_by.clone(),
            created_at: c.created_at.clone(),
        }
    }
}

#[derive(Serialize)]
struct Export<'a> {
    lineage: &'a str,
    serial: u64,
    cards: Vec<CanonicalCard>,
}

fn canonical(cards: &BTreeMap<String, CardRecord>) -> Vec<CanonicalCard> {
    // BTreeMap iteration is sorted by key: the order is part of the canonical form.
    cards.values().map(CanonicalCard::from).collect()
}

pub fn export_json(lineage: &str, serial: u64, cards: &BTreeMap<String, CardRecord>) -> String {
    let doc = Export {
        lineage,
        serial,
        cards: canonical(cards),
    };
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

pub fn export_yaml(lineage: &str, serial: u64, cards: &BTreeMap<String, CardRecord>) -> String {
    let doc = Export {
        lineage,
        serial,
        cards: canonical(cards),
    };
    serde_yaml::to_string(&doc).unwrap_or_default()
}

const CSV_COLUMNS: [&str; 13] = [
    "key",
    "card_id",
    "status",
    "provider_status",
    "last4",
    "external_user_id",
    "product_code",
    "initial_topup",
    "desired_status",
    "charged",
    "attempt",
    "replaced_by",
    "created_at",
];

/// CSV in the declaration files' spirit: one row per card, one `label.<name>` column per label
/// name found in any card (sorted).
pub fn export_csv(cards: &BTreeMap<String, CardRecord>) -> String {
    let mut label_names: Vec<&String> = cards.values().flat_map(|c| c.labels.keys()).collect();
    label_names.sort();
    label_names.dedup();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = CSV_COLUMNS.iter().map(|s| (*s).to_owned()).collect();
    header.extend(label_names.iter().map(|n| format!("label.{n}")));
    let _ = w.write_record(&header);
    for c in canonical(cards) {
        let mut row = vec![
            c.key,
            c.card_id.unwrap_or_default(),
            c.status,
            c.provider_status.unwrap_or_default(),
            c.last4.unwrap_or_default(),
            c.external_user_id,
            c.product_code,
            c.initial_topup.unwrap_or_default(),
            c.desired_status,
            c.charged,
            c.attempt.to_string(),
            c.replaced_by.unwrap_or_default(),
            c.created_at,
        ];
        row.extend(
            label_names
                .iter()
                .map(|n| c.labels.get(n).cloned().unwrap_or_default()),
        );
        let _ = w.write_record(&row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The lines a card contributes to a diff: its canonical fields, one per line, key first.
pub fn card_text(card: &CardRecord) -> String {
    let c = CanonicalCard::from(card);
    let mut s = String::new();
    let mut line = |name: &str, value: &str| {
        let _ = writeln!(s, "{name}: {value}");
    };
    let none = "-";
    line("key", &c.key);
    line("card_id", c.card_id.as_deref().unwrap_or(none));
    line("status", &c.status);
    line(
        "provider_status",
        c.provider_status.as_deref().unwrap_or(none),
    );
    line("last4", c.last4.as_deref().unwrap_or(none));
    line("external_user_id", &c.external_user_id);
    line("product_code", &c.product_code);
    line("initial_topup", c.initial_topup.as_deref().unwrap_or(none));
    line("desired_status", &c.desired_status);
    for (k, v) in &c.labels {
        line(&format!("label.{k}"), v);
    }
    line("charged", &c.charged);
    line("attempt", &c.attempt.to_string());
    line("replaced_by", c.replaced_by.as_deref().unwrap_or(none));
    line("created_at", &c.created_at);
    s
}

// ------------------------------------------------------------------ diff

/// How the cards differ between two serials. Unchanged cards are not in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateDiff {
    pub from: u64,
    pub to: u64,
    pub added: Vec<CanonicalCard>,
    pub removed: Vec<CanonicalCard>,
    pub changed: Vec<ChangedCard>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedCard {
    pub key: String,
    /// The canonical fields that differ, in canonical order.
    pub fields: Vec<String>,
    pub before: CanonicalCard,
    pub after: CanonicalCard,
}

impl StateDiff {
    pub fn new(
        from: u64,
        to: u64,
        before: &BTreeMap<String, CardRecord>,
        after: &BTreeMap<String, CardRecord>,
    ) -> StateDiff {
        let mut d = StateDiff {
            from,
            to,
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
        };
        for (key, b) in before {
            match after.get(key) {
                None => d.removed.push(b.into()),
                Some(a) => {
                    let (b, a) = (CanonicalCard::from(b), CanonicalCard::from(a));
                    if a != b {
                        d.changed.push(ChangedCard {
                            key: key.clone(),
                            fields: changed_fields(&b, &a),
                            before: b,
                            after: a,
                        });
                    }
                }
            }
        }
        for (key, a) in after {
            if !before.contains_key(key) {
                d.added.push(a.into());
            }
        }
        d
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn changed_fields(b: &CanonicalCard, a: &CanonicalCard) -> Vec<String> {
    let (bv, av) = (
        serde_json::to_value(b).unwrap_or_default(),
        serde_json::to_value(a).unwrap_or_default(),
    );
    let (Some(bm), Some(am)) = (bv.as_object(), av.as_object()) else {
        return Vec::new();
    };
    bm.iter()
        .filter(|(k, v)| am.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The unified diff, one block per card (added, removed, then changed, each sorted by key).
pub fn diff_human(
    diff: &StateDiff,
    before: &BTreeMap<String, CardRecord>,
    after: &BTreeMap<String, CardRecord>,
    style: Style,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("State diff: serial {} → {}", diff.from, diff.to))
    );
    if diff.is_empty() {
        let _ = writeln!(out, "No card changed.");
        return out;
    }
    let mut keys: Vec<(char, &str)> = Vec::new();
    keys.extend(diff.added.iter().map(|c| ('+', c.key.as_str())));
    keys.extend(diff.removed.iter().map(|c| ('-', c.key.as_str())));
    keys.extend(diff.changed.iter().map(|c| ('~', c.key.as_str())));
    for (sign, key) in keys {
        let old = before.get(key).map(card_text).unwrap_or_default();
        let new = after.get(key).map(card_text).unwrap_or_default();
        let title = match sign {
            '+' => style.green(&format!("+ {key} (added)")),
            '-' => style.red(&format!("- {key} (removed)")),
            _ => style.yellow(&format!("~ {key} (changed)")),
        };
        let _ = writeln!(out, "\n{title}");
        let text = similar::TextDiff::from_lines(&old, &new);
        let unified = text
            .unified_diff()
            .context_radius(2)
            .header(
                &format!("{key} @ serial {}", diff.from),
                &format!("{key} @ serial {}", diff.to),
            )
            .to_string();
        for line in unified.lines() {
            let painted = if line.starts_with("+++") || line.starts_with("---") {
                style.bold(line)
            } else if line.starts_with('+') {
                style.green(line)
            } else if line.starts_with('-') {
                style.red(line)
            } else if line.starts_with("@@") {
                style.cyan(line)
            } else {
                line.to_owned()
            };
            let _ = writeln!(out, "{painted}");
        }
    }
    let _ = writeln!(
        out,
        "\n{} added, {} removed, {} changed.",
        diff.added.len(),
        diff.removed.len(),
        diff.changed.len()
    );
    out
}

pub fn diff_json(diff: &StateDiff) -> String {
    let mut s = serde_json::to_string_pretty(diff).unwrap_or_default();
    s.push('\n');
    s
}

// ------------------------------------------------------------------ tables

/// Left-aligned columns separated by two spaces; the last column is not padded.
fn table(header: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i + 1 == n {
                s.push_str(&cell);
            } else {
                let pad = width[i] - cell.chars().count();
                s.push_str(&cell);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = String::new();
    let head = line(header.iter().map(|h| (*h).to_owned()).collect());
    let _ = writeln!(out, "{}", style.bold(&head));
    for r in rows {
        let _ = writeln!(out, "{}", line(r.clone()));
    }
    out
}

fn phase_painted(phase: CardPhase, style: Style) -> String {
    let s = phase.as_str();
    match phase {
        CardPhase::Active => style.green(s),
        CardPhase::Frozen => style.cyan(s),
        CardPhase::Pending => style.yellow(s),
        CardPhase::Failed | CardPhase::Closed => style.red(s),
    }
}

/// All cards: key, status, product, user, card id, last4, charged.
pub fn cards_table<'a>(cards: impl IntoIterator<Item = &'a CardRecord>, style: Style) -> String {
    let cards: Vec<&CardRecord> = cards.into_iter().collect();
    if cards.is_empty() {
        return "No cards in state.\n".to_owned();
    }
    let mut total = Decimal::ZERO;
    let rows: Vec<Vec<String>> = cards
        .iter()
        .map(|c| {
            total += c.charged;
            vec![
                c.key.clone(),
                c.phase.as_str().to_owned(),
                c.product_code.clone(),
                c.external_user_id.clone(),
                c.card_id.clone().unwrap_or_else(|| "-".into()),
                c.last4.clone().unwrap_or_else(|| "-".into()),
                money(c.charged),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "KEY", "STATUS", "PRODUCT", "USER", "CARD ID", "LAST4", "CHARGED",
        ],
        &rows,
        style,
    );
    let _ = writeln!(
        out,
        "\n{} card{}, {} charged in total.",
        cards.len(),
        if cards.len() == 1 { "" } else { "s" },
        money(total)
    );
    out
}

pub fn cards_json<'a>(cards: impl IntoIterator<Item = &'a CardRecord>) -> String {
    let cards: Vec<CanonicalCard> = cards.into_iter().map(CanonicalCard::from).collect();
    let mut s = serde_json::to_string_pretty(&cards).unwrap_or_default();
    s.push('\n');
    s
}

/// An order as `show` prints it: the journal's fields without the raw request.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub kind: String,
    pub attempt: u32,
    pub order_id: Option<String>,
    pub phase: String,
    pub provider_status: Option<String>,
    pub error_slug: Option<String>,
    pub error_message: Option<String>,
    pub estimated_charge: Option<String>,
    pub charge: Option<String>,
    pub idempotency_key: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&OrderRecord> for OrderView {
    fn from(o: &OrderRecord) -> Self {
        OrderView {
            kind: o.kind.as_str().to_owned(),
            attempt: o.attempt,
            order_id: o.order_id.clone(),
            phase: o.phase.as_str().to_owned(),
            provider_status: o.provider_status.clone(),
            error_slug: o.error_slug.clone(),
            error_message: o.error_message.clone(),
            estimated_charge: opt_money(o.estimated_charge),
            charge: opt_money(o.charge),
            idempotency_key: o.idempotency_key.clone(),
            created_at: o.created_at.clone(),
            updated_at: o.updated_at.clone(),
        }
    }
}

/// One card in detail: declared vs recorded vs last seen at the provider, its orders, charges.
pub fn card_detail(card: &CardRecord, orders: &[OrderRecord], style: Style) -> String {
    let mut out = String::new();
    let dash = || "-".to_owned();
    let _ = writeln!(out, "{}", style.bold(&card.key));
    let mut field = |name: &str, value: String| {
        let _ = writeln!(out, "  {name:<16}{value}");
    };
    field("card id", card.card_id.clone().unwrap_or_else(dash));
    field("last4", card.last4.clone().unwrap_or_else(dash));
    field("user", card.external_user_id.clone());
    field("product", card.product_code.clone());
    field(
        "initial top-up",
        opt_money(card.initial_topup).unwrap_or_else(dash),
    );
    field(
        "labels",
        if card.labels.is_empty() {
            dash()
        } else {
            card.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    field("declared", card.desired_status.as_str().to_owned());
    field("recorded", phase_painted(card.phase, style));
    field(
        "provider says",
        card.provider_status
            .clone()
            .unwrap_or_else(|| "- (never read: run `cardform refresh`)".into()),
    );
    field("charged", money(card.charged));
    field("attempt", card.attempt.to_string());
    if let Some(r) = &card.replaced_by {
        field("replaced by", r.clone());
    }
    field("created", card.created_at.clone());
    field("updated", card.updated_at.clone());

    if orders.is_empty() {
        let _ = writeln!(out, "\nNo orders journaled.");
        return out;
    }
    let _ = writeln!(out, "\n{}", style.bold("Orders:"));
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|o| {
            vec![
                o.kind.as_str().to_owned(),
                o.attempt.to_string(),
                o.order_id.clone().unwrap_or_else(dash),
                o.phase.as_str().to_owned(),
                o.error_slug.clone().unwrap_or_else(dash),
                opt_money(o.estimated_charge).unwrap_or_else(dash),
                opt_money(o.charge).unwrap_or_else(dash),
                o.idempotency_key.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "KIND",
            "ATTEMPT",
            "ORDER ID",
            "PHASE",
            "SLUG",
            "ESTIMATED",
            "CHARGE",
            "IDEMPOTENCY KEY",
        ],
        &rows,
        style,
    ));
    let mut by_kind: BTreeMap<&str, Decimal> = BTreeMap::new();
    for o in orders {
        if let Some(c) = o.charge {
            *by_kind.entry(o.kind.as_str()).or_default() += c;
        }
    }
    let total: Decimal = by_kind.values().copied().sum();
    let parts: Vec<String> = by_kind
        .iter()
        .map(|(k, v)| format!("{k} {}", money(*v)))
        .collect();
    let _ = writeln!(
        out,
        "\nCharges: {} in total{}",
        money(total),
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    );
    out
}

pub fn card_detail_json(card: &CardRecord, orders: &[OrderRecord]) -> String {
    #[derive(Serialize)]
    struct Detail {
        card: CanonicalCard,
        updated_at: String,
        orders: Vec<OrderView>,
    }
    let d = Detail {
        card: card.into(),
        updated_at: card.updated_at.clone(),
        orders: orders.iter().map(OrderView::from).collect(),
    };
    let mut s = serde_json::to_string_pretty(&d).unwrap_or_default();
    s.push('\n');
    s
}

// ------------------------------------------------------------------ history

/// What a run's summary says, as "issued 3, failed 1" and the money it moved.
fn summary_text(summary: &serde_json::Value) -> (String, String) {
    const COUNTS: [&str; 10] = [
        "issued",
        "changed",
        "resumed",
        "failed",
        "skipped",
        "removed",
        "imported",
        "drift",
        "cards_checked",
        "orders_checked",
    ];
    let mut counts = Vec::new();
    for name in COUNTS {
        match summary.get(name) {
            Some(serde_json::Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
                counts.push(format!("{} {n}", name.replace('_', " ")));
            }
            Some(serde_json::Value::Array(a)) if !a.is_empty() => {
                counts.push(format!("{name} {}", a.len()));
            }
            _ => {}
        }
    }
    if let Some(e) = summary.get("error").and_then(|e| e.as_str()) {
        counts.push(format!("error: {e}"));
    }
    if summary.get("interrupted").and_then(|v| v.as_bool()) == Some(true) {
        counts.push("interrupted".into());
    }
    let amount = |name: &str| {
        summary
            .get(name)
            .and_then(|c| c.as_str())
            .and_then(|c| c.parse::<Decimal>().ok())
    };
    // A run that could have charged (apply estimates) says so even when it charged nothing; a
    // refresh only mentions money when it found orders that charged some.
    let money = match (amount("charged"), amount("estimated")) {
        (Some(c), Some(e)) => format!("charged {} (est. {})", money(c), money(e)),
        (Some(c), None) if !c.is_zero() => format!("charged {}", money(c)),
        _ => String::new(),
    };
    let counts = if counts.is_empty() {
        "no changes".to_owned()
    } else {
        counts.join(", ")
    };
    (counts, money)
}

/// One line per serial: when, who, command, counts, money.
pub fn history_human(runs: &[RunRecord], style: Style) -> String {
    if runs.is_empty() {
        return "No runs recorded yet.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let (counts, money) = match r.finished_at {
                Some(_) => summary_text(&r.summary),
                None => (
                    "unfinished (killed or still running)".to_owned(),
                    String::new(),
                ),
            };
            vec![
                r.serial.to_string(),
                r.at.clone(),
                format!("{}@{}", r.user, r.host),
                r.command.clone(),
                counts,
                money,
            ]
        })
        .collect();
    table(
        &["SERIAL", "WHEN", "WHO", "COMMAND", "COUNTS", "MONEY"],
        &rows,
        style,
    )
}

pub fn history_json(runs: &[RunRecord]) -> String {
    let mut s = serde_json::to_string_pretty(runs).unwrap_or_default();
    s.push('\n');
    s
}

// ------------------------------------------------------------------ audit

const AUDIT_COLUMNS: [&str; 7] = [
    "at",
    "endpoint",
    "idempotency_key",
    "order_id",
    "card_key",
    "result",
    "charge",
];

fn audit_row(c: &CallRecord) -> Vec<String> {
    vec![
        c.at.clone(),
        c.endpoint.clone(),
        c.idempotency_key.clone().unwrap_or_default(),
        c.order_id.clone().unwrap_or_default(),
        c.card_key.clone().unwrap_or_default(),
        c.result.clone(),
        opt_money(c.charge).unwrap_or_default(),
    ]
}

pub fn audit_csv(calls: &[CallRecord]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(AUDIT_COLUMNS);
    for c in calls {
        let _ = w.write_record(audit_row(c));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

pub fn audit_table(calls: &[CallRecord], style: Style) -> String {
    if calls.is_empty() {
        return "No provider calls that changed something were recorded.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            audit_row(c)
                .into_iter()
                .map(|s| if s.is_empty() { "-".into() } else { s })
                .collect()
        })
        .collect();
    let header: Vec<String> = AUDIT_COLUMNS
        .iter()
        .map(|c| c.replace('_', " ").to_uppercase())
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut out = table(&header, &rows, style);
    let total: Decimal = calls.iter().filter_map(|c| c.charge).sum();
    let _ = writeln!(
        out,
        "\n{} call{}, {} charged.",
        calls.len(),
        if calls.len() == 1 { "" } else { "s" },
        money(total)
    );
    out
}

pub fn audit_json(calls: &[CallRecord]) -> String {
    #[derive(Serialize)]
    struct Row<'a> {
        at: &'a str,
        endpoint: &'a str,
        idempotency_key: Option<&'a str>,
        order_id: Option<&'a str>,
        card_key: Option<&'a str>,
        result: &'a str,
        charge: Option<String>,
    }
    let rows: Vec<Row> = calls
        .iter()
        .map(|c| Row {
            at: &c.at,
            endpoint: &c.endpoint,
            idempotency_key: c.idempotency_key.as_deref(),
            order_id: c.order_id.as_deref(),
            card_key: c.card_key.as_deref(),
            result: &c.result,
            charge: opt_money(c.charge),
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&rows).unwrap_or_default();
    s.push('\n');
    s
}

// ------------------------------------------------------------------ refresh

/// "bob-ops: frozen outside cardform (was active)".
pub fn drift_line(d: &Drift) -> String {
    match d {
        Drift::Status {
            key,
            was,
            now: CardPhase::Closed,
            ..
        } => format!("{key}: closed at the provider (was {})", was.as_str()),
        Drift::Status { key, was, now, .. } => format!(
            "{key}: {} outside cardform (was {})",
            now.as_str(),
            was.as_str()
        ),
        Drift::OrderFinished {
            key,
            kind,
            order_id,
            phase,
            error_slug,
            charge,
        } => {
            let mut s = format!(
                "{key}: {} order {order_id} {}",
                kind.as_str(),
                phase.as_str()
            );
            if let Some(slug) = error_slug {
                let _ = write!(s, " ({slug})");
            }
            if let Some(c) = charge {
                let _ = write!(s, ", charged {}", money(*c));
            }
            s
        }
    }
}

/// What a refresh found, for people.
pub fn refresh_human(report: &RefreshReport, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Refreshed {} card{} and {} open order{} from the provider.",
        report.cards_checked,
        if report.cards_checked == 1 { "" } else { "s" },
        report.orders_checked,
        if report.orders_checked == 1 { "" } else { "s" },
    );
    if report.drift.is_empty() {
        let _ = writeln!(
            out,
            "{} state matches the provider.",
            style.green("No drift:")
        );
    } else {
        let _ = writeln!(
            out,
            "{} ({}):",
            style.yellow("Drift found"),
            report.drift.len()
        );
        for d in &report.drift {
            let _ = writeln!(out, "  {}", drift_line(d));
        }
    }
    for u in &report.unread {
        let _ = writeln!(
            out,
            "{} {}: could not read {} ({}): {}",
            style.red("warning:"),
            u.key,
            u.id,
            u.slug,
            u.message
        );
    }
    if !report.unacknowledged.is_empty() {
        let _ = writeln!(
            out,
            "{} order{} never acknowledged by the provider ({}): `cardform apply` resumes {}.",
            report.unacknowledged.len(),
            if report.unacknowledged.len() == 1 {
                ""
            } else {
                "s"
            },
            report.unacknowledged.join(", "),
            if report.unacknowledged.len() == 1 {
                "it"
            } else {
                "them"
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decl::DesiredStatus;

    fn card(key: &str) -> CardRecord {
        CardRecord {
            key: key.into(),
            external_user_id: "u-1".into(),
            product_code: "VISA_USD_STD".into(),
            initial_topup: Some(Decimal::new(5, 0)),
            desired_status: DesiredStatus::Active,
            labels: crate::decl::Labels::from([("team".into(), "ops".into())]),
            card_id: Some("card_1".into()),
            phase: CardPhase::Active,
            provider_status: Some("active".into()),
            last4: Some("4242".into()),
            charged: Decimal::new(1005, 1),
            attempt: 1,
            replaced_by: None,
            created_at: "2025-01-01T00:00:00Z".into(),
            updated_at: "2025-01-02T00:00:00Z".into(),
        }
    }

    #[test]
    fn money_has_two_decimals() {
        assert_eq!(money(Decimal::new(5, 0)), "5.00");
        assert_eq!(money(Decimal::new(1005, 1)), "100.50");
        assert_eq!(money(Decimal::new(12345, 3)), "12.35");
        assert_eq!(money(Decimal::ZERO), "0.00");
    }

    #[test]
    fn diff_skips_unchanged_and_names_changed_fields() {
        let a = BTreeMap::from([("a".to_owned(), card("a")), ("b".to_owned(), card("b"))]);
        let mut b = a.clone();
        let bc = b.get_mut("b").unwrap();
        bc.phase = CardPhase::Frozen;
        bc.updated_at = "2025-02-01T00:00:00Z".into();
        b.insert("c".into(), card("c"));
        let d = StateDiff::new(1, 2, &a, &b);
        assert_eq!(d.added.len(), 1);
        assert!(d.removed.is_empty());
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].key, "b");
        assert_eq!(d.changed[0].fields, vec!["status".to_owned()]);
        let text = diff_human(&d, &a, &b, Style::PLAIN);
        assert!(text.contains("-status: active\n+status: frozen"), "{text}");
        assert!(!text.contains("~ a"), "{text}");
    }

    #[test]
    fn only_updated_at_is_no_change() {
        let a = BTreeMap::from([("a".to_owned(), card("a"))]);
        let mut b = a.clone();
        b.get_mut("a").unwrap().updated_at = "2030-01-01T00:00:00Z".into();
        assert!(StateDiff::new(1, 2, &a, &b).is_empty());
    }

    #[test]
    fn csv_has_label_columns() {
        let cards = BTreeMap::from([("a".to_owned(), card("a"))]);
        let csv = export_csv(&cards);
        let mut lines = csv.lines();
        assert!(lines.next().unwrap().ends_with(",created_at,label.team"));
        assert!(lines.next().unwrap().contains(",100.50,1,,"), "{csv}");
    }
}
