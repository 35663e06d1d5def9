//! The rendered plan: what the executor runs, with every template already expanded and every
//! reference resolved. The render stage builds it from a validated plan; nothing else can.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::plan::{OnFailure, Retention, Source, Storage};
use crate::redact::{Redactor, debug_masked};

/// A plan ready to execute. Its rendered text holds secret values (storage credentials,
/// step environments), so its `Debug` masks them with the plan's own redactor.
#[derive(Clone)]
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
    /// Masks this plan's secret values as `***`; every command prints through it.
    pub redactor: Arc<Redactor>,
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
    /// Healthchecks pings, the metrics file and the RPO they report against.
    pub monitoring: Monitoring,
    /// `on_failure` and `always` as templates, rendered again with the run's outcome once
    /// it is known; `None` where a plan is built without a plan file (tests).
    pub cleanup_templates: Option<Arc<crate::pipeline::CleanupTemplates>>,
    /// The rendered `drill:` section, for `planrun drill` and `status`.
    pub drill: Option<crate::plan::Drill>,
    /// `recovery.objectives`: what a drill's timings are held to.
    pub objectives: Option<crate::plan::Objectives>,
}

/// What a run reports outside itself, rendered.
#[derive(Clone, Debug, Default)]
pub struct Monitoring {
    /// `monitor.healthchecks`: the check's URL (often a secret); empty means none.
    pub healthchecks: Option<String>,
    /// `metrics.textfile_dir`, unless `--metrics-dir` overrides it.
    pub textfile_dir: Option<PathBuf>,
    /// `recovery.objectives.rpo`, exported beside the newest set's time.
    pub rpo: Option<Duration>,
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

impl fmt::Debug for ExecPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured in full so that a new field cannot be forgotten here.
        let ExecPlan {
            name,
            file,
            digest,
            run_id,
            scratch,
            steps,
            on_failure,
            always,
            kill_grace,
            redactor,
            sources,
            storage,
            backup_storage,
            retention,
            timezone,
            monitoring,
            cleanup_templates: _,
            drill,
            objectives,
        } = self;
        debug_masked(f, redactor, |f| {
            f.debug_struct("ExecPlan")
                .field("name", name)
                .field("file", file)
                .field("digest", digest)
                .field("run_id", run_id)
                .field("scratch", scratch)
                .field("steps", steps)
                .field("on_failure", on_failure)
                .field("always", always)
                .field("kill_grace", kill_grace)
                .field("sources", sources)
                .field("storage", storage)
                .field("backup_storage", backup_storage)
                .field("retention", retention)
                .field("timezone", timezone)
                .field("drill", drill)
                .field("objectives", objectives)
                .field("monitoring", monitoring)
                .finish_non_exhaustive()
        })
    }
}

/// One rendered step. Its environment, and any text a secret was rendered into, hold secret
/// values, so its `Debug` masks them with the plan's redactor, which it carries.
#[derive(Clone)]
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
    /// The plan's redactor, for this step's `Debug`.
    pub redactor: Arc<Redactor>,
}

impl fmt::Debug for ExecStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ExecStep {
            id,
            name,
            needs,
            skip,
            timeout,
            retries,
            retry_delay,
            on_failure,
            rollback,
            env,
            cwd,
            action,
            redactor,
        } = self;
        debug_masked(f, redactor, |f| {
            f.debug_struct("ExecStep")
                .field("id", id)
                .field("name", name)
                .field("needs", needs)
                .field("skip", skip)
                .field("timeout", timeout)
                .field("retries", retries)
                .field("retry_delay", retry_delay)
                .field("on_failure", on_failure)
                .field("rollback", rollback)
                .field("env", env)
                .field("cwd", cwd)
                .field("action", action)
                .finish()
        })
    }
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
        /// A set id or `latest`; `None` is `latest`.
        set: Option<String>,
        storage: Option<String>,
        database: Option<String>,
        path: Option<String>,
        force: bool,
        /// Keep the replaced target as `<name><suffix>` instead of removing it (`recover`
        /// sets `_before_<incident>`; plans cannot).
        keep_previous: Option<String>,
    },
    /// A check against restored data.
    Check(crate::plan::CheckStep),
    /// An instruction for a person.
    Manual { text: String },
    /// A notification.
    Notify {
        webhook: Option<String>,
        message: Option<String>,
        /// A templated body sent instead of the summary.
        body: Option<String>,
        format: crate::plan::NotifyFormat,
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

#[cfg(test)]
mod tests {
    use crate::pipeline::{self, RenderOptions};

    /// A rendered plan carries secrets in its storage, its sources, its steps' environments
    /// and the text they were rendered into; none of it may reach a `{:?}`.
    #[test]
    fn debug_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.yaml");
        std::fs::write(
            &path,
            r#"version: 1
name: leak
secrets:
  key: { env: LEAK_TEST_KEY }
storage:
  local: { local: { path: "/srv/backups" } }
  offsite:
    s3: { bucket: b, endpoint: "http://127.0.0.1:9", access_key_id: ak, secret_access_key: "{{secrets.key}}" }
sources:
  db: { postgres: { database: crm, password: "{{secrets.key}}" } }
steps:
  - { id: dump, backup: db }
  - id: call
    shell: echo "{{secrets.key}}"
    env: { KEY: "{{secrets.key}}" }
    cwd: "/tmp/{{secrets.key}}"
    rollback:
      - { id: undo, shell: "echo {{secrets.key}}", env: { K: "{{secrets.key}}" } }
"#,
        )
        .unwrap();
        let loaded = pipeline::load(&path).unwrap_or_else(|f| panic!("{}", f.render()));
        let mut options = RenderOptions::for_now(Vec::new(), true);
        options
            .env
            .insert("LEAK_TEST_KEY".into(), "s3cr3t/k%y\"".into());
        let plan = pipeline::render(&loaded, &options).unwrap_or_else(|f| panic!("{}", f.render()));
        let step = &plan.steps[1];
        assert!(step.env.iter().any(|(_, v)| v.contains("s3cr3t")));
        for shown in [
            format!("{plan:?}"),
            format!("{plan:#?}"),
            format!("{step:?}"),
            format!("{:?}", step.rollback),
            format!("{:?}", plan.redactor),
        ] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(!shown.contains("%2Fk%25y"), "{shown}");
        }
        assert!(format!("{plan:?}").contains("/tmp/***"));
        assert!(format!("{plan:#?}").contains("    name: \"leak\","));
    }
}
