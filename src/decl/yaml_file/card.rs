//! Checking the fields of one card, or of a file's `defaults`, into a [`RawCard`]: each value
//! through the shared rules of `fields`, labels one by one. Must not apply defaults or decide
//! whether a card is complete (that is `fields::finish`, once the whole file is read).

use std::borrow::Cow;

use super::node::Node;
use super::reader::{Name, Reader};
use crate::decl::fields::{
    self, AMOUNT, At, CARD_FIELDS, EXTERNAL_USER_ID, INITIAL_TOPUP, Invalid, KEY, LABELS,
    PRODUCT_CODE, RawCard, STATUS, Slot, TOPUPS,
};
use crate::decl::problem::{DeclProblem, Loc, ProblemKind};
use crate::decl::suggest;
use crate::decl::{DesiredTopup, Labels, Origin};

impl Reader<'_, '_> {
    /// Values are moved out of the tree (it is not needed afterwards), which spares a copy of
    /// every string in large files.
    pub(super) fn fields(
        &mut self,
        entries: &mut [(Node<'_>, Node<'_>)],
        in_defaults: bool,
    ) -> RawCard {
        let mut card = RawCard::default();
        let mut seen = Vec::new();
        for (k, v) in entries {
            let k: &Node<'_> = k;
            let Some(name) = self.name(k) else {
                card.rejected = true;
                continue;
            };
            if self.duplicate(&mut seen, &name, "field") {
                card.rejected = true;
                continue;
            }
            let ok = match name.text {
                KEY if in_defaults => {
                    let p = DeclProblem::at(
                        ProblemKind::UnknownField,
                        self.src,
                        name.loc,
                        "`key` cannot have a default",
                        "not allowed in `defaults`",
                    )
                    .with_help("every card needs its own key; set it on each card");
                    self.push(p);
                    false
                }
                KEY => self.scalar(&name, v, true, &mut card.key, fields::check_key),
                EXTERNAL_USER_ID => {
                    self.scalar(&name, v, !in_defaults, &mut card.external_user_id, |s| {
                        fields::check_text(EXTERNAL_USER_ID, s)
                    })
                }
                PRODUCT_CODE => self.scalar(&name, v, !in_defaults, &mut card.product_code, |s| {
                    fields::check_text(PRODUCT_CODE, s)
                }),
                INITIAL_TOPUP => self.scalar(&name, v, false, &mut card.initial_topup, |s| {
                    fields::check_amount(INITIAL_TOPUP, &s)
                }),
                STATUS => self.scalar(&name, v, false, &mut card.status, |s| {
                    fields::check_status(&s)
                }),
                LABELS => self.labels(v, &mut card.labels),
                TOPUPS if in_defaults => {
                    let p = DeclProblem::at(
                        ProblemKind::UnknownField,
                        self.src,
                        name.loc,
                        "`topups` cannot have a default",
                        "not allowed in `defaults`",
                    )
                    .with_help("list each card's top-ups on the card, or in a top-up CSV");
                    self.push(p);
                    false
                }
                TOPUPS => self.topups(v, &mut card),
                other => {
                    let candidates: &[&str] = if in_defaults {
                        &CARD_FIELDS[1..]
                    } else {
                        CARD_FIELDS
                    };
                    if let Some(meant) = fields::misspelling_of(other, candidates) {
                        card.misspelt.push(meant);
                    }
                    let p = DeclProblem::at(
                        ProblemKind::UnknownField,
                        self.src,
                        name.loc,
                        format!("unknown field `{other}`"),
                        "unknown field",
                    )
                    .with_help(suggest::help_for(
                        other,
                        candidates,
                        "card fields",
                    ));
                    self.push(p);
                    false
                }
            };
            if !ok {
                card.rejected = true;
            }
        }
        card
    }

    /// Reads a single-valued field into `slot`; false if a problem was reported. A null value
    /// means "not set", except where `required` (a card's own key, user id or product code:
    /// an empty value there is surely a mistake, and saying so beats "missing").
    pub(super) fn scalar<T>(
        &mut self,
        name: &Name<'_>,
        value: &mut Node<'_>,
        required: bool,
        slot: &mut Slot<T>,
        check: impl FnOnce(Cow<'_, str>) -> Result<T, Invalid>,
    ) -> bool {
        if value.is_null() {
            if required {
                let p = DeclProblem::at(
                    ProblemKind::EmptyValue,
                    self.src,
                    name.loc,
                    format!("`{}` has no value", name.text),
                    "no value given",
                )
                .with_help(format!("give `{}` a value", name.text));
                self.push(p);
                *slot = Slot::Invalid;
                return false;
            }
            return true;
        }
        let Node::Scalar {
            value: text, loc, ..
        } = value
        else {
            self.wrong_type(value, &format!("`{}`", name.text), "a single value");
            *slot = Slot::Invalid;
            return false;
        };
        match check(std::mem::take(text)) {
            Ok(v) => {
                *slot = Slot::Set(At {
                    value: v,
                    loc: *loc,
                });
                true
            }
            Err(e) => {
                self.push(e.at(self.src, *loc));
                *slot = Slot::Invalid;
                false
            }
        }
    }

    /// A card's `topups`: a list of `{id, amount, labels}` (labels optional), each id once.
    fn topups(&mut self, value: &mut Node<'_>, card: &mut RawCard) -> bool {
        if value.is_null() {
            return true;
        }
        let Node::Seq { items, .. } = value else {
            self.wrong_type(value, "`topups`", "a list of `{id, amount}` entries");
            return false;
        };
        let mut ok = true;
        let mut ids: Vec<(String, Loc)> = Vec::new();
        for item in items.iter_mut() {
            let Node::Map { entries, loc } = item else {
                self.wrong_type(item, "a top-up", "a mapping with `id` and `amount`");
                ok = false;
                continue;
            };
            let entry = *loc;
            let (mut id, mut amount) = (Slot::Absent, Slot::Absent);
            let mut labels = Labels::new();
            let mut seen = Vec::new();
            for (k, v) in entries.iter_mut() {
                let k: &Node<'_> = k;
                let Some(name) = self.name(k) else {
                    ok = false;
                    continue;
                };
                if self.duplicate(&mut seen, &name, "field") {
                    ok = false;
                    continue;
                }
                ok &= match name.text {
                    "id" => self.scalar(&name, v, true, &mut id, fields::check_topup_id),
                    AMOUNT => self.scalar(&name, v, true, &mut amount, |s| {
                        fields::check_amount(AMOUNT, &s)
                    }),
                    LABELS => self.labels(v, &mut labels),
                    other => {
                        let p = DeclProblem::at(
                            ProblemKind::UnknownField,
                            self.src,
                            name.loc,
                            format!("unknown field `{other}` in a top-up"),
                            "unknown field",
                        )
                        .with_help(suggest::help_for(
                            other,
                            &["id", AMOUNT, LABELS],
                            "top-up fields",
                        ));
                        self.push(p);
                        false
                    }
                };
            }
            match (id, amount) {
                (Slot::Set(id), Slot::Set(amount)) => {
                    if let Some((_, first)) = ids.iter().find(|(i, _)| *i == id.value) {
                        let p = DeclProblem::at(
                            ProblemKind::DuplicateKey,
                            self.src,
                            id.loc,
                            format!("top-up id `{}` is used twice on this card", id.value),
                            "used again here",
                        )
                        .with_help(format!(
                            "first used on line {}; each top-up of a card needs its own id",
                            first.line()
                        ));
                        self.push(p);
                        ok = false;
                        continue;
                    }
                    ids.push((id.value.clone(), id.loc));
                    card.topups.push(DesiredTopup {
                        id: id.value,
                        amount: amount.value,
                        labels,
                        origin: Origin {
                            file: self.src.name.clone(),
                            line: id.loc.line(),
                        },
                    });
                }
                (id, amount) => {
                    for (slot, field) in [(id.is_absent(), "id"), (amount.is_absent(), AMOUNT)] {
                        if slot {
                            let p = DeclProblem::at(
                                ProblemKind::MissingField,
                                self.src,
                                entry,
                                format!("a top-up without `{field}`"),
                                format!("`{field}` is missing"),
                            )
                            .with_help("a top-up is `{id: 2026-11, amount: \"100.00\"}`");
                            self.push(p);
                        }
                    }
                    ok = false;
                }
            }
        }
        card.topups.sort_by(|a, b| a.id.cmp(&b.id));
        ok
    }

    /// A `labels` mapping (of a card, a top-up or a cardholder), each name and value checked.
    pub(super) fn labels(&mut self, value: &mut Node<'_>, labels: &mut Labels) -> bool {
        if value.is_null() {
            return true;
        }
        let Node::Map { entries, .. } = value else {
            self.wrong_type(value, "`labels`", "a mapping of label names to values");
            return false;
        };
        let mut ok = true;
        let mut seen = Vec::new();
        for (k, v) in entries {
            let k: &Node<'_> = k;
            let Some(name) = self.name(k) else {
                ok = false;
                continue;
            };
            if self.duplicate(&mut seen, &name, "label") {
                ok = false;
                continue;
            }
            let label = match fields::check_label_name(name.text) {
                Ok(l) => l,
                Err(e) => {
                    self.push(e.at(self.src, name.loc));
                    ok = false;
                    continue;
                }
            };
            let value_loc = v.loc();
            let text = match v {
                _ if v.is_null() => {
                    let p = DeclProblem::at(
                        ProblemKind::InvalidLabel,
                        self.src,
                        name.loc,
                        format!("label `{label}` has no value"),
                        "no value given",
                    )
                    .with_help("give the label a value, or remove it");
                    self.push(p);
                    ok = false;
                    continue;
                }
                Node::Scalar { value, .. } => std::mem::take(value),
                other => {
                    self.wrong_type(other, &format!("label `{label}`"), "a single value");
                    ok = false;
                    continue;
                }
            };
            match fields::check_text(format_args!("labels.{label}"), text) {
                Ok(t) => {
                    labels.insert(label, t);
                }
                Err(e) => {
                    self.push(e.at(self.src, value_loc));
                    ok = false;
                }
            }
        }
        ok
    }
}
