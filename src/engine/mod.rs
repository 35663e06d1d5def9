//! The engine: runs an `ExecPlan` and says how it went. It emits events and never prints.
//!
//! - [`scheduler`]: the graph (which step may start, how many at once, after-failure rules);
//! - [`executor`]: one step (attempts, retries with backoff, the one "timeout or cancel"
//!   bound), usable without the graph;
//! - [`cleanup`]: rollback, the plan's `on_failure`, and `always`;
//! - [`set_commit`]: when the run's backup set is committed or abandoned.

pub mod cleanup;
pub mod executor;
pub mod scheduler;
pub mod set_commit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use crate::cancel::{Cancel, CancelReason};
use crate::event::{Emitter, Event, RunStatus};
use crate::exec_plan::{ExecPlan, ExecStep};
use crate::exit_code;
use crate::process::ProcessGroups;
use crate::step_kind;

pub use executor::RunContext;

/// How to run a plan.
#[derive(Clone, Debug)]
pub struct Options {
    /// How many steps may run at once (at least 1).
    pub concurrency: usize,
    /// Run only these steps (`--only`); empty means all. Their `needs` outside the selection
    /// are taken as satisfied.
    pub only: Vec<String>,
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
    let ctx = Arc::new(RunContext::new(Arc::clone(&plan), groups, emitter.clone()));
    emitter
        .emit(Event::RunStarted {
            run_id: plan.run_id.clone(),
            plan: plan.name.clone(),
            digest: plan.digest.clone(),
            // Absolute, so a record read later from elsewhere still names the file.
            file: std::path::absolute(&plan.file).unwrap_or_else(|_| plan.file.clone()),
            planrun_version: env!("CARGO_PKG_VERSION").to_owned(),
            host: crate::host::hostname(),
            pid: std::process::id(),
            at: Utc::now(),
            steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
            always: plan.always.iter().map(|s| s.id.clone()).collect(),
            concurrency: options.concurrency.max(1),
        })
        .await;

    set_commit::expect_backups(&ctx, &options.only);
    let graph = scheduler::run_graph(&ctx, options, &cancel).await;
    let interrupted = cancel.reason();
    let set_lost = set_commit::settle_after_graph(&ctx, graph.failed, interrupted.is_some()).await;
    let status = match interrupted {
        Some(_) => RunStatus::Interrupted,
        None if graph.failed => RunStatus::Failed,
        None if graph.warned || set_lost => RunStatus::Partial,
        None => RunStatus::Succeeded,
    };
    let (on_failure, always) = cleanup_steps(&ctx, status).await;
    let cleanup_failed = cleanup::run(
        &ctx,
        &cancel,
        interrupted,
        &graph.completed,
        cleanup::Steps {
            graph_failed: graph.failed,
            on_failure: &on_failure,
            always: &always,
        },
    )
    .await;

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
        None if graph.warned || set_lost => Summary {
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

/// Records what the run came to before its cleanup, and renders `on_failure` and `always`
/// with it, so that their templates and notifications tell the truth about the run.
async fn cleanup_steps(ctx: &RunContext, status: RunStatus) -> (Vec<ExecStep>, Vec<ExecStep>) {
    let plan = &ctx.plan;
    let offsite = match &plan.cleanup_templates {
        Some(templates) if templates.needs_offsite => {
            crate::run_outcome::newest_offsite(plan).await
        }
        _ => None,
    };
    ctx.run.settle(status, offsite);
    let Some(templates) = &plan.cleanup_templates else {
        return (plan.on_failure.clone(), plan.always.clone());
    };
    match templates.render(&ctx.run.outcome(), Utc::now()) {
        Ok(steps) => steps,
        Err(error) => {
            // The same templates rendered before the run; keep that rendering rather than
            // run no cleanup at all.
            ctx.emitter
                .emit(Event::StepWarning {
                    step: "planrun".to_owned(),
                    message: format!("cannot render the cleanup steps with the outcome: {error}"),
                })
                .await;
            (plan.on_failure.clone(), plan.always.clone())
        }
    }
}

/// How a stopped run is described: "the run was …".
pub(crate) fn interrupted_word(reason: CancelReason) -> &'static str {
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

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::event::Outcome;
    use crate::exec_plan::Action;
    use crate::plan::OnFailure;
    use crate::redact::Redactor;

    pub(crate) fn step(id: &str, script: &str, needs: &[&str]) -> ExecStep {
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

    pub(crate) fn plan(steps: Vec<ExecStep>) -> ExecPlan {
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
            monitoring: Default::default(),
            cleanup_templates: None,
            drill: None,
            objectives: None,
        }
    }

    fn options() -> Options {
        Options {
            concurrency: 2,
            only: Vec::new(),
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
