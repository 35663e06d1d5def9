//! Verification: re-read what is stored and re-hash it against the manifest.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::artifact_writer::hex;
use super::{ArtifactEntry, ArtifactProblem, Problem, SetSummary, Store, StoreError, VerifyRecord};

/// Re-hashes one stored artifact; `None` when it matches its manifest entry.
pub async fn check_artifact(
    store: &Store,
    plan: &str,
    set: &SetSummary,
    entry: &ArtifactEntry,
) -> Option<ArtifactProblem> {
    let problem = |problem| {
        Some(ArtifactProblem {
            artifact: entry.name.clone(),
            problem,
        })
    };
    let mut reader = match store.open_artifact(plan, &set.id, &entry.name).await {
        Ok(reader) => reader,
        Err(StoreError::NotFound { .. }) => return problem(Problem::Missing),
        Err(error) => {
            return problem(Problem::Unreadable {
                error: error.to_string(),
            });
        }
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buffer).await {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                size += n as u64;
                crate::meter::add(n as u64);
            }
            Err(error) => {
                return problem(Problem::Unreadable {
                    error: error.to_string(),
                });
            }
        }
    }
    if size != entry.size {
        return problem(Problem::SizeMismatch {
            expected: entry.size,
            actual: size,
        });
    }
    let actual = hex(&hasher.finalize());
    if actual != entry.sha256 {
        return problem(Problem::HashMismatch {
            expected: entry.sha256.clone(),
            actual,
        });
    }
    None
}

/// Verifies every artifact of a complete set and records the result beside its manifest.
///
/// Returns the record; `record.ok()` tells whether the set is intact. An incomplete set is an
/// error (there is nothing to verify against).
pub async fn verify_set(
    store: &Store,
    plan: &str,
    set: &SetSummary,
    now: DateTime<Utc>,
) -> Result<VerifyRecord, StoreError> {
    let record = match (&set.manifest, &set.manifest_error) {
        (_, Some(error)) => VerifyRecord {
            verified_at: now,
            planrun_version: env!("CARGO_PKG_VERSION").to_owned(),
            manifest_sha256: set.manifest_sha256.clone().unwrap_or_default(),
            problems: vec![ArtifactProblem {
                artifact: super::MANIFEST.to_owned(),
                problem: Problem::Unreadable {
                    error: error.clone(),
                },
            }],
        },
        (None, None) => {
            return Err(StoreError::Incomplete {
                set: set.id.to_string(),
            });
        }
        (Some(manifest), None) => {
            let mut problems = Vec::new();
            for entry in &manifest.artifacts {
                if let Some(problem) = check_artifact(store, plan, set, entry).await {
                    problems.push(problem);
                }
            }
            VerifyRecord {
                verified_at: now,
                planrun_version: env!("CARGO_PKG_VERSION").to_owned(),
                manifest_sha256: set.manifest_sha256.clone().unwrap_or_default(),
                problems,
            }
        }
    };
    // An unreadable manifest cannot be bound to a record; the status is already damaged.
    if set.manifest_error.is_none() {
        store.write_verify(plan, &set.id, &record).await?;
    }
    Ok(record)
}
