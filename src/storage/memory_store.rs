//! [`MemoryStore`]: a [`Backend`] that keeps objects in memory. It exists to prove that a kind
//! of storage is one trait implementation: the storage unit tests run listing, status,
//! `latest`, verify, copy and prune against it with no other code knowing it is there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use super::artifact_writer::hex;
use super::backend::{ArtifactReader, Backend, ObjectHead, StoredObject, StoredSet};
use super::{ArtifactDigest, SetId, StoreError};

/// Objects keyed by `(plan, set id, name)`.
type Objects = BTreeMap<(String, SetId, String), Vec<u8>>;

#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    objects: Arc<Mutex<Objects>>,
}

impl MemoryStore {
    fn with<T>(&self, work: impl FnOnce(&mut Objects) -> T) -> T {
        work(&mut self.objects.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts bytes in place directly, as a forger or bit rot would.
    pub fn insert(&self, plan: &str, id: &SetId, name: &str, bytes: &[u8]) {
        self.with(|o| o.insert((plan.into(), id.clone(), name.into()), bytes.to_vec()));
    }

    pub fn delete(&self, plan: &str, id: &SetId, name: &str) {
        self.with(|o| o.remove(&(plan.into(), id.clone(), name.into())));
    }
}

impl Backend for MemoryStore {
    fn location(&self) -> String {
        "memory:".to_owned()
    }

    fn list<'a>(&'a self, plan: &'a str) -> BoxFuture<'a, Result<Vec<StoredSet>, StoreError>> {
        let mut sets: BTreeMap<SetId, Vec<StoredObject>> = BTreeMap::new();
        self.with(|objects| {
            for ((p, id, name), bytes) in objects.iter() {
                if p == plan {
                    sets.entry(id.clone()).or_default().push(StoredObject {
                        name: name.clone(),
                        size: bytes.len() as u64,
                    });
                }
            }
        });
        let sets = sets
            .into_iter()
            .map(|(id, objects)| StoredSet {
                id,
                objects,
                modified: None,
            })
            .collect();
        Box::pin(async move { Ok(sets) })
    }

    fn read<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        let found = self.with(|o| o.get(&(plan.into(), id.clone(), name.into())).cloned());
        Box::pin(async move { Ok(found) })
    }

    fn open<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ArtifactReader, StoreError>> {
        let found = self.with(|o| o.get(&(plan.into(), id.clone(), name.into())).cloned());
        Box::pin(async move {
            match found {
                Some(bytes) => Ok(Box::new(std::io::Cursor::new(bytes)) as ArtifactReader),
                None => Err(StoreError::NotFound {
                    location: format!("memory:{plan}/{id}/{name}"),
                }),
            }
        })
    }

    fn head<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectHead>, StoreError>> {
        let found = self.with(|o| o.get(&(plan.into(), id.clone(), name.into())).cloned());
        Box::pin(async move {
            Ok(found.map(|bytes| ObjectHead {
                size: bytes.len() as u64,
                sha256: Some(hex(&Sha256::digest(&bytes))),
            }))
        })
    }

    fn put<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
        mut reader: ArtifactReader,
        expected_sha256: &'a str,
    ) -> BoxFuture<'a, Result<ArtifactDigest, StoreError>> {
        Box::pin(async move {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .await
                .map_err(StoreError::io("read", name))?;
            let sha256 = hex(&Sha256::digest(&bytes));
            if sha256 != expected_sha256 {
                return Err(StoreError::HashMismatch {
                    name: name.to_owned(),
                    expected: expected_sha256.to_owned(),
                    actual: sha256,
                });
            }
            let size = bytes.len() as u64;
            self.insert(plan, id, name, &bytes);
            Ok(ArtifactDigest { size, sha256 })
        })
    }

    fn write<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.insert(plan, id, name, &bytes);
        Box::pin(async { Ok(()) })
    }

    fn remove<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.delete(plan, id, name);
        Box::pin(async { Ok(()) })
    }

    fn remove_set<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with(|o| o.retain(|(p, i, _), _| !(p == plan && i == id)));
        Box::pin(async { Ok(()) })
    }
}
