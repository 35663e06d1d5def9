//! Set-commit bookkeeping: a run's backup set is committed (its manifest written) when the
//! last backup step has reached its final outcome, or after the graph when the last backup
//! steps never started, and removed when it can never be committed. The state itself is
//! [`RunState`](crate::step_kind::RunState); this module decides when, and says so as events.

use super::executor::RunContext;
use crate::cancel::Cancel;
use crate::event::{Event, Outcome};
use crate::exec_plan::{Action, ExecPlan, ExecStep};
use crate::step_kind::{AttemptEnd, Settled};
use crate::storage::Manifest;

/// How many backup steps this run will start: the set is committed once they all settled.
pub fn expect_backups(ctx: &RunContext, only: &[String]) {
    let backups = ctx
        .plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Backup { .. }))
        .filter(|s| s.skip.is_none())
        .filter(|s| only.is_empty() || only.contains(&s.id))
        .count();
    ctx.run.expect_backups(backups);
}

/// Called after every attempt: a backup step's final attempt settles its source, and the
/// last one to settle commits the set. A manifest that cannot be written fails the step.
/// Once the run is stopped (`cancel` fired) nothing settles any more: an interrupted run
/// never commits, whatever the steps' `on_failure`, and its set is removed after the graph.
pub async fn after_attempt(
    ctx: &RunContext,
    step: &ExecStep,
    id: &str,
    attempt: u32,
    end: &mut AttemptEnd,
    cancel: &Cancel,
) {
    let Action::Backup { source } = &step.action else {
        return;
    };
    if end.outcome == Outcome::Cancelled || cancel.reason().is_some() {
        return;
    }
    // Only the step's final outcome counts towards committing the set.
    let last_attempt = end.outcome == Outcome::Succeeded || attempt > step.retries;
    if !last_attempt {
        return;
    }
    match ctx
        .run
        .backup_settled(source, end.outcome == Outcome::Succeeded, step.on_failure)
    {
        Ok(Settled::Finalized(manifest)) => {
            committed(ctx, Some(id), &manifest).await;
        }
        Ok(Settled::Pending | Settled::Failed) => {}
        Err(error) => {
            *end = AttemptEnd::error(format!(
                "backup `{source}`: cannot write the manifest: {error}"
            ));
        }
    }
}

/// After the graph: commits what the backups produced when the last backup steps never
/// started (they needed one that failed under `warn`), then removes a set that was started
/// and can never be committed, so no failed run leaves a folder that looks like a backup in
/// progress. Returns whether the run lost (part of) its backup, which makes it partial.
pub async fn settle_after_graph(ctx: &RunContext, graph_failed: bool, cancelled: bool) -> bool {
    if !graph_failed && !cancelled {
        // A manifest that cannot be written leaves the set uncommitted: it is abandoned
        // below, and that says so.
        if let Some(Ok(manifest)) = ctx.run.commit_remaining() {
            committed(ctx, None, &manifest).await;
        }
    }
    let abandoned = ctx.run.abandon_uncommitted();
    // A run that threw its backup away did not succeed, even when the backup step that broke
    // it was marked `on_failure: ignore`: cron must not read exit 0 on a night with no backup.
    // Nor did one that committed only some of its sources.
    let lost = abandoned.is_some() || ctx.run.committed_partial();
    if let Some(removed) = abandoned {
        let (path, error) = match removed {
            Ok(path) => (path, None),
            Err(error) => (
                ctx.run.set(backup_storage(&ctx.plan)).unwrap_or_default(),
                Some(error),
            ),
        };
        ctx.emitter.emit(Event::SetAbandoned { path, error }).await;
    }
    lost
}

fn backup_storage(plan: &ExecPlan) -> &str {
    plan.backup_storage.as_deref().unwrap_or_default()
}

async fn committed(ctx: &RunContext, step: Option<&str>, manifest: &Manifest) {
    let mut sources: Vec<String> = manifest
        .artifacts
        .iter()
        .map(|a| a.source.clone())
        .collect();
    sources.sort();
    sources.dedup();
    ctx.emitter
        .emit(Event::SetCommitted {
            step: step.map(str::to_owned),
            storage: ctx
                .run
                .set_storage()
                .unwrap_or_else(|| backup_storage(&ctx.plan).to_owned()),
            set: manifest.set_id.clone(),
            sources,
            missing: manifest.missing_sources.clone(),
            partial: manifest.is_partial(),
            artifacts: manifest.artifacts.len(),
            bytes: manifest.total_size(),
        })
        .await;
}
