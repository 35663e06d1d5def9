//! Keeping the recovery plan alive: whether its review is overdue and whether a rehearsal
//! happened within the training interval, for `planrun status`; and the rehearsals recorded
//! in the state directory, which `planrun runbook` prints too.

use std::io::Read;
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use crate::plan::{Plan, add_span};

/// One line of health about the recovery plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthFinding {
    /// What was checked: `recovery plan review`, `recovery rehearsal`.
    pub what: String,
    pub overdue: bool,
    /// The dates behind the answer, for a person.
    pub detail: String,
}

/// A rehearsal (`planrun recover --rehearse`) as its incident record tells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rehearsal {
    /// The incident folder's name.
    pub id: String,
    pub level: Option<String>,
    pub started: DateTime<Utc>,
    pub status: Option<String>,
}

impl Rehearsal {
    /// `2026-03-02 (level 2, completed)`, in the plan's time zone.
    pub fn describe(&self, zone: chrono_tz::Tz) -> String {
        let mut about = Vec::new();
        if let Some(level) = &self.level {
            about.push(format!("level {level}"));
        }
        if let Some(status) = &self.status {
            about.push(status.clone());
        }
        let day = self.started.with_timezone(&zone).date_naive();
        if about.is_empty() {
            day.to_string()
        } else {
            format!("{day} ({})", about.join(", "))
        }
    }
}

/// An incident record is small; anything bigger is not one planrun wrote.
const RECORD_LIMIT: u64 = 4 << 20;

/// The rehearsals of plan `plan` in `<state_dir>/incidents/*/incident.json`, newest first.
/// Records are read leniently (only `rehearsal`, `level`, `started`, `status` and `plan`),
/// since `planrun recover` owns their format: a record that does not parse, or names
/// another plan, is passed over. A missing folder means none.
pub fn rehearsals(state_dir: &Path, plan: &str) -> Vec<Rehearsal> {
    let Ok(entries) = std::fs::read_dir(state_dir.join("incidents")) else {
        return Vec::new();
    };
    let mut found: Vec<Rehearsal> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let id = entry.file_name().to_string_lossy().into_owned();
            let mut text = String::new();
            std::fs::File::open(entry.path().join("incident.json"))
                .ok()?
                .take(RECORD_LIMIT)
                .read_to_string(&mut text)
                .ok()?;
            rehearsal_from(id, &serde_json::from_str(&text).ok()?, plan)
        })
        .collect();
    found.sort_by(|a, b| b.started.cmp(&a.started).then_with(|| b.id.cmp(&a.id)));
    found
}

fn rehearsal_from(id: String, record: &Value, plan: &str) -> Option<Rehearsal> {
    if record.get("rehearsal").and_then(Value::as_bool) != Some(true) {
        return None;
    }
    let named = match record.get("plan") {
        Some(Value::String(name)) => Some(name.as_str()),
        Some(other) => other.get("name").and_then(Value::as_str),
        None => None,
    };
    if named.is_some_and(|name| name != plan) {
        return None;
    }
    let started = record
        .get("started")
        .or_else(|| record.get("started_at"))
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())?
        .with_timezone(&Utc);
    let level = match record.get("level") {
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    let status = record
        .get("status")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(Rehearsal {
        id,
        level,
        started,
        status,
    })
}

/// The plan's time zone (its `timezone`, else UTC): the days of reviews and rehearsals are
/// the days the team lives in.
pub fn plan_zone(plan: &Plan) -> chrono_tz::Tz {
    plan.timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(chrono_tz::Tz::UTC)
}

/// The review and training findings of a plan, as of `now`: one row for each of
/// `recovery.review` and `recovery.training` the plan sets. A review is overdue once `last` +
/// `every` has passed; training is overdue when no rehearsal of this plan started within
/// `every` (any level, whatever its outcome: the team practised).
pub fn findings(plan: &Plan, state_dir: &Path, now: DateTime<Utc>) -> Vec<HealthFinding> {
    let Some(recovery) = &plan.recovery else {
        return Vec::new();
    };
    let zone = plan_zone(plan);
    let today = now.with_timezone(&zone).date_naive();
    let mut out = Vec::new();
    if let Some(review) = &recovery.review
        && let (Ok(last), Some(due)) = (review.last.date(), review.due())
    {
        out.push(HealthFinding {
            what: "recovery plan review".into(),
            overdue: due < today,
            detail: format!(
                "last reviewed {last}, every {}: {}",
                review.every,
                due_words(due, today)
            ),
        });
    }
    if let Some(training) = &recovery.training {
        let newest = rehearsals(state_dir, &plan.name).into_iter().next();
        let finding = match newest {
            None => HealthFinding {
                what: "recovery rehearsal".into(),
                overdue: true,
                detail: format!(
                    "no rehearsal recorded; training every {}: run `planrun recover --level N --rehearse`",
                    training.every
                ),
            },
            Some(rehearsal) => {
                let day = rehearsal.started.with_timezone(&zone).date_naive();
                let due = add_span(day, training.every);
                HealthFinding {
                    what: "recovery rehearsal".into(),
                    overdue: due < today,
                    detail: format!(
                        "last rehearsal {}, every {}: {}",
                        rehearsal.describe(zone),
                        training.every,
                        due_words(due, today)
                    ),
                }
            }
        };
        out.push(finding);
    }
    out
}

/// `next due 2027-04-15`, `due today`, or `due 2026-07-10, 143 days ago`.
fn due_words(due: NaiveDate, today: NaiveDate) -> String {
    let late = (today - due).num_days();
    match late {
        ..0 => format!("next due {due}"),
        0 => format!("due today ({due})"),
        1 => format!("due {due}, 1 day ago"),
        n => format!("due {due}, {n} days ago"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(recovery: &str) -> Plan {
        let yaml = format!(
            "version: 1\nname: crm\ntimezone: America/Sao_Paulo\nrecovery:\n{recovery}  levels: {{}}\n"
        );
        serde_saphyr::from_str(&yaml).unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn incident(state: &Path, id: &str, record: Value) {
        std::fs::create_dir_all(state.join("incidents").join(id)).unwrap();
        std::fs::write(
            state.join("incidents").join(id).join("incident.json"),
            record.to_string(),
        )
        .unwrap();
    }

    #[test]
    fn a_review_is_overdue_the_day_after_it_was_due_in_the_plans_zone() {
        let p = plan("  review: { every: 6mo, last: 2026-05-31 }\n");
        let state = tempfile::tempdir().unwrap();
        let on = |now| findings(&p, state.path(), at(now));
        assert_eq!(
            on("2026-11-30T12:00:00Z"),
            [HealthFinding {
                what: "recovery plan review".into(),
                overdue: false,
                detail: "last reviewed 2026-05-31, every 6mo: due today (2026-11-30)".into(),
            }]
        );
        // 01:00 UTC on 1 December is still 30 November in São Paulo.
        assert!(!on("2026-12-01T01:00:00Z")[0].overdue);
        let late = &on("2026-12-02T12:00:00Z")[0];
        assert!(late.overdue);
        assert_eq!(
            late.detail,
            "last reviewed 2026-05-31, every 6mo: due 2026-11-30, 2 days ago"
        );
    }

    #[test]
    fn training_counts_the_newest_rehearsal_of_this_plan_only() {
        let p = plan("  training: { every: 1y }\n");
        let state = tempfile::tempdir().unwrap();
        let now = at("2026-11-30T12:00:00Z");
        assert_eq!(
            findings(&p, state.path(), now)[0].detail,
            "no rehearsal recorded; training every 1y: run `planrun recover --level N --rehearse`"
        );
        assert!(findings(&p, state.path(), now)[0].overdue);
        incident(
            state.path(),
            "a",
            serde_json::json!({"rehearsal": false, "level": 2, "started": "2026-11-01T10:00:00Z"}),
        );
        incident(
            state.path(),
            "b",
            serde_json::json!({"rehearsal": true, "plan": "other", "started": "2026-11-01T10:00:00Z"}),
        );
        incident(
            state.path(),
            "c",
            serde_json::json!({"rehearsal": true, "plan": {"name": "crm"}, "level": 2,
                "started": "2025-11-20T10:00:00Z", "status": "completed", "extra": [1]}),
        );
        std::fs::create_dir_all(state.path().join("incidents/d")).unwrap();
        std::fs::write(state.path().join("incidents/d/incident.json"), "{not json").unwrap();
        let found = findings(&p, state.path(), now);
        assert_eq!(
            found[0].detail,
            "last rehearsal 2025-11-20 (level 2, completed), every 1y: due 2026-11-20, 10 days ago"
        );
        assert!(found[0].overdue);
        incident(
            state.path(),
            "e",
            serde_json::json!({"rehearsal": true, "level": "1", "started": "2026-06-01T10:00:00Z", "status": "aborted"}),
        );
        let found = findings(&p, state.path(), now);
        assert!(!found[0].overdue);
        assert_eq!(
            found[0].detail,
            "last rehearsal 2026-06-01 (level 1, aborted), every 1y: next due 2027-06-01"
        );
    }
}
