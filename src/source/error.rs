//! Errors from backing up and restoring sources.

use std::path::PathBuf;

use crate::storage::{ArtifactProblem, StoreError};

/// A backup or restore of one source failed.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot run {program}: {source}{}", hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    Spawn {
        program: String,
        hint: Option<&'static str>,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Tool {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("{program} produced no output")]
    Empty { program: String },
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is missing", path.display())]
    Missing { path: PathBuf },
    #[error("sqlite {}: {message}", path.display())]
    Sqlite { path: PathBuf, message: String },
    #[error("the copy of {} failed its integrity check: {message}", path.display())]
    Integrity { path: PathBuf, message: String },
    #[error("refusing archive entry `{entry}`: {reason}; nothing was written")]
    UnsafeEntry { entry: String, reason: String },
    #[error(
        "refusing to replace {target}: it {why}; pass --force (or `force: true` in a restore step) to replace it"
    )]
    TargetInUse { target: String, why: String },
    #[error("{} is not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("stopped before it finished")]
    Stopped,
    #[error("the plan has no source `{name}`")]
    UnknownSource { name: String },
    #[error("set `{set}` has no artifact for source `{source_name}`")]
    NoArtifact { set: String, source_name: String },
    #[error("refusing to restore from set `{set}`: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Damaged {
        set: String,
        problems: Vec<ArtifactProblem>,
    },
    #[error("{what} cannot be restored as a {kind} source")]
    WrongKind { what: String, kind: &'static str },
}

impl SourceError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> SourceError {
        let path = path.into();
        move |source| SourceError::Io {
            action,
            path,
            source,
        }
    }
}
