//! `copy`: replicate a backup set to S3, verified, manifest last, resumable.

use std::path::{Path, PathBuf};

use tokio::io::AsyncRead;

use crate::s3_store::{MANIFEST, ManifestArtifacts, S3Store, SetStoreError};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("set {set} has no manifest: it is incomplete and is never copied")]
    Incomplete { set: String },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{location} already holds set {set} with a different manifest: refusing to overwrite it"
    )]
    Conflict { location: String, set: String },
    #[error(transparent)]
    Store(#[from] SetStoreError),
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
    /// Keys of multipart uploads older than a day that a killed run had left, now aborted.
    pub aborted_uploads: Vec<String>,
    /// Problems that did not stop the copy (e.g. a service that cannot list uploads).
    pub warnings: Vec<String>,
}

/// Multipart uploads older than this under the plan's prefix were left by a run that died:
/// a live copy of the same plan holds the plan's lock and finishes long before.
const ABANDONED_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// Copies the set in a local folder (`<storage>/<plan>/<id>/`) to `to`.
pub async fn copy_local_set(
    set_dir: &Path,
    plan: &str,
    id: &str,
    to: &S3Store,
) -> Result<CopyReport, CopyError> {
    let manifest_path = set_dir.join(MANIFEST);
    let manifest = match tokio::fs::read(&manifest_path).await {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(CopyError::Incomplete { set: id.to_owned() });
        }
        Err(source) => {
            return Err(CopyError::Read {
                path: manifest_path,
                source,
            });
        }
    };
    copy_set(manifest, &LocalSet(set_dir.to_owned()), plan, id, to).await
}

/// Where a copy reads artifacts from.
pub trait ArtifactSource {
    type Reader: AsyncRead + Unpin + Send;
    fn open(&self, name: &str) -> impl Future<Output = Result<Self::Reader, CopyError>> + Send;
}

/// A set folder on local storage.
pub struct LocalSet(pub PathBuf);

impl ArtifactSource for LocalSet {
    type Reader = tokio::fs::File;

    async fn open(&self, name: &str) -> Result<tokio::fs::File, CopyError> {
        let path = self.0.join(name);
        tokio::fs::File::open(&path)
            .await
            .map_err(|source| CopyError::Read { path, source })
    }
}

/// Copies one set given its manifest bytes and a way to open each artifact.
///
/// Each artifact is streamed with the manifest's sha256 as its metadata and re-hashed on the
/// way: a source that no longer matches its manifest is refused, not replicated. Artifacts a
/// previous run already stored (same size, same sha256 metadata) are not sent again. The
/// manifest goes last, so until the very end the remote set is incomplete.
pub async fn copy_set(
    manifest: Vec<u8>,
    source: &(impl ArtifactSource + Sync),
    plan: &str,
    id: &str,
    to: &S3Store,
) -> Result<CopyReport, CopyError> {
    let artifacts = ManifestArtifacts::parse(&manifest, id)?;
    let mut report = CopyReport::default();
    match to
        .bucket()
        .abort_abandoned(&format!("{plan}/"), chrono::Utc::now() - ABANDONED_AFTER)
        .await
    {
        Ok(aborted) => report.aborted_uploads = aborted,
        Err(error) => report
            .warnings
            .push(format!("abandoned uploads were not cleaned up: {error}")),
    }
    if let Some(existing) = to.read_manifest(plan, id).await? {
        if existing.as_ref() != manifest.as_slice() {
            return Err(CopyError::Conflict {
                location: to.location(plan),
                set: id.to_owned(),
            });
        }
        report.already_complete = true;
    }
    for artifact in &artifacts.artifacts {
        let stored = to.head_artifact(plan, id, &artifact.name).await?;
        let matches = stored.is_some_and(|head| {
            head.size == artifact.size
                && head.sha256.as_deref() == Some(artifact.sha256.to_ascii_lowercase().as_str())
        });
        if matches {
            report.resumed.push(artifact.name.clone());
            continue;
        }
        report.already_complete = false;
        let reader = source.open(&artifact.name).await?;
        let uploaded = to
            .put_artifact(plan, id, &artifact.name, reader, &artifact.sha256)
            .await?;
        report.bytes_uploaded += uploaded.size;
        report.uploaded.push(artifact.name.clone());
    }
    if !report.already_complete {
        to.write_manifest(plan, id, manifest).await?;
    }
    Ok(report)
}
