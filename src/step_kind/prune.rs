//! `prune:` steps: apply retention to the named storages, the decision table in the step's
//! output, removal after it.

use chrono::Utc;

use super::{AttemptEnd, StepContext};
use crate::event::Outcome;
use crate::plan::Storage;
use crate::process::{LineSink, Stream};
use crate::retention::Policy;
use crate::storage::Store;
use crate::storage::prune::{plan_store, render_table};

pub async fn execute(ctx: &mut StepContext<'_>, storages: &[String]) -> AttemptEnd {
    let plan = ctx.plan;
    // Retention only ever runs after a good backup: a night whose backup failed must not
    // thin out the sets that are now the newest good ones.
    if let Some(failed) = ctx.run.failed_backups().first() {
        return AttemptEnd::error(format!(
            "prune refused: this run's backup of `{failed}` failed, so nothing is removed"
        ));
    }
    if ctx.run.expects_backups() && !ctx.run.set_complete() {
        return AttemptEnd::error(
            "prune refused: this run's backup set is not complete, so nothing is removed",
        );
    }

    // Every policy is checked before anything is removed from any storage.
    let mut work = Vec::new();
    for name in storages {
        let Some((_, storage)) = plan.storage.iter().find(|(n, _)| n == name) else {
            return AttemptEnd::error(format!("prune: the plan has no storage `{name}`"));
        };
        let Some(retention) = plan.retention_for(storage) else {
            return AttemptEnd::error(format!(
                "prune `{name}`: no retention policy; set `retention:` for the plan or the storage"
            ));
        };
        match Policy::new(&retention) {
            Ok(policy) => work.push((name, storage, policy)),
            Err(error) => return AttemptEnd::error(format!("prune `{name}`: {error}")),
        }
    }
    let limit = ctx.timeout.unwrap_or(std::time::Duration::MAX);
    let cancel = ctx.cancel;
    let job = async {
        for (name, storage, policy) in &work {
            prune_one(ctx, name, storage, policy).await?;
        }
        Ok::<(), String>(())
    };
    // An interrupted prune has at worst turned one set incomplete: manifests go first.
    tokio::select! {
        result = tokio::time::timeout(limit, job) => match result {
            Ok(Ok(())) => AttemptEnd::succeeded(),
            Ok(Err(error)) => AttemptEnd::error(error),
            Err(_) => AttemptEnd { outcome: Outcome::TimedOut, ..AttemptEnd::error("prune timed out") },
        },
        _ = cancel.cancelled() => AttemptEnd { outcome: Outcome::Cancelled, ..AttemptEnd::error("prune interrupted") },
    }
}

async fn prune_one(
    ctx: &mut StepContext<'_>,
    name: &str,
    storage: &Storage,
    policy: &Policy,
) -> Result<(), String> {
    let plan = &ctx.plan.name;
    let store = Store::open(name, storage).map_err(|e| format!("prune: {e}"))?;
    let decided = plan_store(&store, plan, policy, Utc::now())
        .await
        .map_err(|e| format!("prune `{name}`: {e}"))?;
    ctx.output
        .line(
            Stream::Stdout,
            format!("storage {name} at {}", store.plan_location(plan)),
        )
        .await;
    for line in render_table(&decided.rows).lines() {
        ctx.output.line(Stream::Stdout, line.to_owned()).await;
    }
    if let Some(refusal) = decided.refusal() {
        return Err(format!("prune `{name}` refused: {refusal}"));
    }
    for id in decided.to_remove() {
        store
            .delete_set(plan, &id)
            .await
            .map_err(|e| format!("prune `{name}`: cannot remove set {id}: {e}"))?;
        ctx.output
            .line(Stream::Stdout, format!("removed {id}"))
            .await;
    }
    Ok(())
}
