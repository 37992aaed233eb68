//! The domain vocabulary that declarations, state, the planner and the executor share: resource
//! addresses and the rule for keys, the status a card may be declared in, labels, and the
//! provider a state belongs to. Plain data with no I/O; must not depend on any other cardform
//! layer.

mod address;
pub mod country;
mod labels;
mod part;
pub mod provider;

pub use address::{
    Address, AddressError, CARDHOLDER_SEPARATOR, KEY_MAX_LEN, KeyError, ResourceKind,
    TOPUP_SEPARATOR, check_key,
};
pub use country::is_iso_alpha2;
pub use labels::{LabelSets, Labels};
pub use part::Part;
pub use provider::{Binding, ProviderId, ProviderIdError};

use serde::{Deserialize, Serialize};

/// The cardholder fields that identify a person (every field of the form but the country). Their
/// values leave the process only for the provider, or as digests under a secret key: declarations
/// read them, the journal keeps their digests, a plan's fingerprint covers them keyed.
pub const PERSONAL_FIELDS: &[&str] = &[
    "first_name",
    "last_name",
    "birth_date",
    "email",
    "phone_number_full",
];

/// The status a declaration asks for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum DesiredStatus {
    #[default]
    Active,
    Frozen,
}

impl DesiredStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DesiredStatus::Active => "active",
            DesiredStatus::Frozen => "frozen",
        }
    }
}
