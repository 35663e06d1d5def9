//! Events: everything that happens during a run, as data. The engine emits them; reporters,
//! the run log and the run record consume them. Serialized as one JSON object per line.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::plan::OnFailure;
use crate::process::Stream;
use crate::redact::Redactor;
use crate::storage::SetStatus;

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Skipped,
    /// It succeeded, and then its rollback undid it because the run failed.
    RolledBack,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::Cancelled => "cancelled",
            Outcome::Skipped => "skipped",
            Outcome::RolledBack => "rolled_back",
        }
    }

    /// Failed, timed out or cancelled: the step did not do its job.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::TimedOut | Outcome::Cancelled
        )
    }
}

/// How a whole run ended (or that it has not).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Finished, but a step with `on_failure: warn` failed.
    Partial,
    /// Stopped by SIGINT or SIGTERM.
    Interrupted,
    /// Left `running` by a planrun that no longer runs (killed, machine crashed).
    Abandoned,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Partial => "partial",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Abandoned => "abandoned",
        }
    }
}

/// Which part of the run a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Steps,
    Rollback,
    OnFailure,
    Always,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Steps => "steps",
            Phase::Rollback => "rollback",
            Phase::OnFailure => "on_failure",
            Phase::Always => "always",
        }
    }
}

/// One try of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first try.
    pub number: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Why it failed, when an exit code alone does not say (not found, killed, timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The backoff before the next attempt, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_ms: Option<u64>,
}

/// Something that happened during a run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        plan: String,
        digest: String,
        file: PathBuf,
        planrun_version: String,
        host: String,
        pid: u32,
        at: DateTime<Utc>,
        /// The ids of the steps in `steps`, in plan order.
        steps: Vec<String>,
        /// The ids of the `always` steps, which run after them whatever happened.
        always: Vec<String>,
        concurrency: usize,
    },
    /// Cleanup begins: rollback, the plan's `on_failure`, or `always`.
    PhaseStarted { phase: Phase, reason: String },
    StepStarted {
        step: String,
        phase: Phase,
        kind: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        at: DateTime<Utc>,
    },
    StepOutput {
        step: String,
        stream: Stream,
        line: String,
    },
    AttemptFinished {
        step: String,
        phase: Phase,
        attempt: Attempt,
    },
    StepFinished {
        step: String,
        phase: Phase,
        outcome: Outcome,
        on_failure: OnFailure,
        attempts: u32,
        duration_ms: u64,
        /// Why it was skipped or failed.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A completed step's rollback steps all succeeded.
    StepRolledBack { step: String },
    /// A signal arrived: nothing new starts and running steps are being stopped.
    Cancelling { signal: String },
    /// This run's backup set was never committed (a backup failed or the run was stopped)
    /// and its folder was removed, or could not be.
    SetAbandoned {
        path: PathBuf,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A backup step wrote one artifact into this run's set (not yet committed).
    ArtifactWritten {
        step: String,
        source: String,
        name: String,
        bytes: u64,
        sha256: String,
        /// What the source recorded at backup time (row counts, file counts).
        facts: serde_json::Value,
    },
    /// A step did its job but left something out (an unreadable file skipped under
    /// `on_unreadable: warn`, uploads that could not be listed); the run exits 3 for backups.
    StepWarning { step: String, message: String },
    /// This run's backup set got its manifest: from now on it is a backup. `step` is the
    /// backup step that settled last, or none when the engine committed it after the graph
    /// (the last backup steps never started).
    SetCommitted {
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        storage: String,
        set: String,
        /// The sources the set holds.
        sources: Vec<String>,
        /// The plan's sources it lacks; not empty means partial.
        missing: Vec<String>,
        partial: bool,
        artifacts: usize,
        bytes: u64,
    },
    /// A `copy:` step replicated a set, verified, manifest last.
    SetCopied {
        step: String,
        from: String,
        to: String,
        /// Where the copy now is (a folder or an `s3://` prefix).
        location: String,
        set: String,
        /// Artifacts sent in this run, and their bytes.
        artifacts_sent: usize,
        bytes: u64,
        /// Artifacts an earlier, interrupted copy had already stored.
        already_stored: usize,
        /// The destination held the whole set already: nothing was sent.
        already_complete: bool,
        /// Multipart uploads that a killed run had left, now aborted.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        aborted_uploads: Vec<String>,
    },
    /// A `prune:` step decided, for every set of one storage, whether it stays and why.
    PruneDecided {
        step: String,
        storage: String,
        location: String,
        /// Newest first.
        sets: Vec<PruneDecision>,
        /// Why nothing is removed (a damaged set stands where a newest backup should be).
        #[serde(skip_serializing_if = "Option::is_none")]
        refusal: Option<String>,
        /// How each set kept as a source's newest was known intact before anything was
        /// removed (re-hashed now, or a recent verification), one line each.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        checked: Vec<String>,
    },
    /// A `prune:` step removed a set that its decision did not keep.
    SetRemoved {
        step: String,
        storage: String,
        set: String,
    },
    /// A `verify:` step re-hashed a stored set and every artifact matched its manifest.
    SetVerified {
        step: String,
        storage: String,
        set: String,
        artifacts: usize,
    },
    /// A `restore:` step restored a source from a verified set.
    RestoreFinished {
        step: String,
        source: String,
        set: String,
        /// Where the data went (`database crm`, `/srv/crm/media`).
        target: String,
        /// What the restored data holds, to compare with the facts recorded at backup time.
        facts: serde_json::Value,
        /// Where the replaced state was kept (`recover` keeps it as `…_before_<incident>`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kept: Option<String>,
    },
    /// A `notify:` step sent the run's state to its webhook (`status`), or had no webhook
    /// and sent nothing (`status` absent).
    Notified {
        step: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        #[serde(skip_serializing_if = "String::is_empty")]
        message: String,
    },
    RunFinished {
        status: RunStatus,
        exit_code: i32,
        at: DateTime<Utc>,
        duration_ms: u64,
    },
}

/// One row of a prune decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PruneDecision {
    pub set: String,
    pub status: SetStatus,
    pub keep: bool,
    /// Why it is kept (`db, media: last`) or nothing, when it is removed.
    pub reasons: Vec<String>,
}

impl Event {
    /// The event with every text a child or an error could have put a secret in masked.
    pub fn redacted(self, redactor: &Redactor) -> Event {
        if redactor.is_empty() {
            return self;
        }
        match self {
            Event::StepOutput { step, stream, line } => Event::StepOutput {
                step,
                stream,
                line: redactor.redact_owned(line),
            },
            Event::AttemptFinished {
                step,
                phase,
                mut attempt,
            } => {
                attempt.error = attempt.error.map(|e| redactor.redact_owned(e));
                Event::AttemptFinished {
                    step,
                    phase,
                    attempt,
                }
            }
            Event::StepFinished {
                step,
                phase,
                outcome,
                on_failure,
                attempts,
                duration_ms,
                reason,
            } => Event::StepFinished {
                step,
                phase,
                outcome,
                on_failure,
                attempts,
                duration_ms,
                reason: reason.map(|r| redactor.redact_owned(r)),
            },
            Event::PhaseStarted { phase, reason } => Event::PhaseStarted {
                phase,
                reason: redactor.redact_owned(reason),
            },
            Event::SetAbandoned { path, error } => Event::SetAbandoned {
                path,
                error: error.map(|e| redactor.redact_owned(e)),
            },
            Event::ArtifactWritten {
                step,
                source,
                name,
                bytes,
                sha256,
                facts,
            } => Event::ArtifactWritten {
                step,
                source,
                name,
                bytes,
                sha256,
                facts: redact_json(redactor, facts),
            },
            Event::StepWarning { step, message } => Event::StepWarning {
                step,
                message: redactor.redact_owned(message),
            },
            Event::SetCopied {
                step,
                from,
                to,
                location,
                set,
                artifacts_sent,
                bytes,
                already_stored,
                already_complete,
                aborted_uploads,
            } => Event::SetCopied {
                step,
                from,
                to,
                location: redactor.redact_owned(location),
                set,
                artifacts_sent,
                bytes,
                already_stored,
                already_complete,
                aborted_uploads: aborted_uploads
                    .into_iter()
                    .map(|k| redactor.redact_owned(k))
                    .collect(),
            },
            Event::PruneDecided {
                step,
                storage,
                location,
                sets,
                refusal,
                checked,
            } => Event::PruneDecided {
                step,
                storage,
                location: redactor.redact_owned(location),
                sets,
                refusal: refusal.map(|r| redactor.redact_owned(r)),
                checked,
            },
            Event::RestoreFinished {
                step,
                source,
                set,
                target,
                facts,
                kept,
            } => Event::RestoreFinished {
                step,
                source,
                set,
                target: redactor.redact_owned(target),
                facts: redact_json(redactor, facts),
                kept: kept.map(|k| redactor.redact_owned(k)),
            },
            Event::Notified {
                step,
                status,
                message,
            } => Event::Notified {
                step,
                status,
                message: redactor.redact_owned(message),
            },
            other => other,
        }
    }
}

/// `value` with every string in it masked: facts come from the data itself (a table or
/// file name), which may hold a secret.
fn redact_json(redactor: &Redactor, value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(text) => Value::String(redactor.redact_owned(text)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| redact_json(redactor, v))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (redactor.redact_owned(k), redact_json(redactor, v)))
                .collect(),
        ),
        other => other,
    }
}

/// Where the engine sends events: a bounded channel, so a slow consumer slows the producers
/// instead of letting events pile up; every event is redacted on the way in.
#[derive(Clone, Debug)]
pub struct Emitter {
    sender: mpsc::Sender<Event>,
    redactor: Arc<Redactor>,
}

/// How many events may wait for the consumer.
pub const EVENT_BUFFER: usize = 4096;

impl Emitter {
    pub fn channel(redactor: Arc<Redactor>) -> (Emitter, mpsc::Receiver<Event>) {
        let (sender, receiver) = mpsc::channel(EVENT_BUFFER);
        (Emitter { sender, redactor }, receiver)
    }

    /// The redactor every event goes through, for a line splitter that must not cut a
    /// secret in two.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub async fn emit(&self, event: Event) {
        // A closed channel means the consumer is gone (planrun is exiting); nothing to do.
        self.sender.send(event.redacted(&self.redactor)).await.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_step_kinds_report_is_masked_at_the_choke_point() {
        let redactor = Redactor::new(&["hunter2".to_owned()]);
        let events = [
            Event::StepWarning {
                step: "media".into(),
                message: "skipped /srv/hunter2.txt".into(),
            },
            Event::RestoreFinished {
                step: "back".into(),
                source: "db".into(),
                set: "s".into(),
                target: "database hunter2".into(),
                facts: serde_json::json!({ "tables": { "hunter2": 3 }, "note": ["x hunter2"] }),
                kept: Some("database hunter2_before_x".into()),
            },
            Event::PruneDecided {
                step: "prune".into(),
                storage: "offsite".into(),
                location: "s3://b/hunter2/crm".into(),
                sets: Vec::new(),
                refusal: Some("set hunter2 is damaged".into()),
                checked: Vec::new(),
            },
            Event::Notified {
                step: "tell".into(),
                status: None,
                message: "pw hunter2".into(),
            },
        ];
        for event in events {
            let text = serde_json::to_string(&event.redacted(&redactor)).unwrap();
            assert!(!text.contains("hunter2"), "{text}");
            assert!(text.contains("***"), "{text}");
        }
    }
}
