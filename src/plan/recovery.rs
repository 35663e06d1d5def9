//! Roles and recovery runbooks (levels 1–4).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Step;
use crate::duration::{CalendarSpan, Duration};

/// A person's role during recovery.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// The role's title, e.g. `Database administrator`.
    pub title: String,
    /// How to reach them: e-mail, phone, pager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Who stands in when they cannot be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deputy: Option<String>,
    /// What the role is responsible for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsibility: Option<String>,
}

/// Recovery objectives and runbooks.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Recovery point and time objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectives: Option<Objectives>,
    /// How often the recovery plan is reviewed, and when it last was (the seed document asks
    /// for a review every six months: `{ every: 6mo, last: 2026-10-15 }`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    /// How often the team rehearses a recovery (`planrun recover --rehearse`); the seed
    /// document asks for yearly training: `{ every: 1y }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<Training>,
    /// Where each secret comes from when the old host is gone (the S3 keys, the database
    /// password): free text, printed in the runbook. Never write the secrets themselves here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<String>,
    /// Runbooks by disaster level: `1` data corruption, `2` hardware failure,
    /// `3` site disaster, `4` regional disaster.
    pub levels: BTreeMap<String, Level>,
}

/// How much data may be lost (RPO) and how long recovery may take (RTO).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Recovery point objective, e.g. `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<Duration>,
    /// Recovery time objective, e.g. `4h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<Duration>,
}

/// One runbook.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// What kind of disaster this level is for.
    pub name: String,
    /// More words for the person reading the runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The ordered actions.
    #[serde(default)]
    pub steps: Vec<Step>,
}

/// The recovery plan's review schedule.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// How often to review, as a calendar span (`6mo`, `1y`), written as `keep_within` is.
    pub every: CalendarSpan,
    /// The day of the last review, `YYYY-MM-DD`. A day in the future is refused.
    pub last: PlanDate,
}

impl Review {
    /// The day the next review is due; `None` only for a plan that did not validate.
    pub fn due(&self) -> Option<NaiveDate> {
        Some(add_span(self.last.date().ok()?, self.every))
    }
}

/// The rehearsal schedule.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Training {
    /// How often a rehearsal must happen, as a calendar span (`1y`).
    pub every: CalendarSpan,
}

/// A calendar day written `YYYY-MM-DD`. It is kept as written and parsed by the analyzer,
/// which can point at the line: a type that refused it while deserializing could only say
/// that the plan does not fit.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(transparent)]
pub struct PlanDate(pub String);

impl PlanDate {
    /// The day, or why the text is not one.
    pub fn date(&self) -> Result<NaiveDate, String> {
        let text = self.0.as_str();
        let shaped = text.len() == 10
            && text.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        let date = shaped
            .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
            .flatten();
        date.ok_or_else(|| {
            format!("`{text}` is not a date: write the day as YYYY-MM-DD, e.g. `2026-05-01`")
        })
    }
}

impl JsonSchema for PlanDate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PlanDate".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "date",
            "description": "A calendar day, `YYYY-MM-DD`.",
            "examples": ["2026-05-01"]
        })
    }
}

/// `date` plus a calendar span: months and years on the calendar (a month after 31 January
/// is the end of February), then days; hours count as a whole day once they start one, so
/// a schedule is never due earlier than written.
pub fn add_span(date: NaiveDate, span: CalendarSpan) -> NaiveDate {
    let months = span.years.saturating_mul(12).saturating_add(span.months);
    let days = u64::from(span.days) + u64::from(span.hours.div_ceil(24));
    date.checked_add_months(chrono::Months::new(months))
        .and_then(|d| d.checked_add_days(chrono::Days::new(days)))
        .unwrap_or(NaiveDate::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        PlanDate(text.into()).date().unwrap()
    }

    #[test]
    fn spans_are_added_on_the_calendar() {
        let span = |t: &str| t.parse::<CalendarSpan>().unwrap();
        assert_eq!(add_span(day("2026-08-31"), span("6mo")), day("2027-02-28"));
        assert_eq!(add_span(day("2024-02-29"), span("1y")), day("2025-02-28"));
        assert_eq!(add_span(day("2026-01-01"), span("2w")), day("2026-01-15"));
        assert_eq!(add_span(day("2026-01-01"), span("25h")), day("2026-01-03"));
    }

    #[test]
    fn only_a_real_day_in_iso_form_is_a_date() {
        for bad in [
            "2026-5-01",
            "2026-02-30",
            "01/05/2026",
            "2026-05-01T00:00:00Z",
            "",
        ] {
            let error = PlanDate(bad.into()).date().unwrap_err();
            assert!(error.contains("write the day as YYYY-MM-DD"), "{error}");
        }
    }
}
