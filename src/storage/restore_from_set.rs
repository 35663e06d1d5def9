//! Restoring a source from a stored set: pick the set, re-hash its artifacts, then restore.

use std::path::{Path, PathBuf};

use super::{
    ArtifactProblem, ArtifactWriter, Problem, SetSummary, Store, StoreError, check_artifact,
};
use crate::plan::Source;
use crate::source::{RestoreOutcome, RestoreTarget, SourceError};

/// Restores `source_name` from set `selector` of `store`: an id, or `latest` (the newest
/// restorable set that holds the source).
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
    let set = store.set_to_restore(plan, selector, source_name).await?;
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
    let local = store.local_path(plan, &set.id, &entry.name).is_some();
    let mut problems = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        // An off-site artifact that is restored is hashed while it comes down (and refused
        // there on a mismatch, before anything is written): reading it a first time only
        // to hash it would download it twice.
        if i == 0 && !local {
            continue;
        }
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
    let path: PathBuf = match store.local_path(plan, &set.id, &entry.name) {
        Some(path) => path,
        // Restores read local files, so an off-site artifact comes down into scratch first,
        // hashed on the way: the object may have changed since it was checked.
        None => {
            std::fs::create_dir_all(scratch).map_err(|source| SourceError::Io {
                action: "create",
                path: scratch.to_owned(),
                source,
            })?;
            let local = scratch.join(&entry.name);
            let reader = store.open_artifact(plan, &set.id, &entry.name).await?;
            let (dir, name, sha256) =
                (scratch.to_owned(), entry.name.clone(), entry.sha256.clone());
            let runtime = tokio::runtime::Handle::current();
            let downloaded_hash = tokio::task::spawn_blocking(move || {
                let mut writer = ArtifactWriter::create_checked(&dir, &name, &sha256)?;
                let mut reader = super::backend::BlockingReader { runtime, reader };
                std::io::copy(&mut reader, &mut writer)
                    .map_err(StoreError::io("download", dir.join(&name)))?;
                writer.finish()
            })
            .await
            .map_err(|join| SourceError::Io {
                action: "download",
                path: local.clone(),
                source: std::io::Error::other(join.to_string()),
            })?;
            // Said as `verify` and a local restore say it: the artifact, not the scratch copy.
            if let Err(StoreError::HashMismatch {
                expected, actual, ..
            }) = &downloaded_hash
            {
                return Err(SourceError::Damaged {
                    set: set.id.to_string(),
                    problems: vec![ArtifactProblem {
                        artifact: entry.name.clone(),
                        problem: Problem::HashMismatch {
                            expected: expected.clone(),
                            actual: actual.clone(),
                        },
                    }],
                });
            }
            downloaded_hash?;
            downloaded = Some(local.clone());
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
