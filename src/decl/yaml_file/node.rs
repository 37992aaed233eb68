//! The YAML node tree the reader validates, and how parser spans become [`Loc`]s. Must not know
//! what a declarations file means: that is `reader` and `card`.

use miette::SourceSpan;
use saphyr_parser::{ScalarStyle, Span};
use std::borrow::Cow;

use crate::decl::problem::{Loc, Source};

/// A YAML node with its position; collections keep entries in source order.
#[derive(Debug)]
pub(in crate::decl) enum Node<'a> {
    Scalar {
        value: Cow<'a, str>,
        style: ScalarStyle,
        loc: Loc,
    },
    /// A list inside an entry (a card's `topups`); the `cards` list itself is streamed, never
    /// built.
    Seq {
        items: Vec<Node<'a>>,
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
    pub(in crate::decl) fn loc(&self) -> Loc {
        match self {
            Node::Scalar { loc, .. }
            | Node::Seq { loc, .. }
            | Node::Map { loc, .. }
            | Node::Alias { loc } => *loc,
        }
    }

    pub(in crate::decl) fn is_null(&self) -> bool {
        matches!(self, Node::Scalar { value, style: ScalarStyle::Plain, .. }
            if matches!(value.as_ref(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What the node is, for "expected X, found Y" messages.
    pub(super) fn describe(&self) -> &'static str {
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
    pub(super) fn span(&self, src: &Source) -> SourceSpan {
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

pub(super) fn loc_of(span: &Span) -> Loc {
    loc_between(span, span)
}

pub(super) fn loc_between(start: &Span, end: &Span) -> Loc {
    Loc::Chars {
        line: start.start.line(),
        col: start.start.col(),
        end_line: end.end.line(),
        end_col: end.end.col(),
    }
}
