//! Progress for people on stderr: each step's start and end with duration and outcome, the
//! last output lines of a failed step, then a summary. Under a terminal the running steps
//! are also shown live (indicatif); under cron the same lines come out plain.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Reporter;
use crate::event::{Event, Outcome, Phase};

/// How many output lines of a failed step are repeated on stderr.
const TAIL_LINES: usize = 10;

pub struct Human {
    log: Option<PathBuf>,
    live: Option<Live>,
    tails: HashMap<String, VecDeque<String>>,
    finished: Vec<(String, Phase, Outcome, u64, Option<String>)>,
}

struct Live {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

impl Human {
    /// `log` is the run's log file, named at the end; `live` turns on the live view (use it
    /// only when stderr is a terminal).
    pub fn new(log: Option<PathBuf>, live: bool) -> Self {
        let live = live.then(|| Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: HashMap::new(),
        });
        Human {
            log,
            live,
            tails: HashMap::new(),
            finished: Vec::new(),
        }
    }

    fn line(&self, text: &str) {
        match &self.live {
            Some(live) => {
                live.multi.println(text).ok();
            }
            None => {
                writeln!(std::io::stderr().lock(), "{text}").ok();
            }
        }
    }
}

fn seconds(ms: u64) -> String {
    format!("{:.2}s", Duration::from_millis(ms).as_secs_f64())
}

impl Reporter for Human {
    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                plan,
                steps,
                ..
            } => self.line(&format!(
                "planrun: plan `{plan}`, run {run_id}: {} step(s)",
                steps.len()
            )),
            Event::PhaseStarted { phase, reason } => {
                self.line(&format!("{}: {reason}", phase.as_str()));
            }
            Event::StepStarted { step, .. } => {
                self.tails.remove(step);
                self.line(&format!("[{step}] started"));
                if let Some(live) = &mut self.live {
                    let bar = live.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} running for {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(step.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    live.bars.insert(step.clone(), bar);
                }
            }
            Event::StepOutput { step, line, .. } => {
                let tail = self.tails.entry(step.clone()).or_default();
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
            }
            Event::AttemptFinished { step, attempt, .. } => {
                if let Some(ms) = attempt.retry_in_ms {
                    let error = attempt.error.as_deref().unwrap_or("failed");
                    self.line(&format!(
                        "[{step}] attempt {} {}: {error}; retrying in {}",
                        attempt.number,
                        attempt.outcome.as_str(),
                        seconds(ms)
                    ));
                }
            }
            Event::StepFinished {
                step,
                phase,
                outcome,
                attempts,
                duration_ms,
                reason,
                ..
            } => {
                if let Some(live) = &mut self.live
                    && let Some(bar) = live.bars.remove(step)
                {
                    bar.finish_and_clear();
                }
                let mut text = match outcome {
                    Outcome::Skipped => format!("[{step}] skipped"),
                    _ => format!("[{step}] {} in {}", outcome.as_str(), seconds(*duration_ms)),
                };
                if *attempts > 1 {
                    text.push_str(&format!(" after {attempts} attempts"));
                }
                if let Some(reason) = reason {
                    text.push_str(&format!(": {reason}"));
                }
                self.line(&text);
                if outcome.is_failure()
                    && let Some(tail) = self.tails.remove(step)
                {
                    for line in tail {
                        self.line(&format!("    {step} | {line}"));
                    }
                }
                self.finished
                    .push((step.clone(), *phase, *outcome, *duration_ms, reason.clone()));
            }
            Event::StepRolledBack { step } => {
                self.line(&format!("[{step}] rolled back"));
                for entry in &mut self.finished {
                    if entry.0 == *step && entry.1 == Phase::Steps {
                        entry.2 = Outcome::RolledBack;
                    }
                }
            }
            Event::Cancelling { signal } => {
                self.line(&format!(
                    "planrun: {signal}: stopping running steps, then cleaning up"
                ));
            }
            Event::SetAbandoned { path, error: None } => {
                self.line(&format!(
                    "planrun: the backup set was not completed; removed {}",
                    path.display()
                ));
            }
            Event::SetAbandoned {
                path,
                error: Some(error),
            } => {
                self.line(&format!(
                    "planrun: the backup set was not completed and {} could not be removed: {error}",
                    path.display()
                ));
            }
            // What planrun's own step kinds did is the run's news (where the set went, what
            // was kept): shown as it comes, under the step's name.
            Event::ArtifactWritten { .. }
            | Event::StepWarning { .. }
            | Event::SetCommitted { .. }
            | Event::SetCopied { .. }
            | Event::PruneDecided { .. }
            | Event::SetRemoved { .. }
            | Event::SetVerified { .. }
            | Event::RestoreFinished { .. }
            | Event::Notified { .. } => {
                if let Some((step, lines)) = super::news_lines(event) {
                    for line in lines {
                        match step {
                            Some(step) => self.line(&format!("    {step} | {line}")),
                            None => self.line(&format!("planrun: {line}")),
                        }
                    }
                }
            }
            Event::RunFinished {
                status,
                exit_code,
                duration_ms,
                ..
            } => {
                let width = self.finished.iter().map(|f| f.0.len()).max().unwrap_or(0);
                let mut summary = String::from("summary:");
                for (step, phase, outcome, ms, _) in &self.finished {
                    let phase = match phase {
                        Phase::Steps => String::new(),
                        other => format!(" ({})", other.as_str()),
                    };
                    summary.push_str(&format!(
                        "\n  {step:width$}  {:<11}  {}{phase}",
                        outcome.as_str(),
                        seconds(*ms)
                    ));
                }
                self.line(&summary);
                let mut text = format!(
                    "planrun: run {} in {} (exit code {exit_code})",
                    status.as_str(),
                    seconds(*duration_ms)
                );
                if let Some(log) = &self.log {
                    text.push_str(&format!("; log: {}", log.display()));
                }
                self.line(&text);
            }
        }
    }
}
