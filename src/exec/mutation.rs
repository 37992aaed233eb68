//! Every provider request that changes something, as a typed value: a card's ([`CardMutation`],
//! answered with an order to track) or a person's ([`PersonMutation`], answered at once with the
//! person). Each knows its order kind and endpoint, which of its fields are personal (journalled
//! only as a keyed digest), how it is written to the journal ([`Journaled`]), and how it is sent,
//! so a card's path cannot be handed a person's request: that does not compile. Must not touch
//! state or decide anything: `perform` does the journalling, the planner the deciding.
//!
//! Adding a kind of resource means adding its mutations here: nothing else in the executor sends.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::{Client, ClientError};
use crate::state::OrderKind;
use crate::wire::{
    Call, CreateCardRequest, CreateCardholderRequest, CreateUserRequest, FreezeRequest, Order,
    TopupRequest, UnfreezeRequest, digest::hmac_sha256,
};

/// What the journal needs of any mutation: its order kind, its endpoint (as the audit trail
/// names it) and the request as the journal keeps it.
pub trait Journaled {
    fn kind(&self) -> OrderKind;
    fn endpoint(&self) -> &'static str;
    /// The request as the journal keeps it: the exact fields sent, except personal ones, which
    /// become keyed digests (`journal_key` never reaches state).
    fn journal_form(&self, journal_key: &[u8]) -> String;
}

/// A request that changes a card at the provider, answered with an order to track
/// ([`CardMutation::send`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardMutation {
    IssueCard(CreateCardRequest),
    Freeze(FreezeRequest),
    Unfreeze(UnfreezeRequest),
    Topup(TopupRequest),
}

/// A request that registers a person at the provider, answered at once with the person
/// ([`PersonMutation::send`]).
#[derive(Clone, PartialEq, Eq)]
pub enum PersonMutation {
    CreateUser(CreateUserRequest),
    CreateCardholder(CreateCardholderRequest),
}

/// Never prints a cardholder's personal fields: a mutation may end up in an error or a log line.
impl std::fmt::Debug for PersonMutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PersonMutation::CreateUser(r) => f.debug_tuple("CreateUser").field(r).finish(),
            PersonMutation::CreateCardholder(r) => f
                .debug_struct("CreateCardholder")
                .field("external_user_id", &r.external_user_id)
                .field("subprovider_code", &r.subprovider_code)
                .finish_non_exhaustive(),
        }
    }
}

/// What `users/create` or `cardholders/create` said of the person.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PersonAnswer {
    /// `user_id` / `cardholder_id`.
    pub id: Option<String>,
    pub registration_status: Option<String>,
    pub kyc_status: Option<String>,
}

/// The fields of `cardholders/create` that identify a person. A cardholder mutation journals
/// these as keyed digests; the values live only in the declarations.
pub const CARDHOLDER_PERSONAL_FIELDS: &[&str] = crate::model::PERSONAL_FIELDS;

/// Why a journaled request cannot be turned back into a mutation.
#[derive(Debug, thiserror::Error)]
#[error("journaled {kind} request is unreadable: {why}")]
pub struct Unreadable {
    kind: &'static str,
    why: String,
}

impl Journaled for CardMutation {
    fn kind(&self) -> OrderKind {
        match self {
            CardMutation::IssueCard(_) => OrderKind::Issue,
            CardMutation::Freeze(_) => OrderKind::Freeze,
            CardMutation::Unfreeze(_) => OrderKind::Unfreeze,
            CardMutation::Topup(_) => OrderKind::Topup,
        }
    }

    fn endpoint(&self) -> &'static str {
        match self {
            CardMutation::IssueCard(_) => CreateCardRequest::ENDPOINT.path(),
            CardMutation::Freeze(_) => FreezeRequest::ENDPOINT.path(),
            CardMutation::Unfreeze(_) => UnfreezeRequest::ENDPOINT.path(),
            CardMutation::Topup(_) => TopupRequest::ENDPOINT.path(),
        }
    }

    /// A card's requests hold nothing personal: journalled as sent.
    fn journal_form(&self, journal_key: &[u8]) -> String {
        match self {
            CardMutation::IssueCard(r) => journal_json(r, &[], journal_key),
            CardMutation::Freeze(r) => journal_json(r, &[], journal_key),
            CardMutation::Unfreeze(r) => journal_json(r, &[], journal_key),
            CardMutation::Topup(r) => journal_json(r, &[], journal_key),
        }
    }
}

impl Journaled for PersonMutation {
    fn kind(&self) -> OrderKind {
        match self {
            PersonMutation::CreateUser(_) => OrderKind::CreateUser,
            PersonMutation::CreateCardholder(_) => OrderKind::CreateCardholder,
        }
    }

    fn endpoint(&self) -> &'static str {
        match self {
            PersonMutation::CreateUser(_) => CreateUserRequest::ENDPOINT.path(),
            PersonMutation::CreateCardholder(_) => CreateCardholderRequest::ENDPOINT.path(),
        }
    }

    fn journal_form(&self, journal_key: &[u8]) -> String {
        match self {
            PersonMutation::CreateUser(r) => journal_json(r, &[], journal_key),
            PersonMutation::CreateCardholder(r) => {
                journal_json(r, CARDHOLDER_PERSONAL_FIELDS, journal_key)
            }
        }
    }
}

impl PersonMutation {
    /// Sends it under `idempotency_key`; the provider creates the person once.
    pub async fn send(
        &self,
        client: &Client,
        idempotency_key: &str,
    ) -> Result<PersonAnswer, ClientError> {
        let key = Some(idempotency_key);
        match self {
            PersonMutation::CreateUser(r) => client.call(r, key).await.map(|u| PersonAnswer {
                id: u.user_id,
                ..PersonAnswer::default()
            }),
            PersonMutation::CreateCardholder(r) => {
                client.call(r, key).await.map(|c| PersonAnswer {
                    id: Some(c.cardholder_id),
                    registration_status: Some(c.registration_status.to_string()),
                    kyc_status: Some(c.kyc_status.to_string()),
                })
            }
        }
    }
}

impl CardMutation {
    /// The card mutation a journal entry recorded, to re-send it under the same key. A person's
    /// entry is not one: its create action sends it again, the declarations supplying the
    /// personal fields the journal holds only as digests.
    pub fn from_journal(kind: OrderKind, request: &str) -> Result<CardMutation, Unreadable> {
        fn parse<T: DeserializeOwned>(kind: OrderKind, request: &str) -> Result<T, Unreadable> {
            serde_json::from_str(request).map_err(|e| Unreadable {
                kind: kind.as_str(),
                why: e.to_string(),
            })
        }
        match kind {
            OrderKind::Issue => parse(kind, request).map(CardMutation::IssueCard),
            OrderKind::Freeze => parse(kind, request).map(CardMutation::Freeze),
            OrderKind::Unfreeze => parse(kind, request).map(CardMutation::Unfreeze),
            OrderKind::Topup => parse(kind, request).map(CardMutation::Topup),
            OrderKind::CreateUser | OrderKind::CreateCardholder => Err(Unreadable {
                kind: kind.as_str(),
                why: "a person's entry is not a card's order: its create action sends it again"
                    .into(),
            }),
        }
    }

    /// Sends it under `idempotency_key`: the provider creates the order once, and answers a
    /// repeat of the same key with the order it already has.
    pub async fn send(&self, client: &Client, idempotency_key: &str) -> Result<Order, ClientError> {
        let key = Some(idempotency_key);
        match self {
            CardMutation::IssueCard(r) => client.call(r, key).await,
            CardMutation::Freeze(r) => client.call(r, key).await,
            CardMutation::Unfreeze(r) => client.call(r, key).await,
            CardMutation::Topup(r) => client.call(r, key).await,
        }
    }

    /// Why `o`, as the provider answered it, cannot be the order this mutation created under
    /// `journaled` (its key, and its order id once known): another kind of order, another order
    /// id, another product, user, amount or card. `None` when nothing the answer says contradicts
    /// the journal. An answer like that must bind nothing: it may be another world's order (a lost
    /// sandbox, a wrong URL) or another request's under a reused key.
    pub fn mismatch(&self, journaled: &crate::state::OrderRecord, o: &Order) -> Option<String> {
        use crate::wire::OrderType;
        let expected = match self {
            CardMutation::IssueCard(_) => OrderType::CardIssue,
            CardMutation::Freeze(_) => OrderType::CardFreeze,
            CardMutation::Unfreeze(_) => OrderType::CardUnfreeze,
            CardMutation::Topup(_) => OrderType::CardTopup,
        };
        let known_type = !matches!(&o.order_type, OrderType::Unknown(s) if s.is_empty());
        if known_type && o.order_type != expected {
            return Some(format!(
                "the provider's order {} is a {} order, not a {} order",
                o.order_id, o.order_type, expected
            ));
        }
        if let Some(id) = journaled.order_id.as_deref().filter(|id| *id != o.order_id) {
            return Some(format!(
                "the journal holds order {id} under this key, the provider answered {}",
                o.order_id
            ));
        }
        let said = |field: &str| o.data.get(field).and_then(|v| v.as_str());
        match self {
            CardMutation::IssueCard(r) => {
                if let Some(why) = issue_mismatch(r, o) {
                    return Some(why);
                }
            }
            CardMutation::Topup(r) => {
                if let Some(theirs) = o.card_id.as_deref().filter(|c| *c != r.card_id) {
                    return Some(format!(
                        "order {} tops up card {theirs}, not {}",
                        o.order_id, r.card_id
                    ));
                }
                if let Some(theirs) = said("amount")
                    .and_then(|a| a.parse::<rust_decimal::Decimal>().ok())
                    .filter(|a| *a != r.amount)
                {
                    return Some(format!(
                        "order {} tops up {theirs}, the journal {}",
                        o.order_id, r.amount
                    ));
                }
            }
            CardMutation::Freeze(FreezeRequest { card_id, .. })
            | CardMutation::Unfreeze(UnfreezeRequest { card_id, .. }) => {
                if let Some(theirs) = o.card_id.as_deref().filter(|c| c != card_id) {
                    return Some(format!(
                        "order {} is for card {theirs}, not {card_id}",
                        o.order_id
                    ));
                }
            }
        }
        None
    }
}

/// How an issue order's answer contradicts its request: another product, user or initial top-up.
fn issue_mismatch(r: &CreateCardRequest, o: &Order) -> Option<String> {
    let said = |field: &str| o.data.get(field).and_then(|v| v.as_str());
    if let (Some(theirs), Some(ours)) = (said("product_code"), &r.product_code)
        && theirs != ours
    {
        return Some(format!(
            "order {} is for product {theirs}, not {ours}",
            o.order_id
        ));
    }
    if let Some(theirs) = said("external_user_id").filter(|u| *u != r.external_user_id) {
        return Some(format!(
            "order {} is for user {theirs}, not {}",
            o.order_id, r.external_user_id
        ));
    }
    let theirs = said(crate::wire::assumed::INITIAL_TOPUP_FIELD)
        .map(|a| a.parse::<rust_decimal::Decimal>().ok());
    if let Some(theirs) = theirs
        && theirs != r.initial_topup_amount
    {
        return Some(format!(
            "order {} tops up {}, the journal {}",
            o.order_id,
            theirs.map_or("nothing".into(), |a| a.to_string()),
            r.initial_topup_amount
                .map_or("nothing".into(), |a| a.to_string())
        ));
    }
    None
}

/// `request` as JSON with each of `personal` replaced by `hmac-sha256:<hex>` over its value.
pub fn journal_json<T: Serialize>(request: &T, personal: &[&str], journal_key: &[u8]) -> String {
    let mut value = serde_json::to_value(request).expect("requests serialize");
    if let serde_json::Value::Object(fields) = &mut value {
        for name in personal {
            if let Some(v) = fields.get_mut(*name).filter(|v| !v.is_null()) {
                *v = serde_json::Value::String(personal_digest(journal_key, name, v));
            }
        }
    }
    value.to_string()
}

/// The journal's stand-in for a personal value: equal values give equal digests under one key,
/// so a re-sent request can be checked against the journal without the journal holding it.
pub fn personal_digest(journal_key: &[u8], field: &str, value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let message = [field.as_bytes(), b"\0", text.as_bytes()].concat();
    format!(
        "hmac-sha256:{}",
        hex::encode(hmac_sha256(journal_key, &message))
    )
}

/// A cardholder request as it would be journalled, for the kind that carries personal data.
pub fn cardholder_journal_form(r: &CreateCardholderRequest, journal_key: &[u8]) -> String {
    journal_json(r, CARDHOLDER_PERSONAL_FIELDS, journal_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cardholder() -> CreateCardholderRequest {
        CreateCardholderRequest {
            external_user_id: "u-1001".into(),
            subprovider_code: "SP1".into(),
            first_name: "Alice".into(),
            last_name: "Smith".into(),
            birth_date: "1990-04-01".into(),
            email: "alice@example.com".into(),
            phone_number_full: "+15551234567".into(),
            country_iso: "US".into(),
        }
    }

    #[test]
    fn personal_fields_are_journalled_as_keyed_digests_only() {
        let key = [7u8; 32];
        let text = cardholder_journal_form(&cardholder(), &key);
        for value in [
            "Alice",
            "Smith",
            "1990-04-01",
            "alice@example.com",
            "+15551234567",
        ] {
            assert!(!text.contains(value), "{value} reached the journal: {text}");
        }
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        // What is not personal stays as sent, so the request can be matched and audited.
        assert_eq!(json["external_user_id"], "u-1001");
        assert_eq!(json["country_iso"], "US");
        let digest = json["birth_date"].as_str().unwrap();
        assert!(digest.starts_with("hmac-sha256:") && digest.len() == 12 + 64);
        // Deterministic under one key, so a re-send compares equal; different under another.
        assert_eq!(text, cardholder_journal_form(&cardholder(), &key));
        assert_ne!(text, cardholder_journal_form(&cardholder(), &[8u8; 32]));
        // The field name is part of the message: equal values in two fields differ.
        let v = serde_json::json!("x");
        assert_ne!(
            personal_digest(&key, "first_name", &v),
            personal_digest(&key, "last_name", &v)
        );
    }

    #[test]
    fn card_mutations_round_trip_through_the_journal() {
        let issue = CardMutation::IssueCard(CreateCardRequest {
            product_code: Some("VISA_USD_STD".into()),
            product_id: None,
            external_user_id: "u-1".into(),
            initial_topup_amount: Some("50.00".parse().unwrap()),
        });
        let freeze = CardMutation::Freeze(FreezeRequest {
            card_id: "card_1".into(),
            external_user_id: "u-1".into(),
        });
        let unfreeze = CardMutation::Unfreeze(UnfreezeRequest {
            card_id: "card_1".into(),
            external_user_id: "u-1".into(),
        });
        for m in [issue, freeze, unfreeze] {
            let text = m.journal_form(&[1; 32]);
            assert_eq!(CardMutation::from_journal(m.kind(), &text).unwrap(), m);
        }
        // A journal entry that does not fit its kind is an error, never a request with blanks.
        assert!(CardMutation::from_journal(OrderKind::Freeze, "{}").is_err());
        assert!(CardMutation::from_journal(OrderKind::Freeze, "not json").is_err());
    }
}
