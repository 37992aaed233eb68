//! The one place a declared person's personal fields become what other layers may hold: the
//! planner's [`Person`] (what may be shown, and keyed digests) and the executor's KYC forms (the
//! values, sent to the provider and nowhere else). Must not print or store either.

use std::collections::BTreeMap;

use super::mutation::{CARDHOLDER_PERSONAL_FIELDS, personal_digest};
use crate::decl::Declarations;
use crate::plan::Person;
use crate::wire::CreateCardholderRequest;

/// The declared people as the planner sees them: each personal field as the keyed digest the
/// journal would hold, so a cardholder already sent is compared without any value in state.
pub fn planned(decls: &Declarations, journal_key: &[u8]) -> Vec<Person> {
    decls
        .cardholders
        .iter()
        .map(|c| Person {
            external_user_id: c.external_user_id.clone(),
            shown: c.kyc.initials(),
            journal_fields: c
                .kyc
                .fields()
                .into_iter()
                .map(|(field, value)| {
                    let held = if CARDHOLDER_PERSONAL_FIELDS.contains(&field) {
                        personal_digest(journal_key, field, &serde_json::Value::from(value))
                    } else {
                        value.to_owned()
                    };
                    (field.to_owned(), held)
                })
                .collect(),
            labels: c.labels.clone(),
        })
        .collect()
}

/// Each declared person's `cardholders/create` form, its subprovider left for the executor to
/// fill per cardholder.
pub fn forms(decls: &Declarations) -> BTreeMap<String, CreateCardholderRequest> {
    decls
        .cardholders
        .iter()
        .map(|c| {
            let k = &c.kyc;
            let form = CreateCardholderRequest {
                external_user_id: c.external_user_id.clone(),
                subprovider_code: String::new(),
                first_name: k.first_name.clone(),
                last_name: k.last_name.clone(),
                birth_date: k.birth_date.clone(),
                email: k.email.clone(),
                phone_number_full: k.phone_number_full.clone(),
                country_iso: k.country_iso.clone(),
            };
            (c.external_user_id.clone(), form)
        })
        .collect()
}
