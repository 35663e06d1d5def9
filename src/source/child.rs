//! Running the external tools a source needs (pg_dump, psql, git) and checking every exit.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{SourceError, Stop};

/// The end of stderr kept for error messages; tools can be chatty, the tail says why.
const STDERR_TAIL: usize = 16 * 1024;

fn program_name(command: &Command) -> String {
    std::path::Path::new(command.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A started tool: its stderr collector and the watchdog that kills its process group when
/// the backup is told to stop.
struct Running {
    child: Child,
    program: String,
    stderr: Option<JoinHandle<String>>,
    watchdog: Watchdog,
    stop: Stop,
}

/// Stops a process group once `stop` is set (SIGTERM, the stop's grace, then SIGKILL), until
/// it is finished. A blocking read of a tool's pipe cannot look at the flag itself: ending the
/// tool is what ends the read.
pub struct Watchdog {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Watches the process group led by `leader` (spawned with `process_group(0)`).
    pub fn start(leader: u32, stop: &Stop) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let pid = nix::unistd::Pid::from_raw(leader as i32);
        let (watch_done, watch_stop) = (done.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !watch_done.load(Ordering::SeqCst) {
                if watch_stop.is_stopped() {
                    let grace = watch_stop.grace();
                    if !grace.is_zero() {
                        let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGTERM);
                        let kill_at = std::time::Instant::now() + grace;
                        // The tool was waited for: it ended within the grace.
                        while std::time::Instant::now() < kill_at {
                            if watch_done.load(Ordering::SeqCst) {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Watchdog {
            done,
            thread: Some(thread),
        }
    }

    /// Stops watching; call once the group has been waited for, so its id cannot be reused.
    pub fn finish(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.finish();
    }
}

fn spawn(
    command: &mut Command,
    hint: Option<&'static str>,
    stop: &Stop,
) -> Result<Running, SourceError> {
    let program = program_name(command);
    if stop.is_stopped() {
        return Err(SourceError::Stopped);
    }
    // Its own process group, so a stop takes the tool's helpers (pg_dump -j workers) too.
    command.stderr(Stdio::piped()).process_group(0);
    let mut child = command.spawn().map_err(|source| SourceError::Spawn {
        program: program.clone(),
        hint: if source.kind() == std::io::ErrorKind::NotFound {
            hint
        } else {
            None
        },
        source,
    })?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // stderr is drained on its own thread so a chatty tool never blocks on a full pipe while
    // we are busy with its stdout.
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let _ = stderr.read_to_end(&mut all);
        let start = all.len().saturating_sub(STDERR_TAIL);
        String::from_utf8_lossy(&all[start..]).trim().to_owned()
    });
    let watchdog = Watchdog::start(child.id(), stop);
    Ok(Running {
        child,
        program,
        stderr: Some(reader),
        watchdog,
        stop: stop.clone(),
    })
}

impl Running {
    fn stop_watching(&mut self) {
        self.watchdog.finish();
    }

    /// Waits for the tool; a failed exit carries its stderr.
    fn finish(mut self) -> Result<String, SourceError> {
        let status = self
            .child
            .wait()
            .map_err(SourceError::io("wait for", &self.program))?;
        self.stop_watching();
        let stderr = self
            .stderr
            .take()
            .and_then(|h| h.join().ok())
            .unwrap_or_default();
        if self.stop.is_stopped() {
            return Err(SourceError::Stopped);
        }
        if !status.success() {
            return Err(SourceError::Tool {
                program: self.program.clone(),
                status: status.to_string(),
                stderr,
            });
        }
        Ok(stderr)
    }

    fn abort(mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
        self.stop_watching();
        if let Some(stderr) = self.stderr.take() {
            let _ = stderr.join();
        }
    }
}

/// Runs a tool and streams its stdout into `out`. The tool's exit status is checked even when
/// the consumer was happy, and empty output is an error: a pipeline never yields a good
/// artifact from a failing producer.
pub fn stream_stdout(
    mut command: Command,
    out: &mut dyn Write,
    hint: Option<&'static str>,
    stop: &Stop,
) -> Result<u64, SourceError> {
    let program = program_name(&command);
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut running = spawn(&mut command, hint, stop)?;
    let mut stdout = running.child.stdout.take().expect("stdout is piped");
    let copied = std::io::copy(&mut stdout, out);
    drop(stdout);
    let bytes = match copied {
        Ok(bytes) => bytes,
        Err(error) => {
            running.abort();
            return Err(SourceError::Io {
                action: "write the output of",
                path: program.into(),
                source: error,
            });
        }
    };
    running.finish()?;
    if bytes == 0 {
        return Err(SourceError::Empty { program });
    }
    Ok(bytes)
}

/// Runs a tool feeding `input` to its stdin; checks its exit status.
pub fn feed_stdin(
    mut command: Command,
    input: &mut dyn Read,
    hint: Option<&'static str>,
    stop: &Stop,
) -> Result<(), SourceError> {
    let program = program_name(&command);
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    let mut running = spawn(&mut command, hint, stop)?;
    let mut stdin = running.child.stdin.take().expect("stdin is piped");
    let copied = std::io::copy(input, &mut stdin);
    drop(stdin);
    if let Err(error) = copied {
        // A tool that exits early closes its stdin; its own error says more than EPIPE.
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            running.finish()?;
        } else {
            running.abort();
        }
        return Err(SourceError::Io {
            action: "feed",
            path: program.into(),
            source: error,
        });
    }
    running.finish().map(drop)
}

/// Runs a tool to completion and returns its stdout as text.
pub fn capture(
    mut command: Command,
    hint: Option<&'static str>,
    stop: &Stop,
) -> Result<String, SourceError> {
    let program = program_name(&command);
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let mut running = spawn(&mut command, hint, stop)?;
    let mut stdout = running.child.stdout.take().expect("stdout is piped");
    let mut text = String::new();
    let read = stdout.read_to_string(&mut text);
    drop(stdout);
    if let Err(error) = read {
        running.abort();
        return Err(SourceError::Io {
            action: "read the output of",
            path: program.into(),
            source: error,
        });
    }
    running.finish()?;
    Ok(text)
}
