//! `SetWriter`: one run's backup set being written, the API the `backup` step kind calls.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use super::{
    ArtifactEntry, LocalStore, MANIFEST, MANIFEST_FORMAT, Manifest, PlanRef, SetDir, SetId,
    StoreError, sync_dir, write_atomically,
};
use crate::exec_plan::ExecPlan;
use crate::plan::Source;
use crate::source::{SourceBackup, SourceError, Stop};

/// The set a run writes its backups into.
///
/// Steps back up concurrently into the same set (`back_up` takes `&self`); the run then
/// either [`SetWriter::finalize`]s it, writing the manifest that makes it a backup, or
/// [`SetWriter::abandon`]s it, removing the folder (rollback of a failed run).
#[derive(Debug)]
pub struct SetWriter {
    storage: String,
    store: LocalStore,
    plan: String,
    digest: String,
    dir: SetDir,
    started_at: DateTime<Utc>,
    /// The plan's sources, so the manifest can say which of them the set lacks.
    plan_sources: Vec<String>,
    recorded: Mutex<Recorded>,
}

#[derive(Debug, Default)]
struct Recorded {
    artifacts: Vec<ArtifactEntry>,
    warnings: Vec<String>,
}

/// Why a plan has nowhere to back up to.
#[derive(Debug, thiserror::Error)]
pub enum BackupStorageError {
    #[error(transparent)]
    Choice(#[from] super::choice::ChoiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SetWriter {
    /// Starts a set on local storage `store` (named `storage` in the plan).
    pub fn begin(
        storage: &str,
        store: LocalStore,
        plan: &str,
        digest: &str,
        id: SetId,
        now: DateTime<Utc>,
    ) -> Result<SetWriter, StoreError> {
        let dir = store.begin_set(plan, id, now)?;
        Ok(SetWriter {
            storage: storage.to_owned(),
            store,
            plan: plan.to_owned(),
            digest: digest.to_owned(),
            dir,
            started_at: now,
            plan_sources: Vec::new(),
            recorded: Mutex::new(Recorded::default()),
        })
    }

    /// Starts this run's set on the plan's backup storage, named after the run id.
    pub fn for_plan(plan: &ExecPlan, now: DateTime<Utc>) -> Result<SetWriter, BackupStorageError> {
        let (name, store) = super::choice::backup_storage(plan)?;
        let id = SetId::parse(&plan.run_id).unwrap_or_else(|| SetId::new(now));
        let mut writer = SetWriter::begin(name, store, &plan.name, &plan.digest, id, now)?;
        writer.plan_sources = plan.sources.iter().map(|(n, _)| n.clone()).collect();
        Ok(writer)
    }

    pub fn id(&self) -> &SetId {
        &self.dir.id
    }

    /// The storage's name in the plan.
    pub fn storage(&self) -> &str {
        &self.storage
    }

    pub fn path(&self) -> &Path {
        &self.dir.path
    }

    /// Backs up one source into the set (blocking: call from a blocking thread, or use
    /// [`SetWriter::back_up_source`]). Its artifacts join the manifest at finalize.
    pub fn back_up(
        &self,
        name: &str,
        source: &Source,
        scratch: &Path,
        stop: &Stop,
    ) -> Result<SourceBackup, SourceError> {
        let backup = crate::source::back_up(name, source, &self.dir.path, scratch, stop)?;
        let mut recorded = self
            .recorded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for artifact in &backup.artifacts {
            recorded.artifacts.retain(|a| a.name != artifact.name);
            recorded.artifacts.push(artifact.clone());
        }
        recorded
            .warnings
            .extend(backup.warnings.iter().map(|w| format!("{name}: {w}")));
        Ok(backup)
    }

    /// The async form for the executor: looks the source up in the plan and runs the backup
    /// on the blocking pool. Calling `stop.stop()` (on a signal) or dropping the future (a
    /// timeout) stops the backup: its tools' process groups are killed and it returns
    /// [`SourceError::Stopped`], leaving no artifact.
    pub async fn back_up_source(
        self: &Arc<Self>,
        plan: &ExecPlan,
        name: &str,
        stop: Stop,
    ) -> Result<SourceBackup, SourceError> {
        let source = plan
            .sources
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| SourceError::UnknownSource {
                name: name.to_owned(),
            })?;
        let (writer, name, scratch): (Arc<SetWriter>, String, PathBuf) =
            (self.clone(), name.to_owned(), plan.scratch.clone());
        let mut guard = StopOnDrop(Some(stop.clone()));
        let result =
            tokio::task::spawn_blocking(move || writer.back_up(&name, &source, &scratch, &stop))
                .await
                .unwrap_or_else(|join| {
                    Err(SourceError::Io {
                        action: "run backup of",
                        path: PathBuf::from(join.to_string()),
                        source: std::io::Error::other("task failed"),
                    })
                });
        // Finished on its own: nothing to stop.
        guard.0 = None;
        result
    }

    /// How many artifacts the set holds so far.
    pub fn artifact_count(&self) -> usize {
        self.recorded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .artifacts
            .len()
    }

    /// Writes the manifest: from now on the set is a backup of the sources it holds. Call
    /// once every backup step of the run has settled; sources of the plan without an
    /// artifact are recorded as missing, which makes the set partial.
    pub fn finalize(&self, now: DateTime<Utc>) -> Result<Manifest, StoreError> {
        let recorded = self
            .recorded
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let host = nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default();
        let manifest = Manifest {
            format: MANIFEST_FORMAT,
            planrun_version: env!("CARGO_PKG_VERSION").to_owned(),
            set_id: self.dir.id.to_string(),
            plan: PlanRef {
                name: self.plan.clone(),
                digest: self.digest.clone(),
            },
            host,
            started_at: self.started_at,
            finished_at: now,
            artifacts: recorded.artifacts.clone(),
            warnings: recorded.warnings.clone(),
            missing_sources: self
                .plan_sources
                .iter()
                .filter(|s| !recorded.artifacts.iter().any(|a| &a.source == *s))
                .cloned()
                .collect(),
        };
        write_atomically(&self.dir.path, MANIFEST, &manifest.to_json())?;
        Ok(manifest)
    }

    /// Removes the set folder (a failed run's rollback). The set has no manifest yet, so
    /// the folder goes as a whole, then its parent is synced.
    pub fn abandon(&self) -> Result<(), StoreError> {
        match std::fs::remove_dir_all(&self.dir.path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::io("remove", &self.dir.path)(error)),
        }
        sync_dir(&self.store.plan_dir(&self.plan))
    }
}

/// Stops a backup whose future was dropped (the executor's timeout), since the blocking
/// thread doing the work would otherwise run on.
struct StopOnDrop(Option<Stop>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(stop) = &self.0 {
            stop.stop();
        }
    }
}
