//! `planrun status PLAN`: the plan's health from the state directory and its storages: the
//! last run and the last success, the newest restorable set of each storage against the RPO,
//! and the last passing drill against `drill.max_age`. Exit 1 when anything is overdue,
//! failed or missing.
//!
//! The findings are typed rows ([`Finding`]) decided by one pure function ([`findings`])
//! from what was read and `now`; another health check is one more [`Subject`] and a few
//! lines there.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{CommandResult, Console, rendered_plan};
use crate::cli::StatusArgs;
use crate::drill::report::{self as drill_report, DrillResult, millis};
use crate::event::RunStatus;
use crate::exit_code;
use crate::run_record::{self, RunRecord};
use crate::state_dir::StateDir;
use crate::storage::{SetSummary, newest_restorable_with_all};

/// How long a passing drill counts when the plan does not say.
pub const DEFAULT_DRILL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(35 * 86400);

/// What a finding is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "check", content = "subject")]
pub enum Subject {
    LastRun,
    LastSuccess,
    /// The newest restorable set of one storage.
    NewestSet(String),
    LastDrill,
    /// The recovery plan's upkeep: `recovery plan review`, `recovery rehearsal`.
    Recovery(String),
}

impl Subject {
    fn label(&self) -> String {
        match self {
            Subject::LastRun => "last run".into(),
            Subject::LastSuccess => "last success".into(),
            Subject::NewestSet(storage) => format!("newest set ({storage})"),
            Subject::LastDrill => "last passing drill".into(),
            Subject::Recovery(what) => what.clone(),
        }
    }
}

/// Where a finding stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Ok,
    /// Older than its limit.
    Overdue,
    /// Never happened.
    Missing,
    /// Happened and failed, or could not be read.
    Failed,
}

impl Health {
    fn as_str(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::Overdue => "OVERDUE",
            Health::Missing => "MISSING",
            Health::Failed => "FAILED",
        }
    }
}

/// One row of the status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    #[serde(flatten)]
    pub subject: Subject,
    pub health: Health,
    pub detail: String,
    /// When it happened.
    pub at: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    /// The limit the age is held to.
    pub limit_seconds: Option<i64>,
}

/// A storage's listing, or why it could not be read.
pub type Listing = Result<Vec<SetSummary>, String>;

/// Everything status reads, gathered before deciding.
pub struct Observed<'a> {
    pub runs: &'a [RunRecord],
    pub storages: &'a [(String, Listing)],
    /// The plan's sources: a storage's newest set counts only when it holds every one, so a
    /// night that backed up only some of them does not make a stale source look fresh.
    pub sources: &'a [&'a str],
    /// `None` when the plan has no `drill:` section.
    pub drills: Option<&'a [drill_report::DrillReport]>,
    pub rpo: Option<std::time::Duration>,
    pub drill_max_age: std::time::Duration,
    /// The review and training of `recovery:`, as `recovery_health` found them.
    pub recovery: &'a [crate::recovery_health::HealthFinding],
}

/// The findings, in a fixed order, from what was observed and `now`.
pub fn findings(observed: &Observed<'_>, now: DateTime<Utc>) -> Vec<Finding> {
    let limit = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let aged = |subject: Subject, at: DateTime<Utc>, max: Option<i64>, what: String| {
        let age = (now - at).num_seconds().max(0);
        let over = max.is_some_and(|m| age > m);
        let bound = max
            .map(|m| format!(" (limit {})", millis(m as u64 * 1000)))
            .unwrap_or_default();
        Finding {
            subject,
            health: if over { Health::Overdue } else { Health::Ok },
            detail: format!("{what}, {} ago{bound}", millis(age as u64 * 1000)),
            at: Some(at),
            age_seconds: Some(age),
            limit_seconds: max,
        }
    };
    let missing = |subject: Subject, detail: &str, health: Health| Finding {
        subject,
        health,
        detail: detail.to_owned(),
        at: None,
        age_seconds: None,
        limit_seconds: None,
    };
    let rpo = observed.rpo.map(limit);
    let mut out = Vec::new();
    match observed.runs.first() {
        Some(run) => {
            let mut finding = aged(
                Subject::LastRun,
                run.started_at,
                None,
                format!("{} {}", run.run_id, run.status.as_str()),
            );
            // A partial run left a source without its backup: not a healthy night.
            if matches!(
                run.status,
                RunStatus::Failed
                    | RunStatus::Partial
                    | RunStatus::Interrupted
                    | RunStatus::Abandoned
            ) {
                finding.health = Health::Failed;
            }
            out.push(finding);
        }
        None => out.push(missing(
            Subject::LastRun,
            "no run recorded",
            Health::Missing,
        )),
    }
    match observed
        .runs
        .iter()
        .find(|r| r.status == RunStatus::Succeeded)
    {
        Some(run) => out.push(aged(
            Subject::LastSuccess,
            run.started_at,
            rpo,
            run.run_id.clone(),
        )),
        None => out.push(missing(
            Subject::LastSuccess,
            "no successful run recorded",
            Health::Missing,
        )),
    }
    for (storage, listing) in observed.storages {
        let subject = Subject::NewestSet(storage.clone());
        match listing {
            Ok(sets) => match newest_restorable_with_all(sets, observed.sources) {
                Some(set) => out.push(aged(
                    subject,
                    set.id.started_at(),
                    rpo,
                    format!("{} {}", set.id, set.status),
                )),
                None => out.push(missing(
                    subject,
                    "no restorable set holds every source",
                    Health::Missing,
                )),
            },
            Err(error) => out.push(missing(subject, error, Health::Failed)),
        }
    }
    if let Some(drills) = observed.drills {
        let passing = drills
            .iter()
            .find(|d| matches!(d.result, DrillResult::Passed | DrillResult::OverObjective));
        match passing {
            Some(drill) => out.push(aged(
                Subject::LastDrill,
                drill.started_at,
                Some(limit(observed.drill_max_age)),
                format!("{} {}", drill.drill_id, drill.result.as_str()),
            )),
            None => out.push(missing(
                Subject::LastDrill,
                "no passing drill recorded",
                Health::Missing,
            )),
        }
    }
    for upkeep in observed.recovery {
        let mut finding = missing(
            Subject::Recovery(upkeep.what.clone()),
            &upkeep.detail,
            Health::Overdue,
        );
        if !upkeep.overdue {
            finding.health = Health::Ok;
        }
        out.push(finding);
    }
    out
}

pub fn run(args: &StatusArgs, console: &mut Console) -> CommandResult {
    let loaded = rendered_plan::load(&args.input.plan, console)?;
    let plan = rendered_plan::render_loaded(&loaded, &args.input, true, console)?;
    let state = StateDir::existing(StateDir::locate(args.state.state_dir.as_deref())?);
    let recovery = crate::recovery_health::findings(&loaded.plan, state.root(), Utc::now());
    let (records, errors) = run_record::list(&state);
    for error in &errors {
        console.notice(format_args!("warning: {error}"));
    }
    let mut runs: Vec<RunRecord> = records
        .into_iter()
        .filter(|r| r.plan == plan.name)
        .collect();
    for run in &mut runs {
        run.status = run.effective_status(&state);
    }
    runs.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    let runtime = rendered_plan::runtime()?;
    let storages: Vec<(String, Listing)> = runtime.block_on(async {
        let mut out = Vec::new();
        for (name, storage) in &plan.storage {
            let listing = match crate::storage::Store::open(name, storage) {
                Ok(store) => store.list_sets(&plan.name).await.map_err(|e| e.to_string()),
                Err(error) => Err(error.to_string()),
            };
            out.push((name.clone(), listing));
        }
        out
    });
    let drills = plan.drill.as_ref().map(|_| {
        let (reports, errors) = drill_report::list(&state);
        for error in &errors {
            console.notice(format_args!("warning: {error}"));
        }
        reports
            .into_iter()
            .filter(|r| r.plan == plan.name)
            .collect::<Vec<_>>()
    });
    let sources: Vec<&str> = plan.sources.iter().map(|(name, _)| name.as_str()).collect();
    let observed = Observed {
        runs: &runs,
        storages: &storages,
        sources: &sources,
        drills: drills.as_deref(),
        rpo: plan
            .objectives
            .as_ref()
            .and_then(|o| o.rpo)
            .map(|d| d.as_std()),
        drill_max_age: plan
            .drill
            .as_ref()
            .and_then(|d| d.max_age)
            .map_or(DEFAULT_DRILL_MAX_AGE, |d| d.as_std()),
        recovery: &recovery,
    };
    let found = findings(&observed, Utc::now());
    let healthy = found.iter().all(|f| f.health == Health::Ok);
    if args.json {
        let document = serde_json::json!({
            "plan": plan.name,
            "healthy": healthy,
            "findings": found,
        });
        let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
        text.push('\n');
        console.out(&text);
    } else {
        let width = found
            .iter()
            .map(|f| f.subject.label().chars().count())
            .max()
            .unwrap_or(0);
        let mut text = format!("plan {}\n", plan.name);
        for f in &found {
            text.push_str(&format!(
                "  {:<width$}  {:<7}  {}\n",
                f.subject.label(),
                f.health.as_str(),
                f.detail
            ));
        }
        text.push_str(if healthy {
            "healthy\n"
        } else {
            "needs attention\n"
        });
        console.out(&text);
    }
    Ok(if healthy {
        exit_code::SUCCESS
    } else {
        exit_code::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::report::{DrillReport, Timing};

    fn drill(started: &str, result: DrillResult) -> DrillReport {
        let at: DateTime<Utc> = started.parse().unwrap();
        DrillReport {
            format: 1,
            drill_id: "d".into(),
            plan: "crm".into(),
            plan_file: "p".into(),
            plan_digest: "x".into(),
            host: "h".into(),
            started_at: at,
            finished_at: at,
            storage: None,
            set: None,
            set_started_at: None,
            restore: Timing::default(),
            set_age: None,
            checks: Vec::new(),
            result,
            failure: None,
            kept: Vec::new(),
            cleanup: Vec::new(),
        }
    }

    #[test]
    fn the_last_passing_drill_is_held_to_its_max_age() {
        let now: DateTime<Utc> = "2026-03-01T00:00:00Z".parse().unwrap();
        let upkeep = [
            crate::recovery_health::HealthFinding {
                what: "recovery plan review".into(),
                overdue: true,
                detail: "last 2025-06-01, due 2025-12-01".into(),
            },
            crate::recovery_health::HealthFinding {
                what: "recovery rehearsal".into(),
                overdue: false,
                detail: "last 2026-02-01".into(),
            },
        ];
        let drills = [
            drill("2026-02-28T00:00:00Z", DrillResult::Failed),
            drill("2026-01-20T00:00:00Z", DrillResult::Passed),
        ];
        let observed = Observed {
            runs: &[],
            storages: &[("local".into(), Err("unreachable".into()))],
            sources: &["db"],
            drills: Some(&drills),
            rpo: None,
            drill_max_age: DEFAULT_DRILL_MAX_AGE,
            recovery: &upkeep,
        };
        let found = findings(&observed, now);
        let rows: Vec<(String, Health)> = found
            .iter()
            .map(|f| (f.subject.label(), f.health))
            .collect();
        assert_eq!(
            rows,
            [
                ("last run".into(), Health::Missing),
                ("last success".into(), Health::Missing),
                ("newest set (local)".into(), Health::Failed),
                ("last passing drill".into(), Health::Overdue),
                ("recovery plan review".into(), Health::Overdue),
                ("recovery rehearsal".into(), Health::Ok),
            ]
        );
        assert_eq!(found[3].age_seconds, Some(40 * 86400));
        assert_eq!(found[3].limit_seconds, Some(35 * 86400));
        let fresh = [drill("2026-02-20T00:00:00Z", DrillResult::OverObjective)];
        let observed = Observed {
            drills: Some(&fresh),
            ..observed
        };
        assert_eq!(findings(&observed, now)[3].health, Health::Ok);
    }
}
