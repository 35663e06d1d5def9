//! Running the external tools a source needs (pg_dump, psql, git) through the one process
//! supervisor ([`crate::process::Tool`]), and checking every exit.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

use tokio::process::Command;

use super::{SourceError, Stop};
use crate::process::{Exit, SpawnError, Tool, ToolExit, ToolPipes};

fn program_name(command: &Command) -> String {
    std::path::Path::new(command.as_std().get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A started tool: its raw pipes are `tool.stdin` and `tool.stdout`.
pub(super) struct Running {
    pub(super) tool: Tool,
    pub(super) program: String,
    stop: Stop,
}

/// Starts a tool under the supervisor; `stop` ends it (SIGTERM, the stop's grace, SIGKILL
/// to its whole group, so pg_dump's `-j` workers go too).
pub(super) fn start(
    command: Command,
    pipes: ToolPipes,
    hint: Option<&'static str>,
    stop: &Stop,
) -> Result<Running, SourceError> {
    let program = program_name(&command);
    if stop.is_stopped() {
        return Err(SourceError::Stopped);
    }
    let path = PathBuf::from(command.as_std().get_program());
    let tool = Tool::start(command, &path, pipes, stop.grace(), stop.cancel()).map_err(
        |error| match error {
            SpawnError::Start { source, .. } => SourceError::Spawn {
                program: program.clone(),
                hint: (source.kind() == std::io::ErrorKind::NotFound)
                    .then_some(hint)
                    .flatten(),
                source,
            },
            other => SourceError::Spawn {
                program: program.clone(),
                hint: None,
                source: std::io::Error::other(other.to_string()),
            },
        },
    )?;
    Ok(Running {
        tool,
        program,
        stop: stop.clone(),
    })
}

impl Running {
    /// Waits for the tool however it ended, with the tail of its stderr.
    pub(super) fn wait(self) -> Result<(ToolExit, String, Stop), SourceError> {
        let Running {
            tool,
            program,
            stop,
        } = self;
        let exit = tool.wait().map_err(|error| SourceError::Io {
            action: "wait for",
            path: program.clone().into(),
            source: std::io::Error::other(error.to_string()),
        })?;
        Ok((exit, program, stop))
    }

    /// Waits for the tool; a failed exit carries its stderr.
    pub(super) fn finish(self) -> Result<String, SourceError> {
        let (ToolExit { exit, stderr }, program, stop) = self.wait()?;
        if stop.is_stopped() {
            return Err(SourceError::Stopped);
        }
        if !exit.success() {
            return Err(SourceError::Tool {
                program,
                status: describe(&exit),
                stderr,
            });
        }
        Ok(stderr)
    }

    /// Stops the tool and collects it, for when its caller has already failed.
    pub(super) fn abort(self) {
        self.tool.stop();
        let _ = self.wait();
    }
}

/// The exit status in the words of `std::process::ExitStatus` (`exit status: 1`,
/// `signal: 9 (SIGKILL)`), as the tools' errors always read.
pub(super) fn describe(exit: &Exit) -> String {
    let raw = match (exit.code, exit.signal) {
        (Some(code), _) => (code & 0xff) << 8,
        (None, Some(signal)) => signal & 0x7f,
        (None, None) => return "unknown status".into(),
    };
    std::process::ExitStatus::from_raw(raw).to_string()
}

/// Runs a tool and streams its stdout into `out`. The tool's exit status is checked even when
/// the consumer was happy, and empty output is an error: a pipeline never yields a good
/// artifact from a failing producer.
pub fn stream_stdout(
    command: Command,
    out: &mut dyn Write,
    hint: Option<&'static str>,
    stop: &Stop,
) -> Result<u64, SourceError> {
    let pipes = ToolPipes {
        stdin: false,
        stdout: true,
    };
    let mut running = start(command, pipes, hint, stop)?;
    let mut stdout = running.tool.stdout.take().expect("stdout is piped");
    let copied = std::io::copy(&mut stdout, out);
    drop(stdout);
    let bytes = match copied {
        Ok(bytes) => bytes,
        Err(error) => {
            let program = running.program.clone();
            running.abort();
            return Err(SourceError::Io {
                action: "write the output of",
                path: program.into(),
                source: error,
            });
        }
    };
    let program = running.program.clone();
    running.finish()?;
    if bytes == 0 {
        return Err(SourceError::Empty { program });
    }
    Ok(bytes)
}

/// Runs a tool feeding `input` to its stdin; checks its exit status.
pub fn feed_stdin(
    command: Command,
    input: &mut dyn Read,
    hint: Option<&'static str>,
    stop: &Stop,
) -> Result<(), SourceError> {
    let pipes = ToolPipes {
        stdin: true,
        stdout: false,
    };
    let mut running = start(command, pipes, hint, stop)?;
    let mut stdin = running.tool.stdin.take().expect("stdin is piped");
    let copied = std::io::copy(input, &mut stdin);
    drop(stdin);
    if let Err(error) = copied {
        let program = running.program.clone();
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
    command: Command,
    hint: Option<&'static str>,
    stop: &Stop,
) -> Result<String, SourceError> {
    let pipes = ToolPipes {
        stdin: false,
        stdout: true,
    };
    let mut running = start(command, pipes, hint, stop)?;
    let mut stdout = running.tool.stdout.take().expect("stdout is piped");
    let mut text = String::new();
    let read = stdout.read_to_string(&mut text);
    drop(stdout);
    if let Err(error) = read {
        let program = running.program.clone();
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
