//! `CommandError`: why a command could not do its job, and the one mapping to exit codes.

use std::path::PathBuf;

use crate::engine::Refusal;
use crate::exit_code;
use crate::lock::LockError;
use crate::pipeline::Failure;
use crate::retention::PolicyError;
use crate::source::SourceError;
use crate::state_dir::StateDirError;
use crate::storage::OpenStoreError;
use crate::storage::choice::ChoiceError;

use super::retention_simulate::SimulateError;

/// A command that stopped. Commands return it and print nothing about it themselves: the
/// edge ([`super::main`]) prints it once, through the plan's redactor, and exits with
/// [`CommandError::exit_code`]. A command that ran to its end but found damage or failed
/// storages returns `Ok` with its exit code instead, having reported each problem.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The plan did not load or render; its diagnostics say where and why.
    #[error("{}", .0.render().trim_end())]
    Plan(Box<Failure>),
    #[error("unknown {kind} `{name}`{}", hint(name, known))]
    Unknown {
        kind: &'static str,
        name: String,
        known: Vec<String>,
    },
    #[error("the plan has no storage")]
    NoStorage,
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error(transparent)]
    Open(#[from] OpenStoreError),
    #[error(
        "--in-place restores a files or directory source to where it came from; `{name}` is a {kind} source: name the target with --to"
    )]
    InPlaceNeedsPath { name: String, kind: &'static str },
    #[error("restore of {name} failed: {error}")]
    Restore { name: String, error: SourceError },
    #[error(
        "storage `{storage}` has no retention policy: set `retention:` for the plan or the storage"
    )]
    NoRetention { storage: String },
    #[error("storage `{storage}`: {error}")]
    Policy { storage: String, error: PolicyError },
    #[error(transparent)]
    Simulate(#[from] SimulateError),
    /// Steps the engine refuses to start; one line each.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\nplanrun: "))]
    Refused(Vec<Refusal>),
    #[error(transparent)]
    StateDir(#[from] StateDirError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot create scratch folder {}: {error}", path.display())]
    Scratch {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the run ledger: {0}")]
    Ledger(std::io::Error),
    #[error(transparent)]
    PlanNotFound(#[from] crate::plan_discovery::NotFound),
    #[error(transparent)]
    Runbook(#[from] crate::runbook::RunbookError),
    /// A request the command cannot carry out as asked; the message says what to change.
    #[error("{0}")]
    Usage(String),
    #[error("cannot write {}: {error}", path.display())]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    /// `recover` or `incident` stopped before anything changed (or could not record).
    #[error("{0}")]
    Recover(String),
    /// An open incident freezes the plan's backups.
    #[error(
        "plan `{plan}` is frozen by open incident {incident} (level {level}, started {started}): a backup now would copy the damaged data; run with --during-incident if you mean it, or close the incident with `planrun incident close {incident}`"
    )]
    Frozen {
        plan: String,
        incident: String,
        level: u8,
        started: String,
    },
    #[error("plan `{plan}` has no `drill:` section: add one to say what to restore and check")]
    NoDrill { plan: String },
}

impl CommandError {
    /// The exit code for each error: the one place that decides it.
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Plan(_)
            | CommandError::Unknown { .. }
            | CommandError::NoStorage
            | CommandError::InPlaceNeedsPath { .. }
            | CommandError::NoRetention { .. }
            | CommandError::Policy { .. }
            | CommandError::Simulate(_)
            | CommandError::Refused(_)
            | CommandError::Usage(_)
            | CommandError::NoDrill { .. }
            | CommandError::StateDir(StateDirError::Unknown)
            | CommandError::PlanNotFound(_) => exit_code::INVALID,
            CommandError::Runbook(error) => error.exit_code(),
            CommandError::Choice(ChoiceError::Open(_)) => exit_code::FAILURE,
            CommandError::Choice(_) => exit_code::INVALID,
            CommandError::Lock(LockError::Held { .. } | LockError::HeldByUnknown { .. })
            | CommandError::Frozen { .. } => exit_code::LOCKED,
            CommandError::Recover(_) => exit_code::INVALID,
            CommandError::Open(_)
            | CommandError::Restore { .. }
            | CommandError::StateDir(StateDirError::Create { .. })
            | CommandError::Lock(_)
            | CommandError::Scratch { .. }
            | CommandError::Runtime(_)
            | CommandError::Ledger(_)
            | CommandError::Write { .. } => exit_code::FAILURE,
        }
    }

    /// The text for stderr: plan diagnostics as they are (coloured when `colour`), anything
    /// else as `planrun: …`.
    pub fn report_with(&self, colour: bool) -> String {
        match self {
            CommandError::Plan(failure) if colour => failure
                .diagnostics
                .iter()
                .map(|d| d.render_styled(&failure.path))
                .collect(),
            CommandError::Plan(failure) => failure.render(),
            other => format!("planrun: {other}\n"),
        }
    }

    pub fn unknown<'a>(
        kind: &'static str,
        name: &str,
        known: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        CommandError::Unknown {
            kind,
            name: name.to_owned(),
            known: known.into_iter().map(str::to_owned).collect(),
        }
    }
}

/// `, did you mean `x`?` when a known name is close, else the list of known names.
fn hint(name: &str, known: &[String]) -> String {
    crate::diagnostic::did_you_mean(name, known.iter().map(String::as_str))
        .map(|c| format!(", did you mean `{c}`?"))
        .unwrap_or_else(|| format!(" (the plan has: {})", known.join(", ")))
}

impl From<Failure> for CommandError {
    fn from(failure: Failure) -> Self {
        CommandError::Plan(Box::new(failure))
    }
}
