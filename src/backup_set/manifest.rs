//! `manifest.json`: the commit record of a backup set, written last and atomically.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// Facts recorded at backup time (row counts, file counts, versions), checked by drills.
pub type Facts = BTreeMap<String, serde_json::Value>;

/// What a complete backup set holds. A set folder without one is incomplete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub planrun_version: String,
    pub set_id: String,
    pub plan: PlanRef,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub artifacts: Vec<ArtifactEntry>,
    /// Problems that did not fail the backup (e.g. skipped unreadable files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Which plan wrote the set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRef {
    pub name: String,
    /// sha256 over the plan file and its includes.
    pub digest: String,
}

/// One artifact of a set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactEntry {
    /// File (or object) name inside the set.
    pub name: String,
    /// The plan source it came from.
    pub source: String,
    /// How it is encoded, which is what restore dispatches on.
    pub kind: ArtifactKind,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub facts: Facts,
}

/// The encoding of an artifact. Restore reads this, not the plan, so a set stays restorable
/// after the plan's options change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactKind {
    /// `pg_dump -Fc -Z0`, compressed with zstd.
    PgDumpCustomZstd,
    /// `pg_dump -Fd` output folder as tar + zstd.
    PgDumpDirectoryTarZstd,
    /// `pg_dump -Fp` SQL, compressed with zstd.
    PgDumpPlainZstd,
    /// A SQLite database file, compressed with zstd.
    SqliteZstd,
    /// A tar archive compressed with zstd (directory and files sources).
    TarZstd,
    /// `git bundle create --all`.
    GitBundle,
}

impl Manifest {
    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest always serializes");
        bytes.push(b'\n');
        bytes
    }

    pub fn from_json(bytes: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(format!(
                "manifest format {} is not supported by this planrun (it reads {MANIFEST_FORMAT})",
                manifest.format
            ));
        }
        Ok(manifest)
    }

    pub fn total_size(&self) -> u64 {
        self.artifacts.iter().map(|a| a.size).sum()
    }

    /// The artifacts of one source.
    pub fn artifacts_of<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a ArtifactEntry> {
        self.artifacts.iter().filter(move |a| a.source == source)
    }
}
