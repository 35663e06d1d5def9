//! `manifest.json`: the commit record of a backup set, written last and atomically, and the
//! one strict reading of it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// The commit record of a set; a set without it is incomplete.
pub const MANIFEST: &str = "manifest.json";
/// The outcome of the last verification of this copy of a set.
pub const VERIFY: &str = "verify.json";

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
    /// The plan's sources this set does not hold (not selected by `--only`, or their backup
    /// failed under `on_failure: warn`/`ignore`). Empty for a full set; manifests written
    /// before partial sets existed have no such field and are full sets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_sources: Vec<String>,
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

    /// Reads a manifest strictly: every field typed, no unknown key, a known format, artifact
    /// names that stay inside the set and are not repeated, the plan and set id it was
    /// written for, and a `missing_sources` that names each source once and none the set
    /// holds. Anything less is a damaged set, never a complete one: a manifest that
    /// contradicts itself or its place cannot be trusted about anything else either.
    pub fn from_json(bytes: &[u8], plan: &str, set_id: &str) -> Result<Manifest, String> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|error| error.to_string())?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(format!(
                "manifest format {} is not supported by this planrun (it reads {MANIFEST_FORMAT})",
                manifest.format
            ));
        }
        if manifest.plan.name != plan {
            return Err(format!(
                "the manifest is for plan `{}`, not `{plan}`",
                manifest.plan.name
            ));
        }
        if manifest.set_id != set_id {
            return Err(format!(
                "the manifest is for set `{}`, not `{set_id}`",
                manifest.set_id
            ));
        }
        if manifest.artifacts.is_empty() {
            return Err("the manifest lists no artifact".to_owned());
        }
        let mut names = BTreeSet::new();
        for artifact in &manifest.artifacts {
            super::check_artifact_name(&artifact.name).map_err(|e| e.to_string())?;
            if !names.insert(artifact.name.as_str()) {
                return Err(format!("artifact `{}` is listed twice", artifact.name));
            }
            let hex_ok = artifact.sha256.len() == 64
                && artifact
                    .sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok {
                return Err(format!(
                    "artifact `{}` has no valid sha256 (64 lowercase hex digits)",
                    artifact.name
                ));
            }
        }
        let mut missing = BTreeSet::new();
        for source in &manifest.missing_sources {
            if !missing.insert(source.as_str()) {
                return Err(format!("missing source `{source}` is listed twice"));
            }
            if manifest.holds(source) {
                return Err(format!(
                    "source `{source}` is listed as missing but the set holds an artifact of it"
                ));
            }
        }
        Ok(manifest)
    }

    /// The sources this set holds.
    pub fn sources(&self) -> BTreeSet<&str> {
        self.artifacts.iter().map(|a| a.source.as_str()).collect()
    }

    /// Whether the set holds `source`.
    pub fn holds(&self, source: &str) -> bool {
        self.artifacts.iter().any(|a| a.source == source)
    }

    /// Whether the set lacks some of the plan's sources.
    pub fn is_partial(&self) -> bool {
        !self.missing_sources.is_empty()
    }

    pub fn total_size(&self) -> u64 {
        self.artifacts.iter().map(|a| a.size).sum()
    }

    /// The artifacts of one source.
    pub fn artifacts_of<'a>(&'a self, source: &'a str) -> impl Iterator<Item = &'a ArtifactEntry> {
        self.artifacts.iter().filter(move |a| a.source == source)
    }
}
