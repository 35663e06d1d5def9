//! `prune:` steps: apply retention to the named storages, the decision table in the step's
//! output, removal after it.

use chrono::Utc;

use super::{AttemptEnd, StepContext};
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
    // An interrupted prune has at worst turned one set incomplete: manifests go first.
    let mut lines = Vec::new();
    let end = super::bounded(ctx, "prune", async {
        for (name, storage, policy) in &work {
            if let Err(error) = prune_one(plan, &mut lines, name, storage, policy).await {
                return AttemptEnd::error(error);
            }
        }
        AttemptEnd::succeeded()
    })
    .await;
    for line in lines {
        ctx.output.line(Stream::Stdout, line).await;
    }
    end
}

async fn prune_one(
    plan: &crate::exec_plan::ExecPlan,
    lines: &mut Vec<String>,
    name: &str,
    storage: &Storage,
    policy: &Policy,
) -> Result<(), String> {
    let plan = &plan.name;
    let store = Store::open(name, storage).map_err(|e| format!("prune: {e}"))?;
    let decided = plan_store(&store, plan, policy, Utc::now())
        .await
        .map_err(|e| format!("prune `{name}`: {e}"))?;
    lines.push(format!("storage {name} at {}", store.plan_location(plan)));
    lines.extend(render_table(&decided.rows).lines().map(str::to_owned));
    if let Some(refusal) = decided.refusal() {
        return Err(format!("prune `{name}` refused: {refusal}"));
    }
    for id in decided.to_remove() {
        store
            .delete_set(plan, &id)
            .await
            .map_err(|e| format!("prune `{name}`: cannot remove set {id}: {e}"))?;
        lines.push(format!("removed {id}"));
    }
    Ok(())
}
