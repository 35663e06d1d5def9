//! Cleanup phases, after the graph: rollback (completed steps' `rollback`, newest first) and
//! the plan's `on_failure` when the run failed or was stopped, then `always` for every run.
//! After a signal they get [`CLEANUP_BUDGET`] before their own processes are stopped too.

use std::time::Duration;

use super::executor::{RunContext, run_step};
use super::interrupted_word;
use crate::cancel::{Cancel, CancelReason};
use crate::event::{Event, Outcome, Phase};
use crate::exec_plan::ExecStep;
use crate::plan::OnFailure;

/// After SIGINT/SIGTERM, rollback, `on_failure` and `always` together get this long before
/// their processes are stopped too; a run that was asked to stop must stop.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(60);

/// The cleanup steps of a run, rendered with its outcome, and whether the graph failed.
pub struct Steps<'a> {
    pub graph_failed: bool,
    pub on_failure: &'a [ExecStep],
    pub always: &'a [ExecStep],
}

/// Runs the cleanup phases. `completed` are the indexes of the steps that succeeded, in the
/// order they finished; `interrupted` is the signal that stopped the graph, if one did.
/// Returns true when an `always` step that may not fail failed.
pub async fn run(
    ctx: &RunContext,
    cancel: &Cancel,
    interrupted: Option<CancelReason>,
    completed: &[usize],
    steps: Steps<'_>,
) -> bool {
    let Steps {
        graph_failed,
        on_failure,
        always,
    } = steps;
    let plan = &ctx.plan;
    let emitter = &ctx.emitter;
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
    if graph_failed || interrupted.is_some() {
        let why = match interrupted {
            Some(reason) => format!("the run was {}", interrupted_word(reason)),
            None => "a step failed".to_owned(),
        };
        let to_undo: Vec<&ExecStep> = completed
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
                        "{why}: undoing {} completed step{}, newest first",
                        to_undo.len(),
                        if to_undo.len() == 1 { "" } else { "s" }
                    ),
                })
                .await;
        }
        for parent in to_undo {
            let mut all_ok = true;
            for step in &parent.rollback {
                let end = run_step(ctx, step, Phase::Rollback, &cleanup_cancel).await;
                all_ok &= end.outcome == Outcome::Succeeded;
            }
            if all_ok {
                emitter
                    .emit(Event::StepRolledBack {
                        step: parent.id.clone(),
                    })
                    .await;
            }
        }
        if !on_failure.is_empty() {
            emitter
                .emit(Event::PhaseStarted {
                    phase: Phase::OnFailure,
                    reason: why,
                })
                .await;
            for step in on_failure {
                run_step(ctx, step, Phase::OnFailure, &cleanup_cancel).await;
            }
        }
    }
    let mut failed = false;
    if !always.is_empty() {
        emitter
            .emit(Event::PhaseStarted {
                phase: Phase::Always,
                reason: "`always` steps run at the end of every run".to_owned(),
            })
            .await;
        for step in always {
            let end = run_step(ctx, step, Phase::Always, &cleanup_cancel).await;
            failed |= end.outcome.is_failure() && step.on_failure == OnFailure::Fail;
        }
    }
    deadline.abort();
    failed
}
