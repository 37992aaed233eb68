//! The entries of a YAML file's `moved:` list, `{from: OLD, to: NEW}`, each key checked alone.
//! Must not check moves against each other or against the cards (the caller sees every file).

use super::node::Node;
use super::reader::Reader;
use crate::decl::fields::{self, Slot};
use crate::decl::moves::MoveCandidate;
use crate::decl::problem::{DeclProblem, ProblemKind};
use crate::decl::suggest;

const FROM: &str = "from";
const TO: &str = "to";
const MOVE_FIELDS: &[&str] = &[FROM, TO];

impl Reader<'_, '_> {
    /// Reads one entry of the `moved` list.
    pub(super) fn move_entry(
        &mut self,
        item: &mut Node<'_>,
        file: usize,
        out: &mut Vec<MoveCandidate>,
    ) {
        let Node::Map { entries, loc } = item else {
            self.wrong_type(item, "a move", "a mapping with `from` and `to`");
            return;
        };
        let entry = *loc;
        let (mut from, mut to) = (Slot::Absent, Slot::Absent);
        let mut seen = Vec::new();
        // Fields an unknown name was taken for (`form` → `from`): reported once, with the hint.
        let mut misspelt = Vec::new();
        for (k, v) in entries.iter_mut() {
            let k: &Node<'_> = k;
            let Some(name) = self.name(k) else { continue };
            if self.duplicate(&mut seen, &name, "field") {
                continue;
            }
            match name.text {
                FROM => {
                    self.scalar(&name, v, true, &mut from, fields::check_key);
                }
                TO => {
                    self.scalar(&name, v, true, &mut to, fields::check_key);
                }
                other => {
                    misspelt.extend(suggest::did_you_mean(other, MOVE_FIELDS));
                    let p = DeclProblem::at(
                        ProblemKind::UnknownField,
                        self.src,
                        name.loc,
                        format!("unknown field `{other}` in a move"),
                        "unknown field",
                    )
                    .with_help(suggest::help_for(
                        other,
                        MOVE_FIELDS,
                        "move fields",
                    ));
                    self.push(p);
                }
            }
        }
        for (slot, field) in [(&from, FROM), (&to, TO)] {
            if matches!(slot, Slot::Absent) && !misspelt.contains(&field) {
                let p = DeclProblem::at(
                    ProblemKind::MissingField,
                    self.src,
                    entry,
                    format!("a move without `{field}`"),
                    format!("`{field}` is missing"),
                )
                .with_help("a move names the key in state and its new key: `{from: OLD, to: NEW}`");
                self.push(p);
            }
        }
        if let (Slot::Set(from), Slot::Set(to)) = (from, to) {
            out.push(MoveCandidate {
                file,
                from: from.value,
                from_loc: from.loc,
                to: to.value,
                to_loc: to.loc,
            });
        }
    }
}
