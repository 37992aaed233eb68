//! A card's image in the change log: the compact positional array written since schema 5, and
//! the object form before it, still read. Every card written leaves one per run, so its bytes are
//! most of what a card costs in state. Must not run queries.

use compact_str::CompactString;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;

use super::{corrupt, decimal, opt_decimal};
use crate::model::{DesiredStatus, Labels};
use crate::state::StateError;
use crate::state::model::{CardPhase, CardRecord};

/// The first element of a card image written since schema 5 (a JSON array), where the images
/// before it are JSON objects: the reader tells the two apart by shape, and a later layout can
/// tell itself apart by this number.
const CARD_IMAGE_FORMAT: u8 = 5;

/// The change-log image of a card, the whole record but its key, positional:
/// `[5, external_user_id, product_code, initial_topup, desired_status, labels, card_id, phase,
/// provider_status, last4, charged, attempt, replaced_by, created_at, updated_at, balance]`.
///
/// Every card written leaves one in the log per run, so its bytes are most of what a card costs
/// in state: no field names (the object form spent 180 bytes on them), no key (the row's
/// `resource_key` holds it), and timestamps as microseconds where that gives back the very text
/// (see [`Stamp`]).
pub(in crate::state) fn card_image(c: &CardRecord) -> Result<String, StateError> {
    let money = |d: Decimal| d.to_string();
    serde_json::to_string(&(
        CARD_IMAGE_FORMAT,
        &c.external_user_id,
        &c.product_code,
        c.initial_topup.map(money),
        c.desired_status,
        &c.labels,
        &c.card_id,
        c.phase,
        &c.provider_status,
        &c.last4,
        money(c.charged),
        c.attempt,
        &c.replaced_by,
        StampOut::of(&c.created_at),
        StampOut::of(&c.updated_at),
        c.balance.map(money),
    ))
    .map_err(|e| StateError::Corrupt(format!("card image: {e}")))
}

/// Cards by key from `json_group_object(key, json(image))` over the change log, images of either
/// form: objects (schema 4 and before, never rewritten) and arrays ([`card_image`]).
pub(in crate::state) fn cards_from_images(
    packed: &str,
) -> Result<BTreeMap<CompactString, CardRecord>, StateError> {
    let images: BTreeMap<CompactString, CardImage> = serde_json::from_str(packed)
        .map_err(|e| StateError::Corrupt(format!("change log: {e}")))?;
    images
        .into_iter()
        .map(|(key, image)| Ok((key.clone(), image.into_record(key)?)))
        .collect()
}

/// A card image as read: either form.
enum CardImage {
    /// Schema 4 and before: the record as a JSON object, key included.
    Record(CardRecord),
    Compact(CompactCard),
}

/// [`card_image`]'s array, in its order.
type CompactCard = (
    u8,
    CompactString,
    CompactString,
    Option<String>,
    DesiredStatus,
    Labels,
    Option<CompactString>,
    CardPhase,
    Option<CompactString>,
    Option<CompactString>,
    String,
    u32,
    Option<CompactString>,
    Stamp,
    Stamp,
    Option<String>,
);

impl<'de> Deserialize<'de> for CardImage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Shape;
        impl<'de> serde::de::Visitor<'de> for Shape {
            type Value = CardImage;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a card image (an object, or an array since schema 5)")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<CardImage, A::Error> {
                CardRecord::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(CardImage::Record)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                seq: A,
            ) -> Result<CardImage, A::Error> {
                CompactCard::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))
                    .map(CardImage::Compact)
            }
        }
        d.deserialize_any(Shape)
    }
}

impl CardImage {
    fn into_record(self, key: CompactString) -> Result<CardRecord, StateError> {
        let c = match self {
            CardImage::Record(record) if record.key == key => return Ok(record),
            CardImage::Record(_) => return Err(corrupt("card image of", &key)),
            CardImage::Compact(c) => c,
        };
        if c.0 != CARD_IMAGE_FORMAT {
            return Err(corrupt("card image format", &c.0.to_string()));
        }
        Ok(CardRecord {
            key,
            external_user_id: c.1,
            product_code: c.2,
            initial_topup: opt_decimal("initial top-up", c.3)?,
            desired_status: c.4,
            labels: c.5,
            card_id: c.6,
            phase: c.7,
            provider_status: c.8,
            last4: c.9,
            charged: decimal("charged amount", &c.10)?,
            attempt: c.11,
            replaced_by: c.12,
            created_at: c.13.0.into(),
            updated_at: c.14.0.into(),
            balance: opt_decimal("balance", c.15)?,
        })
    }
}

/// A timestamp in a card image: microseconds since the epoch when formatting them gives back the
/// very text recorded (true of every timestamp cardform writes), else the text itself, so an
/// image always reads back exactly as written.
struct Stamp(String);

/// A timestamp as [`card_image`] writes it (see [`Stamp`]).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum StampOut<'a> {
    Micros(i64),
    Text(&'a str),
}

impl<'a> StampOut<'a> {
    fn of(text: &'a str) -> Self {
        match text.parse::<jiff::Timestamp>() {
            Ok(t) if t.to_string() == text => StampOut::Micros(t.as_microsecond()),
            _ => StampOut::Text(text),
        }
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Either;
        impl serde::de::Visitor<'_> for Either {
            type Value = Stamp;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("microseconds since the epoch, or an RFC 3339 timestamp")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Stamp, E> {
                jiff::Timestamp::from_microsecond(v)
                    .map(|t| Stamp(t.to_string()))
                    .map_err(|_| E::custom(format!("timestamp out of range: {v}")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Stamp, E> {
                let v = i64::try_from(v).map_err(|_| E::custom("timestamp out of range"))?;
                self.visit_i64(v)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Stamp, E> {
                Ok(Stamp(v.to_owned()))
            }
        }
        d.deserialize_any(Either)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(key: &str) -> CardRecord {
        CardRecord {
            key: key.into(),
            external_user_id: "u-1".into(),
            product_code: "VISA_USD_STD".into(),
            initial_topup: Some(Decimal::new(2500, 2)),
            desired_status: DesiredStatus::Frozen,
            labels: Labels::from_iter([("team".to_string(), "ops \"x\"".to_string())]),
            card_id: Some("card_1".into()),
            phase: CardPhase::Frozen,
            provider_status: Some("wait_for_topup_activation_by_user".into()),
            last4: Some("4242".into()),
            charged: Decimal::new(3000, 2),
            balance: Some(Decimal::new(2500, 2)),
            attempt: 2,
            replaced_by: None,
            created_at: "2026-11-30T15:40:15.164228Z".into(),
            updated_at: "2026-11-30T15:40:16Z".into(),
        }
    }

    fn packed(images: &[(&str, String)]) -> String {
        let entries: Vec<String> = images
            .iter()
            .map(|(k, image)| format!("{}:{image}", serde_json::to_string(k).unwrap()))
            .collect();
        format!("{{{}}}", entries.join(","))
    }

    #[test]
    fn a_card_image_reads_back_exactly_and_is_compact() {
        let mut plain = card("a");
        plain.initial_topup = None;
        plain.balance = None;
        plain.labels = Labels::default();
        for c in [card("a"), plain] {
            let image = card_image(&c).unwrap();
            assert!(image.starts_with("[5,"), "{image}");
            assert!(
                !image.contains("\"external_user_id\""),
                "no field names: {image}"
            );
            assert!(
                !image.contains("2026-11-30T15:40"),
                "timestamps as microseconds: {image}"
            );
            let back = cards_from_images(&packed(&[("a", image.clone())])).unwrap();
            assert_eq!(back["a"], c, "{image}");
            let object = serde_json::to_string(&c).unwrap();
            assert!(image.len() * 2 < object.len(), "{image} vs {object}");
        }
    }

    #[test]
    fn a_timestamp_that_microseconds_would_not_give_back_is_kept_as_text() {
        let mut c = card("a");
        c.created_at = "2026-11-30T16:40:15+01:00".into();
        c.updated_at = "2026-11-30T15:40:15.100000Z".into();
        let image = card_image(&c).unwrap();
        assert!(image.contains("\"2026-11-30T16:40:15+01:00\""), "{image}");
        let back = cards_from_images(&packed(&[("a", image)])).unwrap();
        assert_eq!(back["a"], c);
    }

    #[test]
    fn images_of_both_forms_read_side_by_side() {
        let (old, new) = (card("old"), card("new"));
        let both = packed(&[
            ("old", serde_json::to_string(&old).unwrap()),
            ("new", card_image(&new).unwrap()),
        ]);
        let back = cards_from_images(&both).unwrap();
        assert_eq!((&back["old"], &back["new"]), (&old, &new));
    }

    #[test]
    fn an_image_of_another_card_or_an_unknown_format_is_corrupt() {
        let other = packed(&[("b", serde_json::to_string(&card("a")).unwrap())]);
        assert!(matches!(
            cards_from_images(&other),
            Err(StateError::Corrupt(_))
        ));
        let future = card_image(&card("a")).unwrap().replacen("[5,", "[6,", 1);
        let future = packed(&[("a", future)]);
        assert!(matches!(
            cards_from_images(&future),
            Err(StateError::Corrupt(_))
        ));
    }
}
