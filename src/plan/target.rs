//! `--target`: a plan restricted to some cards, as Terraform's `-target` restricts to some
//! resources. A target names a key (`alice`), a key prefix (`team-a/*`), a label (`team=ops`,
//! or `label=team=ops`; `label=ops` for any label with that value) or a product
//! (`product=VISA_USD_STD`). A key never holds `=`, so `NAME=VALUE` cannot be mistaken for one;
//! `label=` and `product=` are read first, so a label named `label` or `product` is written
//! `label=product=X`. Pure, like the rest of the planner.

use serde::{Deserialize, Serialize};

use super::{Action, Attributes};
use crate::decl::{DesiredCard, Labels};
use crate::state::CardRecord;

/// One `--target`, as given and as understood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// As the user wrote it, for messages and saved plans.
    pub given: String,
    #[serde(skip)]
    rule: Rule,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Rule {
    #[default]
    Nothing,
    Key(String),
    Prefix(String),
    Label {
        name: Option<String>,
        value: String,
    },
    Product(String),
}

impl Target {
    pub fn parse(raw: &str) -> Result<Target, String> {
        let given = raw.to_owned();
        let empty = || format!("--target {raw:?}: nothing to match");
        let rule = if let Some(v) = raw.strip_prefix("label=") {
            match v.split_once('=') {
                Some((name, value)) if !name.is_empty() => Rule::Label {
                    name: Some(name.to_owned()),
                    value: value.to_owned(),
                },
                Some(_) => return Err(empty()),
                None if v.is_empty() => return Err(empty()),
                None => Rule::Label {
                    name: None,
                    value: v.to_owned(),
                },
            }
        } else if let Some(code) = raw.strip_prefix("product=") {
            if code.is_empty() {
                return Err(empty());
            }
            Rule::Product(code.to_owned())
        } else if let Some(prefix) = raw.strip_suffix('*') {
            crate::model::check_key(prefix).or_else(|e| match e {
                crate::model::KeyError::Empty => Ok(()),
                e => Err(format!("--target {raw:?}: {e}")),
            })?;
            Rule::Prefix(prefix.to_owned())
        } else if let Some((name, value)) = raw.split_once('=') {
            // `team=t1`: the label, as `state list --label team=t1` and declarations spell it.
            if name.is_empty() {
                return Err(format!(
                    "--target {raw:?}: expected KEY, KEY-PREFIX*, NAME=VALUE (a label), \
                     label=VALUE (any label) or product=CODE"
                ));
            }
            Rule::Label {
                name: Some(name.to_owned()),
                value: value.to_owned(),
            }
        } else {
            crate::model::check_key(raw).map_err(|e| format!("--target {raw:?}: {e}"))?;
            Rule::Key(raw.to_owned())
        };
        Ok(Target { given, rule })
    }

    fn matches(&self, key: &str, product: &str, labels: &Labels) -> bool {
        match &self.rule {
            Rule::Nothing => false,
            Rule::Key(k) => key == k,
            Rule::Prefix(p) => key.starts_with(p.as_str()),
            Rule::Product(p) => product == p,
            Rule::Label {
                name: Some(n),
                value,
            } => labels.get(n) == Some(value),
            Rule::Label { name: None, value } => labels.iter().any(|(_, v)| v == value),
        }
    }

    pub(super) fn matches_card(&self, c: &DesiredCard) -> bool {
        self.matches(&c.key, &c.product_code, &c.labels)
    }

    pub(super) fn matches_record(&self, r: &CardRecord) -> bool {
        self.matches(&r.key, &r.product_code, &r.labels)
    }

    /// An action matches by its card's key (a top-up by its card's, or the key a move leads to)
    /// and by what it declares or what state holds: a card relabelled away from `team=ops` is
    /// still an ops change.
    pub(super) fn matches_action(&self, a: &Action) -> bool {
        let attrs = [a.after(), a.before()];
        let address = a.address();
        let card = address.card_key().unwrap_or(&a.key);
        let keys = std::iter::once(card).chain(a.moved_to());
        let empty = Labels::new();
        keys.into_iter().any(|key| {
            attrs
                .iter()
                .flatten()
                .any(|at: &&Attributes| self.matches(key, &at.product_code, &at.labels))
                || (attrs.iter().all(Option::is_none) && self.matches(key, &a.product_code, &empty))
        })
    }
}

/// What a partial plan left out, so nobody mistakes it for the whole picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// The targets, as given.
    pub targets: Vec<String>,
    /// Changes the full plan has that this one leaves out.
    pub left_out: usize,
    /// Targets that match no declared card and no card in state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_say_what_is_wrong() {
        for ok in [
            "alice",
            "team-a/*",
            "*",
            "label=ops",
            "label=team=ops",
            "product=P",
            "team=ops",
        ] {
            assert!(Target::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["label=", "label==x", "product=", "a b", "=bar", "bad key*"] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
        let mut labels = Labels::new();
        labels.insert("team".into(), "ops".into());
        let t = |s: &str| Target::parse(s).unwrap();
        assert!(t("team-a/*").matches("team-a/x", "P", &labels));
        assert!(!t("team-a/*").matches("team-b/x", "P", &labels));
        assert!(t("label=ops").matches("k", "P", &labels));
        assert!(t("label=team=ops").matches("k", "P", &labels));
        // `NAME=VALUE` is the label, as `label=NAME=VALUE` is.
        assert_eq!(t("team=ops").rule, t("label=team=ops").rule);
        assert!(t("team=ops").matches("k", "P", &labels));
        assert!(!t("team=dev").matches("k", "P", &labels));
        assert!(!t("owner=ops").matches("k", "P", &labels));
        assert!(!t("label=owner=ops").matches("k", "P", &labels));
        assert!(t("product=P").matches("k", "P", &labels));
        assert!(!t("alice").matches("alice2", "P", &labels));
    }
}
