//! The canonical export of state's cards, top-ups and people: [`CanonicalCard`],
//! [`CanonicalTopup`] and [`CanonicalPerson`],
//! the JSON, YAML and CSV documents built from them, and the per-record text that diffs compare.
//!
//! The canonical form is the contract of `cardform state export`: its field order, its omissions
//! (`updated_at`) and its money format must not change with how the tables below look. Nothing
//! here may read the clock or anything but the records it is given.

use compact_str::CompactString;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{money, opt_money};
use crate::model::{Address, ResourceKind};
use crate::state::{CardRecord, ResourceImage, ResourceRecord};

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
    /// The card's balance as the provider last reported it (`refresh`); left out until known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balance: Option<String>,
}

impl From<&CardRecord> for CanonicalCard {
    fn from(c: &CardRecord) -> Self {
        CanonicalCard {
            key: c.key.to_string(),
            card_id: c.card_id.as_deref().map(str::to_owned),
            status: c.phase.as_str().to_owned(),
            provider_status: c.provider_status.as_deref().map(str::to_owned),
            last4: c.last4.as_deref().map(str::to_owned),
            external_user_id: c.external_user_id.to_string(),
            product_code: c.product_code.to_string(),
            initial_topup: opt_money(c.initial_topup),
            desired_status: c.desired_status.as_str().to_owned(),
            labels: c.labels.clone(),
            charged: money(c.charged),
            attempt: c.attempt,
            replaced_by: c.replaced_by.as_deref().map(str::to_owned),
            created_at: c.created_at.to_string(),
            balance: opt_money(c.balance),
        }
    }
}

/// One top-up in canonical form: its card and id first, money as strings, `updated_at` left out
/// (as a card's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanonicalTopup {
    pub card: String,
    pub id: String,
    pub amount: String,
    pub status: String,
    pub attempt: u32,
    pub charge: Option<String>,
    pub error_slug: Option<String>,
    pub labels: crate::decl::Labels,
    pub created_at: String,
}

impl CanonicalTopup {
    /// The canonical form of a top-up's record; `None` for a record of another kind.
    pub fn of(r: &ResourceRecord) -> Option<CanonicalTopup> {
        let t = r.image.as_topup()?;
        Some(CanonicalTopup {
            card: t.card.clone(),
            id: t.id.clone(),
            amount: money(t.amount),
            status: t.phase.as_str().to_owned(),
            attempt: t.attempt,
            charge: opt_money(t.charge),
            error_slug: t.error_slug.clone(),
            labels: t.labels.clone(),
            created_at: r.created_at.clone(),
        })
    }

    /// Its address key, `CARD:ID`.
    pub fn key(&self) -> String {
        Address::topup(&self.card, &self.id).key
    }
}

/// One user or cardholder in canonical form: what the provider said of the person, never a
/// personal field (state holds none; the KYC digests stay out of exports too: they are for
/// comparing, not reading).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CanonicalPerson {
    /// `user.UID` or `cardholder.UID:SUBPROVIDER`.
    pub address: String,
    pub external_user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subprovider: Option<String>,
    /// The provider's user or cardholder id; none when an existing one was adopted.
    pub id: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kyc_status: Option<String>,
    pub attempt: u32,
    pub error_slug: Option<String>,
    pub labels: crate::decl::Labels,
    pub created_at: String,
}

impl CanonicalPerson {
    /// The canonical form of a user's or cardholder's record; `None` for another kind.
    pub fn of(r: &ResourceRecord) -> Option<CanonicalPerson> {
        let address = r.address.to_string();
        let created_at = r.created_at.clone();
        Some(match &r.image {
            ResourceImage::User(u) => CanonicalPerson {
                address,
                external_user_id: u.external_user_id.clone(),
                subprovider: None,
                id: u.user_id.clone(),
                status: u.phase.as_str().to_owned(),
                registration_status: None,
                kyc_status: None,
                attempt: u.attempt,
                error_slug: u.error_slug.clone(),
                labels: u.labels.clone(),
                created_at,
            },
            ResourceImage::Cardholder(c) => CanonicalPerson {
                address,
                external_user_id: c.external_user_id.clone(),
                subprovider: Some(c.subprovider.clone()),
                id: c.cardholder_id.clone(),
                status: c.phase.as_str().to_owned(),
                registration_status: c.registration_status.clone(),
                kyc_status: c.kyc_status.clone(),
                attempt: c.attempt,
                error_slug: c.error_slug.clone(),
                labels: c.labels.clone(),
                created_at,
            },
            ResourceImage::Topup(_) => return None,
        })
    }
}

/// The users and cardholders among `resources`, by person, the user before its cardholders.
pub fn canonical_people<'a>(
    resources: impl IntoIterator<Item = &'a ResourceRecord>,
) -> Vec<CanonicalPerson> {
    let mut all: Vec<(bool, CanonicalPerson)> = resources
        .into_iter()
        .filter_map(|r| {
            Some((
                r.address.kind == ResourceKind::Cardholder,
                CanonicalPerson::of(r)?,
            ))
        })
        .collect();
    all.sort_by(|(a_holder, a), (b_holder, b)| {
        (&a.external_user_id, a_holder, &a.subprovider).cmp(&(
            &b.external_user_id,
            b_holder,
            &b.subprovider,
        ))
    });
    all.into_iter().map(|(_, p)| p).collect()
}

/// The lines a person contributes to a diff: its canonical fields, one per line.
pub fn person_text(p: &CanonicalPerson) -> String {
    let mut s = String::new();
    let mut line = |name: &str, value: &str| {
        let _ = writeln!(s, "{name}: {value}");
    };
    let none = "-";
    line("address", &p.address);
    line("external_user_id", &p.external_user_id);
    if let Some(sub) = &p.subprovider {
        line("subprovider", sub);
    }
    line("id", p.id.as_deref().unwrap_or("- (adopted)"));
    line("status", &p.status);
    if p.subprovider.is_some() {
        line(
            "registration_status",
            p.registration_status.as_deref().unwrap_or(none),
        );
        line("kyc_status", p.kyc_status.as_deref().unwrap_or(none));
    }
    line("attempt", &p.attempt.to_string());
    line("error_slug", p.error_slug.as_deref().unwrap_or(none));
    for (k, v) in &p.labels {
        line(&format!("label.{k}"), v);
    }
    line("created_at", &p.created_at);
    s
}

/// What `state export` writes: which kinds of record it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKinds {
    /// Cards, and top-ups and people when there are any.
    All,
    Cards,
    Topups,
    People,
}

#[derive(Serialize)]
struct Export<'a> {
    lineage: &'a str,
    serial: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cards: Option<Vec<CanonicalCard>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topups: Option<Vec<CanonicalTopup>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    people: Option<Vec<CanonicalPerson>>,
}

fn canonical(cards: &BTreeMap<CompactString, CardRecord>) -> Vec<CanonicalCard> {
    // BTreeMap iteration is sorted by key: the order is part of the canonical form.
    cards.values().map(CanonicalCard::from).collect()
}

/// The top-ups among `resources`, sorted by card, then id (part of the canonical form).
pub fn canonical_topups<'a>(
    resources: impl IntoIterator<Item = &'a ResourceRecord>,
) -> Vec<CanonicalTopup> {
    let mut all: Vec<CanonicalTopup> = resources
        .into_iter()
        .filter_map(CanonicalTopup::of)
        .collect();
    all.sort_by(|a, b| (&a.card, &a.id).cmp(&(&b.card, &b.id)));
    all
}

fn document<'a>(
    lineage: &'a str,
    serial: u64,
    cards: &BTreeMap<CompactString, CardRecord>,
    resources: &BTreeMap<Address, ResourceRecord>,
    kinds: ExportKinds,
) -> Export<'a> {
    let topups = canonical_topups(resources.values());
    let people = canonical_people(resources.values());
    Export {
        lineage,
        serial,
        cards: matches!(kinds, ExportKinds::All | ExportKinds::Cards).then(|| canonical(cards)),
        // A state without top-ups (or people) exports what it always did.
        topups: match kinds {
            ExportKinds::Topups => Some(topups),
            ExportKinds::All if !topups.is_empty() => Some(topups),
            _ => None,
        },
        people: match kinds {
            ExportKinds::People => Some(people),
            ExportKinds::All if !people.is_empty() => Some(people),
            _ => None,
        },
    }
}

pub fn export_json(
    lineage: &str,
    serial: u64,
    cards: &BTreeMap<CompactString, CardRecord>,
    resources: &BTreeMap<Address, ResourceRecord>,
    kinds: ExportKinds,
) -> String {
    let doc = document(lineage, serial, cards, resources, kinds);
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

pub fn export_yaml(
    lineage: &str,
    serial: u64,
    cards: &BTreeMap<CompactString, CardRecord>,
    resources: &BTreeMap<Address, ResourceRecord>,
    kinds: ExportKinds,
) -> String {
    let doc = document(lineage, serial, cards, resources, kinds);
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
pub fn export_csv(cards: &BTreeMap<CompactString, CardRecord>) -> String {
    let cards = canonical(cards);
    labelled_csv(
        &CSV_COLUMNS,
        cards.iter().map(|c| {
            let row = vec![
                c.key.clone(),
                c.card_id.clone().unwrap_or_default(),
                c.status.clone(),
                c.provider_status.clone().unwrap_or_default(),
                c.last4.clone().unwrap_or_default(),
                c.external_user_id.clone(),
                c.product_code.clone(),
                c.initial_topup.clone().unwrap_or_default(),
                c.desired_status.clone(),
                c.charged.clone(),
                c.attempt.to_string(),
                c.replaced_by.clone().unwrap_or_default(),
                c.created_at.clone(),
            ];
            (row, &c.labels)
        }),
    )
}

const TOPUP_CSV_COLUMNS: [&str; 8] = [
    "key",
    "topup_id",
    "amount",
    "status",
    "attempt",
    "charge",
    "error_slug",
    "created_at",
];

/// CSV of the top-ups, one row per top-up: `key,topup_id,amount` as a top-up CSV declares them
/// (`key` is the card's), then where each stands, then one `label.<name>` column per label name.
pub fn export_topups_csv(resources: &BTreeMap<Address, ResourceRecord>) -> String {
    let topups = canonical_topups(resources.values());
    labelled_csv(
        &TOPUP_CSV_COLUMNS,
        topups.iter().map(|t| {
            let row = vec![
                t.card.clone(),
                t.id.clone(),
                t.amount.clone(),
                t.status.clone(),
                t.attempt.to_string(),
                t.charge.clone().unwrap_or_default(),
                t.error_slug.clone().unwrap_or_default(),
                t.created_at.clone(),
            ];
            (row, &t.labels)
        }),
    )
}

/// A CSV of `columns`, then one `label.<name>` column per label name found in any row (sorted),
/// as the declaration files have them.
fn labelled_csv<'a>(
    columns: &[&str],
    rows: impl Iterator<Item = (Vec<String>, &'a crate::decl::Labels)> + Clone,
) -> String {
    let mut label_names: Vec<&String> = rows.clone().flat_map(|(_, l)| l.keys()).collect();
    label_names.sort();
    label_names.dedup();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = columns.iter().map(|s| (*s).to_owned()).collect();
    header.extend(label_names.iter().map(|n| format!("label.{n}")));
    let _ = w.write_record(&header);
    for (mut row, labels) in rows {
        row.extend(
            label_names
                .iter()
                .map(|n| labels.get(n).cloned().unwrap_or_default()),
        );
        let _ = w.write_record(&row);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

const PEOPLE_CSV_COLUMNS: [&str; 11] = [
    "address",
    "kind",
    "external_user_id",
    "subprovider",
    "id",
    "status",
    "registration_status",
    "kyc_status",
    "attempt",
    "error_slug",
    "created_at",
];

/// CSV of the users and cardholders, one row each, then one `label.<name>` column per label name.
pub fn export_people_csv(resources: &BTreeMap<Address, ResourceRecord>) -> String {
    let people = canonical_people(resources.values());
    labelled_csv(
        &PEOPLE_CSV_COLUMNS,
        people.iter().map(|p| {
            let kind = if p.subprovider.is_some() {
                "cardholder"
            } else {
                "user"
            };
            let row = vec![
                p.address.clone(),
                kind.to_owned(),
                p.external_user_id.clone(),
                p.subprovider.clone().unwrap_or_default(),
                p.id.clone().unwrap_or_default(),
                p.status.clone(),
                p.registration_status.clone().unwrap_or_default(),
                p.kyc_status.clone().unwrap_or_default(),
                p.attempt.to_string(),
                p.error_slug.clone().unwrap_or_default(),
                p.created_at.clone(),
            ];
            (row, &p.labels)
        }),
    )
}

/// The lines a top-up contributes to a diff: its canonical fields, one per line.
pub fn topup_text(t: &CanonicalTopup) -> String {
    let mut s = String::new();
    let mut line = |name: &str, value: &str| {
        let _ = writeln!(s, "{name}: {value}");
    };
    let none = "-";
    line("card", &t.card);
    line("id", &t.id);
    line("amount", &t.amount);
    line("status", &t.status);
    line("attempt", &t.attempt.to_string());
    line("charge", t.charge.as_deref().unwrap_or(none));
    line("error_slug", t.error_slug.as_deref().unwrap_or(none));
    for (k, v) in &t.labels {
        line(&format!("label.{k}"), v);
    }
    line("created_at", &t.created_at);
    s
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
    if let Some(b) = &c.balance {
        line("balance", b);
    }
    line("attempt", &c.attempt.to_string());
    line("replaced_by", c.replaced_by.as_deref().unwrap_or(none));
    line("created_at", &c.created_at);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::state::tests::card;

    #[test]
    fn csv_has_label_columns() {
        let cards = BTreeMap::from([("a".into(), card("a"))]);
        let csv = export_csv(&cards);
        let mut lines = csv.lines();
        assert!(lines.next().unwrap().ends_with(",created_at,label.team"));
        assert!(lines.next().unwrap().contains(",100.50,1,,"), "{csv}");
    }
}
