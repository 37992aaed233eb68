//! Addresses: how every resource cardform manages is named, in plans, events, the journal, the
//! audit trail and error messages (`card.alice`, `topup.alice:2026-11`). Owns the syntax of an
//! address and the rule for keys; must not know how a resource of any kind is stored or sent.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The kinds of resource cardform manages.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    #[default]
    Card,
    /// A declared top-up of a card, keyed `CARD:ID` (`:` is not allowed in a key, so the split
    /// is never ambiguous).
    Topup,
    /// A person registered with the provider, keyed by their `external_user_id`.
    User,
    /// A person's KYC record at one subprovider, keyed `EXTERNAL_USER_ID:SUBPROVIDER` (split at
    /// the last `:`, since an external user id is the provider's and may hold one).
    Cardholder,
}

impl ResourceKind {
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Card,
        ResourceKind::Topup,
        ResourceKind::User,
        ResourceKind::Cardholder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Card => "card",
            ResourceKind::Topup => "topup",
            ResourceKind::User => "user",
            ResourceKind::Cardholder => "cardholder",
        }
    }

    pub fn is_card(&self) -> bool {
        *self == ResourceKind::Card
    }

    /// A person's resource (user or cardholder): never a card's, and never charged for.
    pub fn is_person(self) -> bool {
        matches!(self, ResourceKind::User | ResourceKind::Cardholder)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceKind {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, AddressError> {
        ResourceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| AddressError::UnknownKind(s.to_owned()))
    }
}

/// Between a top-up's card key and its id; never part of a key.
pub const TOPUP_SEPARATOR: char = ':';

/// Between a cardholder's external user id and its subprovider.
pub const CARDHOLDER_SEPARATOR: char = ':';

/// One resource: its kind and its key within that kind. Printed `kind.key`; the kind never
/// contains a dot, so the first dot always ends it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    pub kind: ResourceKind,
    pub key: String,
}

impl Address {
    pub fn new(kind: ResourceKind, key: impl Into<String>) -> Self {
        Self {
            kind,
            key: key.into(),
        }
    }

    pub fn card(key: impl Into<String>) -> Self {
        Self::new(ResourceKind::Card, key)
    }

    /// Top-up `id` of card `card`.
    pub fn topup(card: &str, id: &str) -> Self {
        Self::new(ResourceKind::Topup, format!("{card}{TOPUP_SEPARATOR}{id}"))
    }

    /// The user `external_user_id`.
    pub fn user(external_user_id: &str) -> Self {
        Self::new(ResourceKind::User, external_user_id)
    }

    /// The cardholder of `external_user_id` at `subprovider`.
    pub fn cardholder(external_user_id: &str, subprovider: &str) -> Self {
        Self::new(
            ResourceKind::Cardholder,
            format!("{external_user_id}{CARDHOLDER_SEPARATOR}{subprovider}"),
        )
    }

    /// The card this resource is or belongs to (a top-up's card); `None` for a person.
    pub fn card_key(&self) -> Option<&str> {
        match self.kind {
            ResourceKind::Card => Some(&self.key),
            ResourceKind::Topup => self.key.split_once(TOPUP_SEPARATOR).map(|(card, _)| card),
            ResourceKind::User | ResourceKind::Cardholder => None,
        }
    }

    /// A top-up's id within its card.
    pub fn topup_id(&self) -> Option<&str> {
        match self.kind {
            ResourceKind::Topup => self.key.split_once(TOPUP_SEPARATOR).map(|(_, id)| id),
            _ => None,
        }
    }

    /// The person a user or cardholder is (their `external_user_id`).
    pub fn person(&self) -> Option<&str> {
        match self.kind {
            ResourceKind::User => Some(&self.key),
            ResourceKind::Cardholder => self
                .key
                .rsplit_once(CARDHOLDER_SEPARATOR)
                .map(|(uid, _)| uid),
            _ => None,
        }
    }

    /// A cardholder's subprovider.
    pub fn subprovider(&self) -> Option<&str> {
        match self.kind {
            ResourceKind::Cardholder => self
                .key
                .rsplit_once(CARDHOLDER_SEPARATOR)
                .map(|(_, sub)| sub),
            _ => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.kind, self.key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("`{0}` is not an address: expected KIND.KEY, e.g. card.alice or topup.alice:2026-11")]
    Malformed(String),
    #[error("unknown resource kind `{0}`: expected card, topup, user or cardholder")]
    UnknownKind(String),
    #[error("invalid key in address: {0}")]
    Key(#[from] KeyError),
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, AddressError> {
        let (kind, key) = s
            .split_once('.')
            .ok_or_else(|| AddressError::Malformed(s.to_owned()))?;
        let kind: ResourceKind = kind.parse()?;
        match kind {
            ResourceKind::Card => check_key(key)?,
            // `CARD:ID`: each half a key of its own.
            ResourceKind::Topup => {
                let (card, id) = key
                    .split_once(TOPUP_SEPARATOR)
                    .ok_or_else(|| AddressError::Malformed(s.to_owned()))?;
                check_key(card)?;
                check_key(id)?;
            }
            // An external user id is the provider's, not a cardform key: any text but blank.
            ResourceKind::User | ResourceKind::Cardholder => {
                if key.trim().is_empty() {
                    return Err(AddressError::Key(KeyError::Empty));
                }
            }
        }
        Ok(Address::new(kind, key))
    }
}

impl Serialize for Address {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The most characters a key may have.
pub const KEY_MAX_LEN: usize = 128;

/// Why a key is not a key. Declarations turn this into a spanned problem; the command line into a
/// usage error: the rule itself lives only here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is empty")]
    Empty,
    #[error("`{0}` is not allowed in a key")]
    BadChar(char),
    #[error("the key has {0} characters, more than {KEY_MAX_LEN}")]
    TooLong(usize),
}

impl KeyError {
    /// What to do about it, in one line.
    pub const RULE: &'static str = "a key uses only A-Z a-z 0-9 . _ / - (1 to 128 characters)";
}

/// A key: `[A-Za-z0-9._/-]{1,128}`. The one rule for every key, declared or typed on the command
/// line, so whatever cardform manages can also be declared.
pub fn check_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')))
    {
        return Err(KeyError::BadChar(bad));
    }
    let len = key.chars().count();
    if len > KEY_MAX_LEN {
        return Err(KeyError::TooLong(len));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_text() {
        let a = Address::card("team.ops/alice");
        assert_eq!(a.to_string(), "card.team.ops/alice");
        assert_eq!("card.team.ops/alice".parse::<Address>().unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"card.team.ops/alice\"");
        assert_eq!(serde_json::from_str::<Address>(&json).unwrap(), a);
    }

    #[test]
    fn a_topup_address_round_trips_and_needs_both_halves() {
        let a = Address::topup("alice", "2026-11");
        assert_eq!(a.to_string(), "topup.alice:2026-11");
        assert_eq!("topup.alice:2026-11".parse::<Address>().unwrap(), a);
        assert!(matches!(
            "topup.alice".parse::<Address>(),
            Err(AddressError::Malformed(_))
        ));
        assert!(matches!(
            "card.alice:1".parse::<Address>(),
            Err(AddressError::Key(KeyError::BadChar(':')))
        ));
    }

    #[test]
    fn refuses_what_is_not_an_address() {
        assert!(matches!(
            "alice".parse::<Address>(),
            Err(AddressError::Malformed(_))
        ));
        assert!(matches!(
            "wallet.alice".parse::<Address>(),
            Err(AddressError::UnknownKind(_))
        ));
        assert!(matches!(
            "card.al ice".parse::<Address>(),
            Err(AddressError::Key(KeyError::BadChar(' ')))
        ));
    }

    #[test]
    fn keys() {
        assert!(check_key("a.b_c/d-1").is_ok());
        assert_eq!(check_key(""), Err(KeyError::Empty));
        assert_eq!(check_key("a b"), Err(KeyError::BadChar(' ')));
        assert_eq!(check_key(&"k".repeat(129)), Err(KeyError::TooLong(129)));
        assert!(check_key(&"k".repeat(128)).is_ok());
    }
}
