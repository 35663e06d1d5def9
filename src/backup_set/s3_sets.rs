//! The S3 variant of [`super::Store`]: set summaries read from a bucket, with the same status
//! rules as a local folder (the manifest is the commit record, `verify.json` counts only for
//! the manifest it checked).

use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};

use super::set_status::StoredManifest;
use super::{SetId, SetStatus, SetSummary, StoreError, VerifyRecord};
use crate::s3::S3Error;
use crate::s3_store::{RemoteSet, S3Store, SetStoreError};

/// Manifests read at once while listing: a round trip after another would make a bucket
/// with thousands of sets slow to list.
const PARALLEL_READS: usize = 16;

/// Turns a remote failure into a [`StoreError`]; a missing object is a `NotFound` I/O error,
/// which is what verify reports as a missing artifact.
pub fn store_error(store: &S3Store, error: SetStoreError) -> StoreError {
    match error {
        SetStoreError::S3(S3Error::NotFound { bucket, key }) => StoreError::Io {
            action: "read",
            path: PathBuf::from(format!("s3://{bucket}/{key}")),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such object"),
        },
        SetStoreError::Incomplete { set } => StoreError::Incomplete { set },
        other => StoreError::Remote {
            location: store.location(""),
            detail: other.to_string(),
        },
    }
}

pub async fn list_sets(store: &S3Store, plan: &str) -> Result<Vec<SetSummary>, StoreError> {
    let sets = store
        .list_sets(plan)
        .await
        .map_err(|e| store_error(store, e))?;
    futures::stream::iter(sets)
        .filter_map(|set| async move { SetId::parse(&set.id).map(|id| (id, set)) })
        .map(|(id, set)| summarize(store, plan, id, set))
        .buffered(PARALLEL_READS)
        .try_collect()
        .await
}

pub async fn summary(store: &S3Store, plan: &str, id: &SetId) -> Result<SetSummary, StoreError> {
    let sets = store
        .list_sets(plan)
        .await
        .map_err(|e| store_error(store, e))?;
    let set = sets
        .into_iter()
        .find(|s| s.id == id.as_str())
        .ok_or_else(|| StoreError::NoSuchSet {
            plan: plan.to_owned(),
            set: id.to_string(),
            location: store.location(""),
        })?;
    summarize(store, plan, id.clone(), set).await
}

pub async fn resolve_set(
    store: &S3Store,
    plan: &str,
    selector: Option<&str>,
) -> Result<SetSummary, StoreError> {
    match selector {
        None | Some("latest") => list_sets(store, plan)
            .await?
            .into_iter()
            .find(|set| set.status.restorable())
            .ok_or_else(|| StoreError::NoCompleteSet {
                plan: plan.to_owned(),
                location: store.location(""),
            }),
        Some(text) => {
            let id = SetId::parse(text).ok_or_else(|| StoreError::NoSuchSet {
                plan: plan.to_owned(),
                set: text.to_owned(),
                location: store.location(""),
            })?;
            let summary = summary(store, plan, &id).await?;
            if summary.status == SetStatus::Incomplete {
                return Err(StoreError::Incomplete {
                    set: text.to_owned(),
                });
            }
            Ok(summary)
        }
    }
}

async fn summarize(
    store: &S3Store,
    plan: &str,
    id: SetId,
    set: RemoteSet,
) -> Result<SetSummary, StoreError> {
    let stored_bytes = set.stored_bytes();
    let manifest = if set.is_complete() {
        match store
            .read_manifest(plan, id.as_str())
            .await
            .map_err(|e| store_error(store, e))?
        {
            Some(bytes) => StoredManifest::parse(&bytes),
            // Removed between the listing and the read: a prune in progress.
            None => StoredManifest::default(),
        }
    } else {
        StoredManifest::default()
    };
    let verify = if set.has(crate::s3_store::VERIFY) {
        store
            .read_verify(plan, id.as_str())
            .await
            .map_err(|e| store_error(store, e))?
            .and_then(|bytes| serde_json::from_slice::<VerifyRecord>(&bytes).ok())
    } else {
        None
    };
    Ok(SetSummary::from_stored(id, manifest, verify, stored_bytes))
}
