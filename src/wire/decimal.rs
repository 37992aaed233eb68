//! Exact decimals on the wire: money is sent as a decimal string and read from a string or an
//! integer. A provider that sends a JSON float gets it read through its shortest textual form,
//! never through arithmetic on the f64.

use rust_decimal::Decimal;
use serde::{Deserializer, Serializer, de};
use std::fmt;
use std::str::FromStr;

struct DecimalVisitor;

impl de::Visitor<'_> for DecimalVisitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal string or number")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        Decimal::from_str(v.trim())
            .or_else(|_| Decimal::from_scientific(v.trim()))
            .map_err(|_| E::custom(format!("invalid decimal {v:?}")))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
        // `{}` prints the shortest string that round-trips, i.e. what the sender wrote.
        self.visit_str(&format!("{v}"))
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_any(DecimalVisitor)
}

pub fn serialize<S: Serializer>(v: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&v.to_string())
}

/// `Option<Decimal>` with the same rules; `null` and absence are `None`.
pub mod option {
    use super::*;
    use serde::Deserialize;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(deserialize_with = "super::deserialize")] Decimal);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }

    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }
}
