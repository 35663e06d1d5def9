//! Step kinds: what each kind of step does when it runs. Each kind is one module with an
//! `execute(ctx, …) -> AttemptEnd` function; adding a kind is adding its module and its arm
//! in [`execute`] and [`is_available`].
//!
//! A kind does its work and reports what it did as typed events ([`StepOutput::emit`]); it
//! never formats prose for people, and it never bounds itself: the engine's executor holds
//! every attempt to the step's timeout and the run's cancellation, and words the message.

mod backup;
mod check;
mod copy;
pub mod manual;
mod notify;
mod prune;
mod restore;
mod run;
mod run_state;
mod shell;
mod verify;

pub use run_state::{Restored, RunState, Settled};

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::cancel::Cancel;
use crate::event::{Emitter, Event, Outcome};
use crate::exec_plan::{Action, ExecPlan, ExecStep};
use crate::process::{self, Ended, Limits, LineSink, ProcessGroups, Spawn, Stream};
use crate::source::Stop;

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
            | Action::Check(_)
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
            set,
            storage,
            database,
            path,
            force,
            keep_previous,
        } => {
            let target = crate::source::RestoreTarget {
                database: database.clone(),
                // `original` is the source's own place, which is what no path means.
                path: path
                    .as_deref()
                    .filter(|p| *p != crate::plan::ORIGINAL_PATH)
                    .map(PathBuf::from),
                force: *force,
                keep_previous: keep_previous.clone(),
            };
            restore::execute(ctx, source, set.as_deref(), storage.as_deref(), target).await
        }
        Action::Notify {
            webhook,
            message,
            body,
            format,
        } => {
            let notification = notify::Notification {
                webhook: webhook.as_deref(),
                message: message.as_deref(),
                body: body.as_deref(),
                format: *format,
            };
            notify::execute(ctx, notification).await
        }
        Action::Check(check) => check::execute(ctx, check).await,
        other => AttemptEnd::error(format!(
            "step kind `{}` is not available yet",
            other.kind_name()
        )),
    }
}

/// How an attempt of a kind is held to the step's timeout and the run's cancellation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bounding {
    /// The kind runs the step's own process, which `process.rs` stops as a group: SIGTERM,
    /// the plan's `kill_grace`, SIGKILL, then the output drain. It ends the attempt itself,
    /// as `TimedOut` or `Cancelled`.
    Process,
    /// In-process work: the executor stops it by firing [`StepContext::stop`] and, after
    /// `window`, dropping it. Work that runs tools (a backup) needs the window, so a retry
    /// never starts beside tools that are still stopping; async work (S3, HTTP) stops when
    /// dropped and gets none.
    InProcess { window: Duration },
}

/// How long past the kill grace a stopped backup is waited for: the watchdog's SIGKILL and
/// the thread's unwinding after it.
const BACKUP_STOP_MARGIN: Duration = Duration::from_millis(500);

/// How the executor bounds attempts of `action`'s kind.
pub fn bounding(action: &Action, kill_grace: Duration) -> Bounding {
    match action {
        Action::Run { .. } | Action::Shell { .. } => Bounding::Process,
        // A `run` check is a process like a `run` step.
        Action::Check(check) if check.run.is_some() => Bounding::Process,
        Action::Backup { .. } => Bounding::InProcess {
            window: kill_grace + BACKUP_STOP_MARGIN,
        },
        _ => Bounding::InProcess {
            window: Duration::ZERO,
        },
    }
}

/// Everything a step kind may use while it runs one attempt.
pub struct StepContext<'a> {
    pub plan: &'a ExecPlan,
    pub step: &'a ExecStep,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Fires when the step must stop (a signal, or cleanup running out of time); process
    /// kinds hand it to [`run_process`].
    pub cancel: &'a Cancel,
    /// The step's timeout for this attempt.
    pub timeout: Option<Duration>,
    /// Set by the executor when an in-process attempt must stop (timed out or cancelled);
    /// kinds that run tools on blocking threads pass it on.
    pub stop: &'a Stop,
    /// Where the step's output lines and events go (to the log, the reporter and
    /// `--json`), redacted on the way.
    pub output: &'a mut StepOutput,
    pub run: &'a RunState,
    pub groups: &'a ProcessGroups,
}

/// How one attempt ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptEnd {
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why it failed. For `TimedOut` and `Cancelled` the kind leaves it empty and the
    /// executor words it, so every kind says it the same way.
    pub error: Option<String>,
    /// The step's processes outlived the grace period and were killed.
    pub killed: bool,
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
            killed: false,
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

    /// Ended by a bound (`TimedOut` or `Cancelled`), to be worded by the executor.
    pub fn stopped(outcome: Outcome) -> Self {
        AttemptEnd {
            outcome,
            ..AttemptEnd::succeeded()
        }
    }
}

/// A step's output, sent as events.
#[derive(Debug)]
pub struct StepOutput {
    step: String,
    emitter: Emitter,
    /// The end of a cut piece of a long line that may be the beginning of a secret, per
    /// stream (stdout, stderr): sent with the text that follows it, so no secret is ever cut.
    held: [String; 2],
}

impl StepOutput {
    pub fn new(step: String, emitter: Emitter) -> Self {
        StepOutput {
            step,
            emitter,
            held: Default::default(),
        }
    }

    /// `text` after what was held back for its stream.
    fn after_held(&mut self, stream: Stream, text: String) -> String {
        let held = std::mem::take(&mut self.held[stream as usize]);
        if held.is_empty() { text } else { held + &text }
    }

    async fn send(&self, stream: Stream, line: String) {
        self.emitter
            .emit(Event::StepOutput {
                step: self.step.clone(),
                stream,
                line,
            })
            .await;
    }

    /// The id of the step this output belongs to, for the events a kind emits.
    pub fn step(&self) -> String {
        self.step.clone()
    }

    /// Reports what the step did, as a typed event.
    pub async fn emit(&self, event: Event) {
        self.emitter.emit(event).await;
    }
}

impl LineSink for StepOutput {
    async fn line(&mut self, stream: Stream, line: String) {
        let line = self.after_held(stream, line);
        self.send(stream, line).await;
    }

    /// A long line is cut into pieces; the end of a piece that may begin a secret waits for
    /// the next piece, so the redactor sees the secret whole and masks it.
    async fn piece(&mut self, stream: Stream, text: String) {
        let mut text = self.after_held(stream, text);
        let cut = self.emitter.redactor().possible_match_start(&text);
        self.held[stream as usize] = text.split_off(cut);
        self.send(stream, text).await;
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
            for leftover in &exit.leftovers {
                ctx.output
                    .emit(crate::event::Event::StepWarning {
                        step: step.id.clone(),
                        message: format!(
                            "killed {leftover}: the step left it running, and nothing a step \
                             starts may outlive it"
                        ),
                    })
                    .await;
            }
            let outcome = match exit.ended {
                _ if exit.success() => Outcome::Succeeded,
                Ended::Exited => Outcome::Failed,
                Ended::TimedOut => Outcome::TimedOut,
                Ended::Cancelled => Outcome::Cancelled,
            };
            // A timeout or a stop is worded by the executor, the same way for every kind.
            let error = match (exit.ended, exit.code, exit.signal) {
                (Ended::TimedOut | Ended::Cancelled, ..) => None,
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
                killed: exit.killed,
                warned: !exit.leftovers.is_empty(),
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
