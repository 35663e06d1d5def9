//! Running the external tools a source needs (pg_dump, psql, git) and checking every exit.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use super::SourceError;

/// The end of stderr kept for error messages; tools can be chatty, the tail says why.
const STDERR_TAIL: usize = 16 * 1024;

fn program_name(command: &Command) -> String {
    std::path::Path::new(command.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn spawn(
    command: &mut Command,
    hint: Option<&'static str>,
) -> Result<(Child, JoinHandle<String>), SourceError> {
    command.stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| SourceError::Spawn {
        program: program_name(command),
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
    Ok((child, reader))
}

fn finish(
    mut child: Child,
    stderr: JoinHandle<String>,
    program: String,
) -> Result<String, SourceError> {
    let status = child
        .wait()
        .map_err(SourceError::io("wait for", &program))?;
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(SourceError::Tool {
            program,
            status: status.to_string(),
            stderr,
        });
    }
    Ok(stderr)
}

fn abort(mut child: Child, stderr: JoinHandle<String>) {
    let _ = child.kill();
    let _ = child.wait();
    let _ = stderr.join();
}

/// Runs a tool and streams its stdout into `out`. The tool's exit status is checked even when
/// the consumer was happy, and empty output is an error: a pipeline never yields a good
/// artifact from a failing producer.
pub fn stream_stdout(
    mut command: Command,
    out: &mut dyn Write,
    hint: Option<&'static str>,
) -> Result<u64, SourceError> {
    let program = program_name(&command);
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let (mut child, stderr) = spawn(&mut command, hint)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let copied = std::io::copy(&mut stdout, out);
    drop(stdout);
    let bytes = match copied {
        Ok(bytes) => bytes,
        Err(error) => {
            abort(child, stderr);
            return Err(SourceError::Io {
                action: "write the output of",
                path: program.into(),
                source: error,
            });
        }
    };
    finish(child, stderr, program.clone())?;
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
) -> Result<(), SourceError> {
    let program = program_name(&command);
    command.stdin(Stdio::piped()).stdout(Stdio::null());
    let (mut child, stderr) = spawn(&mut command, hint)?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let copied = std::io::copy(input, &mut stdin);
    drop(stdin);
    if let Err(error) = copied {
        // A tool that exits early closes its stdin; its own error says more than EPIPE.
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            finish(child, stderr, program.clone())?;
        } else {
            abort(child, stderr);
        }
        return Err(SourceError::Io {
            action: "feed",
            path: program.into(),
            source: error,
        });
    }
    finish(child, stderr, program).map(drop)
}

/// Runs a tool to completion and returns its stdout as text.
pub fn capture(mut command: Command, hint: Option<&'static str>) -> Result<String, SourceError> {
    let program = program_name(&command);
    command.stdin(Stdio::null()).stdout(Stdio::piped());
    let (mut child, stderr) = spawn(&mut command, hint)?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut text = String::new();
    let read = stdout.read_to_string(&mut text);
    drop(stdout);
    if let Err(error) = read {
        abort(child, stderr);
        return Err(SourceError::Io {
            action: "read the output of",
            path: program.into(),
            source: error,
        });
    }
    finish(child, stderr, program)?;
    Ok(text)
}
