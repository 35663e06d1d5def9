//! The rendered plan: what the executor runs, with every template already expanded and every
//! reference resolved. The render stage builds it from a validated plan; nothing else can.

use std::path::PathBuf;
use std::time::Duration;

use crate::plan::{OnFailure, Retention, Source, Storage};

/// A plan ready to execute.
#[derive(Clone, Debug)]
pub struct ExecPlan {
    /// The plan's `name`: names the lock, run records and backup-set folders.
    pub name: String,
    /// The plan file that was loaded.
    pub file: PathBuf,
    /// sha256 over the plan file and its includes, as hex.
    pub digest: String,
    /// This run's id (sortable UTC time plus a random suffix), also the backup set id.
    pub run_id: String,
    /// A private scratch folder for this run, removed at the end.
    pub scratch: PathBuf,
    pub steps: Vec<ExecStep>,
    pub on_failure: Vec<ExecStep>,
    pub always: Vec<ExecStep>,
    /// Grace period between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Secret values, to be masked as `***` in everything planrun writes.
    pub secret_values: Vec<String>,
    /// Rendered sources by name, for backup and restore steps.
    pub sources: Vec<(String, Source)>,
    /// Rendered storage by name.
    pub storage: Vec<(String, Storage)>,
    /// The local storage backups are written to (`local`, or the only local storage).
    pub backup_storage: Option<String>,
    /// The plan-level retention, its time zone defaulting to the plan's.
    pub retention: Option<Retention>,
    /// The plan's `timezone`, the default for calendar decisions.
    pub timezone: Option<String>,
}

impl ExecPlan {
    /// The retention policy for a storage: its own, else the plan's, with the time zone
    /// defaulting to the plan's.
    pub fn retention_for(&self, storage: &Storage) -> Option<Retention> {
        let mut retention = storage.retention().or(self.retention.as_ref())?.clone();
        retention.timezone = retention.timezone.or_else(|| self.timezone.clone());
        Some(retention)
    }
}

/// One rendered step.
#[derive(Clone, Debug)]
pub struct ExecStep {
    pub id: String,
    pub name: Option<String>,
    pub needs: Vec<String>,
    /// Why the step will not run (its `when` rendered false), if so.
    pub skip: Option<String>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub on_failure: OnFailure,
    pub rollback: Vec<ExecStep>,
    /// Extra environment for the child; secrets referenced by the step travel here.
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
    pub action: Action,
}

/// What a step does. Adding a step kind adds a variant here and a module under `step_kind/`.
#[derive(Clone, Debug)]
pub enum Action {
    /// A program and its arguments, no shell.
    Run { program: String, args: Vec<String> },
    /// A bash script, run as `bash -euo pipefail -c SCRIPT`.
    Shell { script: String },
    /// Back up a source into this run's set.
    Backup { source: String },
    /// Copy a set between storages.
    Copy {
        to: String,
        from: Option<String>,
        set: Option<String>,
    },
    /// Apply retention to storages.
    Prune { storage: Vec<String> },
    /// Re-hash a stored set.
    Verify {
        storage: String,
        set: Option<String>,
    },
    /// Restore a source.
    Restore {
        source: String,
        from: Option<String>,
        storage: Option<String>,
        database: Option<String>,
        path: Option<String>,
        force: bool,
    },
    /// A check against restored data.
    Check(crate::plan::CheckStep),
    /// An instruction for a person.
    Manual { text: String },
    /// A notification.
    Notify {
        webhook: Option<String>,
        message: Option<String>,
    },
}

impl Action {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Action::Run { .. } => "run",
            Action::Shell { .. } => "shell",
            Action::Backup { .. } => "backup",
            Action::Copy { .. } => "copy",
            Action::Prune { .. } => "prune",
            Action::Verify { .. } => "verify",
            Action::Restore { .. } => "restore",
            Action::Check(_) => "check",
            Action::Manual { .. } => "manual",
            Action::Notify { .. } => "notify",
        }
    }
}
