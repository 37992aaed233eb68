//! From typed values to HTTP bodies and back: requests carry their fields at the root of the
//! decrypted JSON plus `request_timestamp`; responses may be wrapped (`{success, data}`) or bare,
//! errors plain or encrypted (REFERENCE.md §2).

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Envelope, EnvelopeError, ErrorBody, Key};

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("body is not the expected JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("request body must be a JSON object")]
    NotAnObject,
    #[error("request_timestamp is missing or not an integer")]
    MissingTimestamp,
}

/// A decoded response: the success payload (already unwrapped from `data`) or the error body.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    Success(Value),
    Error(ErrorBody),
}

/// The field the timestamp travels in.
pub const TIMESTAMP_FIELD: &str = "request_timestamp";

/// The decrypted request JSON: the request's fields at the root plus `request_timestamp`.
pub fn request_plaintext<T: Serialize>(req: &T, timestamp: u64) -> Result<Vec<u8>, BodyError> {
    let mut fields = match serde_json::to_value(req)? {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        _ => return Err(BodyError::NotAnObject),
    };
    fields.insert(TIMESTAMP_FIELD.to_owned(), Value::from(timestamp));
    Ok(serde_json::to_vec(&Value::Object(fields))?)
}

/// The HTTP body of a request: `{"encrypted": seal(plaintext)}`.
pub fn encode_request<T: Serialize>(
    key: &Key,
    req: &T,
    timestamp: u64,
) -> Result<Vec<u8>, BodyError> {
    let plain = request_plaintext(req, timestamp)?;
    Ok(serde_json::to_vec(&Envelope {
        encrypted: key.seal(&plain),
    })?)
}

/// Server side: open a request body into its fields (without the timestamp) and its timestamp.
pub fn decode_request(key: &Key, body: &[u8]) -> Result<(Map<String, Value>, u64), BodyError> {
    let env: Envelope = serde_json::from_slice(body)?;
    let plain = key.open(&env.encrypted)?;
    let mut fields = match serde_json::from_slice::<Value>(&plain)? {
        Value::Object(m) => m,
        _ => return Err(BodyError::NotAnObject),
    };
    let ts = fields
        .remove(TIMESTAMP_FIELD)
        .and_then(|v| v.as_u64())
        .ok_or(BodyError::MissingTimestamp)?;
    Ok((fields, ts))
}

/// Server side: the wrapped, encrypted success body.
pub fn encode_success<T: Serialize>(key: &Key, data: &T) -> Result<Vec<u8>, BodyError> {
    let plain = serde_json::to_vec(&serde_json::json!({ "success": true, "data": data }))?;
    Ok(serde_json::to_vec(&Envelope {
        encrypted: key.seal(&plain),
    })?)
}

/// Server side: an error body inside the envelope.
pub fn encode_error(key: &Key, err: &ErrorBody) -> Result<Vec<u8>, BodyError> {
    Ok(serde_json::to_vec(&Envelope {
        encrypted: key.seal(&serde_json::to_vec(err)?),
    })?)
}

/// Client side: accept every shape REFERENCE.md allows.
pub fn decode_response(key: &Key, body: &[u8]) -> Result<Decoded, BodyError> {
    let outer: Value = serde_json::from_slice(body)?;
    let inner = match outer.get("encrypted").and_then(Value::as_str) {
        Some(enc) => serde_json::from_slice(&key.open(enc)?)?,
        None => outer,
    };
    Ok(classify(inner))
}

fn classify(v: Value) -> Decoded {
    let Value::Object(mut m) = v else {
        return Decoded::Success(v);
    };
    match m.get("success").and_then(Value::as_bool) {
        Some(false) => Decoded::Error(ErrorBody {
            success: false,
            error: m
                .get("error")
                .map(|e| {
                    e.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| e.to_string())
                })
                .unwrap_or_default(),
            error_slug: m
                .get("error_slug")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            kyc_status: m
                .get(super::assumed::KYC_STATUS_ERROR_FIELD)
                .and_then(Value::as_str)
                .map(super::KycStatus::from),
        }),
        Some(true) if m.contains_key("data") => {
            Decoded::Success(m.remove("data").unwrap_or(Value::Null))
        }
        _ => Decoded::Success(Value::Object(m)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Secret;
    use serde_json::json;

    fn key() -> Key {
        Key::from_secret(&Secret::new("s"))
    }

    #[test]
    fn request_round_trip_puts_fields_at_root() {
        let req = crate::wire::GetCardRequest {
            card_id: "c1".into(),
        };
        let body = encode_request(&key(), &req, 42).unwrap();
        let (fields, ts) = decode_request(&key(), &body).unwrap();
        assert_eq!(ts, 42);
        assert_eq!(Value::Object(fields), json!({"card_id": "c1"}));
    }

    #[test]
    fn responses_wrapped_bare_plain_error_encrypted_error() {
        let k = key();
        let wrapped = encode_success(&k, &json!({"a": 1})).unwrap();
        assert_eq!(
            decode_response(&k, &wrapped).unwrap(),
            Decoded::Success(json!({"a": 1}))
        );

        let bare = serde_json::to_vec(&Envelope {
            encrypted: k.seal(br#"{"a":1}"#),
        })
        .unwrap();
        assert_eq!(
            decode_response(&k, &bare).unwrap(),
            Decoded::Success(json!({"a": 1}))
        );

        let plain_err = br#"{"success":false,"error":"nope","error_slug":"project_not_found"}"#;
        let enc_err = encode_error(&k, &ErrorBody::new("card_not_found", "gone")).unwrap();
        for (body, slug) in [
            (plain_err.to_vec(), "project_not_found"),
            (enc_err, "card_not_found"),
        ] {
            match decode_response(&k, &body).unwrap() {
                Decoded::Error(e) => assert_eq!(e.error_slug, slug),
                other => panic!("{other:?}"),
            }
        }
    }
}
