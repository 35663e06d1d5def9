//! The scheduler: runs `plan.steps` as a dependency graph. It decides which step may start
//! (its `needs` succeeded, `--only`, `when`), how many run at once, and what a failure
//! means for the rest (nothing new starts after a step that may not fail, or a signal).
//! Each step itself is run by the [executor](super::executor).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::task::JoinSet;

use super::executor::{RunContext, StepEnd, run_step};
use super::{Options, interrupted_word, signal_name};
use crate::cancel::Cancel;
use crate::event::{Event, Outcome, Phase};
use crate::exec_plan::{Action, ExecStep};
use crate::plan::OnFailure;

/// What the main graph came to.
pub struct GraphResult {
    /// A step with `on_failure: fail` failed.
    pub failed: bool,
    /// A step with `on_failure: warn` failed, a step warned, or a backup step was skipped
    /// because a step it needs did not succeed: the run is partial.
    pub warned: bool,
    /// Indexes of the steps that succeeded, in the order they finished.
    pub completed: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Running,
    Done(Outcome),
}

/// Runs `plan.steps` as a graph: a step starts once its `needs` succeeded, up to
/// `concurrency` at once; after a failure or a signal nothing new starts.
pub async fn run_graph(ctx: &Arc<RunContext>, options: &Options, cancel: &Cancel) -> GraphResult {
    let plan = &ctx.plan;
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
    let mut tasks: JoinSet<(usize, StepEnd)> = JoinSet::new();
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
                // Skipped by `--only` or its own `when`, a step is skipped as the plan or the
                // operator asked; skipped because a step it needs did not succeed, a backup
                // is a backup the night lost.
                let mut unasked = false;
                let skip = if !is_selected(i) {
                    Some("not selected by --only".to_owned())
                } else if let Some(reason) = &steps[i].skip {
                    Some(reason.clone())
                } else {
                    unasked = true;
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
                    if unasked && let Action::Backup { source } = &steps[i].action {
                        // Never silent: the run is partial (exit 3), and its set, if another
                        // backup made one, records `source` as missing.
                        result.warned = true;
                        ctx.emitter
                            .emit(Event::StepWarning {
                                step: steps[i].id.clone(),
                                message: format!(
                                    "the backup of `{source}` did not run: it {}",
                                    reason
                                ),
                            })
                            .await;
                    }
                    finish_unstarted(ctx, &steps[i], Outcome::Skipped, reason).await;
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
                    let (ctx, cancel) = (Arc::clone(ctx), cancel.clone());
                    let handle = tasks.spawn(async move {
                        let step = &ctx.plan.steps[i];
                        (i, run_step(&ctx, step, Phase::Steps, &cancel).await)
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
                        finish_unstarted(ctx, &steps[i], Outcome::Failed, format!("internal error: {error}")).await;
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
                ctx.emitter.emit(Event::Cancelling { signal: signal_name(reason).to_owned() }).await;
                stop_reason = Some(format!("not started: the run was {}", interrupted_word(reason)));
            }
        }
    }
    let reason = stop_reason.unwrap_or_else(|| "not started".to_owned());
    for (i, state) in states.iter_mut().enumerate() {
        if *state == State::Pending {
            *state = State::Done(Outcome::Skipped);
            finish_unstarted(ctx, &steps[i], Outcome::Skipped, reason.clone()).await;
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

async fn finish_unstarted(ctx: &RunContext, step: &ExecStep, outcome: Outcome, reason: String) {
    ctx.emitter
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
