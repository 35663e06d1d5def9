//! What the `verify` and `restore` step kinds call: plan names in, outcomes out.
//!
//! The `backup` step kind uses [`super::SetWriter`] directly (one per run, shared by the
//! backup steps, finalized once the last one succeeded, abandoned by rollback).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::{
    ArtifactProblem, OpenStoreError, SetId, SetSummary, Store, StoreError, VerifyRecord,
    restore_source, verify_set,
};
use crate::exec_plan::ExecPlan;
use crate::plan::{Source, Storage};
use crate::source::{RestoreOutcome, RestoreTarget, SourceError};

/// Why a `verify` or `restore` step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("unknown storage `{name}`")]
    UnknownStorage { name: String },
    #[error("unknown source `{name}`")]
    UnknownSource { name: String },
    #[error("the plan has no storage to read backup sets from")]
    NoStorage,
    #[error(transparent)]
    Open(#[from] OpenStoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("set `{set}` is damaged: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Damaged {
        set: String,
        problems: Vec<ArtifactProblem>,
    },
}

fn open_store(plan: &ExecPlan, name: Option<&str>) -> Result<Store, StepError> {
    let found = match name {
        Some(name) => plan
            .storage
            .iter()
            .find(|(n, _)| n == name)
            .ok_or_else(|| StepError::UnknownStorage {
                name: name.to_owned(),
            })?,
        None => plan
            .storage
            .iter()
            .find(|(_, s)| matches!(s, Storage::Local(_)))
            .or_else(|| plan.storage.first())
            .ok_or(StepError::NoStorage)?,
    };
    Ok(Store::open(&found.0, &found.1)?)
}

/// `verify: { storage, set }`: re-hashes one set and records the result. `set` is an id or
/// `latest`; without it, `current` (this run's set) when it is on that storage, else the
/// newest set with a manifest. A damaged set is an `Err` naming every problem.
pub async fn verify_step(
    plan: &ExecPlan,
    storage: &str,
    set: Option<&str>,
    current: Option<&SetId>,
    now: DateTime<Utc>,
) -> Result<(SetSummary, VerifyRecord), StepError> {
    let store = open_store(plan, Some(storage))?;
    let sets = store.list_sets(&plan.name).await?;
    let chosen = match (set, current) {
        (Some(selector), _) if selector != "latest" => {
            sets.into_iter().find(|s| s.id.as_str() == selector)
        }
        (None, Some(current)) => sets.into_iter().find(|s| &s.id == current),
        _ => sets
            .into_iter()
            .find(|s| s.manifest.is_some() || s.manifest_error.is_some()),
    }
    .ok_or_else(|| StoreError::NoCompleteSet {
        plan: plan.name.clone(),
        location: store.location(),
    })?;
    let record = verify_set(&store, &plan.name, &chosen, now).await?;
    if !record.ok() {
        return Err(StepError::Damaged {
            set: chosen.id.to_string(),
            problems: record.problems,
        });
    }
    Ok((chosen, record))
}

/// `restore: { source, from, storage, database, path, force }`: restores one source after
/// checking its artifacts. `scratch` is the run's scratch folder.
pub async fn restore_step(
    plan: &ExecPlan,
    source: &str,
    from: Option<&str>,
    storage: Option<&str>,
    target: RestoreTarget,
) -> Result<(SetSummary, RestoreOutcome), StepError> {
    let config: Source = plan
        .sources
        .iter()
        .find(|(n, _)| n == source)
        .map(|(_, s)| s.clone())
        .ok_or_else(|| StepError::UnknownSource {
            name: source.to_owned(),
        })?;
    let store = open_store(plan, storage)?;
    let scratch: PathBuf = plan.scratch.clone();
    std::fs::create_dir_all(&scratch).map_err(|e| SourceError::io("create", &scratch)(e))?;
    Ok(restore_source(&store, &plan.name, source, &config, from, target, &scratch).await?)
}
