//! `verify.json`: the outcome of the last verification of a set, kept beside its manifest.
//!
//! It lives in the set folder, not in the state directory, because it describes *that copy*:
//! an off-site copy is verified on its own (it is what a disaster restores from), it moves and
//! disappears with the set, and retention or restore reading a storage sees it without access
//! to the machine that verified. It names the sha256 of the manifest it checked, so a record
//! left over from another manifest is ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The result of re-reading and re-hashing a set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRecord {
    pub verified_at: DateTime<Utc>,
    pub planrun_version: String,
    /// sha256 of the `manifest.json` bytes that were checked.
    pub manifest_sha256: String,
    /// Empty when every artifact matched.
    pub problems: Vec<ArtifactProblem>,
}

impl VerifyRecord {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One artifact that does not match its manifest entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactProblem {
    pub artifact: String,
    pub problem: Problem,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Problem {
    Missing,
    Unreadable { error: String },
    SizeMismatch { expected: u64, actual: u64 },
    HashMismatch { expected: String, actual: String },
}

impl std::fmt::Display for ArtifactProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = &self.artifact;
        match &self.problem {
            Problem::Missing => write!(f, "{name}: missing"),
            Problem::Unreadable { error } => write!(f, "{name}: unreadable: {error}"),
            Problem::SizeMismatch { expected, actual } => {
                write!(f, "{name}: size {actual} bytes, manifest says {expected}")
            }
            Problem::HashMismatch { expected, actual } => {
                write!(f, "{name}: sha256 {actual}, manifest says {expected}")
            }
        }
    }
}
