//! [`Backend`]: the one trait a kind of storage implements. Everything built on top of it
//! (listing with status, `latest`, verify, restore, copy, prune) is written once, in
//! [`super::Store`], and works for every kind.
//!
//! Sets live at `<root>/<plan>/<set-id>/<name>`. A backend stores and returns named objects in
//! set folders; it knows nothing about manifests, statuses or retention.

use std::fmt;
use std::path::PathBuf;

use futures::future::BoxFuture;
use tokio::io::AsyncRead;

use super::{ArtifactDigest, SetId, StoreError};

/// A boxed reader over an artifact's stored bytes.
pub type ArtifactReader = Box<dyn AsyncRead + Send + Unpin>;

/// One set folder (or key prefix) as a listing shows it: the objects it holds and their sizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSet {
    pub id: SetId,
    pub objects: Vec<StoredObject>,
    /// The newest modification time the listing reports for the set (a local folder's or
    /// file's mtime, an S3 object's LastModified), where the storage reports one. An
    /// incomplete set's age is measured from this too, since the id's time is only a name.
    pub modified: Option<chrono::DateTime<chrono::Utc>>,
}

/// An object of a set, named inside the set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredObject {
    pub name: String,
    pub size: u64,
}

impl StoredSet {
    pub fn object(&self, name: &str) -> Option<&StoredObject> {
        self.objects.iter().find(|o| o.name == name)
    }

    pub fn stored_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }
}

/// What a stored object says about itself without being read (for resuming copies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// The sha256 recorded with the object, where the storage keeps one.
    pub sha256: Option<String>,
}

/// One kind of storage. Implement this to add a kind: no command or step kind changes.
///
/// Every method must be safe against a crash at any point: `write` and `put` make an object
/// visible only when it is whole, and `remove` returns only once the removal is durable, so
/// that [`super::Store::delete_set`] can remove the manifest first and know it is gone.
pub trait Backend: fmt::Debug + Send + Sync {
    /// Where the storage is (`/var/backups/crm`, `s3://bucket/prefix/`), for messages.
    fn location(&self) -> String;

    /// Where the plan's sets are, for messages (`/var/backups/crm/nightly`).
    fn plan_location(&self, plan: &str) -> String {
        format!("{}/{plan}", self.location())
    }

    /// Every set folder of `plan` whose name is a set id, in any order.
    fn list<'a>(&'a self, plan: &'a str) -> BoxFuture<'a, Result<Vec<StoredSet>, StoreError>>;

    /// A small object (manifest, verify record) in full, or `None` if it is not there.
    fn read<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;

    /// A reader over an object's stored bytes (never a cache: verify must read what is
    /// stored). A missing object is [`StoreError::NotFound`].
    fn open<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ArtifactReader, StoreError>>;

    /// Size and recorded sha256 of an object, or `None` if it is not there.
    fn head<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectHead>, StoreError>>;

    /// Stores a whole artifact, hashing it on the way; bytes that do not hash to
    /// `expected_sha256` never become visible under `name`.
    fn put<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
        reader: ArtifactReader,
        expected_sha256: &'a str,
    ) -> BoxFuture<'a, Result<ArtifactDigest, StoreError>>;

    /// Writes a small object atomically (the manifest, the verify record).
    fn write<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes one object durably; an object that is not there is no error.
    fn remove<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Removes whatever is left of a set folder.
    fn remove_set<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Where an artifact lies as a file, for restores that hand a path to a tool; storages
    /// that are not a local file system return `None` and the artifact is downloaded.
    fn local_path(&self, _plan: &str, _id: &SetId, _name: &str) -> Option<PathBuf> {
        None
    }

    /// Cleans up what a killed copy left behind (multipart uploads older than `before`),
    /// returning what it removed. Storages with nothing of the kind do nothing.
    fn clean_abandoned<'a>(
        &'a self,
        _plan: &'a str,
        _before: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// Reads an async reader from blocking code (file work on the blocking pool uses std I/O).
pub(crate) struct BlockingReader {
    pub runtime: tokio::runtime::Handle,
    pub reader: ArtifactReader,
}

impl std::io::Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use tokio::io::AsyncReadExt;
        self.runtime.block_on(self.reader.read(buf))
    }
}
