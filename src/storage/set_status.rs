//! A set's status, decided in one place ([`SetSummary::from_stored`]), strictly, and the
//! three meanings of "newest", each named for what it means.

use std::collections::BTreeSet;
use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::artifact_writer::hex;
use super::backend::StoredSet;
use super::{ArtifactProblem, MANIFEST, Manifest, Problem, SetId, VerifyRecord};

/// The most a manifest or verify record may weigh; planrun's own are a few KiB per artifact.
pub const MAX_RECORD_BYTES: u64 = 16 << 20;

/// Where a set stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetStatus {
    /// No manifest: the run died or is still writing. Never restored from, counted by nothing.
    Incomplete,
    /// A manifest that parses, with every artifact present at its recorded size; not
    /// re-hashed since it was written.
    Complete,
    /// The last verification of this manifest matched every artifact.
    Verified,
    /// The manifest is not a valid manifest, an artifact is missing or has the wrong size,
    /// or the last verification found a problem.
    Damaged,
}

impl SetStatus {
    /// Whether a restore may read this set, and retention may count it.
    pub fn restorable(self) -> bool {
        matches!(self, SetStatus::Complete | SetStatus::Verified)
    }
}

impl fmt::Display for SetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SetStatus::Incomplete => "incomplete",
            SetStatus::Complete => "complete",
            SetStatus::Verified => "verified",
            SetStatus::Damaged => "damaged",
        })
    }
}

/// One set found in a storage.
#[derive(Clone, Debug)]
pub struct SetSummary {
    pub id: SetId,
    pub status: SetStatus,
    /// The parsed manifest; `None` when there is none or it is not a valid manifest.
    pub manifest: Option<Manifest>,
    /// sha256 of the manifest bytes, which a verify record must name to count.
    pub manifest_sha256: Option<String>,
    pub verify: Option<VerifyRecord>,
    /// Bytes stored (every object of the set, so incomplete sets show what they hold).
    pub stored_bytes: u64,
    /// Why the manifest could not be read, when it is there but invalid.
    pub manifest_error: Option<String>,
    /// What makes the set damaged, one line each (empty unless damaged).
    pub damage: Vec<String>,
    /// The newest modification time the listing reports for the set's objects.
    pub last_modified: Option<chrono::DateTime<chrono::Utc>>,
}

impl SetSummary {
    /// The status of a set from what its storage holds: the listing of its objects, the
    /// manifest bytes and the verify record bytes. The one place a status is decided.
    ///
    /// - no manifest: incomplete;
    /// - a manifest that does not parse strictly into [`Manifest`] for this plan and set (see
    ///   [`Manifest::from_json`]): damaged;
    /// - an artifact of the manifest missing from the listing, or of another size: damaged;
    /// - a verify record of these manifest bytes: verified if it found nothing, else damaged;
    /// - otherwise complete.
    pub fn from_stored(
        plan: &str,
        listed: &StoredSet,
        manifest: Option<&[u8]>,
        verify: Option<&[u8]>,
    ) -> SetSummary {
        let mut summary = SetSummary {
            id: listed.id.clone(),
            status: SetStatus::Incomplete,
            manifest: None,
            manifest_sha256: None,
            verify: None,
            stored_bytes: listed.stored_bytes(),
            manifest_error: None,
            damage: Vec::new(),
            last_modified: listed.modified,
        };
        let Some(bytes) = manifest else {
            return summary;
        };
        if let Some(object) = listed.object(MANIFEST)
            && object.size > MAX_RECORD_BYTES
        {
            let error = format!(
                "{} bytes, more than the {} MiB a manifest may have",
                object.size,
                MAX_RECORD_BYTES >> 20
            );
            summary.status = SetStatus::Damaged;
            summary.damage.push(format!("{MANIFEST}: {error}"));
            summary.manifest_error = Some(error);
            return summary;
        }
        let sha256 = hex(&Sha256::digest(bytes));
        summary.manifest_sha256 = Some(sha256.clone());
        let manifest = match Manifest::from_json(bytes, plan, listed.id.as_str()) {
            Ok(manifest) => manifest,
            Err(error) => {
                summary.status = SetStatus::Damaged;
                summary.damage.push(format!("{MANIFEST}: {error}"));
                summary.manifest_error = Some(error);
                return summary;
            }
        };
        for entry in &manifest.artifacts {
            let problem = match listed.object(&entry.name) {
                None => Some(Problem::Missing),
                Some(object) if object.size != entry.size => Some(Problem::SizeMismatch {
                    expected: entry.size,
                    actual: object.size,
                }),
                Some(_) => None,
            };
            if let Some(problem) = problem {
                let problem = ArtifactProblem {
                    artifact: entry.name.clone(),
                    problem,
                };
                summary.damage.push(problem.to_string());
            }
        }
        summary.verify = verify
            .and_then(|bytes| serde_json::from_slice::<VerifyRecord>(bytes).ok())
            .filter(|record| record.manifest_sha256 == sha256);
        if let Some(record) = &summary.verify {
            summary
                .damage
                .extend(record.problems.iter().map(ToString::to_string));
        }
        summary.status = if !summary.damage.is_empty() {
            SetStatus::Damaged
        } else if summary.verify.is_some() {
            SetStatus::Verified
        } else {
            SetStatus::Complete
        };
        summary.manifest = Some(manifest);
        summary
    }

    /// The sources the set holds; `None` when its manifest cannot be read, so that nobody
    /// can tell what it held.
    pub fn sources(&self) -> Option<BTreeSet<&str>> {
        self.manifest.as_ref().map(Manifest::sources)
    }

    /// Whether the set holds `source`, as far as anyone can tell: a set with an unreadable
    /// manifest might hold anything.
    pub fn might_hold(&self, source: &str) -> bool {
        self.manifest.as_ref().is_none_or(|m| m.holds(source))
    }

    fn holds(&self, source: &str) -> bool {
        self.manifest.as_ref().is_some_and(|m| m.holds(source))
    }
}

/// The newest restorable set that holds `source`: what `restore` reads as `latest`.
/// `sets` is a listing, newest first.
pub fn newest_restorable_with<'a>(sets: &'a [SetSummary], source: &str) -> Option<&'a SetSummary> {
    sets.iter()
        .find(|set| set.status.restorable() && set.holds(source))
}

/// The newest restorable set that holds every one of `sources` (a drill restores several
/// sources from one set); with no sources, the newest restorable set (what `copy` replicates
/// as `latest`).
pub fn newest_restorable_with_all<'a>(
    sets: &'a [SetSummary],
    sources: &[&str],
) -> Option<&'a SetSummary> {
    sets.iter()
        .find(|set| set.status.restorable() && sources.iter().all(|s| set.holds(s)))
}

/// The newest set with a manifest, damaged included: what `verify` checks as `latest`, since
/// a damaged newest set is exactly what verify must report.
pub fn newest_with_manifest(sets: &[SetSummary]) -> Option<&SetSummary> {
    sets.iter().find(|set| set.status != SetStatus::Incomplete)
}
