//! A folder that holds backup sets: `<path>/<plan>/<set-id>/`.

use std::fs::DirBuilder;
use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::artifact_writer::{sync_dir, write_atomically};
use super::set_status::StoredManifest;
use super::{Manifest, SetId, SetStatus, SetSummary, StoreError, VerifyRecord};

pub const MANIFEST: &str = "manifest.json";
pub const VERIFY: &str = "verify.json";

/// Backup sets in a local (or mounted) folder.
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

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalStore {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn plan_dir(&self, plan: &str) -> PathBuf {
        self.root.join(plan)
    }

    pub fn set_path(&self, plan: &str, id: &SetId) -> PathBuf {
        self.plan_dir(plan).join(id.as_str())
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

    /// Every set folder of the plan, newest first, with its status.
    pub fn list_sets(&self, plan: &str) -> Result<Vec<SetSummary>, StoreError> {
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
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            sets.push(self.summary(plan, id)?);
        }
        sets.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(sets)
    }

    /// One set's summary.
    pub fn summary(&self, plan: &str, id: SetId) -> Result<SetSummary, StoreError> {
        let path = self.set_path(plan, &id);
        if !path.is_dir() {
            return Err(StoreError::NoSuchSet {
                plan: plan.to_owned(),
                set: id.to_string(),
                location: self.root.display().to_string(),
            });
        }
        let manifest = match std::fs::read(path.join(MANIFEST)) {
            Ok(bytes) => StoredManifest::parse(&bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => StoredManifest::default(),
            Err(error) => StoredManifest::unreadable(error.to_string()),
        };
        let verify = std::fs::read(path.join(VERIFY))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<VerifyRecord>(&bytes).ok());
        let stored_bytes = std::fs::read_dir(&path)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        Ok(SetSummary::from_stored(id, manifest, verify, stored_bytes))
    }

    /// Writes the manifest: the commit record, so it goes last and atomically.
    pub fn write_manifest(
        &self,
        plan: &str,
        id: &SetId,
        manifest: &Manifest,
    ) -> Result<(), StoreError> {
        write_atomically(&self.set_path(plan, id), MANIFEST, &manifest.to_json())
    }

    pub fn write_verify(
        &self,
        plan: &str,
        id: &SetId,
        record: &VerifyRecord,
    ) -> Result<(), StoreError> {
        let mut bytes = serde_json::to_vec_pretty(record).expect("a verify record serializes");
        bytes.push(b'\n');
        write_atomically(&self.set_path(plan, id), VERIFY, &bytes)
    }

    /// Opens an artifact for reading.
    pub fn open_artifact(
        &self,
        plan: &str,
        id: &SetId,
        name: &str,
    ) -> Result<std::fs::File, StoreError> {
        super::artifact_writer::check_artifact_name(name)?;
        let path = self.set_path(plan, id).join(name);
        std::fs::File::open(&path).map_err(StoreError::io("open", &path))
    }

    /// Where an artifact lives, for restores that hand a path to a tool (git clone).
    pub fn artifact_path(&self, plan: &str, id: &SetId, name: &str) -> Result<PathBuf, StoreError> {
        super::artifact_writer::check_artifact_name(name)?;
        Ok(self.set_path(plan, id).join(name))
    }

    /// Copies an artifact in from a reader, hashing while writing (used by copies between
    /// storages).
    pub fn put_artifact(
        &self,
        plan: &str,
        id: &SetId,
        name: &str,
        reader: &mut dyn Read,
    ) -> Result<super::ArtifactDigest, StoreError> {
        let dir = self.set_path(plan, id);
        let mut writer = super::ArtifactWriter::create(&dir, name)?;
        std::io::copy(reader, &mut writer).map_err(StoreError::io("write", dir.join(name)))?;
        writer.finish()
    }

    /// Removes a set. The manifest goes first, so a crash halfway leaves an incomplete set,
    /// never a manifest that points at missing artifacts.
    pub fn delete_set(&self, plan: &str, id: &SetId) -> Result<(), StoreError> {
        let path = self.set_path(plan, id);
        for name in [MANIFEST, VERIFY] {
            match std::fs::remove_file(path.join(name)) {
                Ok(()) => sync_dir(&path)?,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(StoreError::io("remove", path.join(name))(error)),
            }
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(StoreError::io("remove", &path)(error)),
        }
        sync_dir(&self.plan_dir(plan))
    }

    /// Picks a set for restore: an id, or `latest` (the newest restorable one).
    pub fn resolve_set(
        &self,
        plan: &str,
        selector: Option<&str>,
    ) -> Result<SetSummary, StoreError> {
        match selector {
            None | Some("latest") => self
                .list_sets(plan)?
                .into_iter()
                .find(|set| set.status.restorable())
                .ok_or_else(|| StoreError::NoCompleteSet {
                    plan: plan.to_owned(),
                    location: self.root.display().to_string(),
                }),
            Some(text) => {
                let id = SetId::parse(text).ok_or_else(|| StoreError::NoSuchSet {
                    plan: plan.to_owned(),
                    set: text.to_owned(),
                    location: self.root.display().to_string(),
                })?;
                let summary = self.summary(plan, id)?;
                if summary.status == SetStatus::Incomplete {
                    return Err(StoreError::Incomplete {
                        set: text.to_owned(),
                    });
                }
                Ok(summary)
            }
        }
    }
}
