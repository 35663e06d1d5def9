//! Durations written in plans (`30s`, `1h30m`, `2d`) and calendar spans (`2y6m`, `14d`).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A wall-clock duration such as a step timeout. Units: `ms`, `s`, `m` (minutes), `h`, `d`, `w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

/// The regular expression the schema publishes for [`Duration`]; the parser below is the truth.
const DURATION_PATTERN: &str = r"^([0-9]+(ms|s|m|h|d|w))+$";

impl Duration {
    pub fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }
}

/// Splits `1h30m` into `[(1, "h"), (30, "m")]`, or explains what is wrong.
fn split_units(text: &str) -> Result<Vec<(u64, &str)>, String> {
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut parts = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!(
                "`{text}` is not a duration: expected a number before `{rest}`"
            ));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is not a duration: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        if unit_len == 0 {
            return Err(format!(
                "`{text}` is not a duration: `{number}` needs a unit, for example `{number}s`"
            ));
        }
        parts.push((number, &rest[..unit_len]));
        rest = &rest[unit_len..];
    }
    Ok(parts)
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut total = std::time::Duration::ZERO;
        for (number, unit) in split_units(text)? {
            let millis: u64 = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 604_800_000,
                other => {
                    return Err(format!(
                        "`{text}` is not a duration: unknown unit `{other}` (use ms, s, m, h, d or w)"
                    ));
                }
            };
            let part = number
                .checked_mul(millis)
                .ok_or_else(|| format!("`{text}` is not a duration: too large"))?;
            total += std::time::Duration::from_millis(part);
        }
        Ok(Duration(total))
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
            "description": "A duration such as `30s`, `10m`, `1h30m`, `2d` (units: ms, s, m, h, d, w).",
            "examples": ["30s", "10m", "1h30m"]
        })
    }
}

/// A calendar span as restic's `--keep-within` reads it: `y` years, `m` months, `d` days,
/// `h` hours. Months and years are calendar units, so `1m` back from 31 March is 28/29 February.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CalendarSpan {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

const CALENDAR_PATTERN: &str = r"^([0-9]+[ymdh])+$";

impl FromStr for CalendarSpan {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut span = CalendarSpan::default();
        for (number, unit) in split_units(text)? {
            let number =
                u32::try_from(number).map_err(|_| format!("`{text}`: number too large"))?;
            match unit {
                "y" => span.years += number,
                "m" => span.months += number,
                "d" => span.days += number,
                "h" => span.hours += number,
                other => {
                    return Err(format!(
                        "`{text}` is not a calendar span: unknown unit `{other}` (use y, m for months, d or h, as in `2y6m`)"
                    ));
                }
            }
        }
        Ok(span)
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
            "description": "A calendar span as restic reads it: y (years), m (months), d (days), h (hours), e.g. `30d`, `2y6m`.",
            "examples": ["30d", "2y6m"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            "10".parse::<Duration>()
                .unwrap_err()
                .contains("needs a unit")
        );
        assert!(
            "10x"
                .parse::<Duration>()
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!("".parse::<Duration>().is_err());
    }

    #[test]
    fn calendar_months_are_m() {
        let span: CalendarSpan = "2y6m".parse().unwrap();
        assert_eq!((span.years, span.months), (2, 6));
        assert_eq!(span.to_string(), "2y6m");
    }
}
