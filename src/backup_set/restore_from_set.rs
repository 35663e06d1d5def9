//! Restoring a source from a stored set: pick the set, re-hash its artifacts, then restore.

use std::path::{Path, PathBuf};

use super::{SetSummary, Store, check_artifact};
use crate::plan::Source;
use crate::source::{RestoreOutcome, RestoreTarget, SourceError};

/// Restores `source_name` from set `selector` (an id or `latest`) of `store`.
///
/// Every artifact of the source is re-read and checked against the manifest's sha256 before
/// anything is written; one mismatch refuses the restore. Incomplete sets are never used.
pub async fn restore_source(
    store: &Store,
    plan: &str,
    source_name: &str,
    source: &Source,
    selector: Option<&str>,
    target: RestoreTarget,
    scratch: &Path,
) -> Result<(SetSummary, RestoreOutcome), SourceError> {
    let set = store.resolve_set(plan, selector).await?;
    let manifest = set
        .manifest
        .as_ref()
        .ok_or_else(|| SourceError::NoArtifact {
            set: set.id.to_string(),
            source_name: source_name.to_owned(),
        })?;
    let entries: Vec<_> = manifest.artifacts_of(source_name).cloned().collect();
    let Some(entry) = entries.first().cloned() else {
        return Err(SourceError::NoArtifact {
            set: set.id.to_string(),
            source_name: source_name.to_owned(),
        });
    };
    let mut problems = Vec::new();
    for entry in &entries {
        if let Some(problem) = check_artifact(store, plan, &set, entry).await {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(SourceError::Damaged {
            set: set.id.to_string(),
            problems,
        });
    }
    let mut downloaded = None;
    let path: PathBuf = match store {
        Store::Local(local) => local.artifact_path(plan, &set.id, &entry.name)?,
        // Restores read local files, so an off-site artifact comes down into scratch first,
        // hashed on the way: the object may have changed since it was checked.
        Store::S3(s3) => {
            std::fs::create_dir_all(scratch).map_err(|source| SourceError::Io {
                action: "create",
                path: scratch.to_owned(),
                source,
            })?;
            let local = scratch.join(format!("download-{}", entry.name));
            let digest = s3
                .download_artifact(plan, set.id.as_str(), &entry.name, &local)
                .await
                .map_err(|e| super::s3_sets::store_error(s3, e))?;
            downloaded = Some(local.clone());
            if digest.sha256 != entry.sha256 || digest.size != entry.size {
                std::fs::remove_file(&local).ok();
                return Err(SourceError::Damaged {
                    set: set.id.to_string(),
                    problems: vec![super::ArtifactProblem {
                        artifact: entry.name.clone(),
                        problem: super::Problem::HashMismatch {
                            expected: entry.sha256.clone(),
                            actual: digest.sha256,
                        },
                    }],
                });
            }
            local
        }
    };
    let (source, scratch) = (source.clone(), scratch.to_owned());
    let outcome = tokio::task::spawn_blocking(move || {
        crate::source::restore(&source, &entry, &path, &target, &scratch)
    })
    .await
    .unwrap_or_else(|join| {
        Err(SourceError::Io {
            action: "run restore",
            path: PathBuf::new(),
            source: std::io::Error::other(join.to_string()),
        })
    });
    if let Some(local) = downloaded {
        std::fs::remove_file(local).ok();
    }
    Ok((set, outcome?))
}
