//! [`S3Store`]: the [`Backend`] for an S3-compatible bucket, `<prefix>/<plan>/<set-id>/<name>`,
//! with `manifest.json` as the commit record exactly as in a local folder.
//!
//! The client itself (requests, retries, multipart, timeouts) is [`crate::s3`]; this file only
//! maps set folders onto keys and S3 answers onto [`StoreError`].

use futures::future::BoxFuture;

use super::backend::{ArtifactReader, Backend, ObjectHead, StoredObject, StoredSet};
use super::{ArtifactDigest, SetId, StoreError, check_artifact_name};
use crate::plan::S3Storage;
use crate::s3::{S3Bucket, S3Error, S3Settings, Tuning};

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

    #[cfg(test)]
    pub fn new(bucket: S3Bucket) -> S3Store {
        S3Store { bucket }
    }

    fn key(plan: &str, id: &SetId, name: &str) -> Result<String, StoreError> {
        check_segment(plan)?;
        if name != super::MANIFEST && name != super::VERIFY {
            check_artifact_name(name)?;
        }
        Ok(format!("{plan}/{id}/{name}"))
    }

    /// Turns an S3 failure into a [`StoreError`]: a missing object stays a typed `NotFound`.
    fn error(&self, error: S3Error) -> StoreError {
        match error {
            S3Error::NotFound { bucket, key } => StoreError::NotFound {
                location: format!("s3://{bucket}/{key}"),
            },
            // These already name the object they failed on; the bucket prefix would repeat it.
            located @ (S3Error::Request { .. } | S3Error::NotStored { .. }) => StoreError::Remote {
                location: None,
                detail: located.to_string(),
            },
            other => StoreError::Remote {
                location: Some(self.location()),
                detail: other.to_string(),
            },
        }
    }

    /// `None` for an object that is not there.
    fn found<T>(&self, result: Result<T, S3Error>) -> Result<Option<T>, StoreError> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(S3Error::NotFound { .. }) => Ok(None),
            Err(error) => Err(self.error(error)),
        }
    }
}

/// A plan name is one key segment.
fn check_segment(plan: &str) -> Result<(), StoreError> {
    if plan.is_empty() || plan == "." || plan == ".." || plan.contains(['/', '\0']) {
        return Err(StoreError::Remote {
            location: Some(plan.to_owned()),
            detail: "a plan name must be one path segment without `..`".to_owned(),
        });
    }
    Ok(())
}

impl Backend for S3Store {
    fn location(&self) -> String {
        self.bucket.url_of("")
    }

    fn plan_location(&self, plan: &str) -> String {
        self.bucket.url_of(&format!("{plan}/"))
    }

    /// One recursive listing (a page per 1000 objects), so that a bucket with thousands of
    /// sets needs no request per set to be listed.
    fn list<'a>(&'a self, plan: &'a str) -> BoxFuture<'a, Result<Vec<StoredSet>, StoreError>> {
        Box::pin(async move {
            check_segment(plan)?;
            let objects = self
                .bucket
                .list(&format!("{plan}/"))
                .await
                .map_err(|e| self.error(e))?;
            let mut sets: Vec<StoredSet> = Vec::new();
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
                let Some(id) = SetId::parse(id) else { continue };
                if name.contains('/') {
                    continue;
                }
                let entry = StoredObject {
                    name: name.to_owned(),
                    size: object.size,
                };
                match sets.last_mut() {
                    Some(set) if set.id == id => {
                        set.objects.push(entry);
                        set.modified = set.modified.max(Some(object.last_modified));
                    }
                    _ => sets.push(StoredSet {
                        id,
                        objects: vec![entry],
                        modified: Some(object.last_modified),
                    }),
                }
            }
            Ok(sets)
        })
    }

    fn read<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let key = Self::key(plan, id, name)?;
            Ok(self
                .found(self.bucket.get_bytes(&key).await)?
                .map(|bytes| bytes.to_vec()))
        })
    }

    fn open<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<ArtifactReader, StoreError>> {
        Box::pin(async move {
            let key = Self::key(plan, id, name)?;
            // Streams the object from the bucket: verify reads what is stored, not a cache.
            match self.bucket.reader(&key).await {
                Ok(reader) => Ok(Box::new(reader) as ArtifactReader),
                Err(error) => Err(self.error(error)),
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
            let key = Self::key(plan, id, name)?;
            Ok(self
                .found(self.bucket.head(&key).await)?
                .map(|head| ObjectHead {
                    size: head.size,
                    sha256: head.sha256,
                }))
        })
    }

    /// The sha256 travels as metadata with the first request, so it must be known up front;
    /// the bytes are hashed again on the way and a mismatch stores nothing.
    fn put<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
        reader: ArtifactReader,
        expected_sha256: &'a str,
    ) -> BoxFuture<'a, Result<ArtifactDigest, StoreError>> {
        Box::pin(async move {
            let key = Self::key(plan, id, name)?;
            let uploaded = self
                .bucket
                .upload(reader, &key, expected_sha256, name)
                .await
                .map_err(|e| self.error(e))?;
            Ok(ArtifactDigest {
                size: uploaded.size,
                sha256: uploaded.sha256,
            })
        })
    }

    fn write<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
        bytes: Vec<u8>,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let key = Self::key(plan, id, name)?;
            self.bucket
                .put_bytes(&key, bytes)
                .await
                .map_err(|e| self.error(e))?;
            Ok(())
        })
    }

    fn remove<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let key = Self::key(plan, id, name)?;
            self.bucket.delete(&key).await.map_err(|e| self.error(e))
        })
    }

    fn remove_set<'a>(
        &'a self,
        plan: &'a str,
        id: &'a SetId,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            check_segment(plan)?;
            let objects = self
                .bucket
                .list(&format!("{plan}/{id}/"))
                .await
                .map_err(|e| self.error(e))?;
            for object in objects {
                self.bucket
                    .delete(&object.key)
                    .await
                    .map_err(|e| self.error(e))?;
            }
            Ok(())
        })
    }

    fn clean_abandoned<'a>(
        &'a self,
        plan: &'a str,
        before: chrono::DateTime<chrono::Utc>,
    ) -> BoxFuture<'a, Result<Vec<String>, StoreError>> {
        Box::pin(async move {
            self.bucket
                .abort_abandoned(&format!("{plan}/"), before)
                .await
                .map_err(|e| self.error(e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_single_segments() {
        let id = SetId::parse("20250214T020000Z-3f9a").unwrap();
        assert_eq!(
            S3Store::key("crm", &id, super::super::MANIFEST).unwrap(),
            "crm/20250214T020000Z-3f9a/manifest.json"
        );
        assert!(S3Store::key("crm", &id, "../x").is_err());
        assert!(S3Store::key("crm/x", &id, "db.dump.zst").is_err());
    }
}
