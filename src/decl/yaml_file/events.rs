//! Turning `saphyr-parser`'s event stream into [`Node`]s, with one event of lookahead so the
//! reader can stream a list item by item. Must not judge what the nodes mean.

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput};
use std::borrow::Cow;

use super::node::{Node, loc_between, loc_of};
use crate::decl::problem::Loc;

enum Frame<'a> {
    Seq(Vec<Node<'a>>, Span),
    Map(Vec<(Node<'a>, Node<'a>)>, Option<Node<'a>>, Span),
}

/// The parser's events with one of lookahead. Cards are read one node at a time from it, so a
/// file of 100,000 cards never becomes one big tree.
pub(super) struct Events<'a> {
    parser: Parser<'a, StrInput<'a>>,
    peeked: Option<(Event<'a>, Span)>,
}

impl<'a> Events<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Events {
            parser: Parser::new_from_str(text),
            peeked: None,
        }
    }

    pub(super) fn next(&mut self) -> Result<Option<(Event<'a>, Span)>, ScanError> {
        match self.peeked.take() {
            Some(e) => Ok(Some(e)),
            None => self.parser.next_event().transpose(),
        }
    }

    pub(super) fn peek(&mut self) -> Result<Option<&Event<'a>>, ScanError> {
        if self.peeked.is_none() {
            self.peeked = self.parser.next_event().transpose()?;
        }
        Ok(self.peeked.as_ref().map(|(e, _)| e))
    }

    /// The whole node that starts at the next event. Built with an explicit stack so that
    /// deeply nested input cannot overflow ours.
    pub(super) fn node(&mut self) -> Result<Node<'a>, ScanError> {
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
                    stack.push(Frame::Seq(Vec::new(), span));
                    continue;
                }
                Event::MappingStart(..) => {
                    stack.push(Frame::Map(Vec::new(), None, span));
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some(Frame::Seq(items, start)) => Node::Seq {
                        items,
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
                Some(Frame::Seq(items, _)) => items.push(node),
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
