//! Durations written in plans (`30s`, `1h30m`, `2d`) and calendar spans (`2y6mo`, `2w`, `14d`),
//! with errors that say what was probably meant (`90` → `90s`, `1 hour` → `1h`).
//!
//! `m` is minutes and `mo` is months, everywhere. Calendar spans once wrote months `m`; that
//! spelling still parses as months, and [`respell_months`] gives the warning's new spelling.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock duration such as a step timeout. Units: `ms`, `s`, `m` (minutes), `h`, `d`, `w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

/// The regular expression the schema publishes for [`Duration`], built from the unit table
/// so that the schema pass explains a wrong spelling at its position (the parser below is the
/// truth, and a test holds the two together): one branch per first unit, which may be any
/// number, then each smaller unit at most once, below its carry.
fn duration_pattern() -> &'static str {
    static PATTERN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let branches: Vec<String> = (0..DURATION_UNITS.len())
            .map(|first| {
                let mut branch = format!("{ANY_NUMBER}{}", DURATION_UNITS[first].name);
                for unit in &DURATION_UNITS[first + 1..] {
                    branch.push_str(&format!("(?:{}{})?", unit.below, unit.name));
                }
                branch
            })
            .collect();
        format!("^(?:0s|{})$", branches.join("|"))
    });
    &PATTERN
}

/// A number with no leading zero, and not zero.
const ANY_NUMBER: &str = "[1-9][0-9]*";

impl Duration {
    pub fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }
}

/// Why a duration or calendar span did not parse, and the spelling that was probably meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// What is wrong, as `` `90` is not a duration: `90` needs a unit ``.
    pub message: String,
    /// A likely correct spelling, as ``did you mean `90s`?``, when one is known.
    pub hint: Option<String>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hint {
            Some(hint) => write!(f, "{}; {hint}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// The two kinds of time written in plans. They share a syntax (numbers with units, no
/// spaces) but not their units: a duration has no months and a calendar span no minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Duration,
    Calendar,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Duration => "a duration",
            Kind::Calendar => "a calendar span",
        }
    }

    /// The units, as the end of an error message.
    fn units(self) -> &'static str {
        match self {
            Kind::Duration => "use ms, s, m, h, d or w",
            Kind::Calendar => "use y, mo, w, d or h, as in `30d`, `2w`, `6mo` or `1y`",
        }
    }

    fn fraction_example(self) -> &'static str {
        match self {
            Kind::Duration => "as `90m` for 1.5 hours",
            Kind::Calendar => "as `18mo` for 1.5 years",
        }
    }

    /// The unit a bare number most likely means: seconds for a timeout, days for a span.
    fn default_unit(self) -> &'static str {
        match self {
            Kind::Duration => "s",
            Kind::Calendar => "d",
        }
    }

    /// The unit a word written out in English stands for (`hours` → `h`).
    fn unit_for(self, word: &str) -> Option<&'static str> {
        let unit = match word {
            "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => "ms",
            "s" | "sec" | "secs" | "second" | "seconds" => "s",
            "min" | "mins" | "minute" | "minutes" => "min",
            "m" => "m",
            "h" | "hr" | "hrs" | "hour" | "hours" => "h",
            "d" | "day" | "days" => "d",
            "w" | "wk" | "wks" | "week" | "weeks" => "w",
            "mo" | "mon" | "month" | "months" => "mo",
            "y" | "yr" | "yrs" | "year" | "years" => "y",
            _ => return None,
        };
        match (self, unit) {
            (Kind::Duration, "min") => Some("m"),
            (Kind::Duration, "mo" | "y") => None,
            (Kind::Calendar, "m") => Some("mo"),
            (Kind::Calendar, "min" | "s" | "ms") => None,
            (_, unit) => Some(unit),
        }
    }

    fn error(self, text: &str, reason: String) -> ParseError {
        let months = self == Kind::Duration
            && split_units(text, self).is_ok_and(|parts| parts.iter().any(|p| p.unit == "mo"));
        let hint = if months {
            Some("write days or weeks instead, as `30d` or `4w`".to_owned())
        } else {
            suggest(text, self).map(|s| format!("did you mean `{s}`?"))
        };
        ParseError {
            message: format!("`{text}` is not {}: {reason}", self.noun()),
            hint,
        }
    }
}

/// A unit of a duration or calendar span, in descending order of size within its kind.
struct Unit {
    name: &'static str,
    /// The value this unit stays below once a larger unit is written before it (60 for
    /// seconds: `1m60s` is `2m`), and the unit it carries into. `None` where no fixed carry
    /// exists (weeks into months).
    carry: Option<(u64, &'static str)>,
    /// The numbers from 1 to `carry - 1` as a regular expression, for the schema.
    below: &'static str,
}

/// A unit with no fixed carry into a larger one.
const fn first(name: &'static str) -> Unit {
    Unit {
        name,
        carry: None,
        below: "",
    }
}

/// A unit that carries into `into` at `carry`, with the numbers below it as `below`.
const fn carries(name: &'static str, carry: u64, into: &'static str, below: &'static str) -> Unit {
    Unit {
        name,
        carry: Some((carry, into)),
        below,
    }
}

/// Numbers below 7, 12, 24, 60 and 1000, without leading zeros, for the schema's patterns.
const BELOW_7: &str = "[1-6]";
const BELOW_12: &str = "(?:[1-9]|1[01])";
const BELOW_24: &str = "(?:[1-9]|1[0-9]|2[0-3])";
const BELOW_60: &str = "(?:[1-9]|[1-5][0-9])";
const BELOW_1000: &str = "[1-9][0-9]{0,2}";

const DURATION_UNITS: [Unit; 6] = [
    first("w"),
    carries("d", 7, "w", BELOW_7),
    carries("h", 24, "d", BELOW_24),
    carries("m", 60, "h", BELOW_60),
    carries("s", 60, "m", BELOW_60),
    carries("ms", 1000, "s", BELOW_1000),
];

/// Calendar units: a carry holds only right after the unit carried into (`1y12mo` is `2y`,
/// but `1mo45d` has no better spelling, since months differ in length).
const CALENDAR_UNITS: [Unit; 5] = [
    first("y"),
    carries("mo", 12, "y", BELOW_12),
    first("w"),
    carries("d", 7, "w", BELOW_7),
    carries("h", 24, "d", BELOW_24),
];

impl Kind {
    fn table(self) -> &'static [Unit] {
        match self {
            Kind::Duration => &DURATION_UNITS,
            Kind::Calendar => &CALENDAR_UNITS,
        }
    }

    /// The one spelling of nothing, as `Display` writes it.
    fn zero(self) -> &'static str {
        match self {
            Kind::Duration => "0s",
            Kind::Calendar => "0d",
        }
    }
}

/// One `30m` of `1h30m`: the digits as written, their value and the unit, named as the
/// unit table names it (a calendar span's deprecated `m` is `mo` here).
struct Part<'a> {
    digits: &'a str,
    number: u64,
    unit: &'a str,
    /// The unit as written, for messages that quote the text.
    written: &'a str,
}

/// The deprecated spelling of months in a calendar span.
const OLD_MONTHS: &str = "m";

/// Splits `1h30m` into its parts, or says what is wrong (the reason only: the caller names
/// the text and adds a hint).
fn split_units(text: &str, kind: Kind) -> Result<Vec<Part<'_>>, String> {
    if text.is_empty() {
        return Err(format!("it is empty ({})", kind.units()));
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "expected a number before `{rest}` ({})",
                kind.units()
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| "number too large".to_owned())?;
        let written = &rest[..digits];
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if unit_len == 0 {
            let reason = match rest.chars().next() {
                None => format!("`{number}` needs a unit"),
                Some('.') => format!(
                    "write a fraction in a smaller unit, {}",
                    kind.fraction_example()
                ),
                Some(c) if c.is_whitespace() => {
                    format!("a unit must follow `{number}` directly, with no space")
                }
                Some(c) => format!("unexpected `{c}` after `{number}`"),
            };
            return Err(format!("{reason} ({})", kind.units()));
        }
        let unit = &rest[..unit_len];
        parts.push(Part {
            digits: written,
            number,
            unit: match (kind, unit) {
                (Kind::Calendar, OLD_MONTHS) => "mo",
                _ => unit,
            },
            written: unit,
        });
        rest = &rest[unit_len..];
    }
    Ok(parts)
}

/// Holds a parsed text to the one spelling of its value, so that a plan says what it
/// means and a typo cannot hide in a sum: each unit once (`1h1h` is more often a typo for
/// `1h1m` than a way to write `2h`), largest first, no leading zeros (`05s`) and no zero
/// parts (`1h0m`; nothing is written `0s`), and a unit written after a larger one below
/// its carry (`1m60s` is `2m`; `90s` alone is fine).
fn check_spelling(text: &str, parts: &[Part<'_>], kind: Kind) -> Result<(), String> {
    let table = kind.table();
    let rank = |unit: &str| table.iter().position(|u| u.name == unit);
    for part in parts {
        if kind == Kind::Duration && part.unit == "mo" {
            return Err("durations have no months, since a month has no fixed length".to_owned());
        }
        if rank(part.unit).is_none() {
            return Err(format!("unknown unit `{}` ({})", part.unit, kind.units()));
        }
    }
    for (i, part) in parts.iter().enumerate() {
        if parts[..i].iter().any(|seen| seen.unit == part.unit) {
            return Err(format!(
                "the unit `{}` is written twice; write each unit once",
                part.unit
            ));
        }
    }
    if text == kind.zero() {
        return Ok(());
    }
    let order = table.iter().map(|u| u.name).collect::<Vec<_>>().join(", ");
    for (i, part) in parts.iter().enumerate() {
        if part.number == 0 {
            return Err(if parts.len() == 1 {
                format!("zero is written `{}`", kind.zero())
            } else {
                format!(
                    "`{}{}` adds nothing; leave it out",
                    part.digits, part.written
                )
            });
        }
        if part.digits.starts_with('0') {
            return Err(format!(
                "`{}{}` has a leading zero; write `{}{}`",
                part.digits, part.written, part.number, part.unit
            ));
        }
        if let Some(before) = i.checked_sub(1).map(|b| &parts[b])
            && rank(before.unit) > rank(part.unit)
        {
            return Err(format!(
                "`{}` comes before `{}`; write units from largest to smallest ({order})",
                before.written, part.written
            ));
        }
        let unit = &table[rank(part.unit).unwrap_or_default()];
        let Some((carry, into)) = unit.carry else {
            continue;
        };
        // A duration's units all have fixed sizes, so any larger unit written before this
        // one could hold the excess; a calendar span's only the one it carries into.
        let carried = match kind {
            Kind::Duration => i > 0,
            Kind::Calendar => i > 0 && parts[i - 1].unit == into,
        };
        if carried && part.number >= carry {
            return Err(format!(
                "`{}{}` after `{}` must be below {carry}{}; carry it into `{into}`",
                part.digits,
                part.written,
                parts[i - 1].written,
                part.unit,
            ));
        }
    }
    Ok(())
}

/// Parses a duration, or gives the reason it is not one.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let parts = split_units(text, Kind::Duration)?;
    check_spelling(text, &parts, Kind::Duration)?;
    sum_duration(&parts)
}

/// Adds up a duration's parts, whatever their spelling (the hint for `1m60s` is their sum).
fn sum_duration(parts: &[Part<'_>]) -> Result<Duration, String> {
    let mut total = std::time::Duration::ZERO;
    for part in parts {
        let Some(millis) = unit_millis(part.unit) else {
            return Err(format!(
                "unknown unit `{}` ({})",
                part.unit,
                Kind::Duration.units()
            ));
        };
        let millis = part
            .number
            .checked_mul(millis)
            .ok_or_else(|| "too large".to_owned())?;
        total = total
            .checked_add(std::time::Duration::from_millis(millis))
            .ok_or_else(|| "too large".to_owned())?;
    }
    Ok(Duration(total))
}

/// Parses a calendar span, or gives the reason it is not one.
fn parse_span(text: &str) -> Result<CalendarSpan, String> {
    let parts = split_units(text, Kind::Calendar)?;
    check_spelling(text, &parts, Kind::Calendar)?;
    sum_span(&parts)
}

/// Adds up a calendar span's parts, whatever their spelling (the hint for `1d1d` is their sum).
fn sum_span(parts: &[Part<'_>]) -> Result<CalendarSpan, String> {
    let too_large = || "number too large".to_owned();
    let mut span = CalendarSpan::default();
    for part in parts {
        let number = u32::try_from(part.number).map_err(|_| too_large())?;
        let (field, count) = match part.unit {
            "y" => (&mut span.years, number),
            "mo" => {
                span.months_as_m |= part.written == OLD_MONTHS;
                (&mut span.months, number)
            }
            "w" => (&mut span.days, number.checked_mul(7).ok_or_else(too_large)?),
            "d" => (&mut span.days, number),
            "h" => (&mut span.hours, number),
            other => {
                return Err(format!(
                    "unknown unit `{other}` ({})",
                    Kind::Calendar.units()
                ));
            }
        };
        *field = field.checked_add(count).ok_or_else(too_large)?;
    }
    Ok(span)
}

/// The one spelling of a calendar span's sum, for a hint: whole years out of months and
/// whole days out of hours.
fn canonical_span(mut span: CalendarSpan) -> CalendarSpan {
    span.years = span.years.saturating_add(span.months / 12);
    span.months %= 12;
    span.days = span.days.saturating_add(span.hours / 24);
    span.hours %= 24;
    span
}

/// What `text` most likely meant, in planrun's spelling: `90` → `90s` (a duration) or `90d`
/// (a calendar span), `1 hour` → `1h`, `2 weeks` → `2w`, `1.5h` → `1h30m`. `None` when no
/// spelling is likely or the text is already right.
fn suggest(text: &str, kind: Kind) -> Option<String> {
    if let Ok(parts) = split_units(text, kind) {
        // Well formed but not in the one spelling: the hint is the sum, spelled right.
        let sum = match kind {
            Kind::Duration => sum_duration(&parts).map(|d| d.to_string()),
            Kind::Calendar => sum_span(&parts).map(|s| canonical_span(s).to_string()),
        };
        if let Ok(sum) = sum {
            return (sum != text).then_some(sum);
        }
    }
    let lower = text.trim().to_ascii_lowercase();
    let mut pairs: Vec<(&str, Option<&str>)> = Vec::new();
    let mut rest = lower.as_str();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let word_start = &rest[number_len..];
        let trimmed = word_start.trim_start();
        let word_len = trimmed
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(trimmed.len());
        let word = &trimmed[..word_len];
        if number_len == 0 {
            // "1 hour and 30 minutes": `and` joins parts; any other word is not a duration.
            if word != "and" {
                return None;
            }
        } else {
            pairs.push((&rest[..number_len], (!word.is_empty()).then_some(word)));
        }
        rest = &trimmed[word_len..];
    }
    let mut spelled = String::new();
    let mut millis: u128 = 0;
    let mut fraction = false;
    for (number, word) in &pairs {
        let unit = match word {
            Some(word) => kind.unit_for(word)?,
            None if pairs.len() == 1 => kind.default_unit(),
            None => return None,
        };
        if number.contains('.') {
            // Fractions exist only for durations, whose units are fixed lengths.
            fraction = true;
            let size = unit_millis(unit).filter(|_| kind == Kind::Duration)?;
            let value: f64 = number.parse().ok()?;
            let total = value * size as f64;
            if total.fract() != 0.0 || !total.is_finite() || total < 0.0 {
                return None;
            }
            millis += total as u128;
        } else {
            let value: u64 = number.parse().ok()?;
            millis += u128::from(value) * u128::from(unit_millis(unit).unwrap_or(0));
            spelled.push_str(&format!("{value}{unit}"));
        }
    }
    if fraction {
        let millis = u64::try_from(millis).ok()?;
        spelled = Duration(std::time::Duration::from_millis(millis)).to_string();
    }
    // The plain parsers, not `FromStr`: a failing check must not ask for a hint again.
    let parses = match kind {
        Kind::Duration => parse_duration(&spelled).is_ok(),
        Kind::Calendar => parse_span(&spelled).is_ok(),
    };
    (parses && spelled != text).then_some(spelled)
}

/// Milliseconds in a duration unit; `None` for calendar units, whose length varies.
fn unit_millis(unit: &str) -> Option<u64> {
    Some(match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return None,
    })
}

/// Explains why `text` does not match a duration or calendar-span `pattern` of the published
/// schema, with a hint; `None` for any other pattern.
pub fn explain_pattern(text: &str, pattern: &str) -> Option<ParseError> {
    let result = if pattern == duration_pattern() {
        text.parse::<Duration>().err()
    } else if pattern == CALENDAR_PATTERN {
        text.parse::<CalendarSpan>().err()
    } else {
        return None;
    };
    let kind = if pattern == duration_pattern() {
        Kind::Duration
    } else {
        Kind::Calendar
    };
    Some(result.unwrap_or_else(|| kind.error(text, kind.units().into())))
}

impl FromStr for Duration {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        parse_duration(text).map_err(|reason| Kind::Duration.error(text, reason))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis == 0 {
            return write!(f, "0s");
        }
        let mut rest = millis;
        for (unit, size) in [
            ("d", 86_400_000u128),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1_000),
            ("ms", 1),
        ] {
            if rest >= size {
                write!(f, "{}{unit}", rest / size)?;
                rest %= size;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": duration_pattern(),
            "description": "A duration such as `30s`, `10m`, `1h30m`, `2d` (units w, d, h, m (minutes), s, ms; no months: each at most once, largest first, no leading zeros, and below its carry after a larger unit: `1m30s`, not `1m90s`).",
            "examples": ["30s", "10m", "1h30m"]
        })
    }
}

/// A calendar span as restic's `--keep-within` reads it: `y` years, `mo` months, `w` weeks,
/// `d` days, `h` hours. Months and years are calendar units, so `1mo` back from 31 March is
/// 28/29 February. A week is always seven calendar days, so weeks are kept as days.
#[derive(Clone, Copy, Debug, Default)]
pub struct CalendarSpan {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
    /// Months were written with the deprecated `m` (`6m`): the same span, which the caller
    /// warns about. It is how the span was spelled, not what it is, so equality ignores it.
    pub months_as_m: bool,
}

impl PartialEq for CalendarSpan {
    fn eq(&self, other: &Self) -> bool {
        (self.years, self.months, self.days, self.hours)
            == (other.years, other.months, other.days, other.hours)
    }
}

impl Eq for CalendarSpan {}

/// The new spelling of a calendar span that writes months `m` (`1y6m` → `1y6mo`), each part
/// kept as written; `None` when `text` is not such a span.
pub fn respell_months(text: &str) -> Option<String> {
    let parts = split_units(text, Kind::Calendar).ok()?;
    check_spelling(text, &parts, Kind::Calendar).ok()?;
    parts
        .iter()
        .any(|part| part.written == OLD_MONTHS)
        .then(|| {
            parts
                .iter()
                .map(|part| format!("{}{}", part.digits, part.unit))
                .collect()
        })
}

/// The warning for a calendar span whose months are written `m`, as validation and
/// `retention simulate` give it.
pub fn months_as_m_warning(written: &str, respelled: &str) -> String {
    format!("`{written}` means months here; write `{respelled}`")
}

/// As [`duration_pattern`], for calendar spans: years with months below 12, then weeks with
/// days below 7, or days, then hours (below 24 after days). Months are `mo`, or the
/// deprecated `m`, which parses the same and draws a warning (no other calendar unit starts
/// with `m`, so `mo?` is unambiguous).
const CALENDAR_PATTERN: &str = concat!(
    "^(?:0d|(?=[0-9])",
    "(?:[1-9][0-9]*y(?:(?:[1-9]|1[01])mo?)?|[1-9][0-9]*mo?)?",
    "(?:[1-9][0-9]*w(?:[1-6]d(?:(?:[1-9]|1[0-9]|2[0-3])h)?|[1-9][0-9]*h)?",
    "|[1-9][0-9]*d(?:(?:[1-9]|1[0-9]|2[0-3])h)?",
    "|[1-9][0-9]*h)?",
    ")$"
);

impl FromStr for CalendarSpan {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        parse_span(text).map_err(|reason| Kind::Calendar.error(text, reason))
    }
}

impl fmt::Display for CalendarSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        for (n, unit) in [
            (self.years, "y"),
            (self.months, "mo"),
            (self.days, "d"),
            (self.hours, "h"),
        ] {
            if n > 0 {
                write!(f, "{n}{unit}")?;
                wrote = true;
            }
        }
        if !wrote {
            write!(f, "0d")?;
        }
        Ok(())
    }
}

impl CalendarSpan {
    pub fn is_zero(&self) -> bool {
        *self == CalendarSpan::default()
    }
}

impl<'de> Deserialize<'de> for CalendarSpan {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for CalendarSpan {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl JsonSchema for CalendarSpan {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CalendarSpan".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": CALENDAR_PATTERN,
            "description": "A calendar span as restic reads it: y (years), mo (months), w (weeks), d (days), h (hours), each at most once, largest first, no leading zeros, months below 12 after years, days below 7 after weeks, hours below 24 after days; e.g. `30d`, `2w`, `1y`, `2y6mo`. Months written `m` (`6m`) still mean months but are deprecated: `m` is minutes in a duration.",
            "examples": ["30d", "2w", "1y", "2y6mo"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duration_error(text: &str) -> ParseError {
        text.parse::<Duration>().unwrap_err()
    }

    fn span_error(text: &str) -> ParseError {
        text.parse::<CalendarSpan>().unwrap_err()
    }

    #[test]
    fn parses_compound_durations() {
        assert_eq!(
            "1h30m".parse::<Duration>().unwrap(),
            Duration::from_secs(5400)
        );
        assert_eq!("250ms".parse::<Duration>().unwrap().0.as_millis(), 250);
        assert_eq!(Duration::from_secs(5400).to_string(), "1h30m");
    }

    #[test]
    fn rejects_bad_durations_with_reasons() {
        assert_eq!(
            duration_error("10x").to_string(),
            "`10x` is not a duration: unknown unit `x` (use ms, s, m, h, d or w)"
        );
        assert!(duration_error("").message.contains("empty"));
    }

    #[test]
    fn a_number_without_a_unit_gets_the_unit() {
        let error = duration_error("90");
        assert_eq!(
            error.message,
            "`90` is not a duration: `90` needs a unit (use ms, s, m, h, d or w)"
        );
        assert_eq!(error.hint.as_deref(), Some("did you mean `90s`?"));
    }

    #[test]
    fn words_and_spaces_get_the_short_spelling() {
        for (written, meant) in [
            ("1 hour", "1h"),
            ("90 seconds", "90s"),
            ("1h 30m", "1h30m"),
            ("2 hours and 30 minutes", "2h30m"),
            ("10 min", "10m"),
            ("30S", "30s"),
            ("1.5h", "1h30m"),
            ("2 weeks", "2w"),
            ("250 milliseconds", "250ms"),
        ] {
            assert_eq!(
                duration_error(written).hint,
                Some(format!("did you mean `{meant}`?")),
                "{written}"
            );
        }
    }

    #[test]
    fn no_hint_when_nothing_is_likely() {
        for written in ["10x", "soon", "1 month", "1y", "-5s", "1.0000001ms"] {
            assert_eq!(duration_error(written).hint, None, "{written}");
        }
    }

    #[test]
    fn a_repeated_unit_is_refused_with_the_sum_as_hint() {
        let error = duration_error("1h1h");
        assert_eq!(
            error.message,
            "`1h1h` is not a duration: the unit `h` is written twice; write each unit once"
        );
        assert_eq!(error.hint.as_deref(), Some("did you mean `2h`?"));
        assert_eq!(
            duration_error("10m5s10m").hint.as_deref(),
            Some("did you mean `20m5s`?")
        );
        // `m` and `ms` are different units.
        assert_eq!("1m1ms".parse::<Duration>().unwrap().0.as_millis(), 60_001);
        let error = span_error("1d1d");
        assert!(error.message.contains("the unit `d` is written twice"));
        assert_eq!(error.hint.as_deref(), Some("did you mean `2d`?"));
        assert_eq!("1w2d".parse::<CalendarSpan>().unwrap().days, 9);
    }

    #[test]
    fn the_published_patterns_agree_with_the_parsers() {
        // Through the schema validator, so the regex engine is the one that checks plans.
        let matcher = |pattern: &str| {
            jsonschema::validator_for(&serde_json::json!({ "type": "string", "pattern": pattern }))
                .unwrap()
        };
        let (duration, calendar) = (matcher(duration_pattern()), matcher(CALENDAR_PATTERN));
        for text in [
            "1h1h", "1m1ms", "1ms1m", "1h30m", "30m1h", "1h30m1h", "1ms2ms", "250ms", "", "1mo",
        ] {
            assert_eq!(
                duration.is_valid(&serde_json::json!(text)),
                text.parse::<Duration>().is_ok(),
                "{text}"
            );
        }
        for text in [
            "1d1d", "1w2d", "2y6m", "2y6mo", "1y1m1y", "1m1m", "1m1mo", "1mo", "1moo", "1ym",
        ] {
            assert_eq!(
                calendar.is_valid(&serde_json::json!(text)),
                text.parse::<CalendarSpan>().is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn each_value_has_one_spelling_and_the_error_gives_it() {
        for (written, reason, meant) in [
            (
                "1m60s",
                "`60s` after `m` must be below 60s; carry it into `m`",
                "2m",
            ),
            (
                "1h90m",
                "`90m` after `h` must be below 60m; carry it into `h`",
                "2h30m",
            ),
            (
                "1h90s",
                "`90s` after `h` must be below 60s; carry it into `m`",
                "1h1m30s",
            ),
            (
                "1s1000ms",
                "`1000ms` after `s` must be below 1000ms; carry it into `s`",
                "2s",
            ),
            (
                "1d24h",
                "`24h` after `d` must be below 24h; carry it into `d`",
                "2d",
            ),
            ("05s", "`05s` has a leading zero; write `5s`", "5s"),
            ("1h05m", "`05m` has a leading zero; write `5m`", "1h5m"),
            ("0h", "zero is written `0s`", "0s"),
            ("00s", "zero is written `0s`", "0s"),
            ("1h0m", "`0m` adds nothing; leave it out", "1h"),
            (
                "30m1h",
                "`m` comes before `h`; write units from largest to smallest (w, d, h, m, s, ms)",
                "1h30m",
            ),
            (
                "1s1m",
                "`s` comes before `m`; write units from largest to smallest (w, d, h, m, s, ms)",
                "1m1s",
            ),
        ] {
            let error = duration_error(written);
            assert_eq!(
                error.message,
                format!("`{written}` is not a duration: {reason}"),
                "{written}"
            );
            assert_eq!(
                error.hint,
                Some(format!("did you mean `{meant}`?")),
                "{written}"
            );
            assert!(meant.parse::<Duration>().is_ok(), "{meant}");
        }
        for fine in [
            "90s",
            "0s",
            "36h",
            "1h59m59s999ms",
            "1w6d23h",
            "100m",
            "10000ms",
            "2w",
        ] {
            assert!(fine.parse::<Duration>().is_ok(), "{fine}");
        }
        for (written, reason, meant) in [
            (
                "1y12m",
                "`12m` after `y` must be below 12mo; carry it into `y`",
                "2y",
            ),
            (
                "1y12mo",
                "`12mo` after `y` must be below 12mo; carry it into `y`",
                "2y",
            ),
            (
                "1w7d",
                "`7d` after `w` must be below 7d; carry it into `w`",
                "14d",
            ),
            (
                "1d24h",
                "`24h` after `d` must be below 24h; carry it into `d`",
                "2d",
            ),
            ("030d", "`030d` has a leading zero; write `30d`", "30d"),
            ("0y", "zero is written `0d`", "0d"),
            (
                "6m1y",
                "`m` comes before `y`; write units from largest to smallest (y, mo, w, d, h)",
                "1y6mo",
            ),
            (
                "6mo1y",
                "`mo` comes before `y`; write units from largest to smallest (y, mo, w, d, h)",
                "1y6mo",
            ),
            (
                "1m1mo",
                "the unit `mo` is written twice; write each unit once",
                "2mo",
            ),
        ] {
            let error = span_error(written);
            assert_eq!(
                error.message,
                format!("`{written}` is not a calendar span: {reason}"),
                "{written}"
            );
            assert_eq!(
                error.hint,
                Some(format!("did you mean `{meant}`?")),
                "{written}"
            );
        }
        // Months differ in length and weeks do not fill them: no carry between those.
        for fine in [
            "14m",
            "14mo",
            "1m45d",
            "1mo45d",
            "2y11mo3w6d23h",
            "1m10w",
            "90d",
            "36h",
            "1w30h",
            "0d",
            "2y11m3w6d23h",
        ] {
            assert!(fine.parse::<CalendarSpan>().is_ok(), "{fine}");
        }
    }

    /// Every text made of up to three parts from a small alphabet of numbers and units:
    /// the schema's pattern accepts exactly what the parser accepts.
    #[test]
    fn the_published_patterns_agree_with_the_parsers_on_every_small_text() {
        let matcher = |pattern: &str| {
            jsonschema::validator_for(&serde_json::json!({ "type": "string", "pattern": pattern }))
                .unwrap()
        };
        let (duration, calendar) = (matcher(duration_pattern()), matcher(CALENDAR_PATTERN));
        let numbers = [
            "0", "00", "1", "05", "6", "7", "11", "12", "23", "24", "59", "60", "999", "1000",
        ];
        let units = ["ms", "s", "m", "mo", "h", "d", "w", "y"];
        let parts: Vec<String> = numbers
            .iter()
            .flat_map(|n| units.iter().map(move |u| format!("{n}{u}")))
            .collect();
        let mut texts: Vec<String> = parts.clone();
        for a in &parts {
            for b in &parts {
                texts.push(format!("{a}{b}"));
            }
        }
        for a in parts.iter().step_by(3) {
            for b in parts.iter().step_by(2) {
                for c in &parts {
                    texts.push(format!("{a}{b}{c}"));
                }
            }
        }
        for text in &texts {
            let value = serde_json::json!(text);
            assert_eq!(
                duration.is_valid(&value),
                text.parse::<Duration>().is_ok(),
                "duration {text}"
            );
            assert_eq!(
                calendar.is_valid(&value),
                text.parse::<CalendarSpan>().is_ok(),
                "calendar span {text}"
            );
        }
    }

    #[test]
    fn calendar_months_are_mo_and_the_old_m_still_means_months() {
        let span: CalendarSpan = "2y6mo".parse().unwrap();
        assert_eq!((span.years, span.months, span.months_as_m), (2, 6, false));
        assert_eq!(span.to_string(), "2y6mo");
        let old: CalendarSpan = "2y6m".parse().unwrap();
        assert_eq!(old, span);
        assert!(old.months_as_m);
        assert_eq!(old.to_string(), "2y6mo");
        assert_eq!(respell_months("2y6m").as_deref(), Some("2y6mo"));
        assert_eq!(respell_months("6m").as_deref(), Some("6mo"));
        assert_eq!(respell_months("1m2w").as_deref(), Some("1mo2w"));
        for new_or_bad in ["6mo", "2w", "1y", "6m1y", "1 m"] {
            assert_eq!(respell_months(new_or_bad), None, "{new_or_bad}");
        }
        assert_eq!(
            months_as_m_warning("6m", "6mo"),
            "`6m` means months here; write `6mo`"
        );
    }

    #[test]
    fn a_duration_has_no_months() {
        let error = duration_error("1mo");
        assert_eq!(
            error.message,
            "`1mo` is not a duration: durations have no months, since a month has no fixed length"
        );
        assert_eq!(
            error.hint.as_deref(),
            Some("write days or weeks instead, as `30d` or `4w`")
        );
        assert!(
            duration_error("1h1mo")
                .message
                .contains("durations have no months")
        );
        assert!(
            explain_pattern("6mo", duration_pattern())
                .unwrap()
                .message
                .contains("durations have no months")
        );
    }

    #[test]
    fn calendar_weeks_are_seven_days() {
        let span: CalendarSpan = "2w".parse().unwrap();
        assert_eq!(
            span,
            CalendarSpan {
                days: 14,
                ..Default::default()
            }
        );
        let span: CalendarSpan = "1w2d".parse().unwrap();
        assert_eq!(span.days, 9);
        assert!(span_error("4294967295w").message.contains("too large"));
    }

    #[test]
    fn calendar_errors_give_calendar_examples_and_hints() {
        let error = span_error("30");
        assert_eq!(
            error.message,
            "`30` is not a calendar span: `30` needs a unit (use y, mo, w, d or h, as in `30d`, `2w`, `6mo` or `1y`)"
        );
        assert_eq!(error.hint.as_deref(), Some("did you mean `30d`?"));
        assert_eq!(
            span_error("1 month").hint.as_deref(),
            Some("did you mean `1mo`?")
        );
        assert_eq!(
            span_error("6 m").hint.as_deref(),
            Some("did you mean `6mo`?")
        );
        assert_eq!(
            span_error("1 year").hint.as_deref(),
            Some("did you mean `1y`?")
        );
        assert_eq!(span_error("90s").hint, None);
        assert!(span_error("90s").message.contains("as in `30d`"));
        assert_eq!(span_error("10 minutes").hint, None);
    }

    #[test]
    fn schema_patterns_are_explained() {
        let error = explain_pattern("1 hour", duration_pattern()).unwrap();
        assert_eq!(error.hint.as_deref(), Some("did you mean `1h`?"));
        let error = explain_pattern("2 weeks", CALENDAR_PATTERN).unwrap();
        assert_eq!(error.hint.as_deref(), Some("did you mean `2w`?"));
        assert!(explain_pattern("x", "^[a-z]+$").is_none());
    }
}
