//! `RunState`: what the steps of one run share. The backup set being written lives here, so
//! that `copy`, `verify` and `prune` steps later in the run find it, and the engine's
//! set-commit bookkeeping (`engine::set_commit`) commits or abandons it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::event::RunStatus;
use crate::run_outcome::{CommittedSet, OffsiteSet, RunOutcome, StepTiming};

use crate::exec_plan::ExecPlan;
use crate::storage::{Manifest, SetId, SetWriter};

/// This run's backup set: created by the first `backup` step, committed (manifest written)
/// when the last one has settled, removed when the run cannot commit it.
#[derive(Debug, Default)]
struct BackupState {
    writer: Option<Arc<SetWriter>>,
    /// Backup steps this run will start; set by the engine before anything runs.
    expected: usize,
    /// Backup steps that reached their final outcome.
    settled: usize,
    /// Sources whose backup failed for good.
    failed: Vec<String>,
    /// A backup with `on_failure: fail` failed: the run fails and its set is never committed.
    doomed: bool,
    finalized: bool,
    /// What was committed, for the run's outcome.
    committed: Option<CommittedSet>,
}

/// What settling a backup step did to the set.
pub enum Settled {
    /// Other backup steps are still to come.
    Pending,
    /// The manifest was written: the set is a backup of the sources it holds. Partial when
    /// a source's backup failed under `on_failure: warn` or `ignore`.
    Finalized(Box<Manifest>),
    /// The set will not be committed.
    Failed,
}

/// State shared by the steps of one run. A backup kind registers the set it is writing here,
/// so that `copy` and `verify` steps later in the run find it and rollback can discard it.
/// It also keeps how the run is going, for notifications and the cleanup templates.
#[derive(Debug)]
pub struct RunState {
    sets: Mutex<BTreeMap<String, PathBuf>>,
    backup: Mutex<BackupState>,
    started: Instant,
    progress: Mutex<Progress>,
    /// Where `restore` steps of this run put each source, for the `check` steps after them.
    restored: Mutex<BTreeMap<String, Restored>>,
}

/// How the run is going: every step's end, and once the graph is done, its status and the
/// newest off-site set.
#[derive(Debug)]
struct Progress {
    steps: Vec<StepTiming>,
    status: RunStatus,
    offsite: Option<OffsiteSet>,
}

/// A source a `restore` step of this run restored: from which storage and set, and where to.
#[derive(Clone, Debug)]
pub struct Restored {
    pub storage: String,
    pub set: SetId,
    pub target: crate::drill::Target,
}

impl Default for RunState {
    fn default() -> Self {
        RunState {
            sets: Mutex::default(),
            backup: Mutex::default(),
            started: Instant::now(),
            restored: Mutex::default(),
            progress: Mutex::new(Progress {
                steps: Vec::new(),
                status: RunStatus::Running,
                offsite: None,
            }),
        }
    }
}

impl RunState {
    /// Records a step's end (the executor calls this for every step of every phase).
    pub fn step_finished(&self, timing: StepTiming) {
        self.progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .steps
            .push(timing);
    }

    /// Records what the run came to before its cleanup runs, so that `on_failure` and
    /// `always` see it.
    pub fn settle(&self, status: RunStatus, offsite: Option<OffsiteSet>) {
        let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        progress.status = status;
        progress.offsite = offsite;
    }

    /// How the run went, or is going (`running` until the engine settles it).
    pub fn outcome(&self) -> RunOutcome {
        let progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        let set = self
            .backup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .committed
            .clone();
        RunOutcome {
            status: progress.status,
            duration: self.started.elapsed(),
            steps: progress.steps.clone(),
            set,
            offsite: progress.offsite.clone(),
        }
    }

    /// A `restore` step restored `source`; later `check` steps read it there.
    pub fn note_restore(&self, source: &str, restored: Restored) {
        self.restored
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(source.to_owned(), restored);
    }

    /// Every source restored by this run so far.
    pub fn restored(&self) -> BTreeMap<String, Restored> {
        self.restored
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// How many `backup` steps this run will start (the engine knows `--only` and `when`).
    pub fn expect_backups(&self, count: usize) {
        self.backup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .expected = count;
    }

    /// True when this run backs something up.
    pub fn expects_backups(&self) -> bool {
        self.backup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .expected
            > 0
    }

    /// True once this run's set has its manifest.
    pub fn set_complete(&self) -> bool {
        self.backup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .finalized
    }

    /// The sources whose backup failed for good in this run.
    pub fn failed_backups(&self) -> Vec<String> {
        self.backup
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .failed
            .clone()
    }

    /// True when this run committed a set without some source because its backup failed
    /// (under `warn` or `ignore`): the run is partial and exits 3.
    pub fn committed_partial(&self) -> bool {
        let state = self.backup.lock().unwrap_or_else(PoisonError::into_inner);
        state.finalized && !state.failed.is_empty()
    }

    /// This run's set writer, started on first use.
    pub fn backup_writer(&self, plan: &ExecPlan) -> Result<Arc<SetWriter>, String> {
        let mut state = self.backup.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(writer) = &state.writer {
            return Ok(Arc::clone(writer));
        }
        let writer =
            Arc::new(SetWriter::for_plan(plan, chrono::Utc::now()).map_err(|e| e.to_string())?);
        state.writer = Some(Arc::clone(&writer));
        drop(state);
        self.register_set(writer.storage(), writer.path().to_owned());
        Ok(writer)
    }

    /// The storage this run's set is written to, if a backup step started one.
    pub fn set_storage(&self) -> Option<String> {
        let state = self.backup.lock().unwrap_or_else(PoisonError::into_inner);
        state.writer.as_ref().map(|w| w.storage().to_owned())
    }

    /// The id of the set this run writes, if a backup step started one.
    pub fn set_id(&self) -> Option<SetId> {
        let state = self.backup.lock().unwrap_or_else(PoisonError::into_inner);
        state.writer.as_ref().map(|w| w.id().clone())
    }

    /// Records that a backup step reached its final outcome; once every backup step has, the
    /// set is committed with what succeeded. A failed backup whose step may not fail
    /// (`on_failure: fail`) means the set is never committed; under `warn` or `ignore` the
    /// other sources are still committed, as a partial set.
    pub fn backup_settled(
        &self,
        source: &str,
        succeeded: bool,
        on_failure: crate::plan::OnFailure,
    ) -> Result<Settled, String> {
        let mut state = self.backup.lock().unwrap_or_else(PoisonError::into_inner);
        state.settled += 1;
        if !succeeded {
            state.failed.push(source.to_owned());
            state.doomed |= on_failure == crate::plan::OnFailure::Fail;
        }
        if state.doomed {
            return Ok(Settled::Failed);
        }
        if state.settled < state.expected || state.finalized {
            return Ok(Settled::Pending);
        }
        Self::commit(&mut state)
    }

    /// Commits what the run's backups produced, if anything may be committed: called by the
    /// engine after the graph, for a run whose last backup steps never started (they needed a
    /// backup that failed under `warn`). `None` when there is nothing to commit.
    pub fn commit_remaining(&self) -> Option<Result<Manifest, String>> {
        let mut state = self.backup.lock().unwrap_or_else(PoisonError::into_inner);
        if state.finalized || state.doomed || state.writer.is_none() {
            return None;
        }
        match Self::commit(&mut state) {
            Ok(Settled::Finalized(manifest)) => Some(Ok(*manifest)),
            Ok(_) => None,
            Err(error) => Some(Err(error)),
        }
    }

    fn commit(state: &mut BackupState) -> Result<Settled, String> {
        let Some(writer) = state.writer.clone() else {
            return Ok(Settled::Pending);
        };
        // A set with nothing in it is no backup of anything.
        if writer.artifact_count() == 0 {
            return Ok(Settled::Failed);
        }
        let manifest = writer
            .finalize(chrono::Utc::now())
            .map_err(|e| e.to_string())?;
        state.finalized = true;
        state.committed = Some(CommittedSet {
            id: writer.id().to_string(),
            storage: writer.storage().to_owned(),
            bytes: manifest.total_size(),
            sources: manifest.sources().into_iter().map(str::to_owned).collect(),
        });
        Ok(Settled::Finalized(Box::new(manifest)))
    }

    /// Removes this run's set if it was started and never committed: what is left of a failed
    /// run is not a backup. Returns the folder removed.
    pub fn abandon_uncommitted(&self) -> Option<Result<PathBuf, String>> {
        let mut state = self.backup.lock().unwrap_or_else(PoisonError::into_inner);
        if state.finalized {
            return None;
        }
        let writer = state.writer.take()?;
        Some(
            writer
                .abandon()
                .map(|()| writer.path().to_owned())
                .map_err(|e| e.to_string()),
        )
    }

    /// Records that this run is writing a backup set in `storage` at `location`.
    pub fn register_set(&self, storage: &str, location: PathBuf) {
        self.sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(storage.to_owned(), location);
    }

    /// The set this run is writing in `storage`, if any.
    pub fn set(&self, storage: &str) -> Option<PathBuf> {
        self.sets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(storage)
            .cloned()
    }
}
