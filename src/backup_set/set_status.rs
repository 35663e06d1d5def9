//! The status of a backup set as `snapshots` reports it, and a set as a listing sees it.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::artifact_writer::hex;
use super::{Manifest, SetId, VerifyRecord};

/// Where a set stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetStatus {
    /// No manifest: the run died or is still writing. Never restored from.
    Incomplete,
    /// A manifest, not verified since it was written.
    Complete,
    /// The last verification matched every artifact.
    Verified,
    /// The last verification found a problem, or the manifest is unreadable.
    Damaged,
}

impl SetStatus {
    /// Whether a restore may read this set.
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
    pub manifest: Option<Manifest>,
    /// sha256 of the manifest bytes, which a verify record must name to count.
    pub manifest_sha256: Option<String>,
    pub verify: Option<VerifyRecord>,
    /// Bytes stored (every file in the folder, so incomplete sets show what they hold).
    pub stored_bytes: u64,
    /// Why the manifest could not be read, for damaged sets.
    pub manifest_error: Option<String>,
}

/// A set's manifest as a storage holds it: parsed or why not, and the sha256 of its bytes.
/// All `None` when there is no manifest.
#[derive(Default)]
pub(crate) struct StoredManifest {
    manifest: Option<Manifest>,
    sha256: Option<String>,
    error: Option<String>,
}

impl StoredManifest {
    /// From the manifest's bytes; ones that do not parse make the set damaged.
    pub(crate) fn parse(bytes: &[u8]) -> StoredManifest {
        let sha256 = Some(hex(&Sha256::digest(bytes)));
        match Manifest::from_json(bytes) {
            Ok(manifest) => StoredManifest {
                manifest: Some(manifest),
                sha256,
                error: None,
            },
            Err(error) => StoredManifest {
                manifest: None,
                sha256,
                error: Some(error),
            },
        }
    }

    /// A manifest that is there but could not be read.
    pub(crate) fn unreadable(error: String) -> StoredManifest {
        StoredManifest {
            error: Some(error),
            ..StoredManifest::default()
        }
    }
}

impl SetSummary {
    /// The summary of what a storage holds for set `id`, with the status that follows from it.
    pub(crate) fn from_stored(
        id: SetId,
        stored: StoredManifest,
        verify: Option<VerifyRecord>,
        stored_bytes: u64,
    ) -> SetSummary {
        let status = SetSummary::status_of(
            stored.manifest.as_ref(),
            stored.error.as_deref(),
            stored.sha256.as_deref(),
            verify.as_ref(),
        );
        SetSummary {
            id,
            status,
            manifest: stored.manifest,
            manifest_sha256: stored.sha256,
            verify,
            stored_bytes,
            manifest_error: stored.error,
        }
    }

    /// Derives the status from what is stored. A verify record counts only for the manifest
    /// it checked.
    pub fn status_of(
        manifest: Option<&Manifest>,
        manifest_error: Option<&str>,
        manifest_sha256: Option<&str>,
        verify: Option<&VerifyRecord>,
    ) -> SetStatus {
        if manifest_error.is_some() {
            return SetStatus::Damaged;
        }
        if manifest.is_none() {
            return SetStatus::Incomplete;
        }
        match verify {
            Some(record) if Some(record.manifest_sha256.as_str()) == manifest_sha256 => {
                if record.ok() {
                    SetStatus::Verified
                } else {
                    SetStatus::Damaged
                }
            }
            _ => SetStatus::Complete,
        }
    }
}
