//! The entries of a YAML file's `cardholders:` list: `external_user_id`, the KYC fields and
//! optional `labels`, each value checked alone by the rules of `people`. Must not check entries
//! against each other (the caller sees every file).

use super::node::Node;
use super::reader::Reader;
use crate::decl::fields::LABELS;
use crate::decl::people::{self, PERSON_FIELDS, PersonCandidate, RawPerson};
use crate::decl::problem::{DeclProblem, ProblemKind};
use crate::decl::suggest;

impl Reader<'_, '_> {
    /// Reads one entry of the `cardholders` list.
    pub(super) fn person_entry(
        &mut self,
        item: &mut Node<'_>,
        file: usize,
        out: &mut Vec<PersonCandidate>,
    ) {
        let Node::Map { entries, loc } = item else {
            self.wrong_type(item, "a cardholder", "a mapping of cardholder fields");
            return;
        };
        let entry = *loc;
        let mut raw = RawPerson::default();
        let mut seen = Vec::new();
        for (k, v) in entries.iter_mut() {
            let k: &Node<'_> = k;
            let Some(name) = self.name(k) else {
                raw.rejected = true;
                continue;
            };
            if self.duplicate(&mut seen, &name, "field") {
                raw.rejected = true;
                continue;
            }
            let ok = if name.text == LABELS {
                self.labels(v, &mut raw.labels)
            } else if let Some(field) = people::field_named(name.text) {
                self.scalar(&name, v, true, raw.slot(field), |s| people::check(field, s))
            } else {
                raw.misspelt
                    .extend(suggest::did_you_mean(name.text, PERSON_FIELDS));
                let p = DeclProblem::at(
                    ProblemKind::UnknownField,
                    self.src,
                    name.loc,
                    format!("unknown field `{}` in a cardholder", name.text),
                    "unknown field",
                )
                .with_help(suggest::help_for(
                    name.text,
                    PERSON_FIELDS,
                    "cardholder fields",
                ));
                self.push(p);
                false
            };
            if !ok {
                raw.rejected = true;
            }
        }
        out.extend(people::finish(raw, self.src, file, entry, self.problems));
    }
}
