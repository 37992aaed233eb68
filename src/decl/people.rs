//! Declared people: a top-level `cardholders:` list in YAML, or a people CSV (`external_user_id`
//! and the KYC columns), into [`DesiredCardholder`]s. The rules of each KYC field, the finishing of
//! one entry, and the merge across files (duplicates, birth dates after "today").
//!
//! Personal data never leaves this module in a message: a problem about a person names the
//! field, the place and at most the `external_user_id` (and the country code, which is not
//! personal), never the value of a name, birth date, email or phone number. Problems in a file
//! that may hold people are rendered without a snippet of the source (see
//! [`DeclProblem::into_personal`]). Must not read the clock: "today" is passed in.

use std::borrow::Cow;
use std::fmt;

use jiff::civil::Date;

use super::fields::{At, EXTERNAL_USER_ID, Invalid, Slot};
use super::problem::{DeclProblem, Loc, ProblemKind, Source};
use super::{Labels, Origin};

pub(crate) const FIRST_NAME: &str = "first_name";
pub(crate) const LAST_NAME: &str = "last_name";
pub(crate) const BIRTH_DATE: &str = "birth_date";
pub(crate) const EMAIL: &str = "email";
pub(crate) const PHONE: &str = "phone_number_full";
pub(crate) const COUNTRY: &str = "country_iso";

/// Whether a cardholder field is personal data (see [`crate::model::PERSONAL_FIELDS`]).
pub(crate) fn is_personal(field: &str) -> bool {
    crate::model::PERSONAL_FIELDS.contains(&field)
}

/// The longest first or last name the provider takes [assumed].
const MAX_NAME_CHARS: usize = 100;

/// The KYC fields of `cardholders/create`, in the provider's order.
pub(crate) const KYC_FIELDS: [&str; 6] = [FIRST_NAME, LAST_NAME, BIRTH_DATE, EMAIL, PHONE, COUNTRY];

/// Every field a `cardholders:` entry may have, in the order they are documented.
pub(crate) const PERSON_FIELDS: &[&str] = &[
    EXTERNAL_USER_ID,
    FIRST_NAME,
    LAST_NAME,
    BIRTH_DATE,
    EMAIL,
    PHONE,
    COUNTRY,
    super::fields::LABELS,
];

/// The value columns of a people CSV (besides `label.<name>`), all required.
pub(crate) const PERSON_COLUMNS: &[&str] = &[
    EXTERNAL_USER_ID,
    FIRST_NAME,
    LAST_NAME,
    BIRTH_DATE,
    EMAIL,
    PHONE,
    COUNTRY,
];

/// One person as declared: the provider's cardholder KYC form, keyed by `external_user_id`.
/// Deliberately not `Serialize`: personal data must never reach a plan file by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct DesiredCardholder {
    pub external_user_id: String,
    pub kyc: Kyc,
    pub labels: Labels,
    /// File and line of the entry (its first line in YAML, its row in CSV).
    pub origin: Origin,
}

/// The KYC fields of a cardholder, each validated; see [`Kyc::initials`] for what may be shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Kyc {
    pub first_name: String,
    pub last_name: String,
    /// A real `YYYY-MM-DD` date, not after the day the declarations were read.
    pub birth_date: String,
    pub email: String,
    /// E.164: `+` and 8 to 15 digits (spaces, dashes, dots and parentheses removed).
    pub phone_number_full: String,
    /// An upper-case ISO 3166-1 alpha-2 code.
    pub country_iso: String,
}

impl Kyc {
    /// What may be shown of a person anywhere: initials and country, e.g. `A. S., US`.
    pub fn initials(&self) -> String {
        fn initial(name: &str) -> String {
            name.chars()
                .next()
                .map_or_else(|| "?".to_owned(), |c| c.to_uppercase().collect())
        }
        format!(
            "{}. {}., {}",
            initial(&self.first_name),
            initial(&self.last_name),
            self.country_iso
        )
    }

    /// `(field name, value)` pairs in the provider's field order, for sending and for keyed
    /// digests.
    pub fn fields(&self) -> [(&'static str, &str); 6] {
        [
            (FIRST_NAME, &self.first_name),
            (LAST_NAME, &self.last_name),
            (BIRTH_DATE, &self.birth_date),
            (EMAIL, &self.email),
            (PHONE, &self.phone_number_full),
            (COUNTRY, &self.country_iso),
        ]
    }
}

impl fmt::Debug for Kyc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kyc({})", self.initials())
    }
}

impl fmt::Debug for DesiredCardholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DesiredCardholder({} ({}))",
            self.external_user_id,
            self.kyc.initials()
        )
    }
}

/// The field of a cardholder entry a name stands for, if it is one (labels aside).
pub(crate) fn field_named(name: &str) -> Option<&'static str> {
    PERSON_COLUMNS.iter().copied().find(|f| *f == name)
}

/// A person's fields as read from one entry or row, each already checked alone.
#[derive(Debug, Default)]
pub(crate) struct RawPerson {
    pub external_user_id: Slot<String>,
    pub first_name: Slot<String>,
    pub last_name: Slot<String>,
    pub birth_date: Slot<String>,
    pub email: Slot<String>,
    pub phone_number_full: Slot<String>,
    pub country_iso: Slot<String>,
    pub labels: Labels,
    /// Some problem was reported for this entry: it yields no cardholder (but its id still
    /// counts for duplicates).
    pub rejected: bool,
    /// Fields an unknown name was taken for, already reported with a did-you-mean.
    pub misspelt: Vec<&'static str>,
}

impl RawPerson {
    /// The slot of one of [`PERSON_COLUMNS`].
    pub(crate) fn slot(&mut self, field: &str) -> &mut Slot<String> {
        match field {
            FIRST_NAME => &mut self.first_name,
            LAST_NAME => &mut self.last_name,
            BIRTH_DATE => &mut self.birth_date,
            EMAIL => &mut self.email,
            PHONE => &mut self.phone_number_full,
            COUNTRY => &mut self.country_iso,
            _ => &mut self.external_user_id,
        }
    }
}

/// Checks one value of a cardholder field (one of [`PERSON_COLUMNS`]); the value as kept.
/// Never quotes a personal value in what it reports.
pub(crate) fn check(field: &'static str, raw: Cow<'_, str>) -> Result<String, Invalid> {
    if raw.trim().is_empty() {
        return Err(Invalid::new(
            ProblemKind::EmptyValue,
            format!("`{field}` is empty"),
            "empty value",
        )
        .help(format!("every cardholder needs a `{field}`")));
    }
    match field {
        EXTERNAL_USER_ID => super::fields::check_text(EXTERNAL_USER_ID, raw),
        BIRTH_DATE => check_birth_date(&raw).map(|_| raw.into_owned()),
        EMAIL => check_email(&raw).map(|()| raw.into_owned()),
        PHONE => normalise_phone(&raw),
        COUNTRY => check_country(&raw),
        _ => {
            // The provider's limit [assumed, as the sandbox's].
            if raw.chars().count() > MAX_NAME_CHARS {
                return Err(Invalid::new(
                    ProblemKind::TooLong,
                    format!("`{field}` is longer than {MAX_NAME_CHARS} characters"),
                    "too long",
                )
                .help(format!("a name has at most {MAX_NAME_CHARS} characters")));
            }
            // Not `fields::check_text`: its help quotes the value, and this one is personal.
            if raw.trim() != raw {
                return Err(Invalid::new(
                    ProblemKind::Whitespace,
                    format!("`{field}` has blanks around its value"),
                    "leading or trailing blanks",
                )
                .help("remove the blanks around the value"));
            }
            Ok(raw.into_owned())
        }
    }
}

/// A real date written `YYYY-MM-DD` (whether it is after today is checked once all files are
/// read, against the "today" the loader was given).
fn check_birth_date(raw: &str) -> Result<Date, Invalid> {
    let invalid = || {
        Invalid::new(
            ProblemKind::InvalidDate,
            format!("`{BIRTH_DATE}` is not a date written YYYY-MM-DD"),
            "not a YYYY-MM-DD date",
        )
        .help("write the birth date as year-month-day, e.g. 1990-04-27")
    };
    let b = raw.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(invalid());
    }
    let num = |r: std::ops::Range<usize>| raw[r].parse::<i16>().unwrap_or(0);
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    if y == 0 {
        return Err(invalid());
    }
    if y < 1900 {
        return Err(Invalid::new(
            ProblemKind::InvalidDate,
            format!("`{BIRTH_DATE}` is before 1900"),
            "before 1900",
        )
        .help("check the year"));
    }
    Date::new(y, m as i8, d as i8).map_err(|_| {
        Invalid::new(
            ProblemKind::InvalidDate,
            format!("`{BIRTH_DATE}` is not a real date"),
            "no such day",
        )
        .help("check the month (01-12) and the day of the month")
    })
}

/// An address that could be right: exactly one `@`, something before it, a domain with a dot
/// (not at either end, never two in a row) after it, no blanks anywhere.
fn check_email(raw: &str) -> Result<(), Invalid> {
    let bad = |why: &str| {
        Invalid::new(
            ProblemKind::InvalidEmail,
            format!("`{EMAIL}` is not a valid email address: {why}"),
            why.to_owned(),
        )
        .help("an email address is `name@domain.tld`, without blanks")
    };
    if raw.chars().any(char::is_whitespace) {
        return Err(bad("it contains blanks"));
    }
    let mut parts = raw.split('@');
    let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("it needs exactly one `@`"));
    };
    if local.is_empty() {
        return Err(bad("nothing before the `@`"));
    }
    if !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(bad("the part after the `@` is not a domain"));
    }
    Ok(())
}

/// E.164: `+` then 8 to 15 digits. Spaces, dashes, dots and parentheses are accepted and
/// removed, so `+1 (555) 010-0200` is kept as `+15550100200`.
fn normalise_phone(raw: &str) -> Result<String, Invalid> {
    let kept: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = kept.strip_prefix('+').unwrap_or("");
    // No country calling code starts with 0.
    let ok = digits.bytes().all(|b| b.is_ascii_digit())
        && (8..=15).contains(&digits.len())
        && !digits.starts_with('0');
    if !ok {
        let help = if !kept.starts_with('+') {
            "write the number in international form: `+`, the country code, then the number \
             (e.g. +49 30 12345678)"
        } else {
            "a phone number is `+`, the country code (never 0…), then the number: 8 to 15 \
             digits in all; spaces, dashes, dots and parentheses are allowed"
        };
        return Err(Invalid::new(
            ProblemKind::InvalidPhone,
            format!("`{PHONE}` is not an international phone number"),
            "not + and 8 to 15 digits",
        )
        .help(help));
    }
    Ok(kept)
}

/// An ISO 3166-1 alpha-2 code, upper-cased (`us` is read as `US`).
fn check_country(raw: &str) -> Result<String, Invalid> {
    let upper = raw.to_ascii_uppercase();
    if upper.len() == 2 && crate::model::is_iso_alpha2(&upper) {
        return Ok(upper);
    }
    let shown: String = raw.chars().take(8).collect();
    Err(Invalid::new(
        ProblemKind::UnknownCountry,
        format!("unknown country code `{shown}`"),
        "not an ISO 3166-1 alpha-2 code",
    )
    .help("write the two-letter ISO 3166-1 code of the country, e.g. US, DE, GB"))
}

/// A declared `external_user_id` with where; `person` is set only when the entry was valid.
#[derive(Debug)]
pub(crate) struct PersonCandidate {
    pub file: usize,
    pub id: String,
    pub id_loc: Loc,
    /// Where the birth date was written, for the check against today.
    pub birth_loc: Option<Loc>,
    pub person: Option<DesiredCardholder>,
}

/// Reports missing fields at `entry` (the start of the entry or row) and produces the candidate
/// for the id if there is one.
pub(crate) fn finish(
    raw: RawPerson,
    src: &Source,
    file: usize,
    entry: Loc,
    problems: &mut Vec<DeclProblem>,
) -> Option<PersonCandidate> {
    let mut rejected = raw.rejected;
    let mut missing = Vec::new();
    for (name, absent) in [
        (EXTERNAL_USER_ID, raw.external_user_id.is_absent()),
        (FIRST_NAME, raw.first_name.is_absent()),
        (LAST_NAME, raw.last_name.is_absent()),
        (BIRTH_DATE, raw.birth_date.is_absent()),
        (EMAIL, raw.email.is_absent()),
        (PHONE, raw.phone_number_full.is_absent()),
        (COUNTRY, raw.country_iso.is_absent()),
    ] {
        if absent {
            rejected = true;
            if !raw.misspelt.contains(&name) {
                missing.push(name);
            }
        }
    }
    if !missing.is_empty() {
        let list = missing
            .iter()
            .map(|m| format!("`{m}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let who = match &raw.external_user_id {
            Slot::Set(id) => format!("cardholder `{}`", id.value),
            _ => "cardholder".to_owned(),
        };
        problems.push(
            DeclProblem::at_span(
                ProblemKind::MissingField,
                src,
                src.rest_of_line(entry),
                format!("{who} is missing {list}"),
                format!("this cardholder has no {list}"),
            )
            .with_help(format!(
                "a cardholder needs `{EXTERNAL_USER_ID}` and all of {}",
                KYC_FIELDS.map(|f| format!("`{f}`")).join(", ")
            )),
        );
    }
    let Slot::Set(id) = raw.external_user_id else {
        return None;
    };
    let birth_loc = match &raw.birth_date {
        Slot::Set(At { loc, .. }) => Some(*loc),
        _ => None,
    };
    let person = match (
        raw.first_name,
        raw.last_name,
        raw.birth_date,
        raw.email,
        raw.phone_number_full,
        raw.country_iso,
    ) {
        (
            Slot::Set(first_name),
            Slot::Set(last_name),
            Slot::Set(birth_date),
            Slot::Set(email),
            Slot::Set(phone),
            Slot::Set(country),
        ) if !rejected => Some(DesiredCardholder {
            external_user_id: id.value.clone(),
            kyc: Kyc {
                first_name: first_name.value,
                last_name: last_name.value,
                birth_date: birth_date.value,
                email: email.value,
                phone_number_full: phone.value,
                country_iso: country.value,
            },
            labels: raw.labels,
            origin: Origin {
                file: src.name.clone(),
                line: entry.line(),
            },
        }),
        _ => None,
    };
    Some(PersonCandidate {
        file,
        id: id.value,
        id_loc: id.loc,
        birth_loc,
        person,
    })
}

/// Merges the people of all files, sorted by `external_user_id`: an id declared twice is a
/// problem at the second place naming the first; a birth date after `today` is a problem at the
/// date. Every problem here is about a person, so none carries a snippet.
pub(crate) fn merge(
    mut candidates: Vec<PersonCandidate>,
    today: Date,
    sources: &[Option<Source>],
    problems: &mut Vec<(usize, DeclProblem)>,
) -> Vec<DesiredCardholder> {
    // Stable: equal ids stay in file order, then in order within the file.
    candidates.sort_by(|a, b| a.id.cmp(&b.id));
    let mut people = Vec::with_capacity(candidates.len());
    let mut first = 0;
    for i in 0..candidates.len() {
        let (c, f) = (&candidates[i], &candidates[first]);
        if i > first && c.id == f.id {
            if let (Some(Some(here)), Some(Some(there))) =
                (sources.get(c.file), sources.get(f.file))
            {
                problems.push((c.file, duplicate(&c.id, here, c.id_loc, there, f.id_loc)));
            }
            continue;
        }
        first = i;
        let c = &mut candidates[i];
        let Some(person) = c.person.take() else {
            continue;
        };
        let future = person
            .kyc
            .birth_date
            .parse::<Date>()
            .is_ok_and(|d| d > today);
        if future {
            if let (Some(Some(src)), Some(loc)) = (sources.get(c.file), c.birth_loc) {
                problems.push((
                    c.file,
                    DeclProblem::at(
                        ProblemKind::FutureDate,
                        src,
                        loc,
                        format!(
                            "`{BIRTH_DATE}` of cardholder `{}` is in the future",
                            person.external_user_id
                        ),
                        "after today",
                    )
                    .with_help("a birth date is on or before today; check the year")
                    .into_personal(),
                ));
            }
            continue;
        }
        people.push(person);
    }
    people
}

fn duplicate(
    id: &str,
    here: &Source,
    here_loc: Loc,
    there: &Source,
    there_loc: Loc,
) -> DeclProblem {
    let first = DeclProblem::at(
        ProblemKind::FirstDeclared,
        there,
        there_loc,
        format!("cardholder `{id}` is first declared here"),
        "first declared here",
    )
    .into_advice();
    let help = format!(
        "cardholder `{id}` is first declared at {}:{}:{}; each `external_user_id` is declared \
         once across all files",
        first.file(),
        first.line(),
        first.column()
    );
    DeclProblem::at(
        ProblemKind::DuplicateKey,
        here,
        here_loc,
        format!("duplicate cardholder `{id}`"),
        "declared again here",
    )
    .with_help(help)
    .with_related(first)
    .into_personal()
}

/// Whether problems in a file may point at people's data, so must be shown without snippets:
/// a YAML file that mentions `cardholders`, a CSV whose first line names a KYC column. Errs on
/// the side of hiding (a syntax error can come before the reader knows what the file holds).
pub(crate) fn may_hold_people(is_yaml: bool, text: &str) -> bool {
    if is_yaml {
        return text.contains("cardholders");
    }
    let header = text.lines().next().unwrap_or("");
    KYC_FIELDS.iter().any(|f| header.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(field: &'static str, raw: &str) -> Option<ProblemKind> {
        check(field, Cow::Borrowed(raw)).err().map(|e| e.kind)
    }

    #[test]
    fn birth_dates() {
        assert_eq!(kind(BIRTH_DATE, "1990-04-27"), None);
        assert_eq!(kind(BIRTH_DATE, "2000-02-29"), None);
        for bad in [
            "1990-4-27",
            "27.04.1990",
            "19900427",
            "1990-04-27 ",
            "0000-01-01",
        ] {
            assert_eq!(
                kind(BIRTH_DATE, bad),
                Some(ProblemKind::InvalidDate),
                "{bad}"
            );
        }
        for bad in [
            "1990-02-30",
            "1990-13-01",
            "1990-00-10",
            "1999-02-29",
            "1899-12-31",
        ] {
            assert_eq!(
                kind(BIRTH_DATE, bad),
                Some(ProblemKind::InvalidDate),
                "{bad}"
            );
        }
        assert_eq!(kind(BIRTH_DATE, ""), Some(ProblemKind::EmptyValue));
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@mail.example.com"] {
            assert_eq!(kind(EMAIL, ok), None, "{ok}");
        }
        for bad in [
            "ab.co", "a@@b.co", "a@b@c.co", "@b.co", "a@bco", "a@.co", "a@b.", "a@b..co",
            "a b@c.co", " a@b.co",
        ] {
            assert_eq!(kind(EMAIL, bad), Some(ProblemKind::InvalidEmail), "{bad}");
        }
    }

    #[test]
    fn phones_are_normalised() {
        let ok = |raw: &str| check(PHONE, Cow::Borrowed(raw)).unwrap();
        assert_eq!(ok("+1 (555) 010-0200"), "+15550100200");
        assert_eq!(ok("+44.20.7946.0000"), "+442079460000");
        assert_eq!(ok("+12345678"), "+12345678");
        assert_eq!(ok("+123456789012345"), "+123456789012345");
        for bad in [
            "5550100200",
            "0044 20 7946 0000",
            "+1234567",
            "+1234567890123456",
            "+0441234567890",
            "+1 555 CALL NOW",
            "++15550100200",
            "+1/555/0100200",
        ] {
            assert_eq!(kind(PHONE, bad), Some(ProblemKind::InvalidPhone), "{bad}");
        }
    }

    #[test]
    fn countries_are_upper_cased() {
        assert_eq!(check(COUNTRY, Cow::Borrowed("us")).unwrap(), "US");
        assert_eq!(check(COUNTRY, Cow::Borrowed("De")).unwrap(), "DE");
        for bad in ["UK", "USA", "U", "XX", " US"] {
            assert_eq!(
                kind(COUNTRY, bad),
                Some(ProblemKind::UnknownCountry),
                "{bad}"
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(kind(FIRST_NAME, "Zoë"), None);
        assert_eq!(kind(LAST_NAME, " Smith"), Some(ProblemKind::Whitespace));
        assert_eq!(kind(LAST_NAME, "  "), Some(ProblemKind::EmptyValue));
        assert_eq!(kind(LAST_NAME, &"n".repeat(100)), None);
        assert_eq!(
            kind(LAST_NAME, &"n".repeat(101)),
            Some(ProblemKind::TooLong)
        );
    }

    #[test]
    fn no_message_quotes_a_personal_value() {
        for (field, raw) in [
            (FIRST_NAME, " Secretname"),
            (BIRTH_DATE, "1990-02-30"),
            (BIRTH_DATE, "Secret-1990"),
            (EMAIL, "secret.person@nowhere"),
            (PHONE, "555-SECRET"),
        ] {
            let e = check(field, Cow::Borrowed(raw)).unwrap_err();
            let all = format!("{} {} {:?}", e.message, e.label, e.help);
            for part in ["ecret", "1990-02-30", "nowhere"] {
                assert!(!all.contains(part), "{field}: {all}");
            }
        }
    }

    #[test]
    fn initials_fields_and_debug_show_no_value() {
        let kyc = Kyc {
            first_name: "ada".into(),
            last_name: "Ørsted".into(),
            birth_date: "1990-04-27".into(),
            email: "ada@example.com".into(),
            phone_number_full: "+15550100200".into(),
            country_iso: "DK".into(),
        };
        assert_eq!(kyc.initials(), "A. Ø., DK");
        let names: Vec<_> = kyc.fields().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, KYC_FIELDS);
        assert_eq!(kyc.fields()[3], (EMAIL, "ada@example.com"));
        let person = DesiredCardholder {
            external_user_id: "u-1".into(),
            kyc,
            labels: Labels::new(),
            origin: Origin::default(),
        };
        let shown = format!("{person:?} {:?} {:#?}", person.kyc, person);
        assert_eq!(format!("{person:?}"), "DesiredCardholder(u-1 (A. Ø., DK))");
        for value in ["ada", "rsted", "1990", "example", "5550100200"] {
            assert!(!shown.contains(value), "{shown}");
        }
    }
}
