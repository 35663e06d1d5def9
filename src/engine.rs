//! The engine: runs an `ExecPlan` as a dependency graph, with retries, failure policies,
//! rollback, `on_failure` and `always` steps, and cancellation. It emits events and never
//! prints.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::task::JoinSet;

use crate::backoff::{self, RetryDecision};
use crate::cancel::{Cancel, CancelReason};
use crate::event::{Attempt, Emitter, Event, Outcome, Phase, RunStatus};
use crate::exec_plan::{ExecPlan, ExecStep};
use crate::exit_code;
use crate::plan::OnFailure;
use crate::process::ProcessGroups;
use crate::step_kind::{self, RunState, StepContext, StepOutput};

/// After SIGINT/SIGTERM, rollback, `on_failure` and `always` together get this long before
/// their processes are stopped too; a run that was asked to stop must stop.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(60);

/// How to run a plan.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many steps may run at once (at least 1).
    pub concurrency: usize,
    /// Run only these steps (`--only`); empty means all. Their `needs` outside the selection
    /// are taken as satisfied.
    pub only: Vec<String>,
    pub state_dir: PathBuf,
}

/// What the run came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub status: RunStatus,
    pub exit_code: i32,
}

/// Why a plan cannot be executed by this build; found before anything runs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("step `{step}`: step kind `{kind}` is not available yet")]
    KindUnavailable { step: String, kind: String },
    #[error("--only {step}: no step `{step}` in the plan{}", suggestion.as_ref().map(|s| format!(", did you mean `{s}`?")).unwrap_or_default())]
    UnknownOnly {
        step: String,
        suggestion: Option<String>,
    },
}

/// Everything that makes this plan impossible to run here, in plan order.
pub fn check(plan: &ExecPlan, options: &Options) -> Vec<Refusal> {
    let mut refusals = Vec::new();
    let visit = |steps: &[ExecStep], refusals: &mut Vec<Refusal>| {
        for step in steps {
            for step in std::iter::once(step).chain(&step.rollback) {
                if !step_kind::is_available(&step.action) {
                    refusals.push(Refusal::KindUnavailable {
                        step: step.id.clone(),
                        kind: step.action.kind_name().to_owned(),
                    });
                }
            }
        }
    };
    visit(&plan.steps, &mut refusals);
    visit(&plan.on_failure, &mut refusals);
    visit(&plan.always, &mut refusals);
    for wanted in &options.only {
        if !plan.steps.iter().any(|s| &s.id == wanted) {
            refusals.push(Refusal::UnknownOnly {
                step: wanted.clone(),
                suggestion: crate::diagnostic::did_you_mean(
                    wanted,
                    plan.steps.iter().map(|s| s.id.as_str()),
                )
                .map(str::to_owned),
            });
        }
    }
    refusals
}

/// Shared by every step task of a run.
struct Shared {
    plan: Arc<ExecPlan>,
    state_dir: PathBuf,
    run: RunState,
    groups: ProcessGroups,
    emitter: Emitter,
}

/// What a step came to.
struct StepResult {
    outcome: Outcome,
    /// It succeeded but left something out; the run exits 3.
    warned: bool,
}

/// Runs the plan to its end and says how it went. `cancel` is fired by the signal handler;
/// `groups` is shared with it so that a second signal can kill every child at once.
pub async fn execute(
    plan: Arc<ExecPlan>,
    options: &Options,
    cancel: Cancel,
    groups: ProcessGroups,
    emitter: Emitter,
) -> Summary {
    let started = Instant::now();
    let shared = Arc::new(Shared {
        plan: Arc::clone(&plan),
        state_dir: options.state_dir.clone(),
        run: RunState::default(),
        groups,
        emitter: emitter.clone(),
    });
    emitter
        .emit(Event::RunStarted {
            run_id: plan.run_id.clone(),
            plan: plan.name.clone(),
            digest: plan.digest.clone(),
            // Absolute, so a record read later from elsewhere still names the file.
            file: std::path::absolute(&plan.file).unwrap_or_else(|_| plan.file.clone()),
            planrun_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: hostname(),
            pid: std::process::id(),
            at: Utc::now(),
            steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
            concurrency: options.concurrency.max(1),
        })
        .await;

    // The set is committed when the last backup step that will run has succeeded.
    let backups = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, crate::exec_plan::Action::Backup { .. }))
        .filter(|s| s.skip.is_none())
        .filter(|s| options.only.is_empty() || options.only.contains(&s.id))
        .count();
    shared.run.expect_backups(backups);
    let graph = run_graph(&shared, options, &cancel).await;
    // Backup steps that never started (they needed one that failed under `warn`) leave the
    // set uncommitted; what did succeed is still a backup of its sources.
    if !graph.failed && cancel.reason().is_none() {
        let _ = shared.run.commit_remaining();
    }
    // A set that was started and not committed can never be: remove it before anything else,
    // so no failed run leaves a folder that looks like a backup in progress.
    let abandoned = shared.run.abandon_uncommitted();
    // A run that threw its backup away did not succeed, even when the backup step that broke
    // it was marked `on_failure: ignore`: cron must not read exit 0 on a night with no backup.
    // Nor did one that committed only some of its sources.
    let set_abandoned = abandoned.is_some() || shared.run.committed_partial();
    if let Some(removed) = abandoned {
        let (path, error) = match removed {
            Ok(path) => (path, None),
            Err(error) => (
                shared
                    .run
                    .set(plan.backup_storage.as_deref().unwrap_or_default())
                    .unwrap_or_default(),
                Some(error),
            ),
        };
        emitter.emit(Event::SetAbandoned { path, error }).await;
    }

    // Cleanup gets its own token: the run's token has fired already after a signal, and
    // cleanup must still run, but only for a bounded time after it.
    let cleanup_cancel = Cancel::new();
    let deadline = {
        let (cancel, cleanup_cancel) = (cancel.clone(), cleanup_cancel.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            tokio::time::sleep(CLEANUP_BUDGET).await;
            cleanup_cancel.cancel(CancelReason::CleanupDeadline);
        })
    };
    let interrupted = cancel.reason();
    let run_failed = graph.failed || interrupted.is_some();
    let mut cleanup_failed = false;
    if run_failed {
        let why = match interrupted {
            Some(reason) => format!("the run was {}", interrupted_word(reason)),
            None => "a step failed".to_owned(),
        };
        let to_undo: Vec<&ExecStep> = graph
            .completed
            .iter()
            .rev()
            .map(|&i| &plan.steps[i])
            .filter(|s| !s.rollback.is_empty())
            .collect();
        if !to_undo.is_empty() {
            emitter
                .emit(Event::PhaseStarted {
                    phase: Phase::Rollback,
                    reason: format!(
                        "{why}: undoing {} completed step(s), newest first",
                        to_undo.len()
                    ),
                })
                .await;
        }
        for parent in to_undo {
            let mut all_ok = true;
            for (i, step) in parent.rollback.iter().enumerate() {
                let id = fallback_id(step, || format!("{}.rollback.{}", parent.id, i + 1));
                let result = run_step(&shared, step, id, Phase::Rollback, &cleanup_cancel).await;
                all_ok &= result.outcome == Outcome::Succeeded;
            }
            if all_ok {
                emitter
                    .emit(Event::StepRolledBack {
                        step: parent.id.clone(),
                    })
                    .await;
            }
        }
        if !plan.on_failure.is_empty() {
            emitter
                .emit(Event::PhaseStarted {
                    phase: Phase::OnFailure,
                    reason: why,
                })
                .await;
            for (i, step) in plan.on_failure.iter().enumerate() {
                let id = fallback_id(step, || format!("on_failure.{}", i + 1));
                run_step(&shared, step, id, Phase::OnFailure, &cleanup_cancel).await;
            }
        }
    }
    if !plan.always.is_empty() {
        emitter
            .emit(Event::PhaseStarted {
                phase: Phase::Always,
                reason: "`always` steps run at the end of every run".to_owned(),
            })
            .await;
        for (i, step) in plan.always.iter().enumerate() {
            let id = fallback_id(step, || format!("always.{}", i + 1));
            let result = run_step(&shared, step, id, Phase::Always, &cleanup_cancel).await;
            cleanup_failed |= result.outcome.is_failure() && step.on_failure == OnFailure::Fail;
        }
    }
    deadline.abort();

    // A signal that came during cleanup did not stop it (cleanup has its own budget), but
    // the run was still interrupted and must say so in its exit code.
    let late_signal = if interrupted.is_none() {
        cancel.reason()
    } else {
        None
    };
    if let Some(reason) = late_signal {
        emitter
            .emit(Event::Cancelling {
                signal: signal_name(reason).to_owned(),
            })
            .await;
    }
    let summary = match interrupted.or(late_signal) {
        Some(CancelReason::Terminate) => Summary {
            status: RunStatus::Interrupted,
            exit_code: exit_code::TERMINATED,
        },
        Some(_) => Summary {
            status: RunStatus::Interrupted,
            exit_code: exit_code::INTERRUPTED,
        },
        None if graph.failed || cleanup_failed => Summary {
            status: RunStatus::Failed,
            exit_code: exit_code::FAILURE,
        },
        None if graph.warned || set_abandoned => Summary {
            status: RunStatus::Partial,
            exit_code: exit_code::PARTIAL,
        },
        None => Summary {
            status: RunStatus::Succeeded,
            exit_code: exit_code::SUCCESS,
        },
    };
    emitter
        .emit(Event::RunFinished {
            status: summary.status,
            exit_code: summary.exit_code,
            at: Utc::now(),
            duration_ms: millis(started.elapsed()),
        })
        .await;
    summary
}

fn interrupted_word(reason: CancelReason) -> &'static str {
    match reason {
        CancelReason::Interrupt => "interrupted (SIGINT)",
        CancelReason::Terminate => "terminated (SIGTERM)",
        CancelReason::CleanupDeadline => "out of time",
    }
}

fn signal_name(reason: CancelReason) -> &'static str {
    match reason {
        CancelReason::Interrupt => "SIGINT",
        CancelReason::Terminate => "SIGTERM",
        CancelReason::CleanupDeadline => "deadline",
    }
}

fn fallback_id(step: &ExecStep, make: impl FnOnce() -> String) -> String {
    if step.id.is_empty() {
        make()
    } else {
        step.id.clone()
    }
}

/// What the main graph came to.
struct GraphResult {
    /// A step with `on_failure: fail` failed.
    failed: bool,
    /// A step with `on_failure: warn` failed.
    warned: bool,
    /// Indexes of the steps that succeeded, in the order they finished.
    completed: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done(Outcome),
}

/// Runs `plan.steps` as a graph: a step starts once its `needs` succeeded, up to
/// `concurrency` at once; after a failure or a signal nothing new starts.
async fn run_graph(shared: &Arc<Shared>, options: &Options, cancel: &Cancel) -> GraphResult {
    let plan = &shared.plan;
    let steps = &plan.steps;
    let index: HashMap<&str, usize> = steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.as_str(), i))
        .collect();
    let selected: BTreeSet<&str> = options.only.iter().map(String::as_str).collect();
    let is_selected = |i: usize| selected.is_empty() || selected.contains(steps[i].id.as_str());
    let mut states = vec![State::Pending; steps.len()];
    let mut result = GraphResult {
        failed: false,
        warned: false,
        completed: Vec::new(),
    };
    // Why nothing new may start, once something went wrong.
    let mut stop_reason: Option<String> = None;
    let mut running = 0usize;
    let mut tasks: JoinSet<(usize, StepResult)> = JoinSet::new();
    let mut task_steps: HashMap<tokio::task::Id, usize> = HashMap::new();
    let concurrency = options.concurrency.max(1);

    loop {
        // Settle every pending step that can be decided without running it.
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..steps.len() {
                if states[i] != State::Pending {
                    continue;
                }
                let skip = if !is_selected(i) {
                    Some("not selected by --only".to_owned())
                } else if let Some(reason) = &steps[i].skip {
                    Some(reason.clone())
                } else {
                    steps[i].needs.iter().find_map(|need| {
                        let &n = index.get(need.as_str())?;
                        match states[n] {
                            State::Done(Outcome::Succeeded) => None,
                            State::Done(_) if !is_selected(n) => None,
                            State::Done(outcome) => {
                                Some(format!("needs `{need}`, which {}", outcome_phrase(outcome)))
                            }
                            _ => None,
                        }
                    })
                };
                if let Some(reason) = skip {
                    states[i] = State::Done(Outcome::Skipped);
                    changed = true;
                    finish_unstarted(shared, &steps[i], Outcome::Skipped, reason).await;
                }
            }
        }
        if stop_reason.is_none()
            && let Some(reason) = cancel.reason()
        {
            stop_reason = Some(format!(
                "not started: the run was {}",
                interrupted_word(reason)
            ));
        }
        if stop_reason.is_none() {
            for i in 0..steps.len() {
                if running >= concurrency {
                    break;
                }
                let ready = states[i] == State::Pending
                    && steps[i]
                        .needs
                        .iter()
                        .all(|need| match index.get(need.as_str()) {
                            Some(&n) => {
                                states[n] == State::Done(Outcome::Succeeded) || !is_selected(n)
                            }
                            None => true,
                        });
                if ready {
                    states[i] = State::Running;
                    running += 1;
                    let (shared, cancel) = (Arc::clone(shared), cancel.clone());
                    let handle = tasks.spawn(async move {
                        let step = &shared.plan.steps[i];
                        let result =
                            run_step(&shared, step, step.id.clone(), Phase::Steps, &cancel).await;
                        (i, result)
                    });
                    task_steps.insert(handle.id(), i);
                }
            }
        }
        if running == 0 {
            break;
        }
        tokio::select! {
            joined = tasks.join_next() => {
                let Some(joined) = joined else { break };
                running -= 1;
                // A step task that panicked is a failed step, not a crashed run.
                let (i, outcome) = match joined {
                    Ok((i, step_result)) => {
                        result.warned |= step_result.warned;
                        (i, step_result.outcome)
                    }
                    Err(error) => {
                        let i = task_steps.get(&error.id()).copied().unwrap_or_default();
                        finish_unstarted(shared, &steps[i], Outcome::Failed, format!("internal error: {error}")).await;
                        (i, Outcome::Failed)
                    }
                };
                states[i] = State::Done(outcome);
                if outcome == Outcome::Succeeded {
                    result.completed.push(i);
                } else if outcome.is_failure() {
                    match steps[i].on_failure {
                        OnFailure::Fail if cancel.reason().is_none() => {
                            result.failed = true;
                            stop_reason.get_or_insert_with(|| format!("not started: step `{}` failed", steps[i].id));
                        }
                        OnFailure::Fail => {}
                        OnFailure::Warn => result.warned = true,
                        OnFailure::Ignore => {}
                    }
                }
            }
            reason = cancel.cancelled(), if stop_reason.is_none() => {
                shared.emitter.emit(Event::Cancelling { signal: signal_name(reason).to_owned() }).await;
                stop_reason = Some(format!("not started: the run was {}", interrupted_word(reason)));
            }
        }
    }
    let reason = stop_reason.unwrap_or_else(|| "not started".to_owned());
    for (i, state) in states.iter_mut().enumerate() {
        if *state == State::Pending {
            *state = State::Done(Outcome::Skipped);
            finish_unstarted(shared, &steps[i], Outcome::Skipped, reason.clone()).await;
        }
    }
    result
}

fn outcome_phrase(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "failed",
        Outcome::TimedOut => "timed out",
        Outcome::Cancelled => "was cancelled",
        Outcome::Skipped => "was skipped",
        Outcome::RolledBack => "was rolled back",
    }
}

async fn finish_unstarted(shared: &Shared, step: &ExecStep, outcome: Outcome, reason: String) {
    shared
        .emitter
        .emit(Event::StepFinished {
            step: step.id.clone(),
            phase: Phase::Steps,
            outcome,
            on_failure: step.on_failure,
            attempts: 0,
            duration_ms: 0,
            reason: Some(reason),
        })
        .await;
}

/// Runs one step with its retries and reports every attempt.
async fn run_step(
    shared: &Shared,
    step: &ExecStep,
    id: String,
    phase: Phase,
    cancel: &Cancel,
) -> StepResult {
    let emitter = &shared.emitter;
    let started = Instant::now();
    emitter
        .emit(Event::StepStarted {
            step: id.clone(),
            phase,
            kind: step.action.kind_name().to_owned(),
            name: step.name.clone(),
            at: Utc::now(),
        })
        .await;
    let mut output = StepOutput::new(id.clone(), emitter.clone());
    let mut attempt = 0u32;
    let end = loop {
        attempt += 1;
        let attempt_started_at = Utc::now();
        let attempt_started = Instant::now();
        let end = if let Some(reason) = cancel.reason() {
            step_kind::AttemptEnd {
                outcome: Outcome::Cancelled,
                ..step_kind::AttemptEnd::error(format!(
                    "not started: the run was {}",
                    interrupted_word(reason)
                ))
            }
        } else {
            let mut ctx = StepContext {
                plan: &shared.plan,
                step,
                attempt,
                cancel,
                timeout: step.timeout,
                output: &mut output,
                state_dir: &shared.state_dir,
                run: &shared.run,
                groups: &shared.groups,
            };
            step_kind::execute(&mut ctx).await
        };
        let decision = match end.outcome {
            Outcome::Failed | Outcome::TimedOut => {
                backoff::after_failure(attempt, step.retries, step.retry_delay)
            }
            _ => RetryDecision::GiveUp {
                reason: String::new(),
            },
        };
        let retry_in = match &decision {
            RetryDecision::Retry { delay, .. } => Some(*delay),
            RetryDecision::GiveUp { .. } => None,
        };
        emitter
            .emit(Event::AttemptFinished {
                step: id.clone(),
                phase,
                attempt: Attempt {
                    number: attempt,
                    started_at: attempt_started_at,
                    duration_ms: millis(attempt_started.elapsed()),
                    outcome: end.outcome,
                    exit_code: end.exit_code,
                    signal: end.signal,
                    error: end.error.clone(),
                    retry_in_ms: retry_in.map(millis),
                },
            })
            .await;
        let Some(delay) = retry_in else { break end };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => break step_kind::AttemptEnd {
                outcome: Outcome::Cancelled,
                ..step_kind::AttemptEnd::error("cancelled while waiting to retry")
            },
        }
    };
    emitter
        .emit(Event::StepFinished {
            step: id,
            phase,
            outcome: end.outcome,
            on_failure: step.on_failure,
            attempts: attempt,
            duration_ms: millis(started.elapsed()),
            reason: end.error,
        })
        .await;
    StepResult {
        outcome: end.outcome,
        warned: end.warned,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown-host".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec_plan::Action;
    use crate::redact::Redactor;

    fn step(id: &str, script: &str, needs: &[&str]) -> ExecStep {
        ExecStep {
            id: id.to_owned(),
            name: None,
            needs: needs.iter().map(|n| (*n).to_owned()).collect(),
            skip: None,
            timeout: None,
            retries: 0,
            retry_delay: Duration::from_millis(10),
            on_failure: OnFailure::Fail,
            rollback: Vec::new(),
            env: Vec::new(),
            cwd: None,
            action: Action::Shell {
                script: script.to_owned(),
            },
            redactor: Arc::new(Redactor::new(&["hunter2"])),
        }
    }

    fn plan(steps: Vec<ExecStep>) -> ExecPlan {
        ExecPlan {
            name: "unit".into(),
            file: "unit.yaml".into(),
            digest: "0".into(),
            run_id: "r".into(),
            scratch: std::env::temp_dir(),
            steps,
            on_failure: Vec::new(),
            always: Vec::new(),
            kill_grace: Duration::from_millis(100),
            redactor: Arc::new(Redactor::new(&["hunter2"])),
            sources: Vec::new(),
            storage: Vec::new(),
            backup_storage: None,
            retention: None,
            timezone: None,
        }
    }

    fn options() -> Options {
        Options {
            concurrency: 2,
            only: Vec::new(),
            state_dir: std::env::temp_dir(),
        }
    }

    async fn run(plan: ExecPlan) -> (Summary, Vec<Event>) {
        let (emitter, mut events) = Emitter::channel(Arc::clone(&plan.redactor));
        let collector = tokio::spawn(async move {
            let mut all = Vec::new();
            while let Some(event) = events.recv().await {
                all.push(event);
            }
            all
        });
        let summary = execute(
            Arc::new(plan),
            &options(),
            Cancel::new(),
            ProcessGroups::default(),
            emitter,
        )
        .await;
        (summary, collector.await.unwrap())
    }

    fn finished(events: &[Event]) -> Vec<(String, Outcome, Option<String>)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::StepFinished {
                    step,
                    outcome,
                    reason,
                    ..
                } => Some((step.clone(), *outcome, reason.clone())),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_skipped_step_skips_its_dependents_but_not_the_others() {
        let mut gated = step("gated", "true", &[]);
        gated.skip = Some("`when` rendered `false`".into());
        let plan = plan(vec![
            gated,
            step("after", "true", &["gated"]),
            step("free", "echo hunter2", &[]),
        ]);
        let (summary, events) = run(plan).await;
        assert_eq!(summary.exit_code, exit_code::SUCCESS);
        let finished = finished(&events);
        assert!(finished.contains(&(
            "gated".into(),
            Outcome::Skipped,
            Some("`when` rendered `false`".into())
        )));
        assert!(finished.contains(&(
            "after".into(),
            Outcome::Skipped,
            Some("needs `gated`, which was skipped".into())
        )));
        assert!(finished.contains(&("free".into(), Outcome::Succeeded, None)));
        let lines: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Event::StepOutput { line, .. } => Some(line.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(lines, ["***"]);
    }

    #[tokio::test]
    async fn a_failure_stops_new_steps_and_names_the_culprit() {
        let plan = plan(vec![
            step("bad", "exit 1", &[]),
            step("later", "true", &["bad"]),
        ]);
        let (summary, events) = run(plan).await;
        assert_eq!(
            summary,
            Summary {
                status: RunStatus::Failed,
                exit_code: exit_code::FAILURE
            }
        );
        assert_eq!(
            finished(&events)[1],
            (
                "later".into(),
                Outcome::Skipped,
                Some("needs `bad`, which failed".into())
            )
        );
    }

    #[test]
    fn unavailable_kinds_and_unknown_only_ids_are_refused() {
        // Checks and manual steps belong to drills and runbooks, not to `execute` yet.
        let mut check_step = step("db", "", &[]);
        check_step.action = Action::Manual {
            text: "look at it".into(),
        };
        let plan = plan(vec![step("ready", "true", &[]), check_step]);
        let mut options = options();
        options.only = vec!["redy".into()];
        let refusals: Vec<String> = check(&plan, &options)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            refusals,
            [
                "step `db`: step kind `manual` is not available yet",
                "--only redy: no step `redy` in the plan, did you mean `ready`?"
            ]
        );
    }
}
