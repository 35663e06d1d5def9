//! The retention section as written in a plan. The policy itself lives in `crate::retention`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::duration::{CalendarSpan, Duration};

/// Grandfather-father-son retention with restic's `forget` semantics.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Keep the newest N sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<Keep>,
    /// Keep the newest set of each of the last N hours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_hourly: Option<Keep>,
    /// Keep the newest set of each of the last N days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_daily: Option<Keep>,
    /// Keep the newest set of each of the last N ISO weeks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_weekly: Option<Keep>,
    /// Keep the newest set of each of the last N months.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_monthly: Option<Keep>,
    /// Keep the newest set of each of the last N years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_yearly: Option<Keep>,
    /// Keep every set within this span of the newest set (e.g. `30d`, `2y6mo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_within: Option<CalendarSpan>,
    /// IANA time zone in which days, weeks, months and years are counted (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Incomplete sets (no manifest) older than this are removed (default `24h`, at least
    /// `1h`: a backup still being written could be removed). The age is measured from the
    /// newer of the set id's time and its newest object's modification time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incomplete_after: Option<Duration>,
}

/// The shortest `incomplete_after` a plan may set. A run may write its set for a long time
/// before the manifest commits it; a shorter threshold could remove a backup still being
/// written.
pub const MIN_INCOMPLETE_AFTER: std::time::Duration = std::time::Duration::from_secs(3600);

impl Retention {
    /// True when `incomplete_after` is set below [`MIN_INCOMPLETE_AFTER`]: refused.
    pub fn incomplete_after_too_short(&self) -> bool {
        self.incomplete_after
            .is_some_and(|after| after.as_std() < MIN_INCOMPLETE_AFTER)
    }

    /// True when no rule would keep anything: such a policy is refused.
    pub fn keeps_nothing(&self) -> bool {
        let counts = [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ];
        counts
            .iter()
            .all(|k| matches!(k, None | Some(Keep::Count(0))))
            && self.keep_within.is_none_or(|span| span.is_zero())
    }
}

/// A count of periods to keep, or `unlimited`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Count(u32),
    Unlimited,
}

impl fmt::Display for Keep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Keep::Count(n) => write!(f, "{n}"),
            Keep::Unlimited => write!(f, "unlimited"),
        }
    }
}

impl std::str::FromStr for Keep {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text == "unlimited" {
            return Ok(Keep::Unlimited);
        }
        text.parse::<u32>()
            .map(Keep::Count)
            .map_err(|_| format!("`{text}` is not a count: expected a number or `unlimited`"))
    }
}

// A number or the word `unlimited`. Written by hand because `#[serde(untagged)]` would hide
// the reason a value was refused.
impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeepVisitor;
        impl serde::de::Visitor<'_> for KeepVisitor {
            type Value = Keep;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or `unlimited`")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Keep, E> {
                u32::try_from(v).map(Keep::Count).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Keep, E> {
                u32::try_from(v).map(Keep::Count).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Keep, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(KeepVisitor)
    }
}

impl Serialize for Keep {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Keep::Count(n) => serializer.serialize_u32(*n),
            Keep::Unlimited => serializer.serialize_str("unlimited"),
        }
    }
}

impl JsonSchema for Keep {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Keep".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A number of periods, or `unlimited`.",
            "anyOf": [
                { "type": "integer", "minimum": 0 },
                { "const": "unlimited" }
            ]
        })
    }
}
