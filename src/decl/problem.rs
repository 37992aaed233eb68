//! Problems found in declarations, as miette diagnostics that point into the source text.
//! Owns the source bookkeeping (file name, text, line index) that turns parser positions into
//! byte spans. Must not decide what is valid: the readers do that and only report here.
//!
//! Everything a problem shows a person (message, label, help, snippet, file name) goes through
//! [`crate::render::safe`]: declarations are untrusted text. The accessors used for JSON
//! (`message()`, `file()`, ...) stay exact.

mod snippet;

use miette::{Diagnostic, LabeledSpan, Severity, SourceCode, SourceSpan};
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::render::safe;
use snippet::Snippet;

/// At most this many characters of a message are shown: one quoting a whole 10 MB value must
/// not print it. Start and end are kept, as the value quoted is usually in the middle.
const MESSAGE_MAX: usize = 300;

/// What went wrong; each kind has a stable diagnostic code `cardform::spec::<kind>`. The codes keep
/// the word `spec` from before the types were named `Decl*`: scripts match on them, so they stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemKind {
    /// A path given with `-f` is missing or unreadable.
    Unreadable,
    /// A file that is neither YAML nor CSV by its extension.
    UnsupportedFile,
    YamlSyntax,
    CsvSyntax,
    MissingVersion,
    UnsupportedVersion,
    UnknownField,
    DuplicateField,
    MissingField,
    EmptyValue,
    /// Leading or trailing blanks around a value (a classic CSV `a, b` slip).
    Whitespace,
    WrongType,
    DuplicateKey,
    InvalidKey,
    InvalidDecimal,
    NonPositiveAmount,
    TooManyDecimals,
    UnknownStatus,
    InvalidLabel,
    UnknownColumn,
    MissingColumn,
    DuplicateColumn,
    RaggedRow,
    /// Not a problem by itself: the other place a duplicate was declared.
    FirstDeclared,
    /// A `moved` entry that cannot apply: to itself, twice, chained, or to an undeclared key.
    InvalidMove,
    /// A top-up for a card no file declares.
    UnknownCard,
    /// A cardholder's `birth_date` that is not a real `YYYY-MM-DD` date.
    InvalidDate,
    /// A cardholder's `birth_date` after today.
    FutureDate,
    /// A cardholder's `email` that cannot be an address.
    InvalidEmail,
    /// A control character (an escape sequence, a tab, a line break) in a free-text value or a
    /// label name: it would reach terminals and the provider as it is.
    ControlCharacter,
    /// A cardholder's `phone_number_full` that is not `+` and 8 to 15 digits.
    InvalidPhone,
    /// A cardholder's `country_iso` that is not an ISO 3166-1 alpha-2 code.
    UnknownCountry,
    /// A value longer than the provider takes (a cardholder's name).
    TooLong,
}

impl ProblemKind {
    pub fn code(self) -> &'static str {
        match self {
            ProblemKind::Unreadable => "cardform::spec::unreadable",
            ProblemKind::UnsupportedFile => "cardform::spec::unsupported_file",
            ProblemKind::YamlSyntax => "cardform::spec::yaml_syntax",
            ProblemKind::CsvSyntax => "cardform::spec::csv_syntax",
            ProblemKind::MissingVersion => "cardform::spec::missing_version",
            ProblemKind::UnsupportedVersion => "cardform::spec::unsupported_version",
            ProblemKind::UnknownField => "cardform::spec::unknown_field",
            ProblemKind::DuplicateField => "cardform::spec::duplicate_field",
            ProblemKind::MissingField => "cardform::spec::missing_field",
            ProblemKind::EmptyValue => "cardform::spec::empty_value",
            ProblemKind::Whitespace => "cardform::spec::whitespace",
            ProblemKind::WrongType => "cardform::spec::wrong_type",
            ProblemKind::DuplicateKey => "cardform::spec::duplicate_key",
            ProblemKind::InvalidKey => "cardform::spec::invalid_key",
            ProblemKind::InvalidDecimal => "cardform::spec::invalid_decimal",
            ProblemKind::NonPositiveAmount => "cardform::spec::non_positive_amount",
            ProblemKind::TooManyDecimals => "cardform::spec::too_many_decimals",
            ProblemKind::UnknownStatus => "cardform::spec::unknown_status",
            ProblemKind::InvalidLabel => "cardform::spec::invalid_label",
            ProblemKind::UnknownColumn => "cardform::spec::unknown_column",
            ProblemKind::MissingColumn => "cardform::spec::missing_column",
            ProblemKind::DuplicateColumn => "cardform::spec::duplicate_column",
            ProblemKind::RaggedRow => "cardform::spec::ragged_row",
            ProblemKind::FirstDeclared => "cardform::spec::first_declared",
            ProblemKind::InvalidMove => "cardform::spec::invalid_move",
            ProblemKind::UnknownCard => "cardform::spec::unknown_card",
            ProblemKind::InvalidDate => "cardform::spec::invalid_date",
            ProblemKind::FutureDate => "cardform::spec::future_date",
            ProblemKind::InvalidEmail => "cardform::spec::invalid_email",
            ProblemKind::ControlCharacter => "cardform::spec::control_character",
            ProblemKind::InvalidPhone => "cardform::spec::invalid_phone",
            ProblemKind::UnknownCountry => "cardform::spec::unknown_country",
            ProblemKind::TooLong => "cardform::spec::too_long",
        }
    }
}

/// One input file's name and text, shared by every problem that points into it.
#[derive(Debug)]
pub(crate) struct Source {
    /// Shared with the [`Origin`](super::Origin) of every declaration read from it.
    pub name: Arc<str>,
    pub text: Arc<String>,
    /// Byte offset of each line start; built only when a problem needs it, so a clean load of a
    /// large file never pays for it.
    line_starts: OnceLock<Vec<usize>>,
    /// The cards wanted from this file: those of one part when a large fleet is read a part at
    /// a time. Every entry is still checked and its problems reported.
    pub keep: crate::model::Part,
    /// How many valid cards the file declares, kept or not.
    pub declared: std::sync::atomic::AtomicUsize,
}

/// A position in a source, as the reader that found it knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loc {
    /// YAML parser markers: 1-based line, 0-based column counted in characters.
    Chars {
        line: usize,
        col: usize,
        end_line: usize,
        end_col: usize,
    },
    /// Byte range (CSV reader), with the 1-based line of its start.
    Bytes {
        start: usize,
        end: usize,
        line: usize,
    },
}

impl Loc {
    pub fn line(&self) -> usize {
        match *self {
            Loc::Chars { line, .. } | Loc::Bytes { line, .. } => line,
        }
    }
}

impl Source {
    pub fn new(name: String, text: String) -> Self {
        Source {
            name: name.into(),
            text: Arc::new(text),
            line_starts: OnceLock::new(),
            keep: crate::model::Part::WHOLE,
            declared: Default::default(),
        }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            let mut v = vec![0];
            v.extend(
                self.text
                    .bytes()
                    .enumerate()
                    .filter(|(_, b)| *b == b'\n')
                    .map(|(i, _)| i + 1),
            );
            v
        })
    }

    /// Byte offset of a 1-based line and a 0-based character column; clamped to the text.
    fn offset_of(&self, line: usize, col: usize) -> usize {
        let starts = self.line_starts();
        let Some(&start) = starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        match rest.char_indices().nth(col) {
            Some((i, _)) => start + i,
            None => self.text.len(),
        }
    }

    /// The byte span of a location.
    pub fn span(&self, loc: Loc) -> SourceSpan {
        let (start, end) = match loc {
            Loc::Chars {
                line,
                col,
                end_line,
                end_col,
            } => (self.offset_of(line, col), self.offset_of(end_line, end_col)),
            Loc::Bytes { start, end, .. } => (start.min(self.text.len()), end.min(self.text.len())),
        };
        SourceSpan::new(start.into(), end.saturating_sub(start))
    }

    /// 1-based line and 1-based character column of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let starts = self.line_starts();
        let idx = match starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = starts.get(idx).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
        (idx + 1, col + 1)
    }

    /// The span from a location to the end of its line, trailing blanks trimmed: how a whole
    /// entry (a card, a row) is pointed at.
    pub fn rest_of_line(&self, loc: Loc) -> SourceSpan {
        let start = self.span(loc).offset();
        let line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let end = start + self.text[start..line_end].trim_end().len();
        SourceSpan::new(start.into(), end - start)
    }
}

/// Where a problem points: the file's text shared, and the snippet miette draws (its lines,
/// windowed and escaped; see [`Snippet`]), built only when the problem is rendered, so a load
/// that finds a million problems does not hold a million snippets.
struct Place {
    name: Arc<str>,
    text: Arc<String>,
    span: SourceSpan,
    /// 0-based line and character column of the span's start.
    line: usize,
    column: usize,
    /// The text under the caret, escaped.
    label: String,
    snippet: OnceLock<Snippet>,
}

impl Place {
    fn snippet(&self) -> &Snippet {
        self.snippet
            .get_or_init(|| Snippet::new(&self.name, &self.text, self.span, self.line, self.column))
    }
}

/// Never the text: a problem may be debug-printed, and the file may hold anything.
impl fmt::Debug for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Place")
            .field("name", &self.name)
            .field("span", &self.span)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// One problem in the declarations: a diagnostic with the file, a labelled span and a help text.
#[derive(Debug)]
pub struct DeclProblem {
    kind: ProblemKind,
    message: String,
    file: String,
    line: usize,
    column: usize,
    offset: usize,
    /// `None` for a problem about a whole file, or one in personal data.
    /// Boxed: most problems are few, and a `DeclProblem` travels inside other types.
    place: Option<Box<Place>>,
    help: Option<String>,
    related: Vec<DeclProblem>,
    severity: Severity,
    /// The place holds personal data (a cardholder's entry): the source text is dropped, so no
    /// snippet of it can be rendered (nor debug-printed); the place is still known by file, line
    /// and column.
    personal: bool,
}

impl DeclProblem {
    /// A problem at a span of a source; `label` is the text under the caret.
    pub(crate) fn at_span(
        kind: ProblemKind,
        src: &Source,
        span: SourceSpan,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        let (line, column) = src.line_col(span.offset());
        DeclProblem {
            kind,
            message: message.into(),
            file: src.name.to_string(),
            line,
            column,
            offset: span.offset(),
            place: Some(Box::new(Place {
                name: Arc::clone(&src.name),
                text: Arc::clone(&src.text),
                span,
                line: line.saturating_sub(1),
                column: column.saturating_sub(1),
                label: safe(&label.into()).into_owned(),
                snippet: OnceLock::new(),
            })),
            help: None,
            related: Vec::new(),
            severity: Severity::Error,
            personal: false,
        }
    }

    pub(crate) fn at(
        kind: ProblemKind,
        src: &Source,
        loc: Loc,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        Self::at_span(kind, src, src.span(loc), message, label)
    }

    /// A problem about a file as a whole, with no text to point into (missing, unreadable).
    pub(crate) fn about_file(
        kind: ProblemKind,
        file: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        DeclProblem {
            kind,
            message: message.into(),
            file: file.into(),
            line: 0,
            column: 0,
            offset: 0,
            place: None,
            help: None,
            related: Vec::new(),
            severity: Severity::Error,
            personal: false,
        }
    }

    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub(crate) fn with_related(mut self, related: DeclProblem) -> Self {
        self.related.push(related);
        self
    }

    /// Marks this problem (and those related to it) as pointing into personal data: the
    /// snippet is dropped, file, line, column, message and help stay. Messages of such problems
    /// must not quote a personal value either; that is up to whoever writes them.
    pub(crate) fn into_personal(mut self) -> Self {
        self.personal = true;
        self.place = None;
        self.related = self.related.into_iter().map(Self::into_personal).collect();
        self
    }

    pub(crate) fn into_advice(mut self) -> Self {
        self.severity = Severity::Advice;
        self
    }

    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    pub fn kind(&self) -> ProblemKind {
        self.kind
    }
    /// Exact, as read (for JSON); [`Self::shown_message`] is what a terminal gets.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// The message as shown to a person: control characters escaped, cut to about
    /// [`MESSAGE_MAX`] characters.
    pub fn shown_message(&self) -> Cow<'_, str> {
        safe::clipped(&self.message, MESSAGE_MAX)
    }
    /// The file name as given (a path relative to where cardform was run, if given so).
    pub fn file(&self) -> &str {
        &self.file
    }
    /// 1-based; 0 when the problem concerns the whole file.
    pub fn line(&self) -> usize {
        self.line
    }
    /// 1-based, in characters; 0 when the problem concerns the whole file.
    pub fn column(&self) -> usize {
        self.column
    }
    pub fn help_text(&self) -> Option<&str> {
        self.help.as_deref()
    }
    /// True when the place holds personal data: rendered without a snippet of the source.
    pub fn is_personal(&self) -> bool {
        self.personal
    }
    /// Other places involved (the first declaration of a duplicate key, ...).
    pub fn related_problems(&self) -> &[DeclProblem] {
        &self.related
    }
}

impl fmt::Display for DeclProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown_message())
    }
}

impl std::error::Error for DeclProblem {}

impl Diagnostic for DeclProblem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.kind.code()))
    }
    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(safe::clipped(h, MESSAGE_MAX)) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.place.as_ref().map(|p| p.snippet() as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let place = self.place.as_ref()?;
        let label =
            LabeledSpan::new_primary_with_span(Some(place.label.clone()), place.snippet().span());
        Some(Box::new(std::iter::once(label)))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn Diagnostic)))
        }
    }
}

/// Every problem found in one load, in file order (files as read, then position in the file).
#[derive(Debug)]
pub struct DeclReport {
    problems: Vec<DeclProblem>,
    files: usize,
    /// How many files were read, so "(1 file)" is never taken for all that was read.
    files_read: usize,
}

impl DeclReport {
    pub(crate) fn new(problems: Vec<DeclProblem>, files_read: usize) -> Self {
        let mut files: Vec<&str> = problems.iter().map(|p| p.file.as_str()).collect();
        files.dedup();
        let files = files.len();
        DeclReport {
            problems,
            files,
            files_read: files_read.max(files),
        }
    }
    pub fn problems(&self) -> &[DeclProblem] {
        &self.problems
    }
    pub fn len(&self) -> usize {
        self.problems.len()
    }
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }
    /// How many distinct files have problems.
    pub fn files_with_problems(&self) -> usize {
        self.files
    }
}

impl fmt::Display for DeclReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        if self.files == self.files_read {
            write!(
                f,
                "{n} problem{} in the declarations ({} file{})",
                plural(n),
                self.files,
                plural(self.files)
            )
        } else {
            // "(1 file)" after reading two would read as if only one was read.
            write!(
                f,
                "{n} problem{} in the declarations ({} of {} files)",
                plural(n),
                self.files,
                self.files_read
            )
        }
    }
}

impl std::error::Error for DeclReport {}

impl Diagnostic for DeclReport {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("cardform::spec::invalid"))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(
            "nothing was sent to the provider; fix these and run again",
        ))
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}
