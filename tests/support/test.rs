//! The test builder, in the style of just's `tests/test.rs`: a temp dir with a plan and a
//! state dir, the real `planrun` binary run inside it, and its output compared exactly once
//! run ids, durations and the temp dir's path are replaced by placeholders.
//!
//! ```ignore
//! let ran = Test::new()
//!     .plan("version: 1\nname: demo\nsteps:\n  - { id: a, shell: echo a >> TRAIL }\n")
//!     .args(["execute", "plan.yaml"])
//!     .stderr("planrun: plan `demo`, run RUN: 1 step(s)\n…")
//!     .status(0)
//!     .run();
//! assert_eq!(ran.env.trail(), "a\n");
//! ```
//!
//! Placeholders, in plan text: `DIR` is the temp dir and `TRAIL` a file in it that steps
//! append to. In compared output: the temp dir's path becomes `DIR`, a run or set id
//! (`20250214T020000Z-1234abcd`) becomes `RUN`, and a duration (`0.12s`, `0.4 s`) becomes `T`.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::rc::Rc;

use serde_json::Value;

use super::run::{stderr, stdout};
use super::s3::{ACCESS_KEY, SECRET_KEY};

/// The subcommands that keep run records and so take `--state-dir`; the builder points them
/// at the test's own state dir, since as root they would otherwise write to /var/lib/planrun.
const TAKES_STATE_DIR: &[&str] = &[
    "execute", "history", "recover", "incident", "drill", "status",
];

/// A temp dir (mode 0700, as tempfile makes it) holding a plan, its data, its storage and
/// its state dir. Clones share the dir, which is removed when the last one drops.
#[derive(Clone)]
pub struct Env {
    dir: Rc<tempfile::TempDir>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: Rc::new(tempfile::tempdir().unwrap()),
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes `plan.yaml` (mode 0600: planrun refuses plans others can write) and returns
    /// its path; `DIR` in the text becomes the temp dir and `TRAIL` the trail file.
    pub fn plan(&self, yaml: &str) -> PathBuf {
        self.plan_at("plan.yaml", yaml)
    }

    /// Writes a plan at `name` in the temp dir, as [`Env::plan`] does.
    pub fn plan_at(&self, name: &str, yaml: &str) -> PathBuf {
        let text = yaml
            .replace("TRAIL", &self.path("trail").display().to_string())
            .replace("DIR", &self.dir.path().display().to_string());
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// A builder for `planrun ARGS` in this dir.
    pub fn planrun<I, S>(&self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Test::in_env(self).args(args)
    }

    /// `planrun execute plan.yaml EXTRA`, with whatever status and output it gives.
    pub fn execute(&self, extra: &[&str]) -> Output {
        self.planrun(["execute"])
            .arg(self.path("plan.yaml"))
            .args(extra)
            .output()
    }

    /// `planrun execute plan.yaml EXTRA` in the background, its output piped.
    pub fn spawn(&self, extra: &[&str]) -> Child {
        self.planrun(["execute"])
            .arg(self.path("plan.yaml"))
            .args(extra)
            .spawn()
    }

    /// `planrun restore PLAN ARGS`.
    pub fn restore(&self, plan: &Path, args: &[&str]) -> Command {
        self.planrun(["restore"]).arg(plan).args(args).command()
    }

    /// `planrun snapshots PLAN --storage STORAGE --json`: the sets of that storage.
    pub fn snapshots(&self, plan: &Path, storage: &str) -> Vec<Value> {
        let ran = self
            .planrun(["snapshots"])
            .arg(plan)
            .args(["--storage", storage, "--json"])
            .run();
        let json: Value = serde_json::from_str(&ran.stdout).unwrap();
        json["storage"][0]["sets"].as_array().unwrap().clone()
    }

    /// What the steps appended to the trail file so far.
    pub fn trail(&self) -> String {
        std::fs::read_to_string(self.path("trail")).unwrap_or_default()
    }

    /// Every run record, newest first.
    pub fn records(&self) -> Vec<Value> {
        super::run::history(&self.state())
    }

    /// The one run record; a panic when there is not exactly one.
    pub fn record(&self) -> Value {
        super::run::only_record(&self.state())
    }

    /// Every run log, concatenated.
    pub fn log(&self) -> String {
        self.files_in(&["logs"])
    }

    /// Every file in the state dir (run records, logs), concatenated.
    pub fn state_files(&self) -> String {
        self.files_in(&["runs", "logs"])
    }

    fn files_in(&self, subs: &[&str]) -> String {
        let mut text = String::new();
        for sub in subs {
            for entry in std::fs::read_dir(self.state().join(sub)).unwrap() {
                text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
            }
        }
        text
    }

    /// Waits until `name` exists whole in the dir (a step's "I am running now" marker).
    pub fn wait_for(&self, name: &str) -> String {
        super::run::wait_for(&self.path(name))
    }

    /// `text` with this dir's path, run ids and durations replaced by placeholders.
    pub fn filter(&self, text: &str) -> String {
        durations(&run_ids(
            &text.replace(&self.dir.path().display().to_string(), "DIR"),
        ))
    }
}

/// One run of the binary: what to run, and what it must print and return.
pub struct Test {
    env: Env,
    args: Vec<OsString>,
    vars: Vec<(OsString, OsString)>,
    status: i32,
    stdout: Option<String>,
    stderr: Option<String>,
}

impl Test {
    /// A run in a fresh temp dir.
    pub fn new() -> Test {
        Test::in_env(&Env::new())
    }

    /// A run in `env`'s temp dir, which earlier runs may have left things in.
    pub fn in_env(env: &Env) -> Test {
        Test {
            env: env.clone(),
            args: Vec::new(),
            vars: Vec::new(),
            status: 0,
            stdout: None,
            stderr: None,
        }
    }

    /// Writes `plan.yaml`, see [`Env::plan`].
    pub fn plan(self, yaml: &str) -> Test {
        self.env.plan(yaml);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Test {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Test {
        self.vars
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    /// The exit code [`Test::run`] expects (0 unless set).
    pub fn status(mut self, code: i32) -> Test {
        self.status = code;
        self
    }

    /// The exact stdout [`Test::run`] expects, after [`Env::filter`].
    pub fn stdout(mut self, text: &str) -> Test {
        self.stdout = Some(text.to_owned());
        self
    }

    /// The exact stderr [`Test::run`] expects, after [`Env::filter`].
    pub fn stderr(mut self, text: &str) -> Test {
        self.stderr = Some(text.to_owned());
        self
    }

    /// The command: the binary with the arguments, run in the temp dir, `--state-dir` added
    /// for commands that keep records, and the test S3 server's keys in the environment for
    /// plans that name them in `secrets:`.
    pub fn command(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_planrun"));
        command
            .args(&self.args)
            .current_dir(self.env.dir())
            .env("PLANRUN_TEST_S3_KEY", ACCESS_KEY)
            .env("PLANRUN_TEST_S3_SECRET", SECRET_KEY);
        let subcommand = self.args.first().and_then(|a| a.to_str());
        if subcommand.is_some_and(|s| TAKES_STATE_DIR.contains(&s)) {
            command.arg("--state-dir").arg(self.env.state());
        }
        command.envs(self.vars.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs the binary and returns its output without checking anything.
    pub fn output(&self) -> Output {
        self.command().output().unwrap()
    }

    /// Starts the binary in the background with its output piped.
    pub fn spawn(&self) -> Child {
        self.command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Runs the binary, checks the exit code and any expected output, and returns the rest
    /// for further assertions.
    pub fn run(self) -> Ran {
        let output = self.output();
        let (out, err) = (stdout(&output), stderr(&output));
        assert_eq!(
            output.status.code(),
            Some(self.status),
            "exit status of planrun {:?}\nstdout:\n{out}\nstderr:\n{err}",
            self.args
        );
        if let Some(expected) = &self.stdout {
            assert_eq!(self.env.filter(&out), *expected, "stdout, filtered");
        }
        if let Some(expected) = &self.stderr {
            assert_eq!(self.env.filter(&err), *expected, "stderr, filtered");
        }
        Ran {
            env: self.env,
            stdout: out,
            stderr: err,
            output,
        }
    }
}

/// What a [`Test`] printed, unfiltered, and the dir it ran in.
pub struct Ran {
    pub env: Env,
    pub output: Output,
    pub stdout: String,
    pub stderr: String,
}

/// Replaces set and run ids (`20250214T020000Z-0421af3c`: a UTC time, a dash, lowercase
/// hex) with `RUN`.
fn run_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if let Some(len) = run_id_at(bytes, i) {
            out.push_str(&text[copied..i]);
            out.push_str("RUN");
            i += len;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The length of a run id starting at `i`, if one does.
fn run_id_at(bytes: &[u8], i: usize) -> Option<usize> {
    let digits = |from: usize, n: usize| {
        bytes
            .get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let at = |j: usize, c: u8| bytes.get(j) == Some(&c);
    if (i > 0 && bytes[i - 1].is_ascii_alphanumeric())
        || !(digits(i, 8) && at(i + 8, b'T') && digits(i + 9, 6) && at(i + 15, b'Z'))
        || !at(i + 16, b'-')
    {
        return None;
    }
    let hex = bytes[i + 17..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        .count();
    (hex > 0).then_some(17 + hex)
}

/// Replaces durations as the reporter prints them (`0.01s`, `12.34s`) with `T`.
fn durations(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let rest = &bytes[i + digits..];
        // The human reporter's `0.4 s`, as well as the `0.12s` other commands print; both
        // are four bytes after the whole seconds.
        let spaced = rest.len() >= 4
            && rest[1].is_ascii_digit()
            && rest[2] == b' '
            && rest[3] == b's'
            && rest.get(4).is_none_or(|b| !b.is_ascii_alphanumeric());
        let tight = rest.len() >= 4 && rest[1..3].iter().all(u8::is_ascii_digit) && rest[3] == b's';
        if starts_word && digits > 0 && rest.first() == Some(&b'.') && (spaced || tight) {
            out.push_str(&text[copied..i]);
            out.push('T');
            i += digits + 4;
            copied = i;
        } else {
            i += digits.max(1);
        }
    }
    out.push_str(&text[copied..]);
    out
}
