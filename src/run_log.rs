//! `RunLog`: the run's log file, `<state>/logs/<run-id>.log`: every output line of every
//! step, prefixed with the step id and stream, and planrun's own account of the run.
//!
//! It is written through `tracing` with a subscriber that is the default only on the thread
//! consuming the run's events, so the file holds this run and nothing else. Everything in it
//! comes from events, which the engine redacts before they leave it.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::field::{Field, Visit};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

use crate::event::Event;

/// The open log of one run. Log calls must come from the thread that opened it.
pub struct RunLog {
    file: Arc<Mutex<BufWriter<File>>>,
    _guard: DefaultGuard,
}

impl RunLog {
    /// Creates the log file (mode 0600) and makes it this thread's tracing output.
    pub fn open(path: &Path) -> io::Result<RunLog> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let file = Arc::new(Mutex::new(BufWriter::with_capacity(64 * 1024, file)));
        let subscriber = tracing_subscriber::fmt()
            .with_writer(SharedFile(Arc::clone(&file)))
            .with_ansi(false)
            .event_format(LineFormat)
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        Ok(RunLog {
            file,
            _guard: guard,
        })
    }

    /// Logs what an event says. Output lines are buffered; everything else is flushed at
    /// once so the file is current when someone reads it during a run.
    pub fn event(&self, event: &Event) {
        match event {
            Event::StepOutput { step, stream, line } => {
                let stream = match stream {
                    crate::process::Stream::Stdout => "stdout",
                    crate::process::Stream::Stderr => "stderr",
                };
                tracing::info!(target: "planrun::output", step = step.as_str(), stream, "{line}");
                return;
            }
            Event::RunStarted {
                run_id,
                plan,
                digest,
                ..
            } => tracing::info!(
                step = "planrun",
                stream = "planrun",
                "run {run_id} of plan `{plan}` (digest {digest}) started"
            ),
            Event::PhaseStarted { phase, reason } => {
                tracing::info!(
                    step = "planrun",
                    stream = "planrun",
                    "{}: {reason}",
                    phase.as_str()
                );
            }
            Event::StepStarted {
                step, phase, kind, ..
            } => {
                tracing::info!(
                    step = step.as_str(),
                    stream = "planrun",
                    "started ({kind} step, {})",
                    phase.as_str()
                );
            }
            Event::AttemptFinished { step, attempt, .. } => {
                let mut text = format!("attempt {} {}", attempt.number, attempt.outcome.as_str());
                if let Some(error) = &attempt.error {
                    write!(text, ": {error}").ok();
                }
                if let Some(ms) = attempt.retry_in_ms {
                    write!(text, "; retrying in {ms} ms").ok();
                }
                tracing::info!(step = step.as_str(), stream = "planrun", "{text}");
            }
            Event::StepFinished {
                step,
                outcome,
                duration_ms,
                reason,
                ..
            } => {
                let reason = reason
                    .as_ref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                tracing::info!(
                    step = step.as_str(),
                    stream = "planrun",
                    "{} in {duration_ms} ms{reason}",
                    outcome.as_str()
                );
            }
            Event::StepRolledBack { step } => {
                tracing::info!(step = step.as_str(), stream = "planrun", "rolled back")
            }
            Event::Cancelling { signal } => {
                tracing::info!(
                    step = "planrun",
                    stream = "planrun",
                    "{signal}: stopping running steps"
                );
            }
            Event::SetAbandoned { path, error } => {
                tracing::info!(
                    step = "planrun",
                    stream = "planrun",
                    "backup set not completed; removing {}: {}",
                    path.display(),
                    error.as_deref().unwrap_or("removed")
                );
            }
            Event::ArtifactWritten { .. }
            | Event::StepWarning { .. }
            | Event::SetCommitted { .. }
            | Event::SetCopied { .. }
            | Event::PruneDecided { .. }
            | Event::SetRemoved { .. }
            | Event::SetVerified { .. }
            | Event::RestoreFinished { .. }
            | Event::Notified { .. } => {
                if let Some((step, lines)) = crate::reporter::news_lines(event) {
                    for line in lines {
                        tracing::info!(
                            step = step.unwrap_or("planrun"),
                            stream = "planrun",
                            "{line}"
                        );
                    }
                }
            }
            Event::RunFinished {
                status,
                exit_code,
                duration_ms,
                ..
            } => tracing::info!(
                step = "planrun",
                stream = "planrun",
                "run {} in {duration_ms} ms, exit code {exit_code}",
                status.as_str()
            ),
        }
        self.flush();
    }

    pub fn flush(&self) {
        lock(&self.file).flush().ok();
    }
}

impl Drop for RunLog {
    fn drop(&mut self) {
        self.flush();
    }
}

fn lock(file: &Mutex<BufWriter<File>>) -> MutexGuard<'_, BufWriter<File>> {
    file.lock().unwrap_or_else(PoisonError::into_inner)
}

struct SharedFile(Arc<Mutex<BufWriter<File>>>);

struct SharedFileWriter<'a>(MutexGuard<'a, BufWriter<File>>);

impl Write for SharedFileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for SharedFile {
    type Writer = SharedFileWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        SharedFileWriter(lock(&self.0))
    }
}

/// `2026-11-26T02:00:01.123Z db stdout: the line`: time, who, which stream, what; planrun's
/// own lines are `2026-11-26T02:00:01.123Z db: succeeded in 4 ms`.
struct LineFormat;

#[derive(Default)]
struct LineFields {
    step: String,
    stream: String,
    message: String,
}

impl Visit for LineFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "step" => value.clone_into(&mut self.step),
            "stream" => value.clone_into(&mut self.stream),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            write!(self.message, "{value:?}").ok();
        }
    }
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut fields = LineFields::default();
        event.record(&mut fields);
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        // A step's output names its stream; planrun's own account names only whose it is
        // (`db: started`, `planrun: run … started`), never `planrun planrun:`.
        if fields.stream == "planrun" {
            writeln!(writer, "{now} {}: {}", fields.step, fields.message)
        } else {
            writeln!(
                writer,
                "{now} {} {}: {}",
                fields.step, fields.stream, fields.message
            )
        }
    }
}
