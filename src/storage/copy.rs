//! `copy`: replicate a backup set into another storage, verified, manifest last, resumable.

use super::{ArtifactReader, Manifest, SetId, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("set {set} has no manifest: it is incomplete and is never copied")]
    Incomplete { set: String },
    #[error("set {set} is damaged and is never copied: {reason}")]
    Damaged { set: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a copy did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Artifacts sent in this run.
    pub uploaded: Vec<String>,
    /// Artifacts a previous, interrupted run had already stored and checked.
    pub resumed: Vec<String>,
    pub bytes_uploaded: u64,
    /// The destination already held the whole set: nothing was sent.
    pub already_complete: bool,
    /// Multipart uploads older than a day that a killed run had left, now aborted.
    pub aborted_uploads: Vec<String>,
    /// Problems that did not stop the copy (e.g. a service that cannot list uploads).
    pub warnings: Vec<String>,
}

/// Multipart uploads older than this under the plan's prefix were left by a run that died:
/// a live copy of the same plan holds the plan's lock and finishes long before.
const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Where a copy reads artifacts from.
pub trait ArtifactSource {
    type Reader: tokio::io::AsyncRead + Unpin + Send + 'static;
    fn open(&self, name: &str) -> impl Future<Output = Result<Self::Reader, CopyError>> + Send;
}

/// A set in a storage, read through the storage layer.
struct StoredSetSource<'a> {
    store: &'a Store,
    plan: &'a str,
    id: &'a SetId,
}

impl ArtifactSource for StoredSetSource<'_> {
    type Reader = ArtifactReader;

    async fn open(&self, name: &str) -> Result<ArtifactReader, CopyError> {
        Ok(self.store.open_artifact(self.plan, self.id, name).await?)
    }
}

/// Copies set `id` of `plan` from one storage to another.
pub async fn copy_between(
    from: &Store,
    to: &Store,
    plan: &str,
    id: &SetId,
) -> Result<CopyReport, CopyError> {
    let manifest = from
        .read_manifest(plan, id)
        .await?
        .ok_or_else(|| CopyError::Incomplete {
            set: id.to_string(),
        })?;
    let source = StoredSetSource {
        store: from,
        plan,
        id,
    };
    copy_set(manifest, &source, plan, id, to).await
}

/// Copies one set given its manifest bytes and a way to open each artifact.
///
/// Each artifact is streamed with the manifest's sha256 and re-hashed on the way: a source
/// that no longer matches its manifest is refused, not replicated. Artifacts a previous run
/// already stored (same size, same recorded sha256) are not sent again. The manifest goes
/// last, so until the very end the copy is incomplete.
pub async fn copy_set(
    manifest: Vec<u8>,
    source: &(impl ArtifactSource + Sync),
    plan: &str,
    id: &SetId,
    to: &Store,
) -> Result<CopyReport, CopyError> {
    let parsed =
        Manifest::from_json(&manifest, plan, id.as_str()).map_err(|reason| CopyError::Damaged {
            set: id.to_string(),
            reason,
        })?;
    let mut report = CopyReport::default();
    match to
        .clean_abandoned(plan, chrono::Utc::now() - ABANDONED_AFTER)
        .await
    {
        Ok(aborted) => report.aborted_uploads = aborted,
        Err(error) => report
            .warnings
            .push(format!("abandoned uploads were not cleaned up: {error}")),
    }
    if let Some(existing) = to.read_manifest(plan, id).await? {
        if existing != manifest {
            return Err(StoreError::Conflict {
                location: to.plan_location(plan),
                set: id.to_string(),
            }
            .into());
        }
        report.already_complete = true;
    }
    for artifact in &parsed.artifacts {
        let stored = to.head_artifact(plan, id, &artifact.name).await?;
        let matches = stored.is_some_and(|head| {
            head.size == artifact.size && head.sha256.as_deref() == Some(artifact.sha256.as_str())
        });
        if matches {
            report.resumed.push(artifact.name.clone());
            continue;
        }
        report.already_complete = false;
        let reader = source.open(&artifact.name).await?;
        let stored = to
            .put_artifact(plan, id, &artifact.name, Box::new(reader), &artifact.sha256)
            .await?;
        report.bytes_uploaded += stored.size;
        report.uploaded.push(artifact.name.clone());
    }
    if !report.already_complete {
        to.write_manifest_bytes(plan, id, manifest).await?;
    }
    Ok(report)
}
