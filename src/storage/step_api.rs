//! What the `verify` and `restore` step kinds call: plan names in, outcomes out.
//!
//! The `backup` step kind uses [`super::SetWriter`] directly (one per run, shared by the
//! backup steps, committed once the last one settled, abandoned by rollback).

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::choice::{ChoiceError, open_read_storage};
use super::{
    ArtifactProblem, SetId, SetSummary, StoreError, VerifyRecord, newest_with_manifest,
    restore_source, verify_set,
};
use crate::exec_plan::ExecPlan;
use crate::plan::Source;
use crate::source::{RestoreOutcome, RestoreTarget, SourceError};

/// Why a `verify` or `restore` step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("unknown source `{name}`")]
    UnknownSource { name: String },
    #[error(transparent)]
    Choice(#[from] ChoiceError),
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
    let (_, store) = open_read_storage(plan, Some(storage))?;
    let sets = store.list_sets(&plan.name).await?;
    let chosen = match (set, current) {
        (Some(selector), _) if selector != "latest" => {
            sets.iter().find(|s| s.id.as_str() == selector)
        }
        (None, Some(current)) => sets.iter().find(|s| &s.id == current),
        _ => newest_with_manifest(&sets),
    }
    .cloned()
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

/// `restore: { source, set, storage, database, path, force }`: restores one source after
/// checking its artifacts, from the storage [`super::choice::read_storage`] picks.
pub async fn restore_step(
    plan: &ExecPlan,
    source: &str,
    set: Option<&str>,
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
    let (_, store) = open_read_storage(plan, storage)?;
    let scratch: PathBuf = plan.scratch.clone();
    std::fs::create_dir_all(&scratch).map_err(|e| SourceError::io("create", &scratch)(e))?;
    Ok(restore_source(&store, &plan.name, source, &config, set, target, &scratch).await?)
}
