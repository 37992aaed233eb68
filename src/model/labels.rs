//! [`Labels`]: a card's free-form `name → value` labels as a compact sorted slice, shared between
//! the cards that carry the same set. Owns only the container; what a label may contain is checked
//! by the declaration readers, not here.
//!
//! A `BTreeMap` allocates a ~552-byte leaf for even one entry (docs/design/measurements.md has
//! what that came to for a fleet). Cards carry a handful of labels at most, so an
//! exactly-sized slice kept sorted by key (binary search to look up, a new slice per insert) is
//! both smaller and fast enough. Iteration and serialization are in key order, so every serialized
//! form (state, plan files, exports, fingerprints) is byte-identical to `BTreeMap`'s.
//!
//! The slice is reference-counted: a fleet repeats a few label sets (a team, a cost centre) over
//! many cards, and [`LabelSets`] lets the readers hand every card with the same set one shared
//! copy. Copying labels into a plan's actions is then a count increment, not an allocation.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Labels sorted by key, keys unique. `None` when there are none, so the many empty sets (most
/// actions carry none) allocate nothing; a set is never changed in place, only replaced.
#[derive(Clone, Default)]
pub struct Labels(Option<Arc<[(String, String)]>>);

impl Labels {
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries, sorted by key.
    fn entries(&self) -> &[(String, String)] {
        self.0.as_deref().unwrap_or(&[])
    }

    /// Exactly sized (an `Arc<[_]>` made from a `Vec` has no spare capacity).
    fn from_sorted(v: Vec<(String, String)>) -> Self {
        Self((!v.is_empty()).then(|| v.into()))
    }

    /// The entries as a `Vec` to change, leaving `self` empty: moved out when no other card
    /// shares them, copied when one does.
    fn take_vec(&mut self) -> Vec<(String, String)> {
        match self.0.take() {
            None => Vec::new(),
            Some(mut shared) => match Arc::get_mut(&mut shared) {
                Some(own) => own.iter_mut().map(std::mem::take).collect(),
                None => shared.to_vec(),
            },
        }
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries()
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.find(key).ok().map(|i| &self.entries()[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaces (like `BTreeMap::insert`).
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        let found = self.find(&key);
        let mut v = self.take_vec();
        let old = match found {
            Ok(i) => Some(std::mem::replace(&mut v[i].1, value)),
            Err(i) => {
                v.insert(i, (key, value));
                None
            }
        };
        *self = Self::from_sorted(v);
        old
    }

    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.find(key).ok()?;
        let mut v = self.take_vec();
        let (_, value) = v.remove(i);
        *self = Self::from_sorted(v);
        Some(value)
    }

    /// `(key, value)` in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter(self.entries().iter())
    }

    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator + '_ {
        self.entries().iter().map(|(k, _)| k)
    }

    pub fn values(&self) -> impl DoubleEndedIterator<Item = &String> + ExactSizeIterator + '_ {
        self.entries().iter().map(|(_, v)| v)
    }

    /// Sorts by key and keeps the last value of each duplicate key, as inserting them one by one
    /// into a `BTreeMap` would.
    fn from_vec(mut v: Vec<(String, String)>) -> Self {
        // Stable sort keeps duplicates in input order, so the last of each run is the one to keep.
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (k, val) in v {
            match out.last_mut() {
                Some(last) if last.0 == k => last.1 = val,
                _ => out.push((k, val)),
            }
        }
        Self::from_sorted(out)
    }
}

// By content, as the boxed slice compared: sharing is a saving, never a difference.
impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) if Arc::ptr_eq(a, b) => true,
            _ => self.entries() == other.entries(),
        }
    }
}

impl Eq for Labels {}

impl Hash for Labels {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.entries().hash(state);
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.entries().cmp(other.entries())
    }
}

/// Hands out one shared copy of each label set seen recently: a reader passes every set it reads
/// through [`LabelSets::share`], so a million cards of fifty teams hold fifty sets, not a
/// million. Bounded: a fleet whose cards each have their own set (a label per person) would
/// otherwise keep a table as large as the fleet for nothing, so past [`LabelSets::LIMIT`] sets the
/// table starts over.
#[derive(Debug, Default)]
pub struct LabelSets(HashSet<Labels>);

impl LabelSets {
    /// Distinct sets remembered at most; far more than a fleet's teams and cost centres.
    pub const LIMIT: usize = 4096;

    /// `labels`, or an equal set handed out earlier (the same allocation).
    pub fn share(&mut self, labels: Labels) -> Labels {
        if labels.is_empty() {
            return labels;
        }
        if let Some(shared) = self.0.get(&labels) {
            return shared.clone();
        }
        if self.0.len() >= Self::LIMIT {
            self.0.clear();
        }
        self.0.insert(labels.clone());
        labels
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl std::ops::Index<&str> for Labels {
    type Output = String;

    /// Panics when the label is absent, like `BTreeMap`'s `Index`.
    fn index(&self, key: &str) -> &String {
        match self.get(key) {
            Some(v) => v,
            None => panic!("no label {key:?}"),
        }
    }
}

/// Borrowing iterator over `(key, value)` in key order.
#[derive(Clone, Debug)]
pub struct Iter<'a>(std::slice::Iter<'a, (String, String)>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a String);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(k, v)| (k, v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for Iter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|(k, v)| (k, v))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(mut self) -> Self::IntoIter {
        self.take_vec().into_iter()
    }
}

impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Self::from_vec(iter.into_iter().collect())
    }
}

impl Extend<(String, String)> for Labels {
    /// Later entries win over existing ones, as with `BTreeMap::extend`.
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        let mut v = self.take_vec();
        v.extend(iter);
        *self = Self::from_vec(v);
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(entries: [(String, String); N]) -> Self {
        Self::from_vec(entries.into())
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(map: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Self::from_sorted(map.into_iter().collect())
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;

        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label names to values")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Labels, A::Error> {
                // The hint is untrusted input: cap it like serde's own collections do.
                let mut v = Vec::with_capacity(access.size_hint().unwrap_or(0).min(64));
                while let Some(entry) = access.next_entry::<String, String>()? {
                    v.push(entry);
                }
                Ok(Labels::from_vec(v))
            }
        }

        deserializer.deserialize_map(LabelsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(x: &str) -> String {
        x.to_owned()
    }

    #[test]
    fn iterates_in_key_order_whatever_the_insert_order() {
        let mut l = Labels::new();
        for k in ["m", "a", "z", "b"] {
            assert_eq!(l.insert(s(k), s(k)), None);
        }
        let keys: Vec<&str> = l.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", "m", "z"]);
        assert_eq!(l.len(), 4);
    }

    #[test]
    fn insert_replaces_and_returns_the_old_value() {
        let mut l = Labels::from([(s("team"), s("a"))]);
        assert_eq!(l.insert(s("team"), s("b")), Some(s("a")));
        assert_eq!(l.len(), 1);
        assert_eq!(l.get("team").map(String::as_str), Some("b"));
        assert_eq!(&l["team"], "b");
        assert!(l.contains_key("team"));
        assert!(!l.contains_key("other"));
        assert_eq!(l.remove("team"), Some(s("b")));
        assert!(l.is_empty());
        assert_eq!(l.remove("team"), None);
    }

    #[test]
    fn collecting_keeps_the_last_of_duplicate_keys() {
        let l: Labels = [(s("k"), s("1")), (s("a"), s("x")), (s("k"), s("2"))]
            .into_iter()
            .collect();
        assert_eq!(
            l.iter().collect::<Vec<_>>(),
            [(&s("a"), &s("x")), (&s("k"), &s("2"))]
        );
        let mut e = Labels::from([(s("k"), s("0")), (s("z"), s("z"))]);
        e.extend([(s("k"), s("1"))]);
        assert_eq!(e["k"], "1");
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn serializes_like_a_btreemap() {
        let pairs = [
            (s("team"), s("ops")),
            (s("cc"), s("\"42\"")),
            (s("ü"), s("")),
        ];
        let model: BTreeMap<String, String> = pairs.iter().cloned().collect();
        let l: Labels = pairs.into_iter().collect();
        let json = serde_json::to_string(&l).expect("serialize");
        assert_eq!(json, serde_json::to_string(&model).expect("serialize"));
        assert_eq!(json, r#"{"cc":"\"42\"","team":"ops","ü":""}"#);
        assert_eq!(
            serde_yaml::to_string(&l).expect("yaml"),
            serde_yaml::to_string(&model).expect("yaml")
        );
        assert_eq!(serde_json::from_str::<Labels>(&json).expect("parse"), l);
        assert_eq!(
            serde_json::to_string(&Labels::new()).expect("serialize"),
            "{}"
        );
        assert!(serde_json::from_str::<Labels>("[\"a\"]").is_err());
        assert!(serde_json::from_str::<Labels>(r#"{"a":1}"#).is_err());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(String, String),
        Remove(String),
        Extend(Vec<(String, String)>),
    }

    fn arb_op() -> impl Strategy<Value = Op> {
        let key = "[a-e]{0,2}";
        prop_oneof![
            (key, "[a-z]{0,3}").prop_map(|(k, v)| Op::Insert(k, v)),
            key.prop_map(Op::Remove),
            prop::collection::vec((key, "[0-9]"), 0..4).prop_map(Op::Extend),
        ]
    }

    proptest! {
        #[test]
        fn behaves_like_a_btreemap(
            init in prop::collection::vec(("[a-e]{0,2}", "[a-z]{0,3}"), 0..8),
            ops in prop::collection::vec(arb_op(), 0..20),
        ) {
            let mut model: BTreeMap<String, String> = init.iter().cloned().collect();
            let mut l: Labels = init.into_iter().collect();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        prop_assert_eq!(l.insert(k.clone(), v.clone()), model.insert(k, v));
                    }
                    Op::Remove(k) => prop_assert_eq!(l.remove(&k), model.remove(&k)),
                    Op::Extend(entries) => {
                        l.extend(entries.clone());
                        model.extend(entries);
                    }
                }
                prop_assert_eq!(l.len(), model.len());
                prop_assert!(l.iter().eq(model.iter()));
                for k in ["", "a", "ab", "e", "zz"] {
                    prop_assert_eq!(l.get(k), model.get(k));
                }
            }
            prop_assert_eq!(
                serde_json::to_string(&l).expect("serialize"),
                serde_json::to_string(&model).expect("serialize")
            );
            prop_assert_eq!(&Labels::from(model.clone()), &l);
            prop_assert!(l.clone().into_iter().eq(model.into_iter()));
        }
    }
}
