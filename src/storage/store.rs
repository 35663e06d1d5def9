//! [`Store`]: backup sets in one storage, whatever its kind. Listing with status, the
//! selection of a set, reading, writing and deleting are written here once, over a
//! [`Backend`] that only moves named objects.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use super::backend::{ArtifactReader, Backend, ObjectHead};
use super::local_store::LocalStore;
use super::s3_store::S3Store;
use super::set_status::{MAX_RECORD_BYTES, newest_restorable_with};
use super::{
    ArtifactDigest, MANIFEST, SetId, SetStatus, SetSummary, StoreError, VERIFY, VerifyRecord,
};
use crate::plan::Storage;
use crate::s3::Tuning;

/// Manifests read at once while listing: a round trip after another would make a bucket
/// with thousands of sets slow to list.
const PARALLEL_READS: usize = 16;

/// A storage that holds backup sets.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Arc<dyn Backend>,
}

/// Why a plan's storage cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStoreError {
    #[error("storage `{name}`: {source}")]
    S3 {
        name: String,
        source: crate::s3::S3Error,
    },
}

impl Store {
    /// Opens a rendered storage from the plan.
    pub fn open(name: &str, storage: &Storage) -> Result<Store, OpenStoreError> {
        match storage {
            Storage::Local(local) => Ok(Store::new(LocalStore::new(&local.path))),
            Storage::S3(s3) => S3Store::open(s3, Tuning::default())
                .map(Store::new)
                .map_err(|source| OpenStoreError::S3 {
                    name: name.to_owned(),
                    source,
                }),
        }
    }

    /// A store over any backend: the one way a new storage kind is plugged in.
    pub fn new(backend: impl Backend + 'static) -> Store {
        Store {
            backend: Arc::new(backend),
        }
    }

    /// Where the storage is, for messages.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Where the plan's sets are in this storage, for messages.
    pub fn plan_location(&self, plan: &str) -> String {
        self.backend.plan_location(plan)
    }

    /// Every set of the plan, newest first, each with the status
    /// [`SetSummary::from_stored`] gives it.
    pub async fn list_sets(&self, plan: &str) -> Result<Vec<SetSummary>, StoreError> {
        let listed = self.backend.list(plan).await?;
        let mut sets: Vec<SetSummary> = futures::stream::iter(listed)
            .map(|set| async move {
                let manifest = match set.object(MANIFEST) {
                    // Too big to be one: not read, so that one forged set cannot exhaust
                    // memory and stop every listing; `from_stored` calls it damaged.
                    Some(object) if object.size > MAX_RECORD_BYTES => Some(Vec::new()),
                    // Removed between the listing and the read (a prune in progress): the
                    // set is incomplete from now on.
                    Some(_) => self.backend.read(plan, &set.id, MANIFEST).await?,
                    None => None,
                };
                let verify = match (&manifest, set.object(VERIFY)) {
                    (Some(_), Some(object)) if object.size <= MAX_RECORD_BYTES => {
                        self.backend.read(plan, &set.id, VERIFY).await?
                    }
                    _ => None,
                };
                Ok::<_, StoreError>(SetSummary::from_stored(
                    plan,
                    &set,
                    manifest.as_deref(),
                    verify.as_deref(),
                ))
            })
            .buffer_unordered(PARALLEL_READS)
            .try_collect()
            .await?;
        sets.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(sets)
    }

    /// One set's summary.
    #[cfg(test)]
    pub async fn summary(&self, plan: &str, id: &SetId) -> Result<SetSummary, StoreError> {
        self.list_sets(plan)
            .await?
            .into_iter()
            .find(|set| &set.id == id)
            .ok_or_else(|| self.no_such_set(plan, id.as_str()))
    }

    fn no_such_set(&self, plan: &str, set: &str) -> StoreError {
        StoreError::NoSuchSet {
            plan: plan.to_owned(),
            set: set.to_owned(),
            location: self.location(),
        }
    }

    /// The set a restore of `source` reads: `latest` (or nothing) is the newest restorable
    /// set that holds the source; an id names one set, which must have a readable manifest.
    pub async fn set_to_restore(
        &self,
        plan: &str,
        selector: Option<&str>,
        source: &str,
    ) -> Result<SetSummary, StoreError> {
        let sets = self.list_sets(plan).await?;
        match selector {
            None | Some("latest") => {
                newest_restorable_with(&sets, source)
                    .cloned()
                    .ok_or_else(|| StoreError::NoSetWithSource {
                        plan: plan.to_owned(),
                        source_name: source.to_owned(),
                        location: self.location(),
                    })
            }
            Some(text) => {
                let set = sets
                    .into_iter()
                    .find(|set| set.id.as_str() == text)
                    .ok_or_else(|| self.no_such_set(plan, text))?;
                match (&set.status, &set.manifest_error) {
                    (SetStatus::Incomplete, _) => Err(StoreError::Incomplete {
                        set: text.to_owned(),
                    }),
                    (_, Some(error)) => Err(StoreError::Damaged {
                        set: text.to_owned(),
                        reason: format!("{MANIFEST}: {error}"),
                    }),
                    // A set damaged in an artifact of another source still restores this
                    // one: every artifact read is re-hashed before anything is written.
                    _ => Ok(set),
                }
            }
        }
    }

    /// A reader over an artifact's stored bytes.
    pub async fn open_artifact(
        &self,
        plan: &str,
        id: &SetId,
        name: &str,
    ) -> Result<ArtifactReader, StoreError> {
        self.backend.open(plan, id, name).await
    }

    pub async fn head_artifact(
        &self,
        plan: &str,
        id: &SetId,
        name: &str,
    ) -> Result<Option<ObjectHead>, StoreError> {
        self.backend.head(plan, id, name).await
    }

    /// Stores an artifact whose sha256 is known (from the manifest); nothing else is stored.
    pub async fn put_artifact(
        &self,
        plan: &str,
        id: &SetId,
        name: &str,
        reader: ArtifactReader,
        expected_sha256: &str,
    ) -> Result<ArtifactDigest, StoreError> {
        self.backend
            .put(plan, id, name, reader, expected_sha256)
            .await
    }

    /// The manifest's bytes as stored, or `None` for an incomplete set.
    pub async fn read_manifest(
        &self,
        plan: &str,
        id: &SetId,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.backend.read(plan, id, MANIFEST).await
    }

    /// Commits a set: call only after every artifact is stored and checked.
    pub async fn write_manifest_bytes(
        &self,
        plan: &str,
        id: &SetId,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.backend.write(plan, id, MANIFEST, bytes).await
    }

    pub async fn write_verify(
        &self,
        plan: &str,
        id: &SetId,
        record: &VerifyRecord,
    ) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(record).expect("a verify record serializes");
        bytes.push(b'\n');
        self.backend.write(plan, id, VERIFY, bytes).await
    }

    /// Removes a set. The manifest goes first, durably, so a crash halfway leaves an
    /// incomplete set (which retention later clears), never a manifest that points at missing
    /// artifacts.
    pub async fn delete_set(&self, plan: &str, id: &SetId) -> Result<(), StoreError> {
        self.backend.remove(plan, id, MANIFEST).await?;
        self.backend.remove(plan, id, VERIFY).await?;
        self.backend.remove_set(plan, id).await
    }

    /// Where an artifact lies as a local file, if the storage is a local file system.
    pub fn local_path(&self, plan: &str, id: &SetId, name: &str) -> Option<std::path::PathBuf> {
        self.backend.local_path(plan, id, name)
    }

    /// Cleans up what a killed copy into this storage left behind.
    pub async fn clean_abandoned(
        &self,
        plan: &str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<String>, StoreError> {
        self.backend.clean_abandoned(plan, before).await
    }
}
