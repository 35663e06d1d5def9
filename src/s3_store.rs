//! Backup sets in an S3 bucket: `<prefix>/<plan>/<set-id>/<artifact>`, with `manifest.json`
//! as the commit record exactly as in a local folder.
//!
//! The manifest is uploaded last and deleted first, so neither an interrupted copy nor an
//! interrupted removal ever leaves something that looks like a complete set.

use bytes::Bytes;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use tokio::io::AsyncRead;

use crate::plan::S3Storage;
use crate::s3::{ObjectHead, ObjectInfo, S3Bucket, S3Error, S3Settings, Tuning, Uploaded};

/// The commit record of a set; a set without it is incomplete.
pub const MANIFEST: &str = "manifest.json";
/// The outcome of the last verification of this copy.
pub const VERIFY: &str = "verify.json";

/// A set as one listing of the bucket shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSet {
    pub id: String,
    /// Objects in the set, keyed by name inside the set.
    pub objects: Vec<ObjectInfo>,
}

impl RemoteSet {
    pub fn has(&self, name: &str) -> bool {
        self.objects.iter().any(|o| o.key == name)
    }

    pub fn is_complete(&self) -> bool {
        self.has(MANIFEST)
    }

    pub fn stored_bytes(&self) -> u64 {
        self.objects.iter().map(|o| o.size).sum()
    }
}

/// The start time encoded in a set id (`20261126T020000Z-3f9a`), which retention goes by.
pub fn set_time(id: &str) -> Option<DateTime<Utc>> {
    let stamp = id.get(..16)?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// The parts of a manifest the storage layer needs. Other fields belong to the backup-set
/// code and are ignored here, so this stays valid as the manifest grows.
#[derive(Clone, Debug, Deserialize)]
pub struct ManifestArtifacts {
    pub artifacts: Vec<ArtifactRef>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ArtifactRef {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SetStoreError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error("`{name}` is not a name for {what}: it must be one path segment without `..`")]
    BadName { what: &'static str, name: String },
    #[error("set {set} has no manifest: it is incomplete")]
    Incomplete { set: String },
    #[error("{what}: manifest is not readable: {detail}")]
    BadManifest { what: String, detail: String },
}

fn check_segment(what: &'static str, name: &str) -> Result<(), SetStoreError> {
    let bad =
        name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0');
    if bad {
        Err(SetStoreError::BadName {
            what,
            name: name.to_owned(),
        })
    } else {
        Ok(())
    }
}

/// An object that is not there is `None`, not an error: an incomplete set has no manifest
/// and an unverified one no verify record.
fn found<T>(result: Result<T, S3Error>) -> Result<Option<T>, SetStoreError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(S3Error::NotFound { .. }) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

impl ManifestArtifacts {
    /// Parses a manifest and refuses artifact names that could reach outside the set.
    pub fn parse(bytes: &[u8], what: &str) -> Result<ManifestArtifacts, SetStoreError> {
        let manifest: ManifestArtifacts =
            serde_json::from_slice(bytes).map_err(|e| SetStoreError::BadManifest {
                what: what.to_owned(),
                detail: e.to_string(),
            })?;
        for artifact in &manifest.artifacts {
            check_segment("an artifact", &artifact.name)?;
        }
        Ok(manifest)
    }
}

/// Backup sets in one S3 bucket and prefix.
#[derive(Clone, Debug)]
pub struct S3Store {
    bucket: S3Bucket,
}

impl S3Store {
    /// Opens a rendered storage, taking missing credentials from the process environment.
    pub fn open(storage: &S3Storage, tuning: Tuning) -> Result<S3Store, S3Error> {
        let settings = S3Settings::resolve(storage, |name| std::env::var(name).ok())?;
        Ok(S3Store {
            bucket: S3Bucket::connect(&settings, tuning)?,
        })
    }

    pub fn new(bucket: S3Bucket) -> S3Store {
        S3Store { bucket }
    }

    pub fn bucket(&self) -> &S3Bucket {
        &self.bucket
    }

    /// `s3://bucket/prefix/plan/`, for messages.
    pub fn location(&self, plan: &str) -> String {
        self.bucket.url_of(&format!("{plan}/"))
    }

    fn key(plan: &str, id: &str, name: &str) -> Result<String, SetStoreError> {
        check_segment("a plan", plan)?;
        check_segment("a set id", id)?;
        check_segment("an artifact", name)?;
        Ok(format!("{plan}/{id}/{name}"))
    }

    /// Every set of a plan, newest first, from one recursive listing (a page per 1000 objects),
    /// so that `snapshots` over thousands of sets needs no request per set.
    pub async fn list_sets(&self, plan: &str) -> Result<Vec<RemoteSet>, SetStoreError> {
        check_segment("a plan", plan)?;
        let objects = self.bucket.list(&format!("{plan}/")).await?;
        let mut sets: Vec<RemoteSet> = Vec::new();
        for object in objects {
            let Some(rest) = object
                .key
                .strip_prefix(plan)
                .and_then(|r| r.strip_prefix('/'))
            else {
                continue;
            };
            // Keys deeper than `<set>/<name>` are not planrun's; they are listed by nobody.
            let Some((id, name)) = rest.split_once('/') else {
                continue;
            };
            if name.contains('/') || set_time(id).is_none() {
                continue;
            }
            let entry = ObjectInfo {
                key: name.to_owned(),
                size: object.size,
            };
            match sets.last_mut() {
                Some(set) if set.id == id => set.objects.push(entry),
                _ => sets.push(RemoteSet {
                    id: id.to_owned(),
                    objects: vec![entry],
                }),
            }
        }
        sets.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(sets)
    }

    /// The manifest bytes, or `None` for an incomplete set.
    pub async fn read_manifest(
        &self,
        plan: &str,
        id: &str,
    ) -> Result<Option<Bytes>, SetStoreError> {
        self.read_optional(plan, id, MANIFEST).await
    }

    pub async fn read_verify(&self, plan: &str, id: &str) -> Result<Option<Bytes>, SetStoreError> {
        self.read_optional(plan, id, VERIFY).await
    }

    async fn read_optional(
        &self,
        plan: &str,
        id: &str,
        name: &str,
    ) -> Result<Option<Bytes>, SetStoreError> {
        found(self.bucket.get_bytes(&Self::key(plan, id, name)?).await)
    }

    /// A reader over the stored bytes of an artifact: what verify and restore read.
    pub async fn open_artifact(
        &self,
        plan: &str,
        id: &str,
        name: &str,
    ) -> Result<impl AsyncRead + Send + Unpin + 'static + use<>, SetStoreError> {
        Ok(self.bucket.reader(&Self::key(plan, id, name)?).await?)
    }

    /// Downloads an artifact to `dest` (temp name, fsync, rename), hashing it on the way.
    pub async fn download_artifact(
        &self,
        plan: &str,
        id: &str,
        name: &str,
        dest: &std::path::Path,
    ) -> Result<crate::s3::ObjectDigest, SetStoreError> {
        Ok(self
            .bucket
            .download(&Self::key(plan, id, name)?, dest)
            .await?)
    }

    pub async fn head_artifact(
        &self,
        plan: &str,
        id: &str,
        name: &str,
    ) -> Result<Option<ObjectHead>, SetStoreError> {
        found(self.bucket.head(&Self::key(plan, id, name)?).await)
    }

    /// Stores one artifact; `expected_sha256` comes from the manifest and is checked on the way.
    pub async fn put_artifact(
        &self,
        plan: &str,
        id: &str,
        name: &str,
        reader: impl AsyncRead + Unpin + Send,
        expected_sha256: &str,
    ) -> Result<Uploaded, SetStoreError> {
        let key = Self::key(plan, id, name)?;
        Ok(self
            .bucket
            .upload(reader, &key, expected_sha256, name)
            .await?)
    }

    /// Commits the set. Call only after every artifact is stored and checked.
    pub async fn write_manifest(
        &self,
        plan: &str,
        id: &str,
        bytes: Vec<u8>,
    ) -> Result<(), SetStoreError> {
        self.write_small(plan, id, MANIFEST, bytes).await
    }

    pub async fn write_verify(
        &self,
        plan: &str,
        id: &str,
        bytes: Vec<u8>,
    ) -> Result<(), SetStoreError> {
        self.write_small(plan, id, VERIFY, bytes).await
    }

    async fn write_small(
        &self,
        plan: &str,
        id: &str,
        name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), SetStoreError> {
        self.bucket
            .put_bytes(&Self::key(plan, id, name)?, bytes)
            .await?;
        Ok(())
    }

    /// Removes a set: the manifest first, so a crash part-way leaves an incomplete set (which
    /// retention later clears), never a complete-looking set with artifacts missing.
    pub async fn delete_set(&self, plan: &str, id: &str) -> Result<(), SetStoreError> {
        self.bucket.delete(&Self::key(plan, id, MANIFEST)?).await?;
        self.bucket.delete(&Self::key(plan, id, VERIFY)?).await?;
        for object in self.bucket.list(&format!("{plan}/{id}/")).await? {
            self.bucket.delete(&object.key).await?;
        }
        Ok(())
    }
}

/// An artifact whose stored bytes do not match the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactFault {
    pub name: String,
    pub fault: Fault,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Missing,
    Unreadable(String),
    Size { expected: u64, actual: u64 },
    Hash { expected: String, actual: String },
}

impl std::fmt::Display for ArtifactFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = &self.name;
        match &self.fault {
            Fault::Missing => write!(f, "{name}: missing"),
            Fault::Unreadable(error) => write!(f, "{name}: unreadable: {error}"),
            Fault::Size { expected, actual } => {
                write!(f, "{name}: size {actual} bytes, manifest says {expected}")
            }
            Fault::Hash { expected, actual } => {
                write!(f, "{name}: sha256 {actual}, manifest says {expected}")
            }
        }
    }
}

impl S3Store {
    /// Re-reads every artifact of a complete set from the bucket and re-hashes it against the
    /// manifest. The metadata is not trusted for this: only the stored bytes count.
    pub async fn verify_set(
        &self,
        plan: &str,
        id: &str,
    ) -> Result<Vec<ArtifactFault>, SetStoreError> {
        let manifest = self
            .read_manifest(plan, id)
            .await?
            .ok_or_else(|| SetStoreError::Incomplete { set: id.to_owned() })?;
        let manifest = ManifestArtifacts::parse(&manifest, id)?;
        let mut faults = Vec::new();
        for artifact in &manifest.artifacts {
            let fault = |fault| ArtifactFault {
                name: artifact.name.clone(),
                fault,
            };
            match self
                .bucket
                .digest(&Self::key(plan, id, &artifact.name)?)
                .await
            {
                Err(S3Error::NotFound { .. }) => faults.push(fault(Fault::Missing)),
                Err(error) => faults.push(fault(Fault::Unreadable(error.to_string()))),
                Ok(digest) if digest.size != artifact.size => {
                    faults.push(fault(Fault::Size {
                        expected: artifact.size,
                        actual: digest.size,
                    }));
                }
                Ok(digest) if !digest.sha256.eq_ignore_ascii_case(&artifact.sha256) => {
                    faults.push(fault(Fault::Hash {
                        expected: artifact.sha256.clone(),
                        actual: digest.sha256,
                    }));
                }
                Ok(_) => {}
            }
        }
        Ok(faults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_ids_carry_their_time() {
        assert_eq!(
            set_time("20250214T020000Z-3f9a").unwrap().to_rfc3339(),
            "2025-02-14T02:00:00+00:00"
        );
        assert_eq!(set_time("notes"), None);
    }

    #[test]
    fn manifests_with_escaping_names_are_refused() {
        let bytes =
            br#"{"format":1,"artifacts":[{"name":"../x","size":1,"sha256":"00","source":"db"}]}"#;
        assert!(matches!(
            ManifestArtifacts::parse(bytes, "set"),
            Err(SetStoreError::BadName { .. })
        ));
        let bytes = br#"{"format":1,"artifacts":[{"name":"db.dump.zst","size":1,"sha256":"00","facts":{}}]}"#;
        assert_eq!(
            ManifestArtifacts::parse(bytes, "set").unwrap().artifacts[0].name,
            "db.dump.zst"
        );
    }

    #[test]
    fn keys_are_single_segments() {
        assert_eq!(
            S3Store::key("crm", "20250214T020000Z-3f9a", MANIFEST).unwrap(),
            "crm/20250214T020000Z-3f9a/manifest.json"
        );
        assert!(S3Store::key("crm", "..", MANIFEST).is_err());
        assert!(S3Store::key("crm/x", "id", MANIFEST).is_err());
    }
}
