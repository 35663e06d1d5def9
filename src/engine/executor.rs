//! The executor: runs ONE step, with its attempts, retries and backoff, each attempt held by
//! the one bound on a step ("timeout or cancel"), and reports every attempt as events.
//! It knows nothing of the graph, so `recover` can run a runbook's steps through
//! [`run_step`] one at a time.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::{interrupted_word, millis, set_commit};
use crate::backoff::{self, RetryDecision};
use crate::cancel::{Cancel, CancelReason};
use crate::event::{Attempt, Emitter, Event, Outcome, Phase};
use crate::exec_plan::{ExecPlan, ExecStep};
use crate::process::ProcessGroups;
use crate::run_outcome::StepTiming;
use crate::source::Stop;
use crate::step_kind::{self, AttemptEnd, Bounding, RunState, StepContext, StepOutput};

/// What every step of a run shares: the plan, the run's state (its backup set), the process
/// groups a second signal kills, and where events go.
pub struct RunContext {
    pub plan: Arc<ExecPlan>,
    pub run: RunState,
    pub groups: ProcessGroups,
    pub emitter: Emitter,
}

impl RunContext {
    pub fn new(plan: Arc<ExecPlan>, groups: ProcessGroups, emitter: Emitter) -> Self {
        RunContext {
            plan,
            run: RunState::default(),
            groups,
            emitter,
        }
    }
}

/// What a step came to, after all its attempts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepEnd {
    pub outcome: Outcome,
    pub attempts: u32,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// It succeeded but left something out; the run exits 3.
    pub warned: bool,
}

/// Runs `step` to its end: each attempt bounded, retried with backoff as the step says, and
/// reported (`step_started`, one `attempt_finished` per attempt, `step_finished`). The
/// caller decides what the outcome means for the rest of the run.
pub async fn run_step(ctx: &RunContext, step: &ExecStep, phase: Phase, cancel: &Cancel) -> StepEnd {
    let emitter = &ctx.emitter;
    let id = step.id.clone();
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
        let end = match cancel.reason() {
            Some(reason) => AttemptEnd {
                outcome: Outcome::Cancelled,
                ..AttemptEnd::error(format!(
                    "not started: the run was {}",
                    interrupted_word(reason)
                ))
            },
            None => {
                let mut end = run_attempt(ctx, step, attempt, cancel, &mut output).await;
                set_commit::after_attempt(ctx, step, &id, attempt, &mut end, cancel).await;
                end
            }
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
            reason = cancel.cancelled() => break AttemptEnd {
                outcome: Outcome::Cancelled,
                ..AttemptEnd::error(format!(
                    "stopped while waiting to retry: the run was {}",
                    interrupted_word(reason)
                ))
            },
        }
    };
    let duration_ms = millis(started.elapsed());
    ctx.run.step_finished(StepTiming {
        id: id.clone(),
        phase,
        outcome: end.outcome,
        duration_ms,
    });
    emitter
        .emit(Event::StepFinished {
            step: id,
            phase,
            outcome: end.outcome,
            on_failure: step.on_failure,
            attempts: attempt,
            duration_ms,
            reason: end.error.clone(),
        })
        .await;
    StepEnd {
        outcome: end.outcome,
        attempts: attempt,
        error: end.error,
        warned: end.warned,
    }
}

/// One attempt of `step`, held to its timeout and the run's cancellation, with a stopped
/// attempt's message worded here for every kind.
async fn run_attempt(
    ctx: &RunContext,
    step: &ExecStep,
    attempt: u32,
    cancel: &Cancel,
    output: &mut StepOutput,
) -> AttemptEnd {
    let plan = &ctx.plan;
    let stop = Stop::with_grace(plan.kill_grace);
    let bounding = step_kind::bounding(&step.action, plan.kill_grace);
    let mut step_ctx = StepContext {
        plan,
        step,
        attempt,
        cancel,
        timeout: step.timeout,
        stop: &stop,
        output,
        run: &ctx.run,
        groups: &ctx.groups,
    };
    let mut end = match bounding {
        // The process supervisor stops the step's process group itself and says why.
        Bounding::Process => step_kind::execute(&mut step_ctx).await,
        Bounding::InProcess { window } => {
            let mut work = pin!(step_kind::execute(&mut step_ctx));
            match bounded(step.timeout, cancel, work.as_mut()).await {
                Ok(end) => end,
                Err(outcome) => {
                    // Work that runs tools is told to stop and given their grace, so that
                    // nothing of this attempt is still running when the next one starts;
                    // other work stops when dropped.
                    stop.stop();
                    let _ = tokio::time::timeout(window, work).await;
                    AttemptEnd::stopped(outcome)
                }
            }
        }
    };
    if end.error.is_none() {
        end.error = stopped_message(&end, step.timeout, cancel.reason());
    }
    end
}

/// The one "timeout or cancel" bound on a step's work: its result, or `TimedOut` once
/// `limit` has passed, or `Cancelled` once the run is stopped. `work` is left to the caller,
/// which may give it time to stop.
pub async fn bounded<F: Future>(
    limit: Option<Duration>,
    cancel: &Cancel,
    work: std::pin::Pin<&mut F>,
) -> Result<F::Output, Outcome> {
    let limit = limit.unwrap_or(Duration::MAX);
    tokio::select! {
        result = tokio::time::timeout(limit, work) => result.map_err(|_| Outcome::TimedOut),
        _ = cancel.cancelled() => Err(Outcome::Cancelled),
    }
}

/// How a timed-out or stopped attempt is described, the same for every kind.
fn stopped_message(
    end: &AttemptEnd,
    limit: Option<Duration>,
    reason: Option<CancelReason>,
) -> Option<String> {
    let killed = if end.killed {
        "; killed after the grace period"
    } else {
        ""
    };
    match end.outcome {
        Outcome::TimedOut => Some(format!(
            "timed out after {}{killed}",
            crate::duration::Duration(limit.unwrap_or_default())
        )),
        Outcome::Cancelled => Some(match reason {
            Some(reason) => format!("stopped: the run was {}{killed}", interrupted_word(reason)),
            None => format!("stopped by planrun{killed}"),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::{plan, step};
    use crate::exec_plan::Action;

    /// Runs `step` alone through the executor, as `recover` will, and collects its events.
    async fn run_alone(step: ExecStep, cancel: Cancel) -> (StepEnd, Vec<Event>) {
        let plan = plan(vec![step.clone()]);
        let (emitter, mut events) = Emitter::channel(Arc::clone(&plan.redactor));
        let ctx = RunContext::new(Arc::new(plan), ProcessGroups::default(), emitter);
        let end = run_step(&ctx, &step, Phase::Steps, &cancel).await;
        drop(ctx);
        let mut all = Vec::new();
        while let Some(event) = events.recv().await {
            all.push(event);
        }
        (end, all)
    }

    fn attempts(events: &[Event]) -> Vec<(u32, Outcome, Option<String>, bool)> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::AttemptFinished { attempt, .. } => Some((
                    attempt.number,
                    attempt.outcome,
                    attempt.error.clone(),
                    attempt.retry_in_ms.is_some(),
                )),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn one_step_runs_with_its_retries_without_the_graph() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("tried");
        // Fails the first time, succeeds the second.
        let script = format!(
            "if [ -e '{0}' ]; then echo again; else touch '{0}'; exit 3; fi",
            marker.display()
        );
        let mut flaky = step("flaky", &script, &[]);
        flaky.retries = 1;
        let (end, events) = run_alone(flaky, Cancel::new()).await;
        assert_eq!(
            end,
            StepEnd {
                outcome: Outcome::Succeeded,
                attempts: 2,
                error: None,
                warned: false
            }
        );
        assert_eq!(
            attempts(&events),
            [
                (1, Outcome::Failed, Some("exit code 3".into()), true),
                (2, Outcome::Succeeded, None, false)
            ]
        );
        assert!(matches!(events.first(), Some(Event::StepStarted { step, .. }) if step == "flaky"));
        assert!(matches!(
            events.last(),
            Some(Event::StepFinished { step, outcome: Outcome::Succeeded, attempts: 2, .. }) if step == "flaky"
        ));
    }

    /// A webhook that accepts the connection and never answers.
    async fn silent_webhook() -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        (url, server)
    }

    fn notify_step(url: String) -> ExecStep {
        let mut notify = step("notify", "", &[]);
        notify.action = Action::Notify {
            webhook: Some(url),
            message: None,
            body: None,
            format: crate::plan::NotifyFormat::Json,
        };
        notify
    }

    #[tokio::test]
    async fn in_process_work_times_out_with_the_same_words_as_a_process() {
        let (url, server) = silent_webhook().await;
        let mut notify = notify_step(url);
        notify.timeout = Some(Duration::from_millis(200));
        let (end, events) = run_alone(notify, Cancel::new()).await;
        server.abort();
        assert_eq!(end.outcome, Outcome::TimedOut);
        assert_eq!(end.error.as_deref(), Some("timed out after 200ms"));
        assert_eq!(
            attempts(&events),
            [(
                1,
                Outcome::TimedOut,
                Some("timed out after 200ms".into()),
                false
            )]
        );
    }

    #[tokio::test]
    async fn in_process_work_stops_when_the_run_is_cancelled() {
        let (url, server) = silent_webhook().await;
        let cancel = Cancel::new();
        let firing = {
            let cancel = cancel.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                cancel.cancel(CancelReason::Terminate);
            })
        };
        let (end, _) = run_alone(notify_step(url), cancel).await;
        firing.await.unwrap();
        server.abort();
        assert_eq!(end.outcome, Outcome::Cancelled);
        assert_eq!(
            end.error.as_deref(),
            Some("stopped: the run was terminated (SIGTERM)")
        );
    }
}
