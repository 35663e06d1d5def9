//! The one supervisor for every child process, steps and backup tools alike: spawn in a new
//! process group, stream output line by line, stop the whole group on timeout or cancellation
//! (SIGTERM, grace, SIGKILL). Backup tools ([`Tool`]) additionally get raw stdin/stdout pipes
//! that blocking code reads and writes at full speed (pg_dump into an artifact, an artifact
//! into pg_restore) while the supervisor watches the process and its stderr.
//!
//! Why tokio::process and not duct (the design card's first idea): duct's `Handle::kill()`
//! signals only the direct child, so grandchildren survive, and its `wait()` then blocks for
//! as long as a grandchild holds the stdout pipe; process-group support has been an open duct
//! issue since 2017 (duct#41), and its API is blocking. planrun needs to stop whole groups,
//! to give up on pipes a stray grandchild keeps open, and to wait on a child, a deadline and a
//! signal at the same time; tokio::process with `process_group(0)`, `killpg` and `select!`
//! does all three (nextest does the same).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::time::Instant;

use crate::cancel::Cancel;

/// Lines longer than this are split; a child writing no newline cannot make planrun hold
/// more than this per stream.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

/// After the direct child exits, how long its pipes may stay open (held by a grandchild)
/// before planrun kills what is left of the group and stops reading.
pub const DRAIN_WINDOW: Duration = Duration::from_millis(500);

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What to start.
#[derive(Clone, Debug)]
pub struct Spawn {
    /// An absolute path, from [`resolve_program`].
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to (and overriding) planrun's own environment.
    pub env: Vec<(String, String)>,
    pub cwd: Option<PathBuf>,
}

/// When to stop the child.
#[derive(Clone, Debug)]
pub struct Limits {
    pub timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
}

/// Why a child stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited (or was killed by someone else's signal) on its own.
    Exited,
    /// planrun stopped it at its deadline.
    TimedOut,
    /// planrun stopped it because the run was cancelled.
    Cancelled,
}

/// How a child ended.
#[derive(Clone, Debug)]
pub struct Exit {
    pub ended: Ended,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// planrun had to SIGKILL the group (it ignored SIGTERM, or a grandchild held the pipes).
    pub killed: bool,
    /// Output lines were still open after the child exited and were cut off.
    pub pipes_abandoned: bool,
    /// Processes the child started that were still running when it ended, killed and
    /// reaped then: `pid N (command line)` each.
    pub leftovers: Vec<String>,
}

impl Exit {
    pub fn success(&self) -> bool {
        self.ended == Ended::Exited && self.code == Some(0)
    }

    fn from_status(ended: Ended, status: ExitStatus) -> Self {
        Exit {
            ended,
            code: status.code(),
            signal: status.signal(),
            killed: false,
            pipes_abandoned: false,
            leftovers: Vec::new(),
        }
    }
}

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("command `{program}` not found in PATH ({path})")]
    NotFound { program: String, path: String },
    #[error("{} does not exist", path.display())]
    Missing { path: PathBuf },
    #[error("{} is not executable (mode {mode:o})", path.display())]
    NotExecutable { path: PathBuf, mode: u32 },
    #[error("{} is a directory, not a program", path.display())]
    IsDirectory { path: PathBuf },
    #[error("working directory {} does not exist", path.display())]
    NoCwd { path: PathBuf },
    #[error("cannot start {}: {source}", program.display())]
    Start { program: PathBuf, source: io::Error },
    #[error("cannot read the output of {}: {source}", program.display())]
    Read { program: PathBuf, source: io::Error },
}

/// Receives a child's output lines. Awaiting it applies back-pressure: a slow consumer slows
/// the child down instead of letting output pile up in memory.
pub trait LineSink {
    fn line(&mut self, stream: Stream, text: String) -> impl Future<Output = ()> + Send;

    /// A piece of a line longer than [`MAX_LINE_BYTES`], cut where no newline was: the line
    /// goes on in the next piece or line of the same stream. A sink that joins or masks text
    /// across lines must not treat the cut as a line break (a secret may straddle it).
    fn piece(&mut self, stream: Stream, text: String) -> impl Future<Output = ()> + Send {
        self.line(stream, text)
    }
}

/// The process groups of running children, so that a second signal can SIGKILL them all
/// before planrun exits at once.
#[derive(Clone, Debug, Default)]
pub struct ProcessGroups {
    live: Arc<Mutex<BTreeSet<i32>>>,
}

impl ProcessGroups {
    /// The groups of this planrun process: one run per process, so steps and the tools that
    /// backups and restores start are all in one set, and a second signal kills them all.
    pub fn global() -> ProcessGroups {
        static GLOBAL: std::sync::OnceLock<ProcessGroups> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(ProcessGroups::default).clone()
    }

    /// Registers a new group; the run's ledger notes it, so that if planrun is killed the
    /// next run can find and stop what is left of it.
    fn insert(&self, pgid: i32) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pgid);
        crate::leftovers::process_started(pgid);
    }

    fn remove(&self, pgid: i32) {
        self.live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pgid);
    }

    /// SIGKILLs every group still registered.
    pub fn kill_all(&self) {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        for pgid in live.iter() {
            signal_group(*pgid, Signal::SIGKILL);
        }
    }
}

/// Resolves a program name the way `execvp` would, but up front, so that "not found" and
/// "not executable" are clear errors rather than a bare ENOENT. `path_var` is the PATH the
/// child will see; names with a `/` are taken relative to `cwd`.
pub fn resolve_program(
    program: &str,
    path_var: Option<&OsString>,
    cwd: Option<&Path>,
) -> Result<PathBuf, SpawnError> {
    if program.contains('/') {
        let path = Path::new(program);
        let path = match (path.is_absolute(), cwd) {
            (false, Some(cwd)) => cwd.join(path),
            _ => path.to_path_buf(),
        };
        return check_executable(&path).map(|()| path);
    }
    let search = path_var
        .cloned()
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    let mut not_executable = None;
    for dir in std::env::split_paths(&search) {
        let candidate = dir.join(program);
        match check_executable(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(error @ SpawnError::NotExecutable { .. }) => {
                not_executable.get_or_insert(error);
            }
            Err(_) => {}
        }
    }
    Err(not_executable.unwrap_or_else(|| SpawnError::NotFound {
        program: program.to_owned(),
        path: search.to_string_lossy().into_owned(),
    }))
}

fn check_executable(path: &Path) -> Result<(), SpawnError> {
    let metadata = std::fs::metadata(path).map_err(|_| SpawnError::Missing {
        path: path.to_path_buf(),
    })?;
    if metadata.is_dir() {
        return Err(SpawnError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let mode = metadata.permissions().mode();
    // Root may execute any file with at least one execute bit, and nobody may execute a file
    // without one; checking the bits is enough to give the clear error before exec does.
    if mode & 0o111 == 0 {
        return Err(SpawnError::NotExecutable {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Runs a child to its end, feeding its output to `sink`. Stops the group at the timeout or
/// when `cancel` fires: SIGTERM, `kill_grace`, then SIGKILL.
pub async fn run(
    spawn: &Spawn,
    limits: &Limits,
    cancel: &Cancel,
    groups: &ProcessGroups,
    sink: &mut impl LineSink,
) -> Result<Exit, SpawnError> {
    if let Some(cwd) = &spawn.cwd
        && !cwd.is_dir()
    {
        return Err(SpawnError::NoCwd { path: cwd.clone() });
    }
    become_subreaper();
    let token = descendant_token();
    let mut command = tokio::process::Command::new(&spawn.program);
    command
        .args(&spawn.args)
        .envs(spawn.env.iter().map(|(k, v)| (k, v)))
        .env(DESCENDANT_VAR, &token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if let Some(cwd) = &spawn.cwd {
        command.current_dir(cwd);
    }
    let mut child = start(command, &spawn.program, groups)?;
    let stdout = child.child.stdout.take().map(LineReader::new);
    let mut exit = supervise(child, stdout, limits, cancel, groups, sink).await?;
    for swept in kill_descendants(&token).await {
        let pid = swept.split(' ').nth(1);
        if !exit.leftovers.iter().any(|l| l.split(' ').nth(1) == pid) {
            exit.leftovers.push(swept);
        }
    }
    Ok(exit)
}

/// The environment variable that marks every process a child started, however far down
/// (`setsid`, double forks and new process groups all inherit the environment).
const DESCENDANT_VAR: &str = "PLANRUN_SUPERVISOR";

/// A mark no other child of any planrun process carries.
fn descendant_token() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{n}", std::process::id())
}

/// Makes planrun a child subreaper (Linux), once: a process a step started and left behind,
/// even one that escaped the step's process group with `setsid` and was orphaned, is then
/// reparented to planrun rather than to init, so planrun can reap it once it killed it.
fn become_subreaper() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        // Without it (an old kernel) leftovers are still killed; init reaps them instead.
        nix::sys::prctl::set_child_subreaper(true).ok();
    });
}

/// After a child ended: kills every process that carries its `token` (see
/// [`DESCENDANT_VAR`]) and reaps those that were reparented to planrun. Nothing a step
/// started may outlive it: a `setsid sleep 300 &` would otherwise run on after the run, out of
/// reach of its timeout. Returns what was killed, for a warning. A process that cleared its
/// own environment is not found this way.
async fn kill_descendants(token: &str) -> Vec<String> {
    let needle = format!("{DESCENDANT_VAR}={token}");
    let me = std::process::id() as i32;
    let mut killed: Vec<(i32, String)> = Vec::new();
    // A few passes: a leftover may fork while it is being found.
    for _ in 0..5 {
        let found = marked_processes(&needle, me);
        let fresh: Vec<(i32, String)> = found
            .into_iter()
            .filter(|(pid, _)| !killed.iter().any(|(k, _)| k == pid))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for (pid, _) in &fresh {
            nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL).ok();
        }
        killed.extend(fresh);
    }
    // Reap the ones that are planrun's children now (orphans, through the subreaper): a
    // killed process dies at once unless it is stuck in the kernel, so this waits briefly.
    let until = Instant::now() + Duration::from_secs(2);
    let mut waiting: Vec<i32> = killed.iter().map(|(pid, _)| *pid).collect();
    while !waiting.is_empty() && Instant::now() < until {
        waiting.retain(|pid| {
            use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
            match waitpid(Pid::from_raw(*pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => true,
                // Reaped, or not planrun's child (its own parent reaps it).
                Ok(_) | Err(_) => false,
            }
        });
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    killed
        .into_iter()
        .map(|(pid, command)| format!("pid {pid} ({command})"))
        .collect()
}

/// Every process but `me` whose environment holds `needle`, with its command line.
fn marked_processes(needle: &str, me: i32) -> Vec<(i32, String)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = needle.as_bytes();
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ.split(|b| *b == 0).any(|var| var == needle) {
            continue;
        }
        out.push((pid, command_of(&entry.path())));
    }
    out
}

/// A process's command line from its `/proc` folder, shortened for a warning.
fn command_of(proc_dir: &std::path::Path) -> String {
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let command: String = String::from_utf8_lossy(&cmdline)
        .split('\0')
        .filter(|a| !a.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if command.chars().count() > 80 {
        command.chars().take(77).collect::<String>() + "..."
    } else {
        command
    }
}

/// The live members of process group `pgid`, as `pid N (command)`: what a step left running
/// in its own group, named before the group is killed (once killed they may be gone before
/// the sweep for leftovers looks, and a leftover must be named every time, not by luck).
fn group_members(pgid: i32) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid pgrp …`: comm may hold spaces, so read after the last `)`.
        let mut fields = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or("")
            .split_whitespace();
        let (state, pgrp) = (fields.next(), fields.nth(1));
        if pgrp.and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && state != Some("Z") {
            out.push(format!("pid {pid} ({})", command_of(&entry.path())));
        }
    }
    out
}

/// A started child: its process group is registered in `groups` until it is supervised to
/// its end.
struct Started {
    child: tokio::process::Child,
    pgid: i32,
    program: PathBuf,
}

/// Spawns `command` (stdin and stdout already set up) as the leader of a new process group,
/// with stderr piped to the supervisor.
fn start(
    mut command: tokio::process::Command,
    program: &Path,
    groups: &ProcessGroups,
) -> Result<Started, SpawnError> {
    command.stderr(Stdio::piped()).process_group(0);
    let child = command.spawn().map_err(|source| SpawnError::Start {
        program: program.to_path_buf(),
        source,
    })?;
    // The command holds the child's ends of any raw pipes; they must close here, or the
    // caller's end would never see EOF.
    drop(command);
    let pgid = child.id().map(|id| id as i32).unwrap_or_default();
    groups.insert(pgid);
    Ok(Started {
        child,
        pgid,
        program: program.to_path_buf(),
    })
}

/// Watches a started child to its end: feeds stdout lines (when they are read here) and
/// stderr lines to `sink`, and stops the group at the timeout or when `cancel` fires.
async fn supervise(
    started: Started,
    mut stdout: Option<LineReader<tokio::process::ChildStdout>>,
    limits: &Limits,
    cancel: &Cancel,
    groups: &ProcessGroups,
    sink: &mut impl LineSink,
) -> Result<Exit, SpawnError> {
    let Started {
        mut child,
        pgid,
        program,
    } = started;
    let mut stderr = child.stderr.take().map(LineReader::new);

    let deadline = limits.timeout.map(|timeout| Instant::now() + timeout);
    let mut ended = Ended::Exited;
    // Set once SIGTERM went out: when SIGKILL follows.
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let mut status: Option<ExitStatus> = None;
    let mut drain_until: Option<Instant> = None;
    let mut pipes_abandoned = false;
    let mut left_in_group = Vec::new();
    let mut read_error = None;

    loop {
        if status.is_some() && stdout.is_none() && stderr.is_none() {
            break;
        }
        tokio::select! {
            line = next_line(&mut stdout) => match line {
                Ok(Some((text, false))) => sink.line(Stream::Stdout, text).await,
                Ok(Some((text, true))) => sink.piece(Stream::Stdout, text).await,
                Ok(None) => stdout = None,
                Err(error) => { read_error.get_or_insert(error); stdout = None; }
            },
            line = next_line(&mut stderr) => match line {
                Ok(Some((text, false))) => sink.line(Stream::Stderr, text).await,
                Ok(Some((text, true))) => sink.piece(Stream::Stderr, text).await,
                Ok(None) => stderr = None,
                Err(error) => { read_error.get_or_insert(error); stderr = None; }
            },
            waited = child.wait(), if status.is_none() => {
                let exit = waited.map_err(|source| SpawnError::Start { program: program.clone(), source })?;
                status = Some(exit);
                drain_until = Some(Instant::now() + DRAIN_WINDOW);
            },
            () = sleep_until(deadline), if status.is_none() && kill_at.is_none() => {
                ended = Ended::TimedOut;
                signal_group(pgid, Signal::SIGTERM);
                kill_at = Some(Instant::now() + limits.kill_grace);
            },
            _ = cancel.cancelled(), if status.is_none() && kill_at.is_none() => {
                ended = Ended::Cancelled;
                signal_group(pgid, Signal::SIGTERM);
                kill_at = Some(Instant::now() + limits.kill_grace);
            },
            () = sleep_until(kill_at), if status.is_none() && !killed => {
                signal_group(pgid, Signal::SIGKILL);
                killed = true;
            },
            () = sleep_until(drain_until) => {
                // The child is gone but something it started still holds a pipe open.
                left_in_group = group_members(pgid);
                signal_group(pgid, Signal::SIGKILL);
                pipes_abandoned = true;
                stdout = None;
                stderr = None;
            },
        }
    }
    // A group whose leader has exited while members were stopped (kill_at passed) may still
    // have members; after a timeout or cancellation nothing of the group may outlive the step.
    if ended != Ended::Exited {
        signal_group(pgid, Signal::SIGKILL);
    }
    groups.remove(pgid);
    if let Some(source) = read_error {
        return Err(SpawnError::Read { program, source });
    }
    let status = status.unwrap_or_else(|| ExitStatus::from_raw(0));
    let mut exit = Exit::from_status(ended, status);
    exit.killed = killed || pipes_abandoned;
    exit.pipes_abandoned = pipes_abandoned;
    exit.leftovers = left_in_group;
    Ok(exit)
}

fn signal_group(pgid: i32, signal: Signal) {
    // The group may be gone already (ESRCH); that is the outcome we want.
    if pgid > 0 {
        killpg(Pid::from_raw(pgid), signal).ok();
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn next_line<R: AsyncRead + Unpin>(
    reader: &mut Option<LineReader<R>>,
) -> io::Result<Option<(String, bool)>> {
    match reader {
        Some(reader) => reader.next_line().await,
        None => std::future::pending().await,
    }
}

/// Splits a pipe into lines of at most [`MAX_LINE_BYTES`], decoding invalid UTF-8 lossily.
struct LineReader<R> {
    reader: BufReader<R>,
    partial: Vec<u8>,
    eof: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    fn new(reader: R) -> Self {
        LineReader {
            reader: BufReader::with_capacity(64 * 1024, reader),
            partial: Vec::new(),
            eof: false,
        }
    }

    /// The next line, without its newline, and whether it was cut at [`MAX_LINE_BYTES`]
    /// rather than ended; `None` at the end. Cancel-safe: the only await is `fill_buf`, and
    /// bytes are moved into `partial` only after it returns.
    async fn next_line(&mut self) -> io::Result<Option<(String, bool)>> {
        loop {
            if self.eof {
                if self.partial.is_empty() {
                    return Ok(None);
                }
                return Ok(Some((take_text(&mut self.partial, usize::MAX), false)));
            }
            let buffer = self.reader.fill_buf().await?;
            if buffer.is_empty() {
                self.eof = true;
                continue;
            }
            let room = MAX_LINE_BYTES - self.partial.len();
            let window = &buffer[..buffer.len().min(room)];
            if let Some(newline) = window.iter().position(|&b| b == b'\n') {
                self.partial.extend_from_slice(&window[..newline]);
                self.reader.consume(newline + 1);
                if self.partial.last() == Some(&b'\r') {
                    self.partial.pop();
                }
                return Ok(Some((take_text(&mut self.partial, usize::MAX), false)));
            }
            let taken = window.len();
            self.partial.extend_from_slice(window);
            self.reader.consume(taken);
            if self.partial.len() >= MAX_LINE_BYTES {
                return Ok(Some((take_text(&mut self.partial, MAX_LINE_BYTES), true)));
            }
        }
    }
}

/// Takes up to `limit` bytes out of `bytes` as text. When the cut falls inside a UTF-8
/// character, the character's first bytes stay for the next piece instead of being mangled.
fn take_text(bytes: &mut Vec<u8>, limit: usize) -> String {
    let mut cut = bytes.len().min(limit);
    if limit != usize::MAX
        && let Err(error) = std::str::from_utf8(&bytes[..cut])
        && error.error_len().is_none()
        && error.valid_up_to() > 0
    {
        cut = error.valid_up_to();
    }
    let rest = bytes.split_off(cut);
    let text = String::from_utf8_lossy(bytes).into_owned();
    *bytes = rest;
    text
}

/// The end of a tool's stderr kept for its error message: tools can be chatty, the tail says
/// why they failed.
pub const STDERR_TAIL: usize = 16 * 1024;

/// Which of a tool's standard streams are raw pipes to the caller; the others are closed
/// (stdin) or discarded (stdout). stderr always goes to the supervisor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolPipes {
    pub stdin: bool,
    pub stdout: bool,
}

/// How a tool ended, with the tail of what it wrote to stderr.
#[derive(Clone, Debug)]
pub struct ToolExit {
    pub exit: Exit,
    pub stderr: String,
}

/// A backup tool (pg_dump, psql, git) run by the same supervisor as a step, for blocking code
/// (sources run on blocking threads). The caller moves bytes through the raw pipes with plain
/// blocking reads and writes, so an artifact streams at the speed of the pipe, not of an
/// async hop per chunk; the supervisor, a task on the runtime, reads stderr, and on `cancel`
/// stops the whole group (SIGTERM, `kill_grace`, SIGKILL), which also ends the caller's reads
/// and writes. Must not be waited for or dropped on an async worker thread.
pub struct Tool {
    pub stdin: Option<std::io::PipeWriter>,
    pub stdout: Option<std::io::PipeReader>,
    program: PathBuf,
    own: Cancel,
    runtime: tokio::runtime::Handle,
    supervisor: Option<tokio::task::JoinHandle<Result<ToolExit, SpawnError>>>,
}

impl Tool {
    /// Starts `command` (its arguments and environment set; `program` names it in errors)
    /// with the given pipes, stopped when `cancel` fires.
    pub fn start(
        mut command: tokio::process::Command,
        program: &Path,
        pipes: ToolPipes,
        kill_grace: Duration,
        cancel: &Cancel,
    ) -> Result<Tool, SpawnError> {
        let runtime = runtime_handle();
        let _entered = runtime.enter();
        let pipe_error = |source| SpawnError::Start {
            program: program.to_path_buf(),
            source,
        };
        let stdin = if pipes.stdin {
            let (reader, writer) = std::io::pipe().map_err(pipe_error)?;
            command.stdin(reader);
            Some(writer)
        } else {
            command.stdin(Stdio::null());
            None
        };
        let stdout = if pipes.stdout {
            let (reader, writer) = std::io::pipe().map_err(pipe_error)?;
            widen_pipe(&reader);
            command.stdout(writer);
            Some(reader)
        } else {
            command.stdout(Stdio::null());
            None
        };
        let groups = ProcessGroups::global();
        let started = start(command, program, &groups)?;
        // The tool's own stop, so that the caller can end it early (an error on its side)
        // through the same TERM, grace, KILL path as a cancelled run.
        let own = Cancel::new();
        let (outer, inner) = (cancel.clone(), own.clone());
        let limits = Limits {
            timeout: None,
            kill_grace,
        };
        let supervisor = runtime.spawn(async move {
            let mut tail = Tail::default();
            let forward = async {
                let reason = outer.cancelled().await;
                inner.cancel(reason);
                std::future::pending::<()>().await
            };
            tokio::select! {
                exit = supervise(started, None, &limits, &inner, &groups, &mut tail) => {
                    Ok(ToolExit { exit: exit?, stderr: tail.text() })
                }
                () = forward => unreachable!("forwarding never ends"),
            }
        });
        Ok(Tool {
            stdin,
            stdout,
            program: program.to_path_buf(),
            own,
            runtime,
            supervisor: Some(supervisor),
        })
    }

    /// Stops the tool early (SIGTERM, grace, SIGKILL to its group); [`Tool::wait`] still
    /// collects it.
    pub fn stop(&self) {
        self.own.cancel(crate::cancel::CancelReason::Terminate);
    }

    /// Closes the caller's ends of the pipes and waits for the tool to end.
    pub fn wait(mut self) -> Result<ToolExit, SpawnError> {
        self.stdin = None;
        self.stdout = None;
        let supervisor = self.supervisor.take().expect("a tool is waited for once");
        match self.runtime.block_on(supervisor) {
            Ok(result) => result,
            Err(error) => Err(SpawnError::Start {
                program: self.program.clone(),
                source: io::Error::other(error),
            }),
        }
    }
}

impl Drop for Tool {
    /// A tool its caller gave up on must not outlive it.
    fn drop(&mut self) {
        if let Some(supervisor) = self.supervisor.take() {
            self.stdin = None;
            self.stdout = None;
            self.stop();
            let _ = self.runtime.block_on(supervisor);
        }
    }
}

/// The runtime that supervises tools: the caller's, or for code that runs outside one (a
/// library user, a benchmark) a small one of planrun's own.
fn runtime_handle() -> tokio::runtime::Handle {
    static FALLBACK: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    tokio::runtime::Handle::try_current().unwrap_or_else(|_| {
        FALLBACK
            .get_or_init(|| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("planrun-supervisor")
                    .enable_all()
                    .build()
                    .expect("a runtime for supervising tools")
            })
            .handle()
            .clone()
    })
}

/// A 1 MiB pipe instead of the 64 KiB default: fewer context switches between a tool
/// writing a dump and the thread compressing it. Best effort; the default still works.
fn widen_pipe(pipe: &std::io::PipeReader) {
    let _ = nix::fcntl::fcntl(pipe, nix::fcntl::FcntlArg::F_SETPIPE_SZ(1 << 20));
}

/// Keeps the last [`STDERR_TAIL`] bytes of a tool's stderr lines.
#[derive(Default)]
struct Tail {
    /// Each piece of text, and whether it ends a line (`false` for a cut piece, which the
    /// next one continues with no line break, so a secret straddling the cut is whole again
    /// for the redactor that masks the error).
    pieces: std::collections::VecDeque<(String, bool)>,
    bytes: usize,
    /// The first piece continues one that was dropped: it may begin with the end of a
    /// secret, which the redactor cannot recognise alone.
    front_cut: bool,
}

impl Tail {
    fn text(&self) -> String {
        let mut text = String::with_capacity(self.bytes);
        for (i, (piece, ends_line)) in self.pieces.iter().enumerate() {
            let mut piece = piece.as_str();
            if i == 0 && self.front_cut {
                // The line began in a dropped piece, so this one may begin with the end of a
                // secret: skip past what a masked secret form can be (MAX_HELD_BACK).
                let mut skip = piece.len().min(crate::redact::MAX_HELD_BACK);
                while !piece.is_char_boundary(skip) {
                    skip += 1;
                }
                piece = &piece[skip..];
                text.push('…');
            }
            text.push_str(piece);
            if *ends_line {
                text.push('\n');
            }
        }
        text.trim().to_owned()
    }

    /// Keeps the last [`STDERR_TAIL`] bytes, dropping whole pieces. A cut piece is dropped
    /// only when a full tail remains without it, since the piece after it then starts with
    /// text [`Tail::text`] must skip (so the tail may hold up to one piece more).
    fn push(&mut self, text: String, ends_line: bool) {
        self.bytes += text.len() + 1;
        self.pieces.push_back((text, ends_line));
        while self.pieces.len() > 1
            && self.pieces.front().is_some_and(|(front, ends_line)| {
                let rest = self.bytes - (front.len() + 1);
                if *ends_line {
                    self.bytes > STDERR_TAIL
                } else {
                    rest >= STDERR_TAIL
                }
            })
        {
            if let Some((old, ends_line)) = self.pieces.pop_front() {
                self.bytes -= old.len() + 1;
                self.front_cut = !ends_line;
            }
        }
    }
}

impl LineSink for Tail {
    async fn line(&mut self, _stream: Stream, text: String) {
        self.push(text, true);
    }

    async fn piece(&mut self, _stream: Stream, text: String) {
        self.push(text, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Collect(Vec<(Stream, String)>);

    impl LineSink for Collect {
        async fn line(&mut self, stream: Stream, text: String) {
            self.0.push((stream, text));
        }
    }

    fn bash(script: &str) -> Spawn {
        Spawn {
            program: "/bin/bash".into(),
            args: vec!["-c".into(), script.into()],
            env: vec![],
            cwd: None,
        }
    }

    fn limits(timeout_ms: Option<u64>) -> Limits {
        Limits {
            timeout: timeout_ms.map(Duration::from_millis),
            kill_grace: Duration::from_millis(300),
        }
    }

    async fn run_script(script: &str, timeout_ms: Option<u64>) -> (Exit, Vec<(Stream, String)>) {
        let mut sink = Collect(Vec::new());
        let exit = run(
            &bash(script),
            &limits(timeout_ms),
            &Cancel::new(),
            &ProcessGroups::default(),
            &mut sink,
        )
        .await
        .unwrap();
        (exit, sink.0)
    }

    #[tokio::test]
    async fn lines_from_both_streams_and_exit_code() {
        let (exit, lines) =
            run_script("echo out; echo err >&2; printf 'no newline'; exit 3", None).await;
        assert_eq!(exit.code, Some(3));
        assert_eq!(exit.ended, Ended::Exited);
        assert!(lines.contains(&(Stream::Stdout, "out".into())));
        assert!(lines.contains(&(Stream::Stderr, "err".into())));
        assert!(lines.contains(&(Stream::Stdout, "no newline".into())));
    }

    #[tokio::test]
    async fn long_lines_are_split_and_bad_utf8_is_lossy() {
        let (exit, lines) = run_script(
            "head -c 40000 /dev/zero | tr '\\0' x; printf '\\n\\xff\\xfeok\\n'",
            None,
        )
        .await;
        assert!(exit.success());
        let lengths: Vec<usize> = lines.iter().map(|(_, l)| l.len()).collect();
        assert_eq!(
            lengths[..3],
            [MAX_LINE_BYTES, MAX_LINE_BYTES, 40000 - 2 * MAX_LINE_BYTES]
        );
        assert_eq!(lines[3].1, "\u{fffd}\u{fffd}ok");
    }

    #[tokio::test]
    async fn timeout_terminates_then_kills_the_group() {
        let started = Instant::now();
        let (exit, _) = run_script("trap '' TERM; sleep 30 & wait; sleep 30", Some(200)).await;
        assert_eq!(exit.ended, Ended::TimedOut);
        assert!(exit.killed);
        assert_eq!(exit.signal, Some(9));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn grandchild_holding_stdout_does_not_hang() {
        let started = Instant::now();
        let (exit, lines) = run_script("sleep 30 & echo started", None).await;
        assert!(exit.success());
        assert!(exit.pipes_abandoned);
        assert_eq!(lines, vec![(Stream::Stdout, "started".to_owned())]);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn resolves_programs_with_clear_errors() {
        let path = OsString::from("/usr/bin:/bin");
        assert!(
            resolve_program("true", Some(&path), None)
                .unwrap()
                .is_absolute()
        );
        let error = resolve_program("no-such-program-x", Some(&path), None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "command `no-such-program-x` not found in PATH (/usr/bin:/bin)"
        );
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("script");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = resolve_program(script.to_str().unwrap(), None, None).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("{} is not executable (mode 644)", script.display())
        );
        let error = resolve_program("./nope", None, Some(Path::new("/tmp"))).unwrap_err();
        assert_eq!(error.to_string(), "/tmp/./nope does not exist");
    }

    fn bash_tool(script: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("/bin/bash");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn a_tool_streams_raw_stdout_and_keeps_the_tail_of_stderr() {
        use std::io::Read;
        let pipes = ToolPipes {
            stdin: false,
            stdout: true,
        };
        let script =
            "head -c 5000000 /dev/zero; for i in $(seq 3000); do echo err$i >&2; done; exit 3";
        let mut tool = Tool::start(
            bash_tool(script),
            Path::new("bash"),
            pipes,
            Duration::ZERO,
            &Cancel::new(),
        )
        .unwrap();
        let mut bytes = Vec::new();
        tool.stdout.take().unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes.len(), 5_000_000);
        let ended = tool.wait().unwrap();
        assert_eq!(ended.exit.code, Some(3));
        assert!(
            ended.stderr.ends_with("err2999\nerr3000"),
            "{}",
            ended.stderr
        );
        assert!(ended.stderr.len() <= STDERR_TAIL);
    }

    #[test]
    fn a_tool_reads_its_stdin_to_the_end() {
        use std::io::Write;
        let pipes = ToolPipes {
            stdin: true,
            stdout: true,
        };
        let mut tool = Tool::start(
            bash_tool("wc -c"),
            Path::new("bash"),
            pipes,
            Duration::ZERO,
            &Cancel::new(),
        )
        .unwrap();
        let mut stdin = tool.stdin.take().unwrap();
        stdin.write_all(&vec![b'x'; 3_000_000]).unwrap();
        drop(stdin);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut tool.stdout.take().unwrap(), &mut text).unwrap();
        assert_eq!(text.trim(), "3000000");
        assert!(tool.wait().unwrap().exit.success());
    }

    #[test]
    fn a_stopped_tool_dies_with_its_group() {
        let cancel = Cancel::new();
        // Cancel only once bash ignores TERM, so that the test needs the KILL after the grace
        // (a TERM before the trap would end bash at once, under load that happens).
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let tool = Tool::start(
            bash_tool(&format!(
                "trap '' TERM; touch '{}'; sleep 30 & wait",
                ready.display()
            )),
            Path::new("bash"),
            ToolPipes::default(),
            Duration::from_millis(100),
            &cancel,
        )
        .unwrap();
        while !ready.exists() {
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = std::time::Instant::now();
        cancel.cancel(crate::cancel::CancelReason::Terminate);
        let ended = tool.wait().unwrap();
        assert_eq!(ended.exit.ended, Ended::Cancelled);
        assert!(ended.exit.killed);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn text_cut_keeps_characters_whole() {
        let mut bytes = "aé".as_bytes().to_vec();
        assert_eq!(take_text(&mut bytes, 2), "a");
        assert_eq!(take_text(&mut bytes, usize::MAX), "é");
    }
}
