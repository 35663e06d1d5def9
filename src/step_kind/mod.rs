//! Step kinds: what each kind of step does when it runs. Each kind is one module with an
//! `execute(ctx, …) -> AttemptEnd` function; adding a kind is adding its module and its arm
//! in [`execute`] and [`is_available`].

mod backup;
mod copy;
mod notify;
mod prune;
mod restore;
mod run;
mod shell;
mod verify;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use std::sync::Arc;

use crate::cancel::Cancel;
use crate::event::{Emitter, Event, Outcome};
use crate::exec_plan::{Action, ExecPlan, ExecStep};
use crate::process::{self, Ended, Limits, LineSink, ProcessGroups, Spawn, Stream};
use crate::storage::{Manifest, SetId, SetWriter};

/// Whether this build of planrun can run steps of the action's kind.
pub fn is_available(action: &Action) -> bool {
    matches!(
        action,
        Action::Run { .. }
            | Action::Shell { .. }
            | Action::Backup { .. }
            | Action::Copy { .. }
            | Action::Prune { .. }
            | Action::Verify { .. }
            | Action::Restore { .. }
            | Action::Notify { .. }
    )
}

/// Runs one attempt of `ctx.step`.
pub async fn execute(ctx: &mut StepContext<'_>) -> AttemptEnd {
    let step = ctx.step;
    match &step.action {
        Action::Run { program, args } => run::execute(ctx, program, args).await,
        Action::Shell { script } => shell::execute(ctx, script).await,
        Action::Copy { to, from, set } => {
            copy::execute(ctx, to, from.as_deref(), set.as_deref()).await
        }
        Action::Prune { storage } => prune::execute(ctx, storage).await,
        Action::Backup { source } => backup::execute(ctx, source).await,
        Action::Verify { storage, set } => verify::execute(ctx, storage, set.as_deref()).await,
        Action::Restore {
            source,
            from,
            storage,
            database,
            path,
            force,
        } => {
            let target = crate::source::RestoreTarget {
                database: database.clone(),
                // `original` is the source's own place, which is what no path means.
                path: path
                    .as_deref()
                    .filter(|p| *p != crate::plan::ORIGINAL_PATH)
                    .map(PathBuf::from),
                force: *force,
            };
            restore::execute(ctx, source, from.as_deref(), storage.as_deref(), target).await
        }
        Action::Notify { webhook, message } => {
            notify::execute(ctx, webhook.as_deref(), message.as_deref()).await
        }
        other => AttemptEnd::error(format!(
            "step kind `{}` is not available yet",
            other.kind_name()
        )),
    }
}

/// Everything a step kind may use while it runs one attempt.
pub struct StepContext<'a> {
    pub plan: &'a ExecPlan,
    pub step: &'a ExecStep,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Fires when the step must stop (a signal, or cleanup running out of time). Kinds that
    /// do work in-process must check it; child processes are stopped by [`run_process`].
    pub cancel: &'a Cancel,
    /// The step's timeout for this attempt.
    pub timeout: Option<Duration>,
    /// Where the step's output lines go (to the log, the reporter and `--json`), redacted.
    pub output: &'a mut StepOutput,
    pub state_dir: &'a Path,
    pub run: &'a RunState,
    pub groups: &'a ProcessGroups,
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptEnd {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub error: Option<String>,
    /// The step did its job but something was left out (an unreadable file skipped under
    /// `on_unreadable: warn`): the run goes on and exits 3.
    pub warned: bool,
}

impl AttemptEnd {
    pub fn succeeded() -> Self {
        AttemptEnd {
            outcome: Outcome::Succeeded,
            exit_code: None,
            signal: None,
            error: None,
            warned: false,
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        AttemptEnd {
            outcome: Outcome::Failed,
            error: Some(message.into()),
            ..AttemptEnd::succeeded()
        }
    }
}

/// Runs an in-process step's work under the step's timeout and the run's cancellation.
/// Dropping `work` must stop it (the backup and S3 code stop their tools on drop).
pub async fn bounded(
    ctx: &StepContext<'_>,
    what: &str,
    work: impl std::future::Future<Output = AttemptEnd>,
) -> AttemptEnd {
    let limit = ctx.timeout.unwrap_or(Duration::MAX);
    tokio::select! {
        result = tokio::time::timeout(limit, work) => result.unwrap_or_else(|_| AttemptEnd {
            outcome: Outcome::TimedOut,
            ..AttemptEnd::error(format!("{what} timed out after {}", crate::duration::Duration(limit)))
        }),
        _ = ctx.cancel.cancelled() => AttemptEnd {
            outcome: Outcome::Cancelled,
            ..AttemptEnd::error(format!("{what} interrupted"))
        },
    }
}

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
#[derive(Debug, Default)]
pub struct RunState {
    sets: Mutex<BTreeMap<String, PathBuf>>,
    backup: Mutex<BackupState>,
}

impl RunState {
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

/// A step's output, sent as events.
#[derive(Debug)]
pub struct StepOutput {
    step: String,
    emitter: Emitter,
}

impl StepOutput {
    pub fn new(step: String, emitter: Emitter) -> Self {
        StepOutput { step, emitter }
    }
}

impl LineSink for StepOutput {
    async fn line(&mut self, stream: Stream, line: String) {
        self.emitter
            .emit(Event::StepOutput {
                step: self.step.clone(),
                stream,
                line,
            })
            .await;
    }
}

/// Runs `program` (resolved through the PATH the child will see) as the step's process:
/// planrun's environment plus `PLANRUN_*` and the step's `env`, in the step's `cwd`.
pub async fn run_process(
    ctx: &mut StepContext<'_>,
    program: &str,
    args: Vec<String>,
) -> AttemptEnd {
    let step = ctx.step;
    let mut env = vec![
        ("PLANRUN_PLAN".to_owned(), ctx.plan.name.clone()),
        ("PLANRUN_RUN_ID".to_owned(), ctx.plan.run_id.clone()),
        ("PLANRUN_STEP".to_owned(), step.id.clone()),
        ("PLANRUN_ATTEMPT".to_owned(), ctx.attempt.to_string()),
        (
            "PLANRUN_SCRATCH".to_owned(),
            ctx.plan.scratch.display().to_string(),
        ),
    ];
    env.extend(step.env.iter().cloned());
    let path_var: Option<OsString> = step
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"));
    let resolved = match process::resolve_program(program, path_var.as_ref(), step.cwd.as_deref()) {
        Ok(path) => path,
        Err(error) => return AttemptEnd::error(error.to_string()),
    };
    let spawn = Spawn {
        program: resolved,
        args,
        env,
        cwd: step.cwd.clone(),
    };
    let limits = Limits {
        timeout: ctx.timeout,
        kill_grace: ctx.plan.kill_grace,
    };
    match process::run(&spawn, &limits, ctx.cancel, ctx.groups, ctx.output).await {
        Ok(exit) => {
            let outcome = match exit.ended {
                _ if exit.success() => Outcome::Succeeded,
                Ended::Exited => Outcome::Failed,
                Ended::TimedOut => Outcome::TimedOut,
                Ended::Cancelled => Outcome::Cancelled,
            };
            let error = match (exit.ended, exit.code, exit.signal) {
                (Ended::TimedOut, ..) => Some(format!(
                    "timed out after {}{}",
                    crate::duration::Duration(ctx.timeout.unwrap_or_default()),
                    if exit.killed {
                        "; killed after the grace period"
                    } else {
                        ""
                    }
                )),
                (Ended::Cancelled, ..) => Some(format!(
                    "stopped by planrun{}",
                    if exit.killed {
                        "; killed after the grace period"
                    } else {
                        ""
                    }
                )),
                (_, Some(0), _) => None,
                (_, Some(code), _) => Some(format!("exit code {code}")),
                (_, None, Some(signal)) => {
                    Some(format!("killed by signal {}", signal_name(signal)))
                }
                (_, None, None) => Some("ended without an exit status".to_owned()),
            };
            AttemptEnd {
                outcome,
                exit_code: exit.code,
                signal: exit.signal,
                error,
                warned: false,
            }
        }
        Err(error) => AttemptEnd::error(error.to_string()),
    }
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| signal.to_string())
}
