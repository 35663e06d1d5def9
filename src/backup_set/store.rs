//! `Store`: the storage API for backup sets, one variant per kind of storage.
//!
//! Every storage holds sets at `<root>/<plan>/<set-id>/` with the artifacts, `manifest.json`
//! (the commit record, written last) and optionally `verify.json`. A variant implements:
//!
//! - `list_sets(plan)`: every set folder or key prefix, newest first, as [`SetSummary`]
//!   (status derived with [`SetSummary::status_of`]; a set without manifest is incomplete);
//! - `summary(plan, id)` and `resolve_set(plan, "ID" | "latest")` (latest = newest restorable);
//! - `open_artifact(plan, id, name)`: an `AsyncRead` over the stored bytes (never a cache:
//!   verify must read what is stored);
//! - `put_artifact(plan, id, name, reader)`: stores a whole artifact, hashing while it goes,
//!   returning its [`ArtifactDigest`]; nothing is visible under `name` unless complete;
//! - `write_manifest(plan, id, manifest)`: only after every artifact is stored;
//! - `write_verify(plan, id, record)`: the verify record beside the manifest;
//! - `delete_set(plan, id)`: manifest first, then the rest.
//!
//! Backups themselves are written to local storage through [`super::SetWriter`], which streams
//! straight into set folders; other storages receive sets by copy (`put_artifact` then
//! `write_manifest`). Methods are async so a network storage can implement them without
//! blocking the executor; the local variant runs its file work on the blocking pool.

use std::path::PathBuf;

use tokio::io::AsyncRead;

use super::{
    ArtifactDigest, LocalStore, Manifest, SetId, SetSummary, StoreError, VerifyRecord, s3_sets,
};
use crate::plan::Storage;
use crate::s3::Tuning;
use crate::s3_store::S3Store;

/// A storage that holds backup sets.
#[derive(Clone, Debug)]
pub enum Store {
    Local(LocalStore),
    /// An S3-compatible bucket; sets at `<prefix>/<plan>/<set-id>/`.
    S3(S3Store),
}

/// Why a plan's storage cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    #[error("storage `{name}` is {kind} storage, which this command cannot read yet")]
    Unsupported { name: String, kind: &'static str },
    #[error("storage `{name}`: {source}")]
    S3 {
        name: String,
        source: crate::s3::S3Error,
    },
}

/// A boxed reader over an artifact's stored bytes.
pub type ArtifactReader = Box<dyn AsyncRead + Send + Unpin>;

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join| {
            Err(StoreError::Io {
                action: "finish",
                path: PathBuf::from("(storage task)"),
                source: std::io::Error::other(join.to_string()),
            })
        })
}

impl Store {
    /// Opens a rendered storage from the plan.
    pub fn open(name: &str, storage: &Storage) -> Result<Store, OpenStoreError> {
        match storage {
            Storage::Local(local) => Ok(Store::Local(LocalStore::new(&local.path))),
            Storage::S3(s3) => {
                S3Store::open(s3, Tuning::default())
                    .map(Store::S3)
                    .map_err(|source| OpenStoreError::S3 {
                        name: name.to_owned(),
                        source,
                    })
            }
        }
    }

    /// Where the storage is, for messages.
    pub fn location(&self) -> String {
        match self {
            Store::Local(local) => local.root().display().to_string(),
            Store::S3(s3) => s3.location(""),
        }
    }

    pub async fn list_sets(&self, plan: &str) -> Result<Vec<SetSummary>, StoreError> {
        match self {
            Store::Local(local) => {
                let (local, plan) = (local.clone(), plan.to_owned());
                blocking(move || local.list_sets(&plan)).await
            }
            Store::S3(s3) => s3_sets::list_sets(s3, plan).await,
        }
    }

    pub async fn summary(&self, plan: &str, id: &SetId) -> Result<SetSummary, StoreError> {
        match self {
            Store::Local(local) => {
                let (local, plan, id) = (local.clone(), plan.to_owned(), id.clone());
                blocking(move || local.summary(&plan, id)).await
            }
            Store::S3(s3) => s3_sets::summary(s3, plan, id).await,
        }
    }

    pub async fn resolve_set(
        &self,
        plan: &str,
        selector: Option<&str>,
    ) -> Result<SetSummary, StoreError> {
        match self {
            Store::Local(local) => {
                let (local, plan) = (local.clone(), plan.to_owned());
                let selector = selector.map(str::to_owned);
                blocking(move || local.resolve_set(&plan, selector.as_deref())).await
            }
            Store::S3(s3) => s3_sets::resolve_set(s3, plan, selector).await,
        }
    }

    pub async fn open_artifact(
        &self,
        plan: &str,
        id: &SetId,
        name: &str,
    ) -> Result<ArtifactReader, StoreError> {
        match self {
            Store::Local(local) => {
                let file = local.open_artifact(plan, id, name)?;
                Ok(Box::new(tokio::fs::File::from_std(file)))
            }
            // Streams the object from the bucket: verify reads what is stored, not a cache.
            Store::S3(s3) => match s3.open_artifact(plan, id.as_str(), name).await {
                Ok(reader) => Ok(Box::new(reader)),
                Err(error) => Err(s3_sets::store_error(s3, error)),
            },
        }
    }

    pub async fn put_artifact(
        &self,
        plan: &str,
        id: &SetId,
        name: &str,
        reader: ArtifactReader,
    ) -> Result<ArtifactDigest, StoreError> {
        match self {
            Store::Local(local) => {
                let (local, plan, id, name) =
                    (local.clone(), plan.to_owned(), id.clone(), name.to_owned());
                let runtime = tokio::runtime::Handle::current();
                blocking(move || {
                    let mut reader = tokio_util_bridge(runtime, reader);
                    local.put_artifact(&plan, &id, &name, &mut reader)
                })
                .await
            }
            // S3 stores an artifact's sha256 as metadata sent with the first request, so it
            // must be known up front: sets reach S3 through `crate::copy`, which has it.
            Store::S3(s3) => Err(StoreError::CopyOnly {
                location: s3.location(plan),
            }),
        }
    }

    pub async fn write_manifest(
        &self,
        plan: &str,
        id: &SetId,
        manifest: &Manifest,
    ) -> Result<(), StoreError> {
        match self {
            Store::Local(local) => {
                let (local, plan, id, manifest) =
                    (local.clone(), plan.to_owned(), id.clone(), manifest.clone());
                blocking(move || local.write_manifest(&plan, &id, &manifest)).await
            }
            Store::S3(s3) => s3
                .write_manifest(plan, id.as_str(), manifest.to_json())
                .await
                .map_err(|e| s3_sets::store_error(s3, e)),
        }
    }

    pub async fn write_verify(
        &self,
        plan: &str,
        id: &SetId,
        record: &VerifyRecord,
    ) -> Result<(), StoreError> {
        match self {
            Store::Local(local) => {
                let (local, plan, id, record) =
                    (local.clone(), plan.to_owned(), id.clone(), record.clone());
                blocking(move || local.write_verify(&plan, &id, &record)).await
            }
            Store::S3(s3) => {
                let mut bytes = serde_json::to_vec_pretty(record).unwrap_or_default();
                bytes.push(b'\n');
                s3.write_verify(plan, id.as_str(), bytes)
                    .await
                    .map_err(|e| s3_sets::store_error(s3, e))
            }
        }
    }

    pub async fn delete_set(&self, plan: &str, id: &SetId) -> Result<(), StoreError> {
        match self {
            Store::Local(local) => {
                let (local, plan, id) = (local.clone(), plan.to_owned(), id.clone());
                blocking(move || local.delete_set(&plan, &id)).await
            }
            Store::S3(s3) => s3
                .delete_set(plan, id.as_str())
                .await
                .map_err(|e| s3_sets::store_error(s3, e)),
        }
    }
}

/// Reads an async reader from blocking code (the local store writes with std I/O).
fn tokio_util_bridge(
    runtime: tokio::runtime::Handle,
    reader: ArtifactReader,
) -> impl std::io::Read {
    struct Bridge {
        runtime: tokio::runtime::Handle,
        reader: ArtifactReader,
    }
    impl std::io::Read for Bridge {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            use tokio::io::AsyncReadExt;
            self.runtime.block_on(self.reader.read(buf))
        }
    }
    Bridge { runtime, reader }
}
