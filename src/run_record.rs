//! `RunRecord`: `<state>/runs/<run-id>.json`, what a run did, kept up to date as it goes and
//! always replaced atomically, so that `cat` and `jq` see a whole record even mid-run.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Attempt, Event, Outcome, Phase, RunStatus};
use crate::lock;
use crate::plan::OnFailure;
use crate::state_dir::StateDir;

/// The record format version, bumped when a field changes meaning.
pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: u32,
    pub run_id: String,
    pub plan: String,
    pub digest: String,
    pub file: PathBuf,
    pub planrun_version: String,
    pub host: String,
    pub pid: u32,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    pub status: RunStatus,
    #[serde(default)]
    pub exit_code: Option<i32>,
    pub steps: Vec<StepRecord>,
    /// What went wrong without changing the outcome: a notification or healthchecks ping
    /// that could not be sent, a step that failed under `on_failure: ignore`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub phase: Phase,
    #[serde(default)]
    pub kind: Option<String>,
    /// `None` while it runs.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    pub attempts: Vec<Attempt>,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot write run record {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read run record {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("run record {} is not valid: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
}

impl RunRecord {
    /// A record from a run's first event; `None` for any other event.
    pub fn from_start(event: &Event) -> Option<RunRecord> {
        let Event::RunStarted {
            run_id,
            plan,
            digest,
            file,
            planrun_version,
            host,
            pid,
            at,
            ..
        } = event
        else {
            return None;
        };
        Some(RunRecord {
            format: FORMAT,
            run_id: run_id.clone(),
            plan: plan.clone(),
            digest: digest.clone(),
            file: file.clone(),
            planrun_version: planrun_version.clone(),
            host: host.clone(),
            pid: *pid,
            started_at: *at,
            finished_at: None,
            duration_ms: None,
            status: RunStatus::Running,
            exit_code: None,
            steps: Vec::new(),
            warnings: Vec::new(),
        })
    }

    /// Folds an event in; returns whether the record changed in a way worth writing now
    /// (a step ended, or the run did). Output lines never change it.
    pub fn apply(&mut self, event: &Event) -> bool {
        match event {
            Event::StepStarted {
                step,
                phase,
                kind,
                at,
                ..
            } => {
                let record = self.step_mut(step, *phase);
                record.kind = Some(kind.clone());
                record.started_at = Some(*at);
                false
            }
            Event::AttemptFinished {
                step,
                phase,
                attempt,
            } => {
                self.step_mut(step, *phase).attempts.push(attempt.clone());
                attempt.retry_in_ms.is_some()
            }
            Event::StepFinished {
                step,
                phase,
                outcome,
                duration_ms,
                reason,
                on_failure,
                ..
            } => {
                let record = self.step_mut(step, *phase);
                record.outcome = Some(*outcome);
                record.duration_ms = Some(*duration_ms);
                record.reason.clone_from(reason);
                if outcome.is_failure() && *on_failure == OnFailure::Ignore {
                    self.warnings.push(format!(
                        "step `{step}` {}: {}",
                        outcome.as_str(),
                        reason.as_deref().unwrap_or("no reason given")
                    ));
                }
                true
            }
            Event::StepRolledBack { step } => {
                self.step_mut(step, Phase::Steps).outcome = Some(Outcome::RolledBack);
                true
            }
            Event::RunFinished {
                status,
                exit_code,
                at,
                duration_ms,
            } => {
                self.status = *status;
                self.exit_code = Some(*exit_code);
                self.finished_at = Some(*at);
                self.duration_ms = Some(*duration_ms);
                true
            }
            _ => false,
        }
    }

    fn step_mut(&mut self, id: &str, phase: Phase) -> &mut StepRecord {
        let index = match self
            .steps
            .iter()
            .position(|s| s.id == id && s.phase == phase)
        {
            Some(index) => index,
            None => {
                self.steps.push(StepRecord {
                    id: id.to_owned(),
                    phase,
                    kind: None,
                    outcome: None,
                    reason: None,
                    started_at: None,
                    duration_ms: None,
                    attempts: Vec::new(),
                });
                self.steps.len() - 1
            }
        };
        &mut self.steps[index]
    }

    /// Writes the record: temp file, fsync, rename over the old one, fsync the folder.
    pub fn save(&self, state: &StateDir) -> Result<(), RecordError> {
        let path = state.run_record(&self.run_id);
        let text = serde_json::to_vec_pretty(self).unwrap_or_default();
        write_atomically(&path, &text).map_err(|source| RecordError::Write { path, source })
    }

    pub fn load(path: &Path) -> Result<RunRecord, RecordError> {
        let text = std::fs::read(path).map_err(|source| RecordError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&text).map_err(|source| RecordError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The status to show: a record still `running` whose run no longer holds the plan's lock
    /// (its process is gone, or a later run took the lock) is `abandoned`.
    pub fn effective_status(&self, state: &StateDir) -> RunStatus {
        if self.status != RunStatus::Running {
            return self.status;
        }
        match lock::last_holder(&state.lock(&self.plan)) {
            Some(holder) if holder.run_id == self.run_id => {
                let this_host = nix::unistd::gethostname()
                    .map(|h| h.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // On another host (a shared state directory) the pid cannot be checked here.
                if holder.host != this_host || process_alive(holder.pid) {
                    RunStatus::Running
                } else {
                    RunStatus::Abandoned
                }
            }
            _ => RunStatus::Abandoned,
        }
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM still means the process exists.
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// Replaces `path` with `bytes` so that readers and crashes see the old or the new content,
/// never a mix: temp name in the same folder, fsync, rename, fsync the folder.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = folder.join(format!(".{name}.tmp"));
    let mut file = File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    File::open(folder)?.sync_all()
}

/// Every record in the state directory, newest first (run ids sort by time). Unreadable
/// records are returned as errors beside the good ones rather than hiding them.
pub fn list(state: &StateDir) -> (Vec<RunRecord>, Vec<RecordError>) {
    let mut records = Vec::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(state.runs()) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return (records, errors),
        Err(source) => {
            errors.push(RecordError::Read {
                path: state.runs(),
                source,
            });
            return (records, errors);
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_record = path.extension().is_some_and(|e| e == "json")
            && !entry.file_name().to_string_lossy().starts_with('.');
        if is_record {
            match RunRecord::load(&path) {
                Ok(record) => records.push(record),
                Err(error) => errors.push(error),
            }
        }
    }
    records.sort_by(|a, b| (b.started_at, &b.run_id).cmp(&(a.started_at, &a.run_id)));
    (records, errors)
}
