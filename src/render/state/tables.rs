//! `cardform state list` and `state show`: the cards table, the top-ups table (`list --topup`),
//! one card in detail with its top-ups and journaled orders ([`OrderView`]), their JSON forms, and
//! the column layout the other tables share.
//!
//! Layout only: which cards and orders to show is the caller's choice, and nothing here may
//! print more of a card than [`CardRecord`] holds.

use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::export::{CanonicalCard, CanonicalTopup};
use super::{Style, amount, money, opt_money};
use crate::render::safe;
use crate::state::{CardPhase, CardRecord, OrderRecord};

/// Left-aligned columns separated by two spaces; the last column is not padded. Every cell is
/// state's text (keys, user ids, labels, provider slugs): it is escaped here, once for every
/// table, so no cell can hold a terminal sequence or a line break (cells must not be painted).
pub(super) fn table(header: &[&str], rows: &[Vec<String>], style: Style) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| safe(c).into_owned()).collect())
        .collect();
    let rows = &rows;
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
pub fn cards_table<'a>(
    cards: impl IntoIterator<Item = &'a CardRecord>,
    style: Style,
    cur: &str,
) -> String {
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
                c.key.to_string(),
                c.phase.as_str().to_owned(),
                c.product_code.to_string(),
                c.external_user_id.to_string(),
                c.card_id.as_deref().unwrap_or("-").to_owned(),
                c.last4.as_deref().unwrap_or("-").to_owned(),
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
        amount(total, cur)
    );
    out
}

pub fn cards_json<'a>(cards: impl IntoIterator<Item = &'a CardRecord>) -> String {
    let cards: Vec<CanonicalCard> = cards.into_iter().map(CanonicalCard::from).collect();
    let mut s = serde_json::to_string_pretty(&cards).unwrap_or_default();
    s.push('\n');
    s
}

fn labels_text(labels: &crate::model::Labels) -> String {
    if labels.is_empty() {
        return "-".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Top-ups, one row each: card, id, status, amount, charge, attempt, labels; then their totals.
pub fn topups_table(topups: &[CanonicalTopup], style: Style, cur: &str) -> String {
    if topups.is_empty() {
        return "No top-ups in state match.\n".to_owned();
    }
    let (mut sent, mut charged) = (Decimal::ZERO, Decimal::ZERO);
    let rows: Vec<Vec<String>> = topups
        .iter()
        .map(|t| {
            if t.status == "completed" {
                sent += t.amount.parse::<Decimal>().unwrap_or_default();
            }
            charged += t
                .charge
                .as_deref()
                .and_then(|c| c.parse::<Decimal>().ok())
                .unwrap_or_default();
            vec![
                t.card.clone(),
                t.id.clone(),
                t.status.clone(),
                t.amount.clone(),
                t.charge.clone().unwrap_or_else(|| "-".into()),
                t.attempt.to_string(),
                t.error_slug.clone().unwrap_or_else(|| "-".into()),
                labels_text(&t.labels),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "CARD", "TOPUP", "STATUS", "AMOUNT", "CHARGE", "ATTEMPT", "SLUG", "LABELS",
        ],
        &rows,
        style,
    );
    let _ = writeln!(
        out,
        "\n{} top-up{}: {} sent to cards, {} charged in total.",
        topups.len(),
        if topups.len() == 1 { "" } else { "s" },
        amount(sent, cur),
        amount(charged, cur)
    );
    out
}

/// Users and cardholders, one row each: who (by `external_user_id` only), where, what the
/// provider said of them. No personal field exists in state to show.
pub fn people_table(people: &[super::CanonicalPerson], style: Style) -> String {
    if people.is_empty() {
        return "No users or cardholders in state match.\n".to_owned();
    }
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = people
        .iter()
        .map(|p| {
            vec![
                p.external_user_id.clone(),
                if p.subprovider.is_some() {
                    "cardholder"
                } else {
                    "user"
                }
                .to_owned(),
                p.subprovider.clone().unwrap_or_else(dash),
                p.id.clone().unwrap_or_else(|| "(adopted)".to_owned()),
                p.status.clone(),
                p.registration_status.clone().unwrap_or_else(dash),
                p.kyc_status.clone().unwrap_or_else(dash),
                labels_text(&p.labels),
            ]
        })
        .collect();
    let mut out = table(
        &[
            "PERSON",
            "KIND",
            "SUBPROVIDER",
            "ID",
            "STATUS",
            "REGISTRATION",
            "KYC",
            "LABELS",
        ],
        &rows,
        style,
    );
    let holders = people.iter().filter(|p| p.subprovider.is_some()).count();
    let approved = people
        .iter()
        .filter(|p| p.kyc_status.as_deref() == Some("approved"))
        .count();
    let _ = writeln!(
        out,
        "\n{} user{}, {holders} cardholder{} ({approved} with KYC approved).",
        people.len() - holders,
        if people.len() - holders == 1 { "" } else { "s" },
        if holders == 1 { "" } else { "s" },
    );
    out
}

pub fn topups_json(topups: &[CanonicalTopup]) -> String {
    let mut s = serde_json::to_string_pretty(topups).unwrap_or_default();
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
    /// What the provider gave back of `charge` when the order failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refunded: Option<String>,
    /// What the order cost: `charge` less `refunded` (the one money rule, `state::money`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<String>,
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
            refunded: opt_money(o.refunded),
            cost: opt_money(crate::state::money::order_cost(o)),
            idempotency_key: o.idempotency_key.clone(),
            created_at: o.created_at.clone(),
            updated_at: o.updated_at.clone(),
        }
    }
}

/// One card in detail: declared vs recorded vs last seen at the provider, its top-ups, its orders,
/// charges.
pub fn card_detail(
    card: &CardRecord,
    topups: &[CanonicalTopup],
    orders: &[OrderRecord],
    style: Style,
    cur: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", style.bold(&safe(&card.key)));
    write_card_fields(&mut out, card, style, cur);
    if !topups.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Top-ups:"));
        out.push_str(&card_topups_table(topups, style));
    }
    if orders.is_empty() {
        let _ = writeln!(out, "\nNo orders journaled.");
        return out;
    }
    let _ = writeln!(out, "\n{}", style.bold("Orders:"));
    out.push_str(&orders_table(orders, style));
    write_charges(&mut out, orders, cur);
    out
}

/// The card's record, a field a line.
fn write_card_fields(out: &mut String, card: &CardRecord, style: Style, cur: &str) {
    let dash = || "-".to_owned();
    // Values are state's text, escaped; only `recorded` is painted, and it is ours.
    let mut field = |name: &str, value: String| {
        let value = match name {
            "recorded" => value.into(),
            _ => safe(&value),
        };
        let _ = writeln!(out, "  {name:<16}{value}");
    };
    field(
        "card id",
        card.card_id.as_deref().map_or_else(dash, str::to_owned),
    );
    field(
        "last4",
        card.last4.as_deref().map_or_else(dash, str::to_owned),
    );
    field("user", card.external_user_id.to_string());
    field("product", card.product_code.to_string());
    field(
        "initial top-up",
        card.initial_topup.map_or_else(dash, |t| amount(t, cur)),
    );
    field("labels", labels_text(&card.labels));
    field("declared", card.desired_status.as_str().to_owned());
    field("recorded", phase_painted(card.phase, style));
    field(
        "provider says",
        card.provider_status.as_deref().map_or_else(
            || "- (never read: run `cardform refresh`)".to_owned(),
            str::to_owned,
        ),
    );
    field("charged", amount(card.charged, cur));
    field(
        "balance",
        card.balance.map_or_else(
            || "- (not reported yet: run `cardform refresh`)".into(),
            |b| amount(b, cur),
        ),
    );
    field("attempt", card.attempt.to_string());
    if let Some(r) = &card.replaced_by {
        field("replaced by", r.to_string());
    }
    field("created", card.created_at.to_string());
    field("updated", card.updated_at.to_string());
}

/// The card's top-ups, a row each (`state topups` lists them across cards).
fn card_topups_table(topups: &[CanonicalTopup], style: Style) -> String {
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = topups
        .iter()
        .map(|t| {
            vec![
                t.id.clone(),
                t.status.clone(),
                t.amount.clone(),
                t.charge.clone().unwrap_or_else(dash),
                t.attempt.to_string(),
                labels_text(&t.labels),
            ]
        })
        .collect();
    table(
        &["ID", "STATUS", "AMOUNT", "CHARGE", "ATTEMPT", "LABELS"],
        &rows,
        style,
    )
}

/// The card's orders, a row each.
fn orders_table(orders: &[OrderRecord], style: Style) -> String {
    let dash = || "-".to_owned();
    // A column of refunds only where the provider gave something back: most cards have none.
    let refunds = orders
        .iter()
        .any(|o| o.refunded.is_some_and(|r| !r.is_zero()));
    let rows: Vec<Vec<String>> = orders
        .iter()
        .map(|o| {
            let mut row = vec![
                // A top-up names its id: `topup 2026-11`.
                match o.address.topup_id() {
                    Some(id) => format!("{} {id}", o.kind.as_str()),
                    None => o.kind.as_str().to_owned(),
                },
                o.attempt.to_string(),
                o.order_id.clone().unwrap_or_else(dash),
                o.phase.as_str().to_owned(),
                o.error_slug.clone().unwrap_or_else(dash),
                opt_money(o.estimated_charge).unwrap_or_else(dash),
                opt_money(o.charge).unwrap_or_else(dash),
            ];
            if refunds {
                row.push(opt_money(o.refunded).unwrap_or_else(dash));
            }
            row.push(o.idempotency_key.clone());
            row
        })
        .collect();
    let mut headers = vec![
        "KIND",
        "ATTEMPT",
        "ORDER ID",
        "PHASE",
        "SLUG",
        "ESTIMATED",
        "CHARGE",
    ];
    if refunds {
        headers.push("REFUNDED");
    }
    headers.push("IDEMPOTENCY KEY");
    table(&headers, &rows, style)
}

/// What the card's orders cost, by kind, and what the provider gave back.
fn write_charges(out: &mut String, orders: &[OrderRecord], cur: &str) {
    let mut by_kind: BTreeMap<&str, Decimal> = BTreeMap::new();
    for o in orders {
        if let Some(c) = crate::state::money::order_cost(o) {
            *by_kind.entry(o.kind.as_str()).or_default() += c;
        }
    }
    let total: Decimal = by_kind.values().copied().sum();
    let parts: Vec<String> = by_kind
        .iter()
        .map(|(k, v)| format!("{k} {}", money(*v)))
        .collect();
    let given_back: Decimal = orders.iter().filter_map(|o| o.refunded).sum();
    let _ = writeln!(
        out,
        "\nCharges: {} in total{}{}",
        amount(total, cur),
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        },
        if given_back.is_zero() {
            String::new()
        } else {
            format!(
                ", after {} refunded by the provider",
                amount(given_back, cur)
            )
        }
    );
}

pub fn card_detail_json(
    card: &CardRecord,
    topups: &[CanonicalTopup],
    orders: &[OrderRecord],
) -> String {
    #[derive(Serialize)]
    struct Detail<'a> {
        card: CanonicalCard,
        updated_at: String,
        #[serde(skip_serializing_if = "<[CanonicalTopup]>::is_empty")]
        topups: &'a [CanonicalTopup],
        orders: Vec<OrderView>,
    }
    let d = Detail {
        card: card.into(),
        updated_at: card.updated_at.to_string(),
        topups,
        orders: orders.iter().map(OrderView::from).collect(),
    };
    let mut s = serde_json::to_string_pretty(&d).unwrap_or_default();
    s.push('\n');
    s
}
