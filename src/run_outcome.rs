//! `RunOutcome`: how a run went, as `on_failure` and `always` templates, notifications,
//! healthchecks pings and metrics see it: status, failed steps, duration, the set the run
//! committed, and the data-loss window (the age of the newest off-site set).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::event::{Outcome, Phase, RunStatus};
use crate::exec_plan::ExecPlan;
use crate::plan::Storage;
use crate::storage::{Store, newest_restorable_with_all};

/// How long finding the newest off-site set may take: it lists every S3 storage, and the
/// run's cleanup (and its notifications) must not wait on a slow bucket.
pub const OFFSITE_LOOKUP_LIMIT: Duration = Duration::from_secs(15);

/// One step's end, in the order steps ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepTiming {
    pub id: String,
    pub phase: Phase,
    pub outcome: Outcome,
    pub duration_ms: u64,
}

/// The backup set this run committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedSet {
    pub id: String,
    pub storage: String,
    pub bytes: u64,
    pub sources: Vec<String>,
}

/// The newest restorable set on any off-site (S3) storage: what survives losing the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsiteSet {
    pub storage: String,
    pub id: String,
    /// When its backup started: data written after this is what a disaster loses.
    pub started_at: DateTime<Utc>,
}

/// How a run went, or how it is going when `status` is still `running`.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    pub status: RunStatus,
    pub duration: Duration,
    pub steps: Vec<StepTiming>,
    pub set: Option<CommittedSet>,
    /// `None` when the plan has no off-site storage, none holds a restorable set, or the
    /// storages could not be listed in time: the window is then unknown.
    pub offsite: Option<OffsiteSet>,
}

impl RunOutcome {
    /// A run that has not started: what templates are first rendered (and checked) with.
    pub fn not_started() -> Self {
        RunOutcome {
            status: RunStatus::Running,
            duration: Duration::ZERO,
            steps: Vec::new(),
            set: None,
            offsite: None,
        }
    }

    /// The steps that did not do their job (failed, timed out or cancelled), in order.
    pub fn failed_steps(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for step in self.steps.iter().filter(|s| s.outcome.is_failure()) {
            if !ids.contains(&step.id.as_str()) {
                ids.push(&step.id);
            }
        }
        ids
    }

    /// The age of the newest off-site set at `now`.
    pub fn data_loss_window(&self, now: DateTime<Utc>) -> Option<Duration> {
        self.offsite
            .as_ref()
            .map(|o| (now - o.started_at).to_std().unwrap_or_default())
    }

    /// The keys this outcome adds to the template root `run` (see [`TEMPLATE_KEYS`]).
    pub fn template_keys(&self, now: DateTime<Utc>) -> serde_json::Map<String, Value> {
        let set = self.set.as_ref();
        let value = json!({
            "status": self.status.as_str(),
            "failed_steps": self.failed_steps().join(", "),
            "duration": whole_seconds(self.duration),
            "duration_seconds": self.duration.as_secs(),
            "set": {
                "id": set.map(|s| s.id.as_str()).unwrap_or_default(),
                "bytes": set.map_or(0, |s| s.bytes),
                "sources": set.map(|s| s.sources.join(", ")).unwrap_or_default(),
            },
            "data_loss_window": self
                .data_loss_window(now)
                .map_or_else(|| "unknown".to_owned(), whole_seconds),
            "offsite_set": self.offsite.as_ref().map(|o| o.id.as_str()).unwrap_or_default(),
        });
        match value {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    /// The JSON summary a `notify` step posts.
    pub fn summary(&self, plan: &ExecPlan, message: &str, now: DateTime<Utc>) -> Value {
        json!({
            "plan": plan.name,
            "run_id": plan.run_id,
            "host": crate::host::hostname(),
            "status": self.status.as_str(),
            "message": message,
            "duration_seconds": self.duration.as_secs_f64(),
            "failed_steps": self.failed_steps(),
            "steps": self.steps.iter().map(|s| json!({
                "id": s.id,
                "phase": s.phase.as_str(),
                "outcome": s.outcome.as_str(),
                "duration_seconds": s.duration_ms as f64 / 1000.0,
            })).collect::<Vec<_>>(),
            "set": self.set.as_ref().map(|s| json!({
                "id": s.id,
                "storage": s.storage,
                "bytes": s.bytes,
                "sources": s.sources,
            })),
            "offsite": self.offsite.as_ref().map(|o| json!({
                "storage": o.storage,
                "set": o.id,
                "started_at": o.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
                "age_seconds": self.data_loss_window(now).map_or(0, |d| d.as_secs()),
            })),
        })
    }

    /// One line for people (a chat message): what happened, what failed, what is safe.
    pub fn line(&self, plan: &ExecPlan, message: &str, now: DateTime<Utc>) -> String {
        let mut text = format!(
            "planrun `{}` run {} on {}: {} in {}",
            plan.name,
            plan.run_id,
            crate::host::hostname(),
            self.status.as_str(),
            whole_seconds(self.duration)
        );
        let failed = self.failed_steps();
        if !failed.is_empty() {
            text.push_str(&format!("; failed: {}", failed.join(", ")));
        }
        if let Some(set) = &self.set {
            text.push_str(&format!("; set {} ({} bytes)", set.id, set.bytes));
        }
        match self.data_loss_window(now) {
            Some(age) => {
                text.push_str(&format!("; newest off-site set {} old", whole_seconds(age)))
            }
            None => text.push_str("; no off-site set known"),
        }
        if !message.is_empty() {
            text.push_str(&format!(": {message}"));
        }
        text
    }
}

/// The keys [`RunOutcome::template_keys`] adds under `run`; `set` and nothing else has
/// keys of its own ([`SET_KEYS`]).
pub const TEMPLATE_KEYS: [&str; 7] = [
    "status",
    "failed_steps",
    "duration",
    "duration_seconds",
    "set",
    "data_loss_window",
    "offsite_set",
];
/// The keys of `run.set`.
pub const SET_KEYS: [&str; 3] = ["id", "bytes", "sources"];

/// `1h2m3s`: a duration to the second, as plans write them.
fn whole_seconds(duration: Duration) -> String {
    crate::duration::Duration(Duration::from_secs(duration.as_secs())).to_string()
}

/// The newest restorable set on the plan's off-site (S3) storages, found within
/// [`OFFSITE_LOOKUP_LIMIT`]; `None` when there is none or it cannot be known in time.
pub async fn newest_offsite(plan: &ExecPlan) -> Option<OffsiteSet> {
    let lookup = async {
        let mut newest: Option<OffsiteSet> = None;
        for (name, storage) in &plan.storage {
            if !matches!(storage, Storage::S3(_)) {
                continue;
            }
            let Ok(store) = Store::open(name, storage) else {
                continue;
            };
            let Ok(sets) = store.list_sets(&plan.name).await else {
                continue;
            };
            let Some(set) = newest_restorable_with_all(&sets, &[]) else {
                continue;
            };
            let started_at = set
                .manifest
                .as_ref()
                .map_or_else(|| set.id.started_at(), |m| m.started_at);
            if newest.as_ref().is_none_or(|n| n.started_at < started_at) {
                newest = Some(OffsiteSet {
                    storage: name.clone(),
                    id: set.id.to_string(),
                    started_at,
                });
            }
        }
        newest
    };
    tokio::time::timeout(OFFSITE_LOOKUP_LIMIT, lookup)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> RunOutcome {
        RunOutcome {
            status: RunStatus::Failed,
            duration: Duration::from_millis(63_400),
            steps: vec![
                StepTiming {
                    id: "db".into(),
                    phase: Phase::Steps,
                    outcome: Outcome::Failed,
                    duration_ms: 1200,
                },
                StepTiming {
                    id: "media".into(),
                    phase: Phase::Steps,
                    outcome: Outcome::Succeeded,
                    duration_ms: 10,
                },
                StepTiming {
                    id: "slow".into(),
                    phase: Phase::Steps,
                    outcome: Outcome::TimedOut,
                    duration_ms: 10,
                },
            ],
            set: None,
            offsite: Some(OffsiteSet {
                storage: "offsite".into(),
                id: "20261129T020000Z-1a2b".into(),
                started_at: "2026-11-29T02:00:00Z".parse().unwrap(),
            }),
        }
    }

    #[test]
    fn templates_see_the_status_the_failures_and_the_data_loss_window() {
        let now: DateTime<Utc> = "2026-11-30T05:30:00Z".parse().unwrap();
        let keys = outcome().template_keys(now);
        assert_eq!(keys["status"], "failed");
        assert_eq!(keys["failed_steps"], "db, slow");
        assert_eq!(keys["duration"], "1m3s");
        assert_eq!(keys["duration_seconds"], 63);
        assert_eq!(keys["set"], json!({"id": "", "bytes": 0, "sources": ""}));
        assert_eq!(keys["data_loss_window"], "1d3h30m");
        assert_eq!(keys["offsite_set"], "20261129T020000Z-1a2b");
        let mut unknown = outcome();
        unknown.offsite = None;
        assert_eq!(unknown.template_keys(now)["data_loss_window"], "unknown");
        let mut names: Vec<&String> = keys.keys().collect();
        names.sort();
        let mut expected = TEMPLATE_KEYS.to_vec();
        expected.sort();
        assert_eq!(names, expected);
    }
}
