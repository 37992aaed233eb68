//! Users and cardholders: creating them, the KYC state a cardholder starts in (from
//! `--not-ready`), and whether an `external_user_id` is known (from `--unknown`).
//!
//! Owns the user-facing validation of the cardholder form; it must not touch cards or money.

use serde_json::{Map, Value};

use super::{ApiError, Settings, World, err, iso, text, to_value};
use crate::wire::error::slug;
use crate::wire::{Cardholder, KycLevel, KycStatus, RegistrationStatus, User};

impl World {
    pub(super) fn is_known_user(&self, s: &Settings, uid: &str) -> bool {
        !s.unknown.contains(uid)
            || self.users.contains_key(uid)
            || self.cardholders.contains_key(uid)
    }

    pub(super) fn create_user(
        &mut self,
        now: u64,
        f: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let uid = user_id(f)?;
        if self.users.contains_key(&uid) {
            return Err(err(
                slug::EXTERNAL_USER_ID_EXISTS,
                format!("user {uid} already exists"),
            ));
        }
        let user = User {
            user_id: Some(self.new_id("usr")),
            external_user_id: uid.clone(),
            created_at: Some(iso(now)),
        };
        self.users.insert(uid, user.clone());
        self.dirty = true;
        to_value(&user)
    }

    pub(super) fn create_cardholder(
        &mut self,
        s: &Settings,
        now: u64,
        f: &Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let uid = user_id(f)?;
        let required = |name: &str| {
            text(f, name).ok_or_else(|| err(slug::INVALID_REQUEST, format!("{name} is required")))
        };
        let subprovider = required("subprovider_code")?;
        required("first_name")?;
        required("last_name")?;
        let birth = required("birth_date")?;
        if jiff::civil::Date::strptime("%Y-%m-%d", &birth).is_err() || birth.len() != 10 {
            return Err(err(
                slug::INVALID_REQUEST,
                format!("birth_date {birth:?} is not a YYYY-MM-DD date"),
            ));
        }
        let email = required("email")?;
        if !email.contains('@') {
            return Err(err(
                slug::INVALID_REQUEST,
                format!("email {email:?} is not an email address"),
            ));
        }
        required("phone_number_full")?;
        let country = required("country_iso")?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(err(
                slug::INVALID_REQUEST,
                format!("country_iso {country:?} is not an ISO 3166-1 alpha-2 code"),
            ));
        }
        if self.cardholders.contains_key(&uid) {
            return Err(err(
                slug::EXTERNAL_USER_ID_EXISTS,
                format!("a cardholder for {uid} already exists"),
            ));
        }
        let ready = !s.not_ready.contains(&uid);
        let holder = Cardholder {
            cardholder_id: self.new_id("ch"),
            subprovider_code: Some(subprovider),
            registration_status: if ready {
                RegistrationStatus::Active
            } else {
                RegistrationStatus::Pending
            },
            kyc_status: if ready {
                KycStatus::Approved
            } else {
                KycStatus::Pending
            },
            kyc_level: if ready {
                KycLevel::Basic
            } else {
                KycLevel::None
            },
            created_at: Some(iso(now)),
            updated_at: Some(iso(now)),
        };
        self.cardholders.insert(uid, holder.clone());
        self.dirty = true;
        to_value(&holder)
    }
}

pub(super) fn user_id(f: &Map<String, Value>) -> Result<String, ApiError> {
    text(f, "external_user_id").ok_or_else(|| {
        err(
            slug::EXTERNAL_USER_ID_REQUIRED,
            "external_user_id is required",
        )
    })
}
