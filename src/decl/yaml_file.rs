//! The YAML reader: turns one YAML declarations file into card candidates and problems.
//!
//! Uses `saphyr-parser`'s event stream because it carries a span for every node (the `yaml_serde`
//! crate only reports positions for its own errors, never for values). Scalars are kept as their
//! source text, so `initial_topup: 50.10` is read as the decimal `50.10`, never through a float.
//! Must not resolve defaults across files or detect duplicate keys (the caller sees all files).

use miette::SourceSpan;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput};
use std::borrow::Cow;

use super::fields::{
    self, At, CARD_FIELDS, Candidate, EXTERNAL_USER_ID, INITIAL_TOPUP, Invalid, KEY, LABELS,
    PRODUCT_CODE, RawCard, STATUS, Slot,
};
use super::problem::{Loc, ProblemKind, Source, SpecProblem};
use super::suggest;

const VERSION: &str = "version";
const DEFAULTS: &str = "defaults";
const CARDS: &str = "cards";
const TOP_FIELDS: &[&str] = &[VERSION, DEFAULTS, CARDS];
const SUPPORTED_VERSION: &str = "1";

/// A YAML node with its position; collections keep entries in source order.
#[derive(Debug)]
enum Node<'a> {
    Scalar {
        value: Cow<'a, str>,
        style: ScalarStyle,
        loc: Loc,
    },
    /// Lists are only ever reported as a whole (the `cards` list is streamed, not built), so
    /// their items are not kept.
    Seq {
        loc: Loc,
    },
    Map {
        entries: Vec<(Node<'a>, Node<'a>)>,
        loc: Loc,
    },
    Alias {
        loc: Loc,
    },
}

impl Node<'_> {
    fn loc(&self) -> Loc {
        match self {
            Node::Scalar { loc, .. }
            | Node::Seq { loc, .. }
            | Node::Map { loc, .. }
            | Node::Alias { loc } => *loc,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { value, style: ScalarStyle::Plain, .. }
            if matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What the node is, for "expected X, found Y" messages.
    fn describe(&self) -> &'static str {
        match self {
            _ if self.is_null() => "nothing",
            Node::Scalar { .. } => "a single value",
            Node::Seq { .. } => "a list",
            Node::Map { .. } => "a mapping",
            Node::Alias { .. } => "an alias",
        }
    }

    /// Where to put the caret for the whole node: all of it when it fits on a line, else the rest
    /// of its first line (a block collection would otherwise underline many lines).
    fn span(&self, src: &Source) -> SourceSpan {
        match self.loc() {
            Loc::Chars { line, end_line, .. }
                if line != end_line && !matches!(self, Node::Scalar { .. }) =>
            {
                src.rest_of_line(self.loc())
            }
            loc => src.span(loc),
        }
    }
}

fn loc_of(span: &Span) -> Loc {
    loc_between(span, span)
}

fn loc_between(start: &Span, end: &Span) -> Loc {
    Loc::Chars {
        line: start.start.line(),
        col: start.start.col(),
        end_line: end.end.line(),
        end_col: end.end.col(),
    }
}

enum Frame<'a> {
    Seq(Span),
    Map(Vec<(Node<'a>, Node<'a>)>, Option<Node<'a>>, Span),
}

/// The parser's events with one of lookahead. Cards are read one node at a time from it, so a
/// file of 100,000 cards never becomes one big tree.
struct Events<'a> {
    parser: Parser<'a, StrInput<'a>>,
    peeked: Option<(Event<'a>, Span)>,
}

impl<'a> Events<'a> {
    fn new(text: &'a str) -> Self {
        Events {
            parser: Parser::new_from_str(text),
            peeked: None,
        }
    }

    fn next(&mut self) -> Result<Option<(Event<'a>, Span)>, ScanError> {
        match self.peeked.take() {
            Some(e) => Ok(Some(e)),
            None => self.parser.next_event().transpose(),
        }
    }

    fn peek(&mut self) -> Result<Option<&Event<'a>>, ScanError> {
        if self.peeked.is_none() {
            self.peeked = self.parser.next_event().transpose()?;
        }
        Ok(self.peeked.as_ref().map(|(e, _)| e))
    }

    /// The whole node that starts at the next event. Built with an explicit stack so that
    /// deeply nested input cannot overflow ours.
    fn node(&mut self) -> Result<Node<'a>, ScanError> {
        let mut stack: Vec<Frame<'a>> = Vec::new();
        while let Some((event, span)) = self.next()? {
            let node = match event {
                Event::Scalar(value, style, _, _) => Node::Scalar {
                    value,
                    style,
                    loc: loc_of(&span),
                },
                Event::Alias(_) => Node::Alias { loc: loc_of(&span) },
                Event::SequenceStart(..) => {
                    stack.push(Frame::Seq(span));
                    continue;
                }
                Event::MappingStart(..) => {
                    stack.push(Frame::Map(Vec::new(), None, span));
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some(Frame::Seq(start)) => Node::Seq {
                        loc: loc_between(&start, &span),
                    },
                    Some(Frame::Map(entries, _, start)) => Node::Map {
                        entries,
                        loc: loc_between(&start, &span),
                    },
                    None => continue,
                },
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(_)
                | Event::DocumentEnd
                | Event::Nothing => continue,
            };
            match stack.last_mut() {
                None => return Ok(node),
                Some(Frame::Seq(_)) => drop(node),
                Some(Frame::Map(entries, pending, _)) => match pending.take() {
                    None => *pending = Some(node),
                    Some(key) => entries.push((key, node)),
                },
            }
        }
        // The parser ends every stream it accepts with complete nodes; an empty plain scalar
        // ("nothing") is the harmless answer should it ever not.
        Ok(Node::Scalar {
            value: Cow::Borrowed(""),
            style: ScalarStyle::Plain,
            loc: Loc::Chars {
                line: 1,
                col: 0,
                end_line: 1,
                end_col: 0,
            },
        })
    }
}

/// Reads one YAML file: problems go to `problems`, every entry with a key to `out`. After a
/// syntax error only that error is reported for the file: what was read before it may be
/// misread (a broken quote swallows lines), so its other findings are dropped.
pub(crate) fn read(
    src: &Source,
    file: usize,
    problems: &mut Vec<SpecProblem>,
    out: &mut Vec<Candidate>,
) {
    let mut found = Vec::new();
    let mut cards = Vec::new();
    let mut reader = Reader {
        src,
        problems: &mut found,
    };
    match reader.stream(file, &mut cards) {
        Ok(()) => {
            problems.append(&mut found);
            out.append(&mut cards);
        }
        Err(e) => {
            let m = e.marker();
            let loc = Loc::Chars {
                line: m.line(),
                col: m.col(),
                end_line: m.line(),
                end_col: m.col(),
            };
            problems.push(
                SpecProblem::at(
                    ProblemKind::YamlSyntax,
                    src,
                    loc,
                    format!("YAML syntax error: {}", e.info()),
                    "here",
                )
                .with_help("the rest of this file was not checked; fix this first"),
            );
        }
    }
}

struct Reader<'s, 'p> {
    src: &'s Source,
    problems: &'p mut Vec<SpecProblem>,
}

/// A mapping key read as a field name.
struct Name<'n> {
    text: &'n str,
    loc: Loc,
}

impl Reader<'_, '_> {
    fn push(&mut self, p: SpecProblem) {
        self.problems.push(p);
    }

    fn wrong_type(&mut self, node: &Node<'_>, what: &str, expected: &str) {
        let p = SpecProblem::at_span(
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
    fn name<'n>(&mut self, key: &'n Node<'_>) -> Option<Name<'n>> {
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
    fn duplicate<'n>(
        &mut self,
        seen: &mut Vec<(&'n str, Loc)>,
        name: &Name<'n>,
        what: &str,
    ) -> bool {
        if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name.text) {
            let p = SpecProblem::at(
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
    fn stream(&mut self, file: usize, out: &mut Vec<Candidate>) -> Result<(), ScanError> {
        let src: &Source = self.src;
        let mut ev = Events::new(&src.text);
        let mut documents = 0;
        while let Some((event, span)) = ev.next()? {
            if !matches!(event, Event::DocumentStart(_)) {
                continue;
            }
            documents += 1;
            if documents == 1 {
                self.document(&mut ev, file, out)?;
                continue;
            }
            let extra = ev.node()?;
            if documents == 2 && !extra.is_null() {
                let p = SpecProblem::at_span(
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
                        let mut item = ev.node()?;
                        let Node::Map { entries, loc } = &mut item else {
                            r.wrong_type(&item, "a card", "a mapping of card fields");
                            continue;
                        };
                        let loc = *loc;
                        let card = r.fields(entries, false);
                        if settled {
                            out.extend(fields::finish(
                                card,
                                defaults.as_ref(),
                                self.src,
                                file,
                                loc,
                                r.problems,
                            ));
                        } else {
                            cards.push((card, loc));
                        }
                    }
                }
                Some(CARDS) => {
                    let value = ev.node()?;
                    if !value.is_null() {
                        self.wrong_type(&value, "`cards`", "a list of cards");
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
                    let p = SpecProblem::at(
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
                let p = SpecProblem::at_span(
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

    /// Checks the `version` value; false (with a problem) unless it is 1.
    fn version(&mut self, v: &Node<'_>) -> bool {
        if matches!(v, Node::Scalar { value, .. } if value == SUPPORTED_VERSION) {
            return true;
        }
        let shown = match v {
            Node::Scalar { value, .. } if !v.is_null() => format!("`{value}`"),
            other => other.describe().to_owned(),
        };
        let p = SpecProblem::at_span(
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

    /// Values are moved out of the tree (it is not needed afterwards), which spares a copy of
    /// every string in large files.
    fn fields(&mut self, entries: &mut [(Node<'_>, Node<'_>)], in_defaults: bool) -> RawCard {
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
                    let p = SpecProblem::at(
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
                LABELS => self.labels(v, &mut card),
                other => {
                    let candidates: &[&str] = if in_defaults {
                        &CARD_FIELDS[1..]
                    } else {
                        CARD_FIELDS
                    };
                    if let Some(meant) = fields::misspelling_of(other, candidates) {
                        card.misspelt.push(meant);
                    }
                    let p = SpecProblem::at(
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
    fn scalar<T>(
        &mut self,
        name: &Name<'_>,
        value: &mut Node<'_>,
        required: bool,
        slot: &mut Slot<T>,
        check: impl FnOnce(Cow<'_, str>) -> Result<T, Invalid>,
    ) -> bool {
        if value.is_null() {
            if required {
                let p = SpecProblem::at(
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

    fn labels(&mut self, value: &mut Node<'_>, card: &mut RawCard) -> bool {
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
                    let p = SpecProblem::at(
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
                    card.labels.insert(label, t);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decl::DesiredStatus;

    fn run(text: &str) -> (Vec<SpecProblem>, Vec<Candidate>) {
        let src = Source::new("t.yaml".into(), text.into());
        let mut problems = Vec::new();
        let mut out = Vec::new();
        read(&src, 0, &mut problems, &mut out);
        (problems, out)
    }

    fn kinds(text: &str) -> Vec<(ProblemKind, usize, usize)> {
        run(text)
            .0
            .iter()
            .map(|p| (p.kind(), p.line(), p.column()))
            .collect()
    }

    #[test]
    fn reads_a_card_with_defaults() {
        let (problems, out) = run("version: 1\n\
             defaults:\n  product_code: P1\n  labels: {team: a, cc: x}\n  status: frozen\n\
             cards:\n  - key: k1\n    external_user_id: 1001\n    initial_topup: 50.10\n    labels: {team: b}\n");
        assert!(problems.is_empty(), "{problems:?}");
        let card = out[0].card.as_ref().unwrap();
        assert_eq!(card.key, "k1");
        assert_eq!(card.external_user_id, "1001");
        assert_eq!(card.product_code, "P1");
        assert_eq!(card.initial_topup.unwrap().to_string(), "50.10");
        assert_eq!(card.status, DesiredStatus::Frozen);
        assert_eq!(card.labels["team"], "b");
        assert_eq!(card.labels["cc"], "x");
        assert_eq!(card.origin.line, 7);
    }

    #[test]
    fn decimals_keep_their_text() {
        for (yaml, want) in [("0.10", "0.10"), ("\"7.5\"", "7.5"), ("'12'", "12")] {
            let (p, out) = run(&format!(
                "version: 1\ncards:\n  - {{key: a, external_user_id: u, product_code: p, initial_topup: {yaml}}}\n"
            ));
            assert!(p.is_empty(), "{p:?}");
            let got = out[0].card.as_ref().unwrap().initial_topup.unwrap();
            assert_eq!(got.to_string(), want);
        }
    }

    #[test]
    fn empty_files_and_lists_are_fine() {
        for text in [
            "",
            "# nothing\n",
            "version: 1\n",
            "version: 1\ncards: []\n",
            "version: 1\ncards:\n",
        ] {
            let (p, out) = run(text);
            assert!(p.is_empty() && out.is_empty(), "{text:?}: {p:?}");
        }
    }

    #[test]
    fn positions_of_problems() {
        let text = "version: 1\ncards:\n  - key: a\n    prodcut_code: x\n    external_user_id: u\n";
        let (problems, _) = run(text);
        let k: Vec<_> = problems
            .iter()
            .map(|p| (p.kind(), p.line(), p.column()))
            .collect();
        // The misspelling is reported once, not again as a missing `product_code`.
        assert_eq!(k, vec![(ProblemKind::UnknownField, 4, 5)]);
        let (others, _) = run(&text.replace("prodcut_code", "colour"));
        let k: Vec<_> = others.iter().map(|p| (p.kind(), p.line())).collect();
        assert_eq!(
            k,
            // In the order found; `load_sources` sorts by position.
            vec![
                (ProblemKind::UnknownField, 4),
                (ProblemKind::MissingField, 3)
            ]
        );
        assert_eq!(
            problems[0].help_text(),
            Some("did you mean `product_code`?")
        );
    }

    #[test]
    fn columns_count_characters() {
        let (problems, _) =
            run("version: 1\ncards:\n  - {key: \"é x\", external_user_id: u, product_code: p}\n");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].kind(), ProblemKind::InvalidKey);
        assert_eq!((problems[0].line(), problems[0].column()), (3, 11));
    }

    #[test]
    fn wrong_types() {
        let text = "version: 1\ndefaults: [a]\ncards:\n  - key: [a]\n    external_user_id: u\n    product_code: p\n    labels: [x]\n  - 5\n";
        let k = kinds(text);
        assert_eq!(
            k.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![
                ProblemKind::WrongType,
                ProblemKind::WrongType,
                ProblemKind::WrongType,
                ProblemKind::WrongType
            ]
        );
        assert_eq!(
            kinds("version: 1\ncards: {a: 1}\n")[0].0,
            ProblemKind::WrongType
        );
        assert_eq!(kinds("- 1\n")[0].0, ProblemKind::WrongType);
    }

    #[test]
    fn top_level_fields_in_any_order() {
        let (p, out) = run(
            "cards:\n  - {key: a, external_user_id: u}\ndefaults: {product_code: P}\nversion: 1\n",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(out[0].card.as_ref().unwrap().product_code, "P");
        // An unsupported version found after the cards still silences their problems.
        let k = kinds("cards:\n  - {colour: red}\nversion: 3\n");
        assert_eq!(k, vec![(ProblemKind::UnsupportedVersion, 3, 10)]);
    }

    #[test]
    fn second_documents_and_aliases_are_reported() {
        let k = kinds("version: 1\ncards: []\n---\nversion: 1\n");
        assert_eq!(k, vec![(ProblemKind::YamlSyntax, 3, 1)]);
        let k = kinds(
            "version: 1\ndefaults: &d {product_code: P}\ncards:\n  - {key: a, external_user_id: u, product_code: *d}\n",
        );
        assert_eq!(k, vec![(ProblemKind::WrongType, 4, 49)]);
    }

    #[test]
    fn versions() {
        assert_eq!(
            kinds("cards: []\n"),
            vec![(ProblemKind::MissingVersion, 1, 1)]
        );
        assert_eq!(
            kinds("version: 2\ncards: [{x: 1}]\n"),
            vec![(ProblemKind::UnsupportedVersion, 1, 10)]
        );
        assert!(kinds("version: '1'\n").is_empty());
    }

    #[test]
    fn syntax_errors_stop_the_file() {
        let k = kinds("version: 1\ncards:\n  - key: a\n    labels: {team: x\n  - key: b\n");
        assert_eq!(k.len(), 1);
        assert_eq!(k[0].0, ProblemKind::YamlSyntax);
    }

    #[test]
    fn empty_and_duplicate_fields() {
        let k = kinds(
            "version: 1\ncards:\n  - key: a\n    key: b\n    external_user_id:\n    product_code: \"  \"\n",
        );
        assert_eq!(
            k,
            vec![
                (ProblemKind::DuplicateField, 4, 5),
                (ProblemKind::EmptyValue, 5, 5),
                (ProblemKind::EmptyValue, 6, 19),
            ]
        );
    }

    #[test]
    fn key_not_allowed_in_defaults() {
        let k = kinds("version: 1\ndefaults: {key: x}\n");
        assert_eq!(k, vec![(ProblemKind::UnknownField, 2, 12)]);
    }
}
