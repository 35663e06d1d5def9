//! Durations written in plans (`30s`, `1h30m`, `2d`) and calendar spans (`2y6m`, `2w`, `14d`),
//! with errors that say what was probably meant (`90` → `90s`, `1 hour` → `1h`).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock duration such as a step timeout. Units: `ms`, `s`, `m` (minutes), `h`, `d`, `w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

/// The regular expression the schema publishes for [`Duration`]; the parser below is the truth.
/// The lookahead refuses a unit written twice (`1h1h`), so that mistake is explained at its
/// position by the schema pass rather than missed: the run would read it as `2h`, which is
/// rarely what the writer meant.
const DURATION_PATTERN: &str =
    r"^(?!.*[0-9]([a-z]+)(?=[0-9]).*[0-9]\1(?![a-z]))([0-9]+(ms|s|m|h|d|w))+$";

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
/// spaces) but not their units: `m` is minutes in a duration and months in a calendar span.
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
            Kind::Calendar => "use y, m for months, w, d or h, as in `30d`, `2w`, `6m` or `1y`",
        }
    }

    fn fraction_example(self) -> &'static str {
        match self {
            Kind::Duration => "as `90m` for 1.5 hours",
            Kind::Calendar => "as `18m` for 1.5 years",
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
            (Kind::Calendar, "mo") => Some("m"),
            (Kind::Calendar, "min" | "s" | "ms") => None,
            (_, unit) => Some(unit),
        }
    }

    fn error(self, text: &str, reason: String) -> ParseError {
        let hint = suggest(text, self).map(|s| format!("did you mean `{s}`?"));
        ParseError {
            message: format!("`{text}` is not {}: {reason}", self.noun()),
            hint,
        }
    }
}

/// Splits `1h30m` into `[(1, "h"), (30, "m")]`, or says what is wrong (the reason only: the
/// caller names the text and adds a hint).
fn split_units(text: &str, kind: Kind) -> Result<Vec<(u64, &str)>, String> {
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
        parts.push((number, &rest[..unit_len]));
        rest = &rest[unit_len..];
    }
    Ok(parts)
}

/// Refuses a unit written twice (`1h1h`, `1d2d`): summing them hides a typo such as a missing
/// `m` in `1h1h` for `1h1m`, so the writer is asked to say what they meant.
fn refuse_repeats(parts: &[(u64, &str)]) -> Result<(), String> {
    for (i, (_, unit)) in parts.iter().enumerate() {
        if parts[..i].iter().any(|(_, seen)| seen == unit) {
            return Err(format!(
                "the unit `{unit}` is written twice; write each unit once"
            ));
        }
    }
    Ok(())
}

/// Parses a duration, or gives the reason it is not one.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let parts = split_units(text, Kind::Duration)?;
    refuse_repeats(&parts)?;
    sum_duration(parts)
}

/// Adds up a duration's parts; units may repeat here (the hint for `1h1h` is their sum).
fn sum_duration(parts: Vec<(u64, &str)>) -> Result<Duration, String> {
    let mut total = std::time::Duration::ZERO;
    for (number, unit) in parts {
        let Some(millis) = unit_millis(unit) else {
            return Err(format!(
                "unknown unit `{unit}` ({})",
                Kind::Duration.units()
            ));
        };
        let part = number
            .checked_mul(millis)
            .ok_or_else(|| "too large".to_owned())?;
        total = total
            .checked_add(std::time::Duration::from_millis(part))
            .ok_or_else(|| "too large".to_owned())?;
    }
    Ok(Duration(total))
}

/// Parses a calendar span, or gives the reason it is not one.
fn parse_span(text: &str) -> Result<CalendarSpan, String> {
    let parts = split_units(text, Kind::Calendar)?;
    refuse_repeats(&parts)?;
    sum_span(parts)
}

/// Adds up a calendar span's parts; units may repeat here (the hint for `1d1d` is their sum).
fn sum_span(parts: Vec<(u64, &str)>) -> Result<CalendarSpan, String> {
    let too_large = || "number too large".to_owned();
    let mut span = CalendarSpan::default();
    for (number, unit) in parts {
        let number = u32::try_from(number).map_err(|_| too_large())?;
        let (field, count) = match unit {
            "y" => (&mut span.years, number),
            "m" => (&mut span.months, number),
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

/// What `text` most likely meant, in planrun's spelling: `90` → `90s` (a duration) or `90d`
/// (a calendar span), `1 hour` → `1h`, `2 weeks` → `2w`, `1.5h` → `1h30m`. `None` when no
/// spelling is likely or the text is already right.
fn suggest(text: &str, kind: Kind) -> Option<String> {
    if let Ok(parts) = split_units(text, kind)
        && refuse_repeats(&parts).is_err()
    {
        let sum = match kind {
            Kind::Duration => sum_duration(parts).ok()?.to_string(),
            Kind::Calendar => sum_span(parts).ok()?.to_string(),
        };
        return Some(sum);
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
    let result = match pattern {
        DURATION_PATTERN => text.parse::<Duration>().err(),
        CALENDAR_PATTERN => text.parse::<CalendarSpan>().err(),
        _ => return None,
    };
    let kind = if pattern == DURATION_PATTERN {
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
            "pattern": DURATION_PATTERN,
            "description": "A duration such as `30s`, `10m`, `1h30m`, `2d` (units: ms, s, m, h, d, w; each at most once).",
            "examples": ["30s", "10m", "1h30m"]
        })
    }
}

/// A calendar span as restic's `--keep-within` reads it: `y` years, `m` months, `w` weeks,
/// `d` days, `h` hours. Months and years are calendar units, so `1m` back from 31 March is
/// 28/29 February. A week is always seven calendar days, so weeks are kept as days.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CalendarSpan {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

/// As [`DURATION_PATTERN`], a unit written twice is refused.
const CALENDAR_PATTERN: &str = r"^(?!.*[0-9]([a-z]+)(?=[0-9]).*[0-9]\1(?![a-z]))([0-9]+[ymwdh])+$";

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
            (self.months, "m"),
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
            "description": "A calendar span as restic reads it: y (years), m (months), w (weeks), d (days), h (hours), each at most once, e.g. `30d`, `2w`, `1y`, `2y6m`.",
            "examples": ["30d", "2w", "1y", "2y6m"]
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
        let (duration, calendar) = (matcher(DURATION_PATTERN), matcher(CALENDAR_PATTERN));
        for text in [
            "1h1h", "1m1ms", "1ms1m", "1h30m", "30m1h", "1h30m1h", "1ms2ms", "250ms", "",
        ] {
            assert_eq!(
                duration.is_valid(&serde_json::json!(text)),
                text.parse::<Duration>().is_ok(),
                "{text}"
            );
        }
        for text in ["1d1d", "1w2d", "2y6m", "1y1m1y", "1m1m"] {
            assert_eq!(
                calendar.is_valid(&serde_json::json!(text)),
                text.parse::<CalendarSpan>().is_ok(),
                "{text}"
            );
        }
    }

    #[test]
    fn calendar_months_are_m() {
        let span: CalendarSpan = "2y6m".parse().unwrap();
        assert_eq!((span.years, span.months), (2, 6));
        assert_eq!(span.to_string(), "2y6m");
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
            "`30` is not a calendar span: `30` needs a unit (use y, m for months, w, d or h, as in `30d`, `2w`, `6m` or `1y`)"
        );
        assert_eq!(error.hint.as_deref(), Some("did you mean `30d`?"));
        assert_eq!(
            span_error("1 month").hint.as_deref(),
            Some("did you mean `1m`?")
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
        let error = explain_pattern("1 hour", DURATION_PATTERN).unwrap();
        assert_eq!(error.hint.as_deref(), Some("did you mean `1h`?"));
        let error = explain_pattern("2 weeks", CALENDAR_PATTERN).unwrap();
        assert_eq!(error.hint.as_deref(), Some("did you mean `2w`?"));
        assert!(explain_pattern("x", "^[a-z]+$").is_none());
    }
}
