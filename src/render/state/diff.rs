//! `cardform state diff`: which cards, top-ups and people were added, removed or changed between two
//! serials, as a unified text diff per record or as structured JSON.
//!
//! Compares canonical forms only (see the `export` module), so a change that export would not
//! show, such as a new `updated_at`, is no change here either. It must not decide anything about
//! the cards it compares.

use compact_str::CompactString;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Style;
use super::export::{
    CanonicalCard, CanonicalPerson, CanonicalTopup, canonical_people, canonical_topups, card_text,
    person_text, topup_text,
};
use crate::model::Address;
use crate::state::{CardRecord, ResourceRecord};

/// How the cards (and top-ups) differ between two serials. Unchanged records are not in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateDiff {
    pub from: u64,
    pub to: u64,
    pub added: Vec<CanonicalCard>,
    pub removed: Vec<CanonicalCard>,
    pub changed: Vec<ChangedCard>,
    /// Cards that moved to another key (`state mv`, a `moved:` entry): the same card, shown as
    /// a move rather than one key removed and another added. Left out when none moved.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub moved: Vec<MovedCard>,
    /// The top-ups, the same way; left out when none differ.
    #[serde(skip_serializing_if = "TopupsDiff::is_empty")]
    pub topups: TopupsDiff,
    /// Users and cardholders, the same way; left out when none differ.
    #[serde(skip_serializing_if = "PeopleDiff::is_empty")]
    pub people: PeopleDiff,
}

/// A card that left one key for another between the two serials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovedCard {
    pub from: String,
    pub to: String,
    /// What else changed with it (besides its key).
    pub fields: Vec<String>,
    pub before: CanonicalCard,
    pub after: CanonicalCard,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct PeopleDiff {
    pub added: Vec<CanonicalPerson>,
    pub removed: Vec<CanonicalPerson>,
    pub changed: Vec<ChangedPerson>,
}

impl PeopleDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedPerson {
    /// `user.UID` or `cardholder.UID:SUBPROVIDER`.
    pub address: String,
    pub fields: Vec<String>,
    pub before: CanonicalPerson,
    pub after: CanonicalPerson,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct TopupsDiff {
    pub added: Vec<CanonicalTopup>,
    pub removed: Vec<CanonicalTopup>,
    pub changed: Vec<ChangedTopup>,
}

impl TopupsDiff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedTopup {
    /// `CARD:ID`.
    pub key: String,
    pub fields: Vec<String>,
    pub before: CanonicalTopup,
    pub after: CanonicalTopup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedCard {
    pub key: String,
    /// The canonical fields that differ, in canonical order.
    pub fields: Vec<String>,
    pub before: CanonicalCard,
    pub after: CanonicalCard,
}

/// The records of one serial that a diff compares.
#[derive(Debug, Clone, Copy)]
pub struct DiffSide<'a> {
    pub cards: &'a BTreeMap<CompactString, CardRecord>,
    pub resources: &'a BTreeMap<Address, ResourceRecord>,
}

fn people_by_address(
    resources: &BTreeMap<Address, ResourceRecord>,
) -> BTreeMap<String, CanonicalPerson> {
    canonical_people(resources.values())
        .into_iter()
        .map(|p| (p.address.clone(), p))
        .collect()
}

fn topups_by_key(
    resources: &BTreeMap<Address, ResourceRecord>,
) -> BTreeMap<String, CanonicalTopup> {
    canonical_topups(resources.values())
        .into_iter()
        .map(|t| (t.key(), t))
        .collect()
}

impl StateDiff {
    pub fn new(from: u64, to: u64, before: DiffSide<'_>, after: DiffSide<'_>) -> StateDiff {
        let mut d = Self::of_cards(from, to, before.cards, after.cards);
        let (b, a) = (
            topups_by_key(before.resources),
            topups_by_key(after.resources),
        );
        for (key, bt) in &b {
            match a.get(key) {
                None => d.topups.removed.push(bt.clone()),
                Some(at) if at != bt => d.topups.changed.push(ChangedTopup {
                    key: key.clone(),
                    fields: changed_fields(bt, at),
                    before: bt.clone(),
                    after: at.clone(),
                }),
                Some(_) => {}
            }
        }
        d.topups.added = a
            .iter()
            .filter(|(k, _)| !b.contains_key(*k))
            .map(|(_, t)| t.clone())
            .collect();
        let (b, a) = (
            people_by_address(before.resources),
            people_by_address(after.resources),
        );
        for (address, bp) in &b {
            match a.get(address) {
                None => d.people.removed.push(bp.clone()),
                Some(ap) if ap != bp => d.people.changed.push(ChangedPerson {
                    address: address.clone(),
                    fields: changed_fields(bp, ap),
                    before: bp.clone(),
                    after: ap.clone(),
                }),
                Some(_) => {}
            }
        }
        d.people.added = a
            .iter()
            .filter(|(k, _)| !b.contains_key(*k))
            .map(|(_, p)| p.clone())
            .collect();
        d
    }

    fn of_cards(
        from: u64,
        to: u64,
        before: &BTreeMap<CompactString, CardRecord>,
        after: &BTreeMap<CompactString, CardRecord>,
    ) -> StateDiff {
        let mut d = StateDiff {
            from,
            to,
            added: Vec::new(),
            removed: Vec::new(),
            changed: Vec::new(),
            moved: Vec::new(),
            topups: TopupsDiff::default(),
            people: PeopleDiff::default(),
        };
        for (key, b) in before {
            match after.get(key) {
                None => d.removed.push(b.into()),
                Some(a) => {
                    let (b, a) = (CanonicalCard::from(b), CanonicalCard::from(a));
                    if a != b {
                        d.changed.push(ChangedCard {
                            key: key.to_string(),
                            fields: changed_fields(&b, &a),
                            before: b,
                            after: a,
                        });
                    }
                }
            }
        }
        for (key, a) in after {
            if !before.contains_key(key) {
                d.added.push(a.into());
            }
        }
        d.pair_moves();
        d
    }

    /// A removed key and an added one that are the same card are a move: the same provider
    /// card id, or, before it had one, the same user, product and creation time (a move keeps
    /// the record whole).
    fn pair_moves(&mut self) {
        let same = |b: &CanonicalCard, a: &CanonicalCard| match (&b.card_id, &a.card_id) {
            (Some(x), Some(y)) => x == y,
            (None, None) => {
                b.external_user_id == a.external_user_id
                    && b.product_code == a.product_code
                    && b.created_at == a.created_at
            }
            _ => false,
        };
        let mut removed = std::mem::take(&mut self.removed);
        let mut added = std::mem::take(&mut self.added);
        removed.retain(|b| {
            let Some(i) = added.iter().position(|a| same(b, a)) else {
                return true;
            };
            let a = added.remove(i);
            let mut before = b.clone();
            before.key = a.key.clone();
            let fields = changed_fields(&before, &a);
            self.moved.push(MovedCard {
                from: b.key.clone(),
                to: a.key.clone(),
                fields,
                before: b.clone(),
                after: a,
            });
            false
        });
        self.removed = removed;
        self.added = added;
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.moved.is_empty()
            && self.topups.is_empty()
            && self.people.is_empty()
    }
}

fn changed_fields<T: Serialize>(b: &T, a: &T) -> Vec<String> {
    let (bv, av) = (
        serde_json::to_value(b).unwrap_or_default(),
        serde_json::to_value(a).unwrap_or_default(),
    );
    let (Some(bm), Some(am)) = (bv.as_object(), av.as_object()) else {
        return Vec::new();
    };
    // A field left out on one side (a balance not read before) is a change too.
    bm.iter()
        .filter(|(k, v)| am.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .chain(am.keys().filter(|k| !bm.contains_key(*k)).cloned())
        .collect()
}

/// The unified diff, one block per card (added, removed, then changed, each sorted by key), then
/// one per top-up the same way.
pub fn diff_human(
    diff: &StateDiff,
    before: DiffSide<'_>,
    after: DiffSide<'_>,
    style: Style,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        style.bold(&format!("State diff: serial {} → {}", diff.from, diff.to))
    );
    if diff.is_empty() {
        let _ = writeln!(out, "No card changed.");
        return out;
    }
    write_card_blocks(&mut out, diff, before, after, style);
    write_topup_blocks(&mut out, diff, before, after, style);
    write_people_blocks(&mut out, diff, before, after, style);
    write_counts(&mut out, diff);
    out
}

/// A block per card added, removed or changed, then one per card moved.
fn write_card_blocks(
    out: &mut String,
    diff: &StateDiff,
    before: DiffSide<'_>,
    after: DiffSide<'_>,
    style: Style,
) {
    let mut keys: Vec<(char, &str)> = Vec::new();
    keys.extend(diff.added.iter().map(|c| ('+', c.key.as_str())));
    keys.extend(diff.removed.iter().map(|c| ('-', c.key.as_str())));
    keys.extend(diff.changed.iter().map(|c| ('~', c.key.as_str())));
    for (sign, key) in keys {
        let old = before.cards.get(key).map(card_text).unwrap_or_default();
        let new = after.cards.get(key).map(card_text).unwrap_or_default();
        block(out, diff, sign, key, &old, &new, style);
    }
    for m in &diff.moved {
        let old = before
            .cards
            .get(m.from.as_str())
            .map(card_text)
            .unwrap_or_default();
        let new = after
            .cards
            .get(m.to.as_str())
            .map(card_text)
            .unwrap_or_default();
        block(
            out,
            diff,
            '>',
            &format!("{} → {}", m.from, m.to),
            &old,
            &new,
            style,
        );
    }
}

/// A block per top-up added, removed or changed.
fn write_topup_blocks(
    out: &mut String,
    diff: &StateDiff,
    before: DiffSide<'_>,
    after: DiffSide<'_>,
    style: Style,
) {
    if diff.topups.is_empty() {
        return;
    }
    let (b, a) = (
        topups_by_key(before.resources),
        topups_by_key(after.resources),
    );
    let t = &diff.topups;
    let mut keys: Vec<(char, String)> = Vec::new();
    keys.extend(t.added.iter().map(|x| ('+', x.key())));
    keys.extend(t.removed.iter().map(|x| ('-', x.key())));
    keys.extend(t.changed.iter().map(|x| ('~', x.key.clone())));
    for (sign, key) in keys {
        let old = b.get(&key).map(topup_text).unwrap_or_default();
        let new = a.get(&key).map(topup_text).unwrap_or_default();
        block(out, diff, sign, &format!("topup {key}"), &old, &new, style);
    }
}

/// A block per user or cardholder added, removed or changed.
fn write_people_blocks(
    out: &mut String,
    diff: &StateDiff,
    before: DiffSide<'_>,
    after: DiffSide<'_>,
    style: Style,
) {
    if diff.people.is_empty() {
        return;
    }
    let (b, a) = (
        people_by_address(before.resources),
        people_by_address(after.resources),
    );
    let p = &diff.people;
    let mut keys: Vec<(char, String)> = Vec::new();
    keys.extend(p.added.iter().map(|x| ('+', x.address.clone())));
    keys.extend(p.removed.iter().map(|x| ('-', x.address.clone())));
    keys.extend(p.changed.iter().map(|x| ('~', x.address.clone())));
    for (sign, key) in keys {
        let old = b.get(&key).map(person_text).unwrap_or_default();
        let new = a.get(&key).map(person_text).unwrap_or_default();
        block(out, diff, sign, &key, &old, &new, style);
    }
}

/// `N added, N removed, N changed[, N moved][; top-ups: …][; people: …].`
fn write_counts(out: &mut String, diff: &StateDiff) {
    let _ = write!(
        out,
        "\n{} added, {} removed, {} changed",
        diff.added.len(),
        diff.removed.len(),
        diff.changed.len()
    );
    if !diff.moved.is_empty() {
        let _ = write!(out, ", {} moved", diff.moved.len());
    }
    if !diff.topups.is_empty() {
        let t = &diff.topups;
        let _ = write!(
            out,
            "; top-ups: {} added, {} removed, {} changed",
            t.added.len(),
            t.removed.len(),
            t.changed.len()
        );
    }
    if !diff.people.is_empty() {
        let p = &diff.people;
        let _ = write!(
            out,
            "; people: {} added, {} removed, {} changed",
            p.added.len(),
            p.removed.len(),
            p.changed.len()
        );
    }
    let _ = writeln!(out, ".");
}

/// One record's block: its title, then the unified diff of its canonical text.
fn block(
    out: &mut String,
    diff: &StateDiff,
    sign: char,
    key: &str,
    old: &str,
    new: &str,
    style: Style,
) {
    // Keys and every line of the canonical text are state's text: escaped, then painted.
    let key = crate::render::safe(key);
    let title = match sign {
        '+' => style.green(&format!("+ {key} (added)")),
        '-' => style.red(&format!("- {key} (removed)")),
        '>' => style.yellow(&format!("> {key} (moved)")),
        _ => style.yellow(&format!("~ {key} (changed)")),
    };
    let _ = writeln!(out, "\n{title}");
    let text = similar::TextDiff::from_lines(old, new);
    let unified = text
        .unified_diff()
        .context_radius(2)
        .header(
            &format!("{key} @ serial {}", diff.from),
            &format!("{key} @ serial {}", diff.to),
        )
        .to_string();
    for line in unified.lines() {
        let line = &*crate::render::safe(line);
        let painted = if line.starts_with("+++") || line.starts_with("---") {
            style.bold(line)
        } else if line.starts_with('+') {
            style.green(line)
        } else if line.starts_with('-') {
            style.red(line)
        } else if line.starts_with("@@") {
            style.cyan(line)
        } else {
            line.to_owned()
        };
        let _ = writeln!(out, "{painted}");
    }
}

pub fn diff_json(diff: &StateDiff) -> String {
    let mut s = serde_json::to_string_pretty(diff).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::state::tests::card;
    use crate::state::CardPhase;

    #[test]
    fn diff_skips_unchanged_and_names_changed_fields() {
        let a = BTreeMap::from([("a".into(), card("a")), ("b".into(), card("b"))]);
        let mut b = a.clone();
        let bc = b.get_mut("b").unwrap();
        bc.phase = CardPhase::Frozen;
        bc.updated_at = "2025-02-01T00:00:00Z".into();
        b.insert("c".into(), card("c"));
        let none = BTreeMap::new();
        let side = |cards| DiffSide {
            cards,
            resources: &none,
        };
        let d = StateDiff::new(1, 2, side(&a), side(&b));
        assert_eq!(d.added.len(), 1);
        assert!(d.removed.is_empty());
        assert_eq!(d.changed.len(), 1);
        assert_eq!(d.changed[0].key, "b");
        assert_eq!(d.changed[0].fields, vec!["status".to_owned()]);
        let text = diff_human(&d, side(&a), side(&b), Style::PLAIN);
        assert!(text.contains("-status: active\n+status: frozen"), "{text}");
        assert!(!text.contains("~ a"), "{text}");
    }

    #[test]
    fn only_updated_at_is_no_change() {
        let a = BTreeMap::from([("a".into(), card("a"))]);
        let mut b = a.clone();
        b.get_mut("a").unwrap().updated_at = "2030-01-01T00:00:00Z".into();
        let none = BTreeMap::new();
        let side = |cards| DiffSide {
            cards,
            resources: &none,
        };
        assert!(StateDiff::new(1, 2, side(&a), side(&b)).is_empty());
    }
}
