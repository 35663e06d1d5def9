//! [`LocalStore`]: the [`Backend`] for a local (or mounted) folder, `<path>/<plan>/<set-id>/`.

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use super::artifact_writer::{check_artifact_name, sync_dir, write_atomically};
use super::backend::{
    ArtifactReader, Backend, BlockingReader, ObjectHead, StoredObject, StoredSet,
};
use super::{ArtifactDigest, ArtifactWriter, SetId, StoreError};

/// Backup sets in a local folder.
#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

/// A set folder being written by this process.
#[derive(Clone, Debug)]
pub struct SetDir {
    pub id: SetId,
    pub path: PathBuf,
}

/// Runs file work on the blocking pool, so a slow disk never stalls the executor.
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

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    pub fn plan_dir(&self, plan: &str) -> PathBuf {
        self.root.join(plan)
    }

    pub fn set_path(&self, plan: &str, id: &SetId) -> PathBuf {
        self.plan_dir(plan).join(id.as_str())
    }

    fn object_path(&self, plan: &str, id: &SetId, name: &str) -> Result<PathBuf, StoreError> {
        check_object_name(name)?;
        Ok(self.set_path(plan, id).join(name))
    }

    /// Creates the folder of a new set (0700). The folder is created exclusively: if another
    /// run took the same id, a new suffix is drawn.
    pub fn begin_set(
        &self,
        plan: &str,
        id: SetId,
        now: DateTime<Utc>,
    ) -> Result<SetDir, StoreError> {
        let plan_dir = self.plan_dir(plan);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&plan_dir)
            .map_err(StoreError::io("create", &plan_dir))?;
        let mut id = id;
        for _ in 0..16 {
            let path = plan_dir.join(id.as_str());
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    sync_dir(&plan_dir)?;
                    return Ok(SetDir { id, path });
                }
                Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                    id = SetId::new(now);
                }
                Err(error) => return Err(StoreError::io("create", &path)(error)),
            }
        }
        Err(StoreError::io("create", plan_dir.join(id.as_str()))(
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        ))
    }

    fn list_blocking(&self, plan: &str) -> Result<Vec<StoredSet>, StoreError> {
        let plan_dir = self.plan_dir(plan);
        let entries = match std::fs::read_dir(&plan_dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(StoreError::io("list", &plan_dir)(error)),
        };
        let mut sets = Vec::new();
        for entry in entries {
            let entry = entry.map_err(StoreError::io("list", &plan_dir))?;
            let Some(id) = entry.file_name().to_str().and_then(SetId::parse) else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let path = entry.path();
            let mut objects = Vec::new();
            // The folder's own mtime counts: a run that has just created it has written no
            // file yet.
            let mut modified = entry.metadata().ok().and_then(|m| m.modified().ok());
            match std::fs::read_dir(&path) {
                Ok(files) => {
                    for file in files {
                        let file = file.map_err(StoreError::io("list", &path))?;
                        let Ok(metadata) = file.metadata() else {
                            continue;
                        };
                        if !metadata.is_file() {
                            continue;
                        }
                        modified = modified.max(metadata.modified().ok());
                        objects.push(StoredObject {
                            name: file.file_name().to_string_lossy().into_owned(),
                            size: metadata.len(),
                        });
                    }
                }
                // Removed between the two listings: a prune in progress.
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(StoreError::io("list", &path)(error)),
            }
            sets.push(StoredSet {
                id,
                objects,
                modified: modified.map(DateTime::<Utc>::from),
            });
        }
        Ok(sets)
    }
}

/// Object names are single path segments: artifact names, or the manifest and verify record.
fn check_object_name(name: &str) -> Result<(), StoreError> {
    if name == super::MANIFEST || name == super::VERIFY {
        Ok(())
    } else {
        check_artifact_name(name)
    }
}

impl Backend for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn list<'a>(&'a self, plan: &'a str) -> BoxFuture<'a, Result<Vec<StoredSet>, StoreError>> {
        let (store, plan) = (self.clone(), plan.to_owned());
        Box::pin(blocking(move || store.list_blocking(&plan)))
    }

    fn read<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let path = self.object_path(plan, id, name)?;
            match tokio::fs::read(&path).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(StoreError::io("read", path)(error)),
            }
        })
    }

    fn open<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ArtifactReader, StoreError>> {
        Box::pin(async move {
            let path = self.object_path(plan, id, name)?;
            match tokio::fs::File::open(&path).await {
                Ok(file) => Ok(Box::new(file) as ArtifactReader),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    Err(StoreError::NotFound {
                        location: path.display().to_string(),
                    })
                }
                Err(error) => Err(StoreError::io("open", path)(error)),
            }
        })
    }

    fn head<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectHead>, StoreError>> {
        Box::pin(async move {
            let path = self.object_path(plan, id, name)?;
            match tokio::fs::metadata(&path).await {
                Ok(metadata) => Ok(Some(ObjectHead {
                    size: metadata.len(),
                    sha256: None,
                })),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(StoreError::io("read", path)(error)),
            }
        })
    }

    fn put<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
        reader: ArtifactReader,
        expected_sha256: &'a str,
    ) -> BoxFuture<'a, Result<ArtifactDigest, StoreError>> {
        let (store, plan, id, name) = (self.clone(), plan.to_owned(), id.clone(), name.to_owned());
        let expected = expected_sha256.to_owned();
        let runtime = tokio::runtime::Handle::current();
        Box::pin(blocking(move || {
            let dir = store.set_path(&plan, &id);
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(StoreError::io("create", &dir))?;
            let mut writer = ArtifactWriter::create_checked(&dir, &name, &expected)?;
            let mut reader = BlockingReader { runtime, reader };
            std::io::copy(&mut reader, &mut writer)
                .map_err(StoreError::io("write", dir.join(&name)))?;
            writer.finish()
        }))
    }

    fn write<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (store, plan, id, name) = (self.clone(), plan.to_owned(), id.clone(), name.to_owned());
        Box::pin(blocking(move || {
            check_object_name(&name)?;
            write_atomically(&store.set_path(&plan, &id), &name, &bytes)
        }))
    }

    fn remove<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (store, plan, id, name) = (self.clone(), plan.to_owned(), id.clone(), name.to_owned());
        Box::pin(blocking(move || {
            let path = store.object_path(&plan, &id, &name)?;
            match std::fs::remove_file(&path) {
                // The removal must reach the disk before anything else of the set goes.
                Ok(()) => sync_dir(&store.set_path(&plan, &id)),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(error) => Err(StoreError::io("remove", path)(error)),
            }
        }))
    }

    fn remove_set<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let (store, plan, id) = (self.clone(), plan.to_owned(), id.clone());
        Box::pin(blocking(move || {
            let path = store.set_path(&plan, &id);
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(StoreError::io("remove", &path)(error)),
            }
            sync_dir(&store.plan_dir(&plan))
        }))
    }

    fn local_path(&self, plan: &str, id: &SetId, name: &str) -> Option<PathBuf> {
        self.object_path(plan, id, name).ok()
    }
}
