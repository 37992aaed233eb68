//! The encrypted envelope of REFERENCE.md §2: `base64(0x02 || nonce[24] || secretbox(plaintext))`
//! with key = SHA-256(api secret). Byte-compatible with PyNaCl / libsodium / Go `secretbox.Seal`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::aead::{Aead, KeyInit};
use crypto_secretbox::{Nonce, XSalsa20Poly1305};
use sha2::{Digest, Sha256};
use std::fmt;

use super::Secret;

/// The only envelope format this build understands.
pub const FORMAT_VERSION: u8 = 0x02;
pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;

/// The JSON body of every request and success response: `{"encrypted": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    pub encrypted: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    #[error("envelope is not valid base64")]
    Base64,
    #[error("envelope is too short ({0} bytes)")]
    TooShort(usize),
    #[error("unsupported envelope format version 0x{0:02x} (expected 0x02)")]
    UnsupportedFormat(u8),
    #[error("envelope could not be decrypted: wrong api secret or corrupted message")]
    Decrypt,
}

/// The symmetric key derived from the api secret. Debug never prints it.
#[derive(Clone)]
pub struct Key([u8; 32]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(***)")
    }
}

impl Key {
    /// key = raw SHA-256 digest of the UTF-8 api secret (no hex, salt or KDF).
    pub fn from_secret(secret: &Secret) -> Self {
        Self(Sha256::digest(secret.expose().as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Seal with a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8]) -> String {
        let nonce: [u8; NONCE_LEN] = rand::random();
        self.seal_with_nonce(&nonce, plaintext)
    }

    /// Seal with a caller-chosen nonce. Only tests and interop vectors should pick nonces.
    pub fn seal_with_nonce(&self, nonce: &[u8; NONCE_LEN], plaintext: &[u8]) -> String {
        let cipher = XSalsa20Poly1305::new(&self.0.into());
        let sealed = cipher
            .encrypt(Nonce::from_slice(nonce), plaintext)
            .expect("secretbox encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&sealed);
        STANDARD.encode(out)
    }

    pub fn open(&self, encoded: &str) -> Result<Vec<u8>, EnvelopeError> {
        let raw = STANDARD
            .decode(encoded.trim())
            .map_err(|_| EnvelopeError::Base64)?;
        if raw.is_empty() {
            return Err(EnvelopeError::TooShort(0));
        }
        if raw[0] != FORMAT_VERSION {
            return Err(EnvelopeError::UnsupportedFormat(raw[0]));
        }
        if raw.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(EnvelopeError::TooShort(raw.len()));
        }
        let (nonce, sealed) = raw[1..].split_at(NONCE_LEN);
        XSalsa20Poly1305::new(&self.0.into())
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| EnvelopeError::Decrypt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Interop vectors from REFERENCE.md §2 (made with PyNaCl).
    const SECRET: &str = "test-secret-123";
    const KEY_HEX: &str = "33e29618af5c636e782cfadefb698192ef7b2d8e5567d3c8cf560f61697cc6f5";
    const PLAIN1: &str = r#"{"request_timestamp":1700000000000000,"card_id":"card_abc123"}"#;
    const ENV1: &str = "AgECAwQFBgcICQoLDA0ODxAREhMUFRYXGAnjLeJg+z7rkAclzIpTpVsu84w9bgu3r/3fs/oRhLrGqHgNZWasNMsFRTv3xFFC2lQErCAQFq9p0I1KMxSNhv8aA5fCrXJKDu5QRXjLEA==";
    const PLAIN2: &str = r#"{"success":true,"data":{"available":"1234.56","currency":"usdt"}}"#;
    const ENV2: &str = "AqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqrF9Brlj9FGVgqiJOi14bK2ycd+C+eAmB4z2pj6D/B1ZMglaBvPYy8/lwMT5XpyUYIpEioaozghX4Ys9UlKONfjC3+DUvpJ45EZYmQv3iKMtdg==";

    fn key() -> Key {
        Key::from_secret(&Secret::new(SECRET))
    }

    #[test]
    fn key_is_sha256_of_secret() {
        assert_eq!(hex::encode(key().as_bytes()), KEY_HEX);
    }

    #[test]
    fn seals_vector_1() {
        let nonce: [u8; 24] = core::array::from_fn(|i| i as u8 + 1);
        assert_eq!(key().seal_with_nonce(&nonce, PLAIN1.as_bytes()), ENV1);
    }

    #[test]
    fn seals_vector_2() {
        assert_eq!(key().seal_with_nonce(&[0xAA; 24], PLAIN2.as_bytes()), ENV2);
    }

    #[test]
    fn opens_both_vectors() {
        assert_eq!(key().open(ENV1).unwrap(), PLAIN1.as_bytes());
        assert_eq!(key().open(ENV2).unwrap(), PLAIN2.as_bytes());
    }

    #[test]
    fn random_nonces_differ_and_round_trip() {
        let a = key().seal(b"hello");
        let b = key().seal(b"hello");
        assert_ne!(a, b);
        assert_eq!(key().open(&a).unwrap(), b"hello");
        let decoded_len = STANDARD.decode(&a).unwrap().len();
        assert_eq!(decoded_len, 1 + 24 + 16 + 5);
    }

    #[test]
    fn rejects_wrong_key_bad_version_and_garbage() {
        let other = Key::from_secret(&Secret::new("other"));
        assert_eq!(other.open(ENV1), Err(EnvelopeError::Decrypt));
        let mut raw = STANDARD.decode(ENV1).unwrap();
        raw[0] = 0x01;
        assert_eq!(
            key().open(&STANDARD.encode(&raw)),
            Err(EnvelopeError::UnsupportedFormat(1))
        );
        assert_eq!(key().open("not base64!!"), Err(EnvelopeError::Base64));
        assert_eq!(key().open("Ag=="), Err(EnvelopeError::TooShort(1)));
    }
}
