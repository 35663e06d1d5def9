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
    let path: PathBuf = match store {
        Store::Local(local) => local.artifact_path(plan, &set.id, &entry.name)?,
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
    })?;
    Ok((set, outcome))
}
