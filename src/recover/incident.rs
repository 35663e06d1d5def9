//! The incident record: `<state>/incidents/<id>/incident.json` and `report.md`, rewritten
//! durably (temp file, fsync, rename, fsync of the folder) after every step, so that a
//! recovery can pick up where it stopped after `kill -9` or a reboot, and so that the
//! incident is documented, lessons learned included, whatever happened.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::command::human_age;
use crate::state_dir::StateDir;

/// The record's format; a reader refuses another.
pub const FORMAT: u32 = 1;

/// One incident (or rehearsal) of one plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Incident {
    pub format: u32,
    pub id: String,
    pub plan: PlanInfo,
    pub level: u8,
    pub level_name: String,
    /// A `--rehearse`: restores went to scratch targets, nothing live changed, and nothing
    /// is frozen.
    pub rehearsal: bool,
    /// `open` until `planrun incident close`; an open incident freezes the plan's backups.
    pub status: IncidentStatus,
    /// How far the runbook got.
    pub progress: Progress,
    pub host: String,
    pub user: String,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// The plan's objectives, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_s: Option<u64>,
    pub steps: Vec<StepRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// Scratch targets of a rehearsal still to be removed (removed at its end).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scratch: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanInfo {
    pub name: String,
    pub file: String,
    pub digest: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Steps are running (or planrun died while they were).
    Running,
    /// A person aborted, or a step failed without a terminal: resumable with `--resume`.
    Aborted,
    /// Every step is settled.
    Completed,
}

/// One step of the runbook, as it went.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The role's title and contact, as the runbook showed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What the step does, in words (the instruction of a manual step).
    pub what: String,
    pub outcome: StepOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was skipped (required from the person who skipped it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who said go (or done, or skip), when and how.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answers: Vec<Answer>,
    /// The set a restore step reads, chosen when the incident opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<ChosenSet>,
    /// Where a restore step writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Where the replaced state was kept, and what it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<Kept>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    Pending,
    /// Started and not settled: after a crash, the step was interrupted.
    Running,
    Succeeded,
    /// A manual step a person said was done.
    Done,
    Skipped,
    Failed,
    /// A notification that failed: recorded, the runbook went on.
    Warned,
    /// A rehearsal printed a manual step instead of asking.
    ReadOut,
    /// A rehearsal showed a destructive step on a live target instead of running it.
    Shown,
}

impl StepOutcome {
    /// Settled for good: a resumed incident never repeats it.
    pub fn is_settled(self) -> bool {
        !matches!(
            self,
            StepOutcome::Pending | StepOutcome::Running | StepOutcome::Failed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Pending => "pending",
            StepOutcome::Running => "running",
            StepOutcome::Succeeded => "succeeded",
            StepOutcome::Done => "done",
            StepOutcome::Skipped => "skipped",
            StepOutcome::Failed => "failed",
            StepOutcome::Warned => "warned",
            StepOutcome::ReadOut => "read out",
            StepOutcome::Shown => "shown, not run",
        }
    }
}

/// A person's answer, or a flag that answered for them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Answer {
    /// `go`, `done`, `skip`, `retry`, `abort`, `rerun`, `older set`.
    pub answer: String,
    /// `terminal`, `--yes` or `--confirm ID`.
    pub how: String,
    pub user: String,
    pub host: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChosenSet {
    pub storage: String,
    pub id: String,
    /// When the set's backup started: what the restored data is as of.
    pub taken_at: DateTime<Utc>,
    pub status: String,
    /// Why the plan's restore storage was not used, when the set came from another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fell_back: Option<String>,
    /// A newer set that was expected (seen in a storage, or recorded by a run), when this
    /// one is older.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Kept {
    /// `database crm_before_…` or a folder.
    pub what: String,
    /// What it holds, in words.
    pub holds: String,
    /// How to remove it once nobody needs it.
    pub remove: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub by: String,
    pub text: String,
}

/// Why a record could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    #[error("no incident `{id}` in {}", dir.display())]
    Unknown { id: String, dir: PathBuf },
    #[error("cannot read {}: {error}", path.display())]
    Read { path: PathBuf, error: String },
    #[error("cannot write {}: {error}", path.display())]
    Write { path: PathBuf, error: String },
}

/// `<state>/incidents`.
pub fn root(state: &Path) -> PathBuf {
    state.join("incidents")
}

impl Incident {
    pub fn dir(&self, state: &StateDir) -> PathBuf {
        root(state.root()).join(&self.id)
    }

    /// The data-loss window: from when the oldest restored set was taken to the incident's
    /// start.
    pub fn rpo_achieved_s(&self) -> Option<u64> {
        self.steps
            .iter()
            .filter(|s| s.outcome == StepOutcome::Succeeded)
            .filter_map(|s| s.set.as_ref())
            .map(|set| (self.started_at - set.taken_at).num_seconds().max(0) as u64)
            .max()
    }

    /// Time to recovery: from the start to the end of the runbook.
    pub fn rto_achieved_s(&self) -> Option<u64> {
        self.ended_at
            .map(|end| (end - self.started_at).num_seconds().max(0) as u64)
    }

    /// Writes `incident.json` and `report.md` durably, the record first: it is what a
    /// resume reads.
    pub fn save(&self, state: &StateDir) -> Result<(), IncidentError> {
        let dir = self.dir(state);
        let write_error = |error: &dyn std::fmt::Display| IncidentError::Write {
            path: dir.clone(),
            error: error.to_string(),
        };
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| write_error(&e))?;
        }
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| write_error(&e))?;
        json.push(b'\n');
        crate::storage::write_atomically(&dir, "incident.json", &json)
            .map_err(|e| write_error(&e))?;
        crate::storage::write_atomically(&dir, "report.md", self.report().as_bytes())
            .map_err(|e| write_error(&e))
    }

    /// Reads one incident by id.
    pub fn load(state: &Path, id: &str) -> Result<Incident, IncidentError> {
        // An id names a folder: nothing that could climb out of the incidents folder.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(IncidentError::Unknown {
                id: id.to_owned(),
                dir: root(state),
            });
        }
        let path = root(state).join(id).join("incident.json");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Err(IncidentError::Unknown {
                    id: id.to_owned(),
                    dir: root(state),
                });
            }
            Err(error) => {
                return Err(IncidentError::Read {
                    path,
                    error: error.to_string(),
                });
            }
        };
        let incident: Incident =
            serde_json::from_slice(&bytes).map_err(|error| IncidentError::Read {
                path: path.clone(),
                error: error.to_string(),
            })?;
        if incident.format != FORMAT {
            return Err(IncidentError::Read {
                path,
                error: format!("format {} is not format {FORMAT}", incident.format),
            });
        }
        Ok(incident)
    }

    /// The report for people: `report.md`.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let kind = if self.rehearsal {
            "Rehearsal"
        } else {
            "Incident"
        };
        let _ = writeln!(
            out,
            "# {kind} {}: level {} — {}\n",
            self.id, self.level, self.level_name
        );
        let _ = writeln!(out, "| | |\n| --- | --- |");
        let _ = writeln!(
            out,
            "| plan | `{}` ({}, digest {}) |",
            self.plan.name,
            self.plan.file,
            short(&self.plan.digest)
        );
        let status = match (self.status, self.progress) {
            (IncidentStatus::Closed, _) => "closed",
            (_, Progress::Running) => "open, runbook in progress",
            (_, Progress::Aborted) => "open, runbook aborted (resumable)",
            (_, Progress::Completed) => "open, runbook completed",
        };
        let _ = writeln!(out, "| status | {status} |");
        let _ = writeln!(
            out,
            "| started | {} by {} on {} |",
            time(self.started_at),
            self.user,
            self.host
        );
        if let Some(end) = self.ended_at {
            let _ = writeln!(out, "| ended | {} |", time(end));
        }
        if let Some(closed) = self.closed_at {
            let _ = writeln!(out, "| closed | {} |", time(closed));
        }
        let _ = writeln!(
            out,
            "| data-loss window (RPO) | {} |",
            against(self.rpo_achieved_s(), self.rpo_s)
        );
        let _ = writeln!(
            out,
            "| time to recovery (RTO) | {} |",
            against(self.rto_achieved_s(), self.rto_s)
        );
        let _ = writeln!(out, "\n## Steps\n");
        let _ = writeln!(out, "| # | step | owner | outcome | duration | confirmed |");
        let _ = writeln!(out, "| --- | --- | --- | --- | --- | --- |");
        for (i, step) in self.steps.iter().enumerate() {
            let confirmed: Vec<String> = step
                .answers
                .iter()
                .map(|a| format!("{} by {} ({}) at {}", a.answer, a.user, a.how, time(a.at)))
                .collect();
            let mut outcome = step.outcome.as_str().to_owned();
            if let Some(reason) = &step.reason {
                let _ = write!(outcome, ": {reason}");
            }
            if let Some(error) = &step.error {
                let _ = write!(outcome, ": {error}");
            }
            let _ = writeln!(
                out,
                "| {} | `{}` {} | {} | {} | {} | {} |",
                i + 1,
                step.id,
                cell(&step.what),
                cell(step.owner.as_deref().unwrap_or("-")),
                cell(&outcome),
                step.duration_ms
                    .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                    .unwrap_or_else(|| "-".into()),
                cell(&confirmed.join("; "))
            );
        }
        let restored: Vec<&StepRecord> = self
            .steps
            .iter()
            .filter(|s| s.set.is_some() && s.outcome == StepOutcome::Succeeded)
            .collect();
        let _ = writeln!(out, "\n## Sets restored\n");
        if restored.is_empty() {
            let _ = writeln!(out, "None yet.");
        }
        for step in restored {
            let Some(set) = &step.set else { continue };
            let _ = write!(
                out,
                "- `{}`: set {} from `{}` (taken {}, {}) into {}",
                step.id,
                set.id,
                set.storage,
                time(set.taken_at),
                set.status,
                step.target.as_deref().unwrap_or("its target")
            );
            if let Some(why) = &set.fell_back {
                let _ = write!(out, "; fell back: {why}");
            }
            let _ = writeln!(out);
        }
        let kept: Vec<&StepRecord> = self.steps.iter().filter(|s| s.kept.is_some()).collect();
        let _ = writeln!(out, "\n## Previous states kept\n");
        if kept.is_empty() {
            let _ = writeln!(out, "None.");
        }
        for step in kept {
            let Some(kept) = &step.kept else { continue };
            let _ = writeln!(
                out,
                "- {} (step `{}`): {}. Remove it once nobody needs it: `{}`",
                kept.what, step.id, kept.holds, kept.remove
            );
        }
        let _ = writeln!(out, "\n## Lessons learned\n");
        if self.notes.is_empty() {
            let _ = writeln!(
                out,
                "None recorded yet: `planrun incident note {} \"…\"`.",
                self.id
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "- {} ({}): {}", time(note.at), note.by, note.text);
        }
        out
    }
}

/// Every incident in the state dir, newest first, with the records that cannot be read.
pub fn list(state: &Path) -> (Vec<Incident>, Vec<IncidentError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(root(state)) else {
        return (found, errors);
    };
    for entry in entries.flatten() {
        let id = entry.file_name().to_string_lossy().into_owned();
        match Incident::load(state, &id) {
            Ok(incident) => found.push(incident),
            Err(error) => errors.push(error),
        }
    }
    found.sort_by(|a, b| b.id.cmp(&a.id));
    (found, errors)
}

/// The open incidents of `plan` (rehearsals freeze nothing).
pub fn open_for(state: &Path, plan: &str) -> Vec<Incident> {
    list(state)
        .0
        .into_iter()
        .filter(|i| i.plan.name == plan && !i.rehearsal && i.status == IncidentStatus::Open)
        .collect()
}

/// The sets open incidents of `plan` read, each with why it is held: prune keeps them.
pub fn held_sets(state: &Path, plan: &str) -> Vec<(String, String)> {
    open_for(state, plan)
        .iter()
        .flat_map(|incident| {
            incident.steps.iter().filter_map(|step| {
                step.set.as_ref().map(|set| {
                    (
                        set.id.clone(),
                        format!("held by open incident {}", incident.id),
                    )
                })
            })
        })
        .collect()
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `3h12m (objective 4h: met)`.
pub fn against(achieved: Option<u64>, objective: Option<u64>) -> String {
    let Some(achieved) = achieved else {
        return match objective {
            Some(o) => format!("- (objective {})", human_age(o as i64)),
            None => "-".into(),
        };
    };
    match objective {
        Some(o) if achieved <= o => format!(
            "{} (objective {}: met)",
            human_age(achieved as i64),
            human_age(o as i64)
        ),
        Some(o) => format!(
            "{} (objective {}: MISSED)",
            human_age(achieved as i64),
            human_age(o as i64)
        ),
        None => human_age(achieved as i64),
    }
}

/// Text for one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
