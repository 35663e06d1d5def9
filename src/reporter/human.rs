//! Progress for people on stderr: one line per finished step with its duration, size and
//! throughput, the last output lines of a failed step, then how the run ended. `-v` adds
//! each step's start, artifact hashes, recorded facts and a summary table; `--quiet` holds
//! everything back and prints it only if the run did not succeed, so cron mails only
//! failures. Under a terminal the running steps are also shown live (indicatif); under a
//! pipe, `--json` or `--quiet` nothing but plain lines is written.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{LiveBytes, Reporter, human_size};
use crate::event::{Event, Outcome, Phase, RunStatus};

/// How many output lines of a failed step are repeated on stderr.
const TAIL_LINES: usize = 10;

/// How much the reporter says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Nothing on success; everything below on failure.
    Quiet,
    Normal,
    Verbose,
}

pub struct Human {
    log: Option<PathBuf>,
    live: Option<Live>,
    detail: Detail,
    /// `--quiet`: the lines held back until the run's outcome is known.
    held: Vec<String>,
    tails: HashMap<String, VecDeque<String>>,
    /// Bytes each step wrote or sent, for its line's size and throughput.
    bytes: HashMap<String, u64>,
    /// The widest step id, so the step lines line up.
    width: usize,
    finished: Vec<(String, Phase, Outcome, u64, Option<String>)>,
}

struct Live {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
    /// Bytes moved and the rate, once a step that moves data has started.
    data: Option<LiveBytes>,
}

impl Human {
    /// `log` is the run's log file, named at the end; `live` turns on the live view (use it
    /// only when stderr is a terminal; it is off under `--quiet`).
    pub fn new(log: Option<PathBuf>, live: bool, detail: Detail) -> Self {
        let live = (live && detail != Detail::Quiet).then(|| Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: HashMap::new(),
            data: None,
        });
        Human {
            log,
            live,
            detail,
            held: Vec::new(),
            tails: HashMap::new(),
            bytes: HashMap::new(),
            width: 0,
            finished: Vec::new(),
        }
    }

    fn line(&mut self, text: &str) {
        if self.detail == Detail::Quiet {
            self.held.push(text.to_owned());
            return;
        }
        match &self.live {
            Some(live) => {
                live.multi.println(text).ok();
            }
            None => {
                writeln!(std::io::stderr().lock(), "{text}").ok();
            }
        }
    }

    fn verbose(&self) -> bool {
        self.detail == Detail::Verbose
    }

    fn step_line(
        &self,
        step: &str,
        phase: Phase,
        outcome: Outcome,
        attempts: u32,
        ms: u64,
        reason: Option<&str>,
    ) -> String {
        let width = self.width;
        let mut text = format!("{step:width$}  {:<11}", outcome.as_str());
        if outcome != Outcome::Skipped {
            text.push_str(&format!("  {}", seconds(ms)));
        }
        if let Some(&bytes) = self.bytes.get(step)
            && outcome == Outcome::Succeeded
        {
            text.push_str(&format!("  {}", human_size(bytes)));
            if ms >= 10 {
                let rate = (bytes as f64 / (ms as f64 / 1000.0)) as u64;
                text.push_str(&format!("  {}/s", human_size(rate)));
            }
        }
        if attempts > 1 {
            text.push_str(&format!("  after {attempts} attempts"));
        }
        if phase != Phase::Steps {
            text.push_str(&format!("  ({})", phase.as_str()));
        }
        if let Some(reason) = reason {
            text.push_str(&format!(": {reason}"));
        }
        text
    }
}

/// `0.4 s`, `12.3 s`, `2m05s`: durations as people read them.
fn seconds(ms: u64) -> String {
    let secs = Duration::from_millis(ms).as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = ms / 1000;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

fn plural(n: usize, word: &str) -> String {
    super::count(n as u64, word)
}

impl Reporter for Human {
    fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted {
                run_id,
                plan,
                steps,
                always,
                ..
            } => {
                self.width = steps
                    .iter()
                    .chain(always)
                    .map(String::len)
                    .max()
                    .unwrap_or(0);
                let mut text = format!(
                    "planrun: plan `{plan}`, run {run_id}: {}",
                    plural(steps.len(), "step")
                );
                if !always.is_empty() {
                    text.push_str(&format!(", then {} `always`", always.len()));
                }
                self.line(&text);
            }
            Event::PhaseStarted { phase, reason } => {
                // `always` runs every time: saying so each run is noise, not news.
                if *phase != Phase::Always || self.verbose() {
                    self.line(&format!("{}: {reason}", phase.as_str()));
                }
            }
            Event::StepStarted { step, kind, .. } => {
                self.tails.remove(step);
                if self.verbose() {
                    self.line(&format!("[{step}] started"));
                }
                if let Some(live) = &mut self.live {
                    let bar = live.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} running for {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(step.clone());
                    bar.enable_steady_tick(Duration::from_millis(120));
                    live.bars.insert(step.clone(), bar);
                    if live.data.is_none()
                        && matches!(kind.as_str(), "backup" | "copy" | "verify" | "restore")
                    {
                        live.data = Some(LiveBytes::under(&live.multi, "data"));
                    }
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
                        "{step}: attempt {} {}: {error}; retrying in {}",
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
                let text = self.step_line(
                    step,
                    *phase,
                    *outcome,
                    *attempts,
                    *duration_ms,
                    reason.as_deref(),
                );
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
                self.line(&format!("{step}: rolled back"));
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
                match event {
                    Event::ArtifactWritten { step, bytes, .. } => {
                        *self.bytes.entry(step.clone()).or_default() += bytes;
                    }
                    Event::SetCopied { step, bytes, .. } => {
                        *self.bytes.entry(step.clone()).or_default() += bytes;
                    }
                    _ => {}
                }
                let news = if self.verbose() {
                    super::news_lines(event)
                } else {
                    super::news_brief(event)
                };
                if let Some((step, lines)) = news {
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
                if let Some(live) = &mut self.live {
                    live.data = None;
                }
                if self.verbose() {
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
                }
                let mut text = format!(
                    "planrun: run {} in {} (exit code {exit_code})",
                    status.as_str(),
                    seconds(*duration_ms)
                );
                if let Some(log) = &self.log {
                    text.push_str(&format!("; log: {}", log.display()));
                }
                self.line(&text);
                if self.detail == Detail::Quiet && *status != RunStatus::Succeeded {
                    let mut err = std::io::stderr().lock();
                    for line in self.held.drain(..) {
                        writeln!(err, "{line}").ok();
                    }
                }
            }
        }
    }
}
