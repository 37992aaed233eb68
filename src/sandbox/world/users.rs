//! Users and cardholders: creating them, the validation of the cardholder form, the KYC each
//! cardholder goes through (pending for `--kyc-latency`, then approved, or rejected for
//! `--kyc-reject-user`, or expired for `--kyc-expire-user`, or pending forever for
//! `--not-ready-user`), and the gate `cards/create`
//! passes a person through (`cardholder_not_found` / `cardholder_not_ready`).
//!
//! One cardholder per (external_user_id, subprovider_code) [assumed]. In people mode
//! (`--require-people`) nobody is known until created; otherwise a person with no cardholder at a
//! subprovider has an implicit one there that is ready (unless `--unknown-user`,
//! `--not-ready-user`, `--kyc-reject-user` or `--kyc-expire-user` say otherwise), as before
//! people could be created.
//!
//! KYC is decided from the world's clock when asked, never by a timer: a cardholder records when
//! it was created and when its KYC ends, so the world file keeps the timing across restarts.
//! No personal field of the form is kept anywhere. Must not touch cards or money.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::super::catalog;
use super::{ApiError, Settings, World, err, iso, text, to_value};
use crate::model::is_iso_alpha2;
use crate::wire::error::slug;
use crate::wire::{Cardholder, KycLevel, KycStatus, RegistrationStatus, User};

/// How a cardholder's KYC ends once it is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum KycOutcome {
    Approved,
    Rejected,
    /// Approved once and lapsed since: as final for issuing as a rejection until renewed.
    Expired,
}

/// A cardholder as the provider keeps it: ids and KYC timing, no personal data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct HolderRec {
    pub(super) cardholder_id: String,
    pub(super) external_user_id: String,
    pub(super) subprovider_code: String,
    /// Microseconds since the epoch, world clock.
    pub(super) created: u64,
    /// When the KYC ends with `kyc_outcome`; `None`: it stays pending forever (`--not-ready-user`).
    pub(super) kyc_due: Option<u64>,
    pub(super) kyc_outcome: KycOutcome,
}

impl HolderRec {
    pub(super) fn kyc_status(&self, now: u64) -> KycStatus {
        match self.kyc_due {
            Some(due) if now >= due => match self.kyc_outcome {
                KycOutcome::Approved => KycStatus::Approved,
                KycOutcome::Rejected => KycStatus::Rejected,
                KycOutcome::Expired => KycStatus::Expired,
            },
            _ => KycStatus::Pending,
        }
    }

    /// The cardholder as the API shows it at `now`.
    pub(super) fn view(&self, now: u64) -> Cardholder {
        let kyc = self.kyc_status(now);
        let (registration, level) = match kyc {
            KycStatus::Approved => (RegistrationStatus::Active, KycLevel::Basic),
            KycStatus::Rejected | KycStatus::Expired => {
                (RegistrationStatus::Failed, KycLevel::None)
            }
            _ => (RegistrationStatus::Pending, KycLevel::None),
        };
        let updated = match self.kyc_due {
            Some(due) if now >= due => due.max(self.created),
            _ => self.created,
        };
        Cardholder {
            cardholder_id: self.cardholder_id.clone(),
            subprovider_code: Some(self.subprovider_code.clone()),
            registration_status: registration,
            kyc_status: kyc,
            kyc_level: level,
            created_at: Some(iso(self.created)),
            updated_at: Some(iso(updated)),
        }
    }
}

/// `cardholder_not_ready`, always carrying the cardholder's `kyc_status` [assumed].
fn not_ready(uid: &str, subprovider: &str, status: KycStatus) -> ApiError {
    let what = match status {
        KycStatus::Pending | KycStatus::NotStarted => "has not completed KYC yet",
        _ => "did not pass KYC",
    };
    let mut e = err(
        slug::CARDHOLDER_NOT_READY,
        format!(
            "the cardholder of {uid} at subprovider {subprovider} {what} (kyc_status {status})"
        ),
    );
    e.kyc_status = Some(status);
    e
}

impl World {
    pub(super) fn holder(&self, uid: &str, subprovider: &str) -> Option<&HolderRec> {
        self.cardholders.get(uid)?.get(subprovider)
    }

    /// Whether `cards/create` may issue to `uid` at `subprovider` now: `cardholder_not_found` or
    /// `cardholder_not_ready` (with `kyc_status`) otherwise.
    pub(super) fn cardholder_gate(
        &self,
        s: &Settings,
        now: u64,
        uid: &str,
        subprovider: &str,
    ) -> Result<(), ApiError> {
        if let Some(h) = self.holder(uid, subprovider) {
            return match h.kyc_status(now) {
                KycStatus::Approved => Ok(()),
                other => Err(not_ready(uid, subprovider, other)),
            };
        }
        let known = !s.require_people
            && (!s.unknown.contains(uid)
                || self.users.contains_key(uid)
                || self.cardholders.contains_key(uid));
        if !known {
            return Err(err(
                slug::CARDHOLDER_NOT_FOUND,
                format!("no cardholder for external_user_id {uid} at subprovider {subprovider}"),
            ));
        }
        // Outside people mode: the person's implicit cardholder at this subprovider.
        if s.not_ready.contains(uid) {
            return Err(not_ready(uid, subprovider, KycStatus::Pending));
        }
        if s.kyc_reject.contains(uid) {
            return Err(not_ready(uid, subprovider, KycStatus::Rejected));
        }
        if s.kyc_expire.contains(uid) {
            return Err(not_ready(uid, subprovider, KycStatus::Expired));
        }
        Ok(())
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
        let subprovider = validate_form(f, now)?;
        if s.require_people && !self.users.contains_key(&uid) {
            return Err(err(
                slug::USER_NOT_FOUND,
                format!("no user {uid}: create it with users/create first"),
            ));
        }
        if self.holder(&uid, &subprovider).is_some() {
            return Err(err(
                slug::CARDHOLDER_ALREADY_EXISTS,
                format!("{uid} already has a cardholder at subprovider {subprovider}"),
            ));
        }
        let holder = HolderRec {
            cardholder_id: self.new_id("ch"),
            external_user_id: uid.clone(),
            subprovider_code: subprovider.clone(),
            created: now,
            kyc_due: (!s.not_ready.contains(&uid)).then(|| now.saturating_add(s.kyc_latency_us)),
            kyc_outcome: if s.kyc_reject.contains(&uid) {
                KycOutcome::Rejected
            } else if s.kyc_expire.contains(&uid) {
                KycOutcome::Expired
            } else {
                KycOutcome::Approved
            },
        };
        let view = holder.view(now);
        self.cardholders
            .entry(uid)
            .or_default()
            .insert(subprovider, holder);
        self.dirty = true;
        to_value(&view)
    }
}

/// The cardholder form, checked as strictly as a KYC provider would; the subprovider on success.
fn validate_form(f: &Map<String, Value>, now: u64) -> Result<String, ApiError> {
    let invalid = |m: String| err(slug::INVALID_REQUEST, m);
    let required = |name: &str| text(f, name).ok_or_else(|| invalid(format!("{name} is required")));
    let subprovider = required("subprovider_code")?;
    if !catalog::is_subprovider(&subprovider) {
        return Err(invalid(format!("unknown subprovider_code {subprovider:?}")));
    }
    for name in ["first_name", "last_name"] {
        if required(name)?.chars().count() > 100 {
            return Err(invalid(format!("{name} is longer than 100 characters")));
        }
    }
    let birth = required("birth_date")?;
    let date = jiff::civil::Date::strptime("%Y-%m-%d", &birth)
        .ok()
        .filter(|_| birth.len() == 10)
        .ok_or_else(|| invalid(format!("birth_date {birth:?} is not a YYYY-MM-DD date")))?;
    let today = jiff::Timestamp::from_microsecond(now as i64)
        .map(|t| jiff::tz::TimeZone::UTC.to_datetime(t).date())
        .map_err(|e| err(slug::PROVIDER_ERROR, e.to_string()))?;
    if date > today {
        return Err(invalid(format!("birth_date {birth} is in the future")));
    }
    if date < jiff::civil::date(1900, 1, 1) {
        return Err(invalid(format!("birth_date {birth} is before 1900-01-01")));
    }
    let email = required("email")?;
    if !email_ok(&email) {
        return Err(invalid(format!("email {email:?} is not an email address")));
    }
    let phone = required("phone_number_full")?;
    if !phone_ok(&phone) {
        return Err(invalid(format!(
            "phone_number_full {phone:?} is not an international number (+ and 7 to 15 digits)"
        )));
    }
    let country = required("country_iso")?;
    if !is_iso_alpha2(&country) {
        return Err(invalid(format!(
            "country_iso {country:?} is not an ISO 3166-1 alpha-2 code"
        )));
    }
    Ok(subprovider)
}

/// `local@domain.tld`: one `@`, no whitespace, a dot inside the domain.
fn email_ok(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && !e.chars().any(char::is_whitespace)
        && domain.len() >= 3
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// E.164: `+`, a first digit that is not 0, 7 to 15 digits in all, nothing else.
fn phone_ok(p: &str) -> bool {
    let Some(digits) = p.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

pub(super) fn user_id(f: &Map<String, Value>) -> Result<String, ApiError> {
    text(f, "external_user_id").ok_or_else(|| {
        err(
            slug::EXTERNAL_USER_ID_REQUIRED,
            "external_user_id is required",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_and_phones() {
        for ok in ["a@b.c", "ada@example.com", "x.y+z@mail.example.org"] {
            assert!(email_ok(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@", "@b.c", "a@b", "a@@b.c", "a b@c.d", "a@.c", "a@b.", "a@b..c",
        ] {
            assert!(!email_ok(bad), "{bad}");
        }
        for ok in [
            "+10000000",
            "+441234567890",
            "+4915112345678",
            "+123456789012345",
        ] {
            assert!(phone_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "12345678",
            "+123456",
            "+0123456789",
            "+1 234 567 890",
            "+1234567890123456",
        ] {
            assert!(!phone_ok(bad), "{bad}");
        }
    }
}
