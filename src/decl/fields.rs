//! The card fields shared by the YAML and CSV readers: which names exist, what a valid value of
//! each is, and how a card's fields, with its file's defaults, become a [`DesiredCard`].
//! Must not know any file syntax: readers hand in raw text and positions.

use rust_decimal::Decimal;
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::problem::{DeclProblem, Loc, ProblemKind, Source};
use super::suggest;
use super::{DesiredCard, DesiredStatus, Origin};
use crate::model::LabelSets;
use compact_str::CompactString;

pub(crate) const KEY: &str = "key";
pub(crate) const EXTERNAL_USER_ID: &str = "external_user_id";
pub(crate) const PRODUCT_CODE: &str = "product_code";
pub(crate) const INITIAL_TOPUP: &str = "initial_topup";
pub(crate) const STATUS: &str = "status";
pub(crate) const LABELS: &str = "labels";
pub(crate) const TOPUPS: &str = "topups";
pub(crate) const TOPUP_ID: &str = "topup_id";
pub(crate) const AMOUNT: &str = "amount";

/// Every field a card may have, in the order they are documented.
pub(crate) const CARD_FIELDS: &[&str] = &[
    KEY,
    EXTERNAL_USER_ID,
    PRODUCT_CODE,
    INITIAL_TOPUP,
    STATUS,
    LABELS,
    TOPUPS,
];

/// A top-up id: the characters and length of a key, unique within its card.
pub(crate) fn check_topup_id(raw: Cow<'_, str>) -> Result<String, Invalid> {
    check_key(raw).map_err(|mut e| {
        e.message = e
            .message
            .replace("card key", "top-up id")
            .replace("`key`", "`id`");
        e
    })
}

/// The known field a misspelt name stands for, if it is close enough to one.
pub(crate) fn misspelling_of(name: &str, candidates: &[&'static str]) -> Option<&'static str> {
    suggest::did_you_mean(name, candidates)
}

pub(crate) const STATUS_VALUES: &[&str] = &["active", "frozen"];

use crate::model::KEY_MAX_LEN;

/// Why a raw value is not acceptable, before it is tied to a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub kind: ProblemKind,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

impl Invalid {
    pub(crate) fn new(
        kind: ProblemKind,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Invalid {
            kind,
            message: message.into(),
            label: label.into(),
            help: None,
        }
    }
    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
    pub fn at(self, src: &Source, loc: Loc) -> DeclProblem {
        let p = DeclProblem::at(self.kind, src, loc, self.message, self.label);
        match self.help {
            Some(h) => p.with_help(h),
            None => p,
        }
    }
}

/// A free-text value (external user id, product code, label value): not empty, not blank, no
/// blanks around it, no control characters.
pub(crate) fn check_text(field: impl fmt::Display, raw: Cow<'_, str>) -> Result<String, Invalid> {
    // Before the blanks check: a CR or LF would otherwise be reported as "blanks".
    check_no_control(&field, &raw)?;
    if raw.trim().is_empty() {
        return Err(Invalid::new(
            ProblemKind::EmptyValue,
            format!("`{field}` is empty"),
            "empty value",
        )
        .help(format!("give `{field}` a non-blank value")));
    }
    if raw.trim() != raw {
        return Err(Invalid::new(
            ProblemKind::Whitespace,
            format!("`{field}` has blanks around its value"),
            "leading or trailing blanks",
        )
        .help(format!("write it as `{}`", raw.trim())));
    }
    Ok(raw.into_owned())
}

/// No control characters (see [`crate::render::safe::is_unsafe`]) in a free-text value: an
/// escape sequence, a tab or a line break in a user id or a label would be sent to the provider
/// and shown on every terminal that lists the card, and no provider id or label needs one. The
/// value is refused here rather than kept and escaped on each display. The character is named
/// escaped, never raw.
fn check_no_control(field: &dyn fmt::Display, raw: &str) -> Result<(), Invalid> {
    match crate::render::safe::first_unsafe(raw) {
        None => Ok(()),
        Some(shown) => Err(Invalid::new(
            ProblemKind::ControlCharacter,
            format!("`{field}` holds a control character `{shown}`"),
            format!("control character `{shown}`"),
        )
        .help(format!(
            "`{field}` may not hold control characters (escape sequences, tabs, line breaks); remove it"
        ))),
    }
}

/// A card key: the one rule of [`crate::model::check_key`], as a spanned problem.
pub(crate) fn check_key(raw: Cow<'_, str>) -> Result<String, Invalid> {
    use crate::model::KeyError;
    match crate::model::check_key(&raw) {
        Ok(()) => Ok(raw.into_owned()),
        Err(KeyError::Empty) => {
            Err(
                Invalid::new(ProblemKind::EmptyValue, "`key` is empty", "empty key")
                    .help("every card needs a key of 1 to 128 characters from A-Z a-z 0-9 . _ / -"),
            )
        }
        Err(KeyError::BadChar(bad)) => {
            let shown = match bad {
                ' ' => "a space".to_owned(),
                '\t' => "a tab".to_owned(),
                c => format!("`{c}`"),
            };
            Err(Invalid::new(
                ProblemKind::InvalidKey,
                format!("invalid card key `{raw}`"),
                format!("{shown} is not allowed in a key"),
            )
            .help(KeyError::RULE))
        }
        Err(KeyError::TooLong(len)) => Err(Invalid::new(
            ProblemKind::InvalidKey,
            "card key is too long",
            format!("{len} characters"),
        )
        .help(format!("a key has at most {KEY_MAX_LEN} characters"))),
    }
}

/// A money amount: an exact decimal, positive, at most two decimal places. Read from its text
/// only, so `50.10` stays `50.10`.
pub(crate) fn check_amount(field: &str, raw: &str) -> Result<Decimal, Invalid> {
    let invalid = || {
        Invalid::new(
            ProblemKind::InvalidDecimal,
            format!("`{field}` is not a decimal amount"),
            "not a decimal",
        )
        .help("write an amount such as 50 or \"50.00\"")
    };
    let body = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return Err(invalid());
    }
    let value = Decimal::from_str(raw).map_err(|_| {
        Invalid::new(
            ProblemKind::InvalidDecimal,
            format!("`{field}` is out of range"),
            "too many digits",
        )
    })?;
    if value <= Decimal::ZERO {
        return Err(Invalid::new(
            ProblemKind::NonPositiveAmount,
            format!("`{field}` must be positive"),
            format!("{raw} is not more than 0"),
        )
        .help(format!(
            "remove `{field}` to issue the card without a top-up"
        )));
    }
    if frac.is_some_and(|f| f.len() > 2) {
        return Err(Invalid::new(
            ProblemKind::TooManyDecimals,
            format!("`{field}` has more than 2 decimal places"),
            "money has at most 2 decimal places",
        )
        .help(if value.round_dp(2) > Decimal::ZERO {
            // Both neighbours: which way money is rounded is the user's call, not ours.
            use rust_decimal::RoundingStrategy::{AwayFromZero, ToZero};
            let (down, up) = (
                value.round_dp_with_strategy(2, ToZero),
                value.round_dp_with_strategy(2, AwayFromZero),
            );
            if down > Decimal::ZERO {
                format!("round it to cents: `{down}` or `{up}`")
            } else {
                format!("round it to cents: `{up}` is the smallest amount")
            }
        } else {
            "round it to cents; the smallest amount is 0.01".to_owned()
        }));
    }
    Ok(value)
}

pub(crate) fn check_status(raw: &str) -> Result<DesiredStatus, Invalid> {
    match raw {
        "active" => Ok(DesiredStatus::Active),
        "frozen" => Ok(DesiredStatus::Frozen),
        _ => Err(Invalid::new(
            ProblemKind::UnknownStatus,
            format!("unknown status `{raw}`"),
            "not a status",
        )
        .help(suggest::help_for(raw, STATUS_VALUES, "allowed values"))),
    }
}

pub(crate) fn check_label_name(raw: &str) -> Result<String, Invalid> {
    check_no_control(&"label name", raw)?;
    if raw.trim().is_empty() || raw.trim() != raw {
        return Err(Invalid::new(
            ProblemKind::InvalidLabel,
            format!("invalid label name `{raw}`"),
            "empty or blank-padded name",
        )
        .help("a label name is a non-empty string without surrounding blanks"));
    }
    Ok(raw.to_owned())
}

/// A field that was given: its value and where.
#[derive(Debug, Clone)]
pub(crate) struct At<T> {
    pub value: T,
    pub loc: Loc,
}

/// One field of a card as read: absent, present but rejected (already reported), or valid.
#[derive(Debug, Clone, Default)]
pub(crate) enum Slot<T> {
    #[default]
    Absent,
    Invalid,
    Set(At<T>),
}

impl<T: Clone> Slot<T> {
    pub(crate) fn is_absent(&self) -> bool {
        matches!(self, Slot::Absent)
    }
    /// This slot, or the default's when this one is absent.
    fn or_default(self, default: &Slot<T>) -> Slot<T> {
        if self.is_absent() {
            default.clone()
        } else {
            self
        }
    }
}

/// A card's fields as read from one entry (or a file's `defaults`), each already checked alone.
#[derive(Debug, Clone, Default)]
pub(crate) struct RawCard {
    pub key: Slot<String>,
    pub external_user_id: Slot<String>,
    pub product_code: Slot<String>,
    pub initial_topup: Slot<Decimal>,
    pub status: Slot<DesiredStatus>,
    pub labels: super::Labels,
    pub topups: Vec<super::DesiredTopup>,
    /// Some problem was reported for this entry; it yields no card (but its key still counts for
    /// duplicate detection).
    pub rejected: bool,
    /// Fields an unknown field name was taken for (`prodcut_code` → `product_code`): already
    /// reported with a did-you-mean, so not reported as missing too.
    pub misspelt: Vec<&'static str>,
}

/// A declared key with where it was declared; `card` is set only when the entry was valid.
#[derive(Debug)]
pub(crate) struct Candidate {
    pub file: usize,
    pub key: CompactString,
    pub key_loc: Loc,
    pub card: Option<DesiredCard>,
}

thread_local! {
    /// The label sets the cards read on this thread share (see [`LabelSets`]). Per thread rather
    /// than passed along, so neither reader has to carry it through its every function; a file
    /// is read on one thread, so its cards still share.
    static LABEL_SETS: std::cell::RefCell<LabelSets> = Default::default();
}

/// `labels`, or the equal set an earlier card read on this thread holds.
fn share_labels(labels: crate::model::Labels) -> crate::model::Labels {
    LABEL_SETS.with_borrow_mut(|sets| sets.share(labels))
}

/// Apply `defaults`, report missing required fields at `entry` (the start of the card's entry),
/// and produce the candidate for the key if there is one.
pub(crate) fn finish(
    card: RawCard,
    defaults: Option<&RawCard>,
    src: &Source,
    file: usize,
    entry: Loc,
    problems: &mut Vec<DeclProblem>,
) -> Option<Candidate> {
    let none = RawCard::default();
    let d = defaults.unwrap_or(&none);
    let external_user_id = card.external_user_id.or_default(&d.external_user_id);
    let product_code = card.product_code.or_default(&d.product_code);
    let initial_topup = card.initial_topup.or_default(&d.initial_topup);
    let status = card.status.or_default(&d.status);
    // Card labels win over default ones.
    let labels = if d.labels.is_empty() {
        card.labels
    } else {
        let mut merged = d.labels.clone();
        merged.extend(card.labels);
        merged
    };
    let topups = card.topups;

    let mut rejected = card.rejected || d.rejected;
    let mut missing = Vec::new();
    for (name, absent) in [
        (KEY, card.key.is_absent()),
        (EXTERNAL_USER_ID, external_user_id.is_absent()),
        (PRODUCT_CODE, product_code.is_absent()),
    ] {
        if absent {
            if card.misspelt.contains(&name) {
                rejected = true;
            } else {
                missing.push(name);
            }
        }
    }
    if !missing.is_empty() {
        rejected = true;
        let list = missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(" and ");
        let who = match &card.key {
            Slot::Set(k) => format!("card `{}`", k.value),
            _ => "card".to_owned(),
        };
        let help = if missing.contains(&PRODUCT_CODE) && defaults.is_some() {
            format!("add {list} to the card (`product_code` may also come from `defaults`)")
        } else {
            format!("add {list} to the card")
        };
        problems.push(
            DeclProblem::at_span(
                ProblemKind::MissingField,
                src,
                src.rest_of_line(entry),
                format!("{who} is missing {list}"),
                format!("this card has no {list}"),
            )
            .with_help(help),
        );
    }

    let Slot::Set(key) = card.key else {
        return None;
    };
    // Inline when short: the card's copy below is then no allocation either.
    let key_text = CompactString::from(key.value);
    let built = match (external_user_id, product_code) {
        (Slot::Set(e), Slot::Set(p)) if !rejected => {
            // An invalid slot always came with a problem, so `rejected` is set and we are not here.
            let initial_topup = match initial_topup {
                Slot::Set(t) => Some(t.value),
                _ => None,
            };
            let status = match status {
                Slot::Set(s) => s.value,
                _ => DesiredStatus::default(),
            };
            Some(DesiredCard {
                key: key_text.clone(),
                external_user_id: e.value.into(),
                product_code: p.value.into(),
                initial_topup,
                status,
                labels: share_labels(labels),
                topups,
                origin: Origin {
                    file: src.name.clone(),
                    line: key.loc.line(),
                },
            })
        }
        _ => None,
    };
    if built.is_some() {
        src.declared
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    // Checked and counted like every other entry; kept only when it is in the part being read.
    if !src.keep.holds(&key_text) {
        return None;
    }
    Some(Candidate {
        file,
        key: key_text,
        key_loc: key.loc,
        card: built,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            check_key("alice-travel".into()).as_deref(),
            Ok("alice-travel")
        );
        assert!(check_key("team/a.b_c-1".into()).is_ok());
        assert_eq!(
            check_key("".into()).unwrap_err().kind,
            ProblemKind::EmptyValue
        );
        let e = check_key("alice travel".into()).unwrap_err();
        assert_eq!(e.kind, ProblemKind::InvalidKey);
        assert!(e.label.contains("a space"), "{}", e.label);
        assert_eq!(
            check_key("ä".into()).unwrap_err().kind,
            ProblemKind::InvalidKey
        );
        assert!(check_key("a".repeat(128).into()).is_ok());
        assert_eq!(
            check_key("a".repeat(129).into()).unwrap_err().kind,
            ProblemKind::InvalidKey
        );
    }

    #[test]
    fn amounts_are_exact() {
        let d = check_amount("initial_topup", "50.10").unwrap();
        assert_eq!(d.to_string(), "50.10");
        assert_eq!(check_amount("t", "50").unwrap().to_string(), "50");
        assert_eq!(check_amount("t", "0.01").unwrap().to_string(), "0.01");
        assert_eq!(check_amount("t", "+7").unwrap().to_string(), "7");
    }

    #[test]
    fn too_many_decimals_suggests_both_neighbouring_cents() {
        let help = |s: &str| check_amount("t", s).unwrap_err().help.unwrap();
        assert_eq!(help("10.005"), "round it to cents: `10.00` or `10.01`");
        assert_eq!(help("20.001"), "round it to cents: `20.00` or `20.01`");
        assert_eq!(
            help("0.006"),
            "round it to cents: `0.01` is the smallest amount"
        );
        assert_eq!(
            help("0.004"),
            "round it to cents; the smallest amount is 0.01"
        );
    }

    #[test]
    fn amounts_rejected() {
        let kind = |s: &str| check_amount("t", s).unwrap_err().kind;
        assert_eq!(kind("abc"), ProblemKind::InvalidDecimal);
        assert_eq!(kind("1e3"), ProblemKind::InvalidDecimal);
        assert_eq!(kind("5."), ProblemKind::InvalidDecimal);
        assert_eq!(kind(".5"), ProblemKind::InvalidDecimal);
        assert_eq!(kind("1,5"), ProblemKind::InvalidDecimal);
        assert_eq!(kind(""), ProblemKind::InvalidDecimal);
        assert_eq!(
            kind("99999999999999999999999999999999"),
            ProblemKind::InvalidDecimal
        );
        assert_eq!(kind("0"), ProblemKind::NonPositiveAmount);
        assert_eq!(kind("0.00"), ProblemKind::NonPositiveAmount);
        assert_eq!(kind("-5"), ProblemKind::NonPositiveAmount);
        assert_eq!(kind("1.005"), ProblemKind::TooManyDecimals);
    }

    #[test]
    fn text_values() {
        assert_eq!(check_text("f", "u-1".into()).as_deref(), Ok("u-1"));
        assert_eq!(
            check_text("f", "Zoë 東京".into()).as_deref(),
            Ok("Zoë 東京")
        );
        for (raw, shown) in [
            ("\x1b[31mred", "\\u{1b}"),
            ("ding\x07", "\\u{7}"),
            ("a\r\nb", "\\r"),
            ("a\tb", "\\t"),
            ("\u{9b}2J", "\\u{9b}"),
            ("txt\u{202e}exe", "\\u{202e}"),
        ] {
            let e = check_text("labels.team", raw.into()).unwrap_err();
            assert_eq!(e.kind, ProblemKind::ControlCharacter, "{raw:?}");
            assert_eq!(
                e.message,
                format!("`labels.team` holds a control character `{shown}`")
            );
            assert!(!e.message.contains(raw), "{raw:?}");
            let e = check_label_name(raw).unwrap_err();
            assert_eq!(e.kind, ProblemKind::ControlCharacter, "{raw:?}");
        }
        assert_eq!(
            check_text("f", "".into()).unwrap_err().kind,
            ProblemKind::EmptyValue
        );
        assert_eq!(
            check_text("f", "   ".into()).unwrap_err().kind,
            ProblemKind::EmptyValue
        );
        assert_eq!(
            check_text("f", " u-1".into()).unwrap_err().kind,
            ProblemKind::Whitespace
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(check_status("active"), Ok(DesiredStatus::Active));
        assert_eq!(check_status("frozen"), Ok(DesiredStatus::Frozen));
        let e = check_status("Frozen").unwrap_err();
        assert_eq!(e.kind, ProblemKind::UnknownStatus);
        assert_eq!(e.help.as_deref(), Some("did you mean `frozen`?"));
    }
}
