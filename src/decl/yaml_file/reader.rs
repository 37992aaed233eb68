//! Checking a YAML document's top level: one document per file, its `version`, `defaults`,
//! `moved`, `cardholders` and `cards` lists, each card handed to `card` and then to `fields::finish`. Also the problem helpers
//! every part of the reader shares. Must not check a card's fields itself (that is `card`).

use saphyr_parser::{Event, ScanError};

use super::entry;
use super::events::Events;
use super::node::{Node, loc_of};
use crate::decl::fields::{self, Candidate, RawCard};
use crate::decl::moves::MoveCandidate;
use crate::decl::people::PersonCandidate;
use crate::decl::problem::{DeclProblem, Loc, ProblemKind, Source};
use crate::decl::suggest;

const VERSION: &str = "version";
const DEFAULTS: &str = "defaults";
const CARDS: &str = "cards";
const MOVED: &str = "moved";
const CARDHOLDERS: &str = "cardholders";
const TOP_FIELDS: &[&str] = &[VERSION, DEFAULTS, CARDS, MOVED, CARDHOLDERS];
const SUPPORTED_VERSION: &str = "1";

/// A file read the fast way: the parser reads the text before `block`, whose entries `entry`
/// tokenizes. `used` ends true only when every entry was of its form and was read as the
/// `cards` list; otherwise the caller reads the file again with the parser alone.
pub(super) struct Fast {
    pub(super) block: entry::Block,
    pub(super) used: bool,
}

pub(super) struct Reader<'s, 'p> {
    pub(super) src: &'s Source,
    pub(super) problems: &'p mut Vec<DeclProblem>,
}

/// A mapping key read as a field name.
pub(super) struct Name<'n> {
    pub(super) text: &'n str,
    pub(super) loc: Loc,
}

impl Reader<'_, '_> {
    pub(super) fn push(&mut self, p: DeclProblem) {
        self.problems.push(p);
    }

    pub(super) fn wrong_type(&mut self, node: &Node<'_>, what: &str, expected: &str) {
        let p = DeclProblem::at_span(
            ProblemKind::WrongType,
            self.src,
            node.span(self.src),
            format!("{what} must be {expected}"),
            format!("found {}", node.describe()),
        );
        let p = if matches!(node, Node::Alias { .. }) {
            p.with_help("YAML aliases are not supported here; use `defaults` to share values")
        } else {
            p
        };
        self.push(p);
    }

    /// The text of a mapping key, or a problem when the key is not a plain value.
    pub(super) fn name<'n>(&mut self, key: &'n Node<'_>) -> Option<Name<'n>> {
        match key {
            Node::Scalar { value, loc, .. } if !key.is_null() => Some(Name {
                text: value.as_ref(),
                loc: *loc,
            }),
            _ => {
                self.wrong_type(key, "a field name", "a plain name");
                None
            }
        }
    }

    /// Reports a field set twice in one mapping; true if `name` was seen before.
    pub(super) fn duplicate<'n>(
        &mut self,
        seen: &mut Vec<(&'n str, Loc)>,
        name: &Name<'n>,
        what: &str,
    ) -> bool {
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name.text) {
            let p = DeclProblem::at(
                ProblemKind::DuplicateField,
                self.src,
                name.loc,
                format!("{what} `{}` is set twice", name.text),
                "set again here",
            )
            .with_help(format!(
                "it is first set on line {}; keep one of them",
                first.line()
            ));
            self.push(p);
            return true;
        }
        seen.push((name.text, name.loc));
        false
    }

    /// The whole stream: the first document holds the declarations; any further one is a
    /// mistake (but is still parsed, so that its syntax errors show).
    ///
    /// With `fast`, the parser reads only the text before its cards, which are tokenized by
    /// `entry` where the empty `cards:` is met (see [`Fast`]).
    pub(super) fn stream(
        &mut self,
        file: usize,
        out: &mut Vec<Candidate>,
        moves: &mut Vec<MoveCandidate>,
        people: &mut Vec<PersonCandidate>,
        fast: Option<&mut Fast>,
    ) -> Result<(), ScanError> {
        let src: &Source = self.src;
        let text = match &fast {
            Some(f) => &src.text[..f.block.start],
            None => &src.text[..],
        };
        let mut fast = fast;
        let mut ev = Events::new(text);
        let mut documents = 0;
        while let Some((event, span)) = ev.next()? {
            if !matches!(event, Event::DocumentStart(_)) {
                continue;
            }
            documents += 1;
            if documents == 1 {
                self.document(&mut ev, file, out, moves, people, fast.take())?;
                continue;
            }
            let extra = ev.node()?;
            if documents == 2 && !extra.is_null() {
                let p = DeclProblem::at_span(
                    ProblemKind::YamlSyntax,
                    self.src,
                    self.src.rest_of_line(loc_of(&span)),
                    "more than one YAML document in one file",
                    "a second document starts here",
                )
                .with_help(
                    "put each set of cards in its own file, or merge them into one `cards` list",
                );
                self.push(p);
            }
        }
        Ok(())
    }

    fn document(
        &mut self,
        ev: &mut Events<'_>,
        file: usize,
        out: &mut Vec<Candidate>,
        moves: &mut Vec<MoveCandidate>,
        people: &mut Vec<PersonCandidate>,
        mut fast: Option<&mut Fast>,
    ) -> Result<(), ScanError> {
        if !matches!(ev.peek()?, Some(Event::MappingStart(..))) {
            let root = ev.node()?;
            if !root.is_null() {
                self.wrong_type(
                    &root,
                    "a declarations file",
                    "a mapping with `version` and `cards`",
                );
            }
            return Ok(());
        }
        let Some((_, start)) = ev.next()? else {
            return Ok(());
        };
        let start = loc_of(&start);

        // Card problems are kept apart: if the file turns out to have an unsupported version,
        // its cards may follow another format and those problems would be noise.
        let mut card_problems = Vec::new();
        let mut cards: Vec<(RawCard, Loc)> = Vec::new();
        let mut persons = Vec::new();
        let mut seen: Vec<(&'static str, Loc)> = Vec::new();
        let mut version_ok = None;
        let mut defaults = None;
        loop {
            if matches!(ev.peek()?, Some(Event::MappingEnd) | None) {
                ev.next()?;
                break;
            }
            let key = ev.node()?;
            let Some(name) = self.name(&key) else {
                ev.node()?;
                continue;
            };
            let known = TOP_FIELDS.iter().copied().find(|f| *f == name.text);
            if let Some(field) = known {
                let static_name = Name {
                    text: field,
                    loc: name.loc,
                };
                if self.duplicate(&mut seen, &static_name, "field") {
                    ev.node()?;
                    continue;
                }
            }
            match known {
                Some(CARDS) if matches!(ev.peek()?, Some(Event::SequenceStart(..))) => {
                    ev.next()?;
                    // With the version checked and the defaults read, each card can become its
                    // final form at once instead of all of them waiting as raw entries (which
                    // doubles the memory of loading a large fleet). Otherwise `defaults` or
                    // `version` may still follow the cards, so they wait for the end.
                    let settled = version_ok == Some(true)
                        && seen.iter().any(|(field, _)| *field == DEFAULTS);
                    let mut r = Reader {
                        src: self.src,
                        problems: &mut card_problems,
                    };
                    loop {
                        if matches!(ev.peek()?, Some(Event::SequenceEnd) | None) {
                            ev.next()?;
                            break;
                        }
                        let item = ev.node()?;
                        let to = if settled { None } else { Some(&mut cards) };
                        r.card_item(item, defaults.as_ref(), file, out, to);
                    }
                }
                // The empty `cards:` the text given to the parser ends with: its list is the
                // entries after it, read without the parser.
                Some(CARDS)
                    if fast
                        .as_ref()
                        .is_some_and(|f| f.block.cards_line == name.loc.line()) =>
                {
                    let value = ev.node()?;
                    let Some(f) = fast.take() else { continue };
                    f.used = value.is_null();
                    let settled = version_ok == Some(true)
                        && seen.iter().any(|(field, _)| *field == DEFAULTS);
                    let mut r = Reader {
                        src: self.src,
                        problems: &mut card_problems,
                    };
                    for item in entry::Entries::new(entry::lines(&self.src.text, &f.block)) {
                        let Some(item) = item else {
                            f.used = false;
                            return Ok(());
                        };
                        let to = if settled { None } else { Some(&mut cards) };
                        r.card_item(item, defaults.as_ref(), file, out, to);
                    }
                }
                Some(CARDS) => {
                    let value = ev.node()?;
                    if !value.is_null() {
                        self.wrong_type(&value, "`cards`", "a list of cards");
                    }
                }
                Some(MOVED) if matches!(ev.peek()?, Some(Event::SequenceStart(..))) => {
                    ev.next()?;
                    loop {
                        if matches!(ev.peek()?, Some(Event::SequenceEnd) | None) {
                            ev.next()?;
                            break;
                        }
                        let mut item = ev.node()?;
                        self.move_entry(&mut item, file, moves);
                    }
                }
                Some(MOVED) => {
                    let value = ev.node()?;
                    if !value.is_null() {
                        self.wrong_type(
                            &value,
                            "`moved`",
                            "a list of `{from: OLD, to: NEW}` entries",
                        );
                    }
                }
                Some(CARDHOLDERS) if matches!(ev.peek()?, Some(Event::SequenceStart(..))) => {
                    ev.next()?;
                    // Like cards: kept apart until the version is known to be supported.
                    let mut r = Reader {
                        src: self.src,
                        problems: &mut card_problems,
                    };
                    loop {
                        if matches!(ev.peek()?, Some(Event::SequenceEnd) | None) {
                            ev.next()?;
                            break;
                        }
                        let mut item = ev.node()?;
                        r.person_entry(&mut item, file, &mut persons);
                    }
                }
                Some(CARDHOLDERS) => {
                    let value = ev.node()?;
                    if !value.is_null() {
                        self.wrong_type(&value, "`cardholders`", "a list of cardholders");
                    }
                }
                Some(VERSION) => {
                    let value = ev.node()?;
                    version_ok = Some(self.version(&value));
                }
                Some(_) => {
                    let mut value = ev.node()?;
                    defaults = match &mut value {
                        d if d.is_null() => None,
                        Node::Map { entries, .. } => Some(self.fields(entries, true)),
                        other => {
                            self.wrong_type(other, "`defaults`", "a mapping of card fields");
                            None
                        }
                    };
                }
                None => {
                    ev.node()?;
                    let p = DeclProblem::at(
                        ProblemKind::UnknownField,
                        self.src,
                        name.loc,
                        format!("unknown top-level field `{}`", name.text),
                        "unknown field",
                    )
                    .with_help(suggest::help_for(
                        name.text,
                        TOP_FIELDS,
                        "top-level fields",
                    ));
                    self.push(p);
                }
            }
        }

        match version_ok {
            None => {
                let p = DeclProblem::at_span(
                    ProblemKind::MissingVersion,
                    self.src,
                    self.src.rest_of_line(start),
                    "missing `version`",
                    "this file has no `version`",
                )
                .with_help("start the file with `version: 1`");
                self.push(p);
            }
            Some(false) => return Ok(()),
            Some(true) => {}
        }
        people.append(&mut persons);
        for (card, loc) in cards {
            if let Some(c) = fields::finish(
                card,
                defaults.as_ref(),
                self.src,
                file,
                loc,
                &mut card_problems,
            ) {
                out.push(c);
            }
        }
        self.problems.append(&mut card_problems);
        Ok(())
    }

    /// One entry of the `cards` list: checked, then finished at once (`to` is `None`: the
    /// version and defaults are known) or kept in `to` until the end of the document.
    fn card_item(
        &mut self,
        mut item: Node<'_>,
        defaults: Option<&RawCard>,
        file: usize,
        out: &mut Vec<Candidate>,
        to: Option<&mut Vec<(RawCard, Loc)>>,
    ) {
        let Node::Map { entries, loc } = &mut item else {
            self.wrong_type(&item, "a card", "a mapping of card fields");
            return;
        };
        let loc = *loc;
        let card = self.fields(entries, false);
        match to {
            None => out.extend(fields::finish(
                card,
                defaults,
                self.src,
                file,
                loc,
                self.problems,
            )),
            Some(cards) => cards.push((card, loc)),
        }
    }

    /// Checks the `version` value; false (with a problem) unless it is 1.
    fn version(&mut self, v: &Node<'_>) -> bool {
        if matches!(v, Node::Scalar { value, .. } if value == SUPPORTED_VERSION) {
            return true;
        }
        let shown = match v {
            Node::Scalar { value, .. } if !v.is_null() => format!("`{value}`"),
            other => other.describe().to_owned(),
        };
        let p = DeclProblem::at_span(
            ProblemKind::UnsupportedVersion,
            self.src,
            v.span(self.src),
            format!("unsupported declarations version {shown}"),
            "this cardform reads version 1 only",
        )
        .with_help("write `version: 1`");
        self.push(p);
        false
    }
}
