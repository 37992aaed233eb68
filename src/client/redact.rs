//! What a log may show of a provider request or answer: the decrypted JSON with every secret,
//! card datum and personal field replaced by a mask, decided by field name (a fixed list, below),
//! with a Luhn-checked card-number scan as a net for a PAN under a name the list lacks.
//!
//! Owns that list and the walk over JSON. It must not log, print or decide what is logged: the
//! client calls it on a value before handing the result to `tracing`. Nothing else in cardform
//! may log a request or answer body without going through [`redacted`].

use serde_json::Value;

/// What a masked value reads as.
pub const MASK: &str = "[redacted]";

/// Credentials and the envelope: the api key and secret never travel in a body, but a
/// misconfigured proxy or a plain-JSON error could echo them; the envelope's ciphertext and nonce
/// are masked whole, so an encrypted body is never logged as it travelled.
const SECRET_FIELDS: &[&str] = &[
    "api_key",
    "api_secret",
    "secret",
    "password",
    "token",
    "access_token",
    "authorization",
    "encrypted",
    "ciphertext",
    "nonce",
];

/// Card data: the PAN, its security code and its expiry (`last4` is not here: state keeps it).
const CARD_FIELDS: &[&str] = &[
    "card_number",
    "pan",
    "number",
    "cvv",
    "cvc",
    "cvv2",
    "security_code",
    "expiry",
    "expiry_date",
    "expiry_month",
    "expiry_year",
    "exp_month",
    "exp_year",
    "expiration",
];

/// Personal data beyond [`crate::model::PERSONAL_FIELDS`] (the cardholder form, included as is):
/// names, contacts, addresses, dates of birth and identity documents under the names providers
/// commonly give them.
const PERSONAL_EXTRA: &[&str] = &[
    "middle_name",
    "full_name",
    "holder_name",
    "cardholder_name",
    "name_on_card",
    "embossed_name",
    "date_of_birth",
    "dob",
    "phone",
    "phone_number",
    "mobile",
    "address",
    "address_line1",
    "address_line2",
    "street",
    "city",
    "postal_code",
    "zip",
    "document_number",
    "document_id",
    "passport_number",
    "id_number",
    "national_id",
    "tax_id",
    "ssn",
];

/// Whether a field of this name is masked wherever it appears in a body.
pub fn is_redacted_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        SECRET_FIELDS,
        CARD_FIELDS,
        crate::model::PERSONAL_FIELDS,
        PERSONAL_EXTRA,
    ]
    .iter()
    .any(|list| list.contains(&name.as_str()))
}

/// `value` with every field [`is_redacted_field`] names masked, at any depth (objects inside
/// arrays and the order's free-form `data` included), and any string that is a card number
/// masked whatever its field.
pub fn redacted(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if is_redacted_field(k) && !v.is_null() {
                        Value::String(MASK.to_owned())
                    } else {
                        redacted(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        Value::String(s) if looks_like_pan(s) => Value::String(MASK.to_owned()),
        other => other.clone(),
    }
}

/// 13 to 19 digits (spaces and dashes allowed between them) passing the Luhn check: a card
/// number, whatever field it came in. Ids that are merely long numbers fail the check 9 times in
/// 10 and stay readable.
fn looks_like_pan(s: &str) -> bool {
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return false;
    }
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, dd) if dd > 9 => dd - 9,
            (_, dd) => dd,
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_card_data_and_personal_fields_are_masked_at_any_depth() {
        let body = json!({
            "card_id": "card_1",
            "card_number": "4111111111111111",
            "CVV": "123",
            "expiry_month": 12,
            "expiry_year": "2030",
            "first_name": "Alice",
            "email": "alice@example.com",
            "phone_number_full": "+442079000001",
            "birth_date": "1990-01-02",
            "country_iso": "GB",
            "orders": [{"data": {"pan": "5500 0000 0000 0004", "document_number": "X1"}}],
            "encrypted": "b64…",
            "last4": "1111",
            "nothing": null,
        });
        let out = redacted(&body);
        let text = out.to_string();
        for hidden in [
            "4111111111111111",
            "\"123\"",
            "Alice",
            "alice@example.com",
            "+442079000001",
            "1990-01-02",
            "5500 0000 0000 0004",
            "X1",
            "b64",
        ] {
            assert!(!text.contains(hidden), "{hidden} in {text}");
        }
        assert_eq!(out["expiry_month"], MASK);
        assert_eq!(out["card_id"], "card_1");
        assert_eq!(out["country_iso"], "GB");
        assert_eq!(out["last4"], "1111");
        assert_eq!(out["nothing"], Value::Null);
    }

    #[test]
    fn a_card_number_under_an_unlisted_name_is_masked_but_plain_ids_are_not() {
        let out = redacted(&json!({"ref": "4111-1111-1111-1111", "order_id": "1234567890123"}));
        assert_eq!(out["ref"], MASK);
        // 1234567890123 fails the Luhn check: an id, shown as it is.
        assert_eq!(out["order_id"], "1234567890123");
        assert!(looks_like_pan("4242424242424242"));
        assert!(!looks_like_pan("4242424242424241"));
        assert!(!looks_like_pan("424242"));
    }
}
