//! `prune:` steps: apply retention to the named storages, each storage's decision reported
//! before anything is removed from it.

use chrono::Utc;

use super::{AttemptEnd, StepContext};
use crate::event::{Event, PruneDecision};
use crate::plan::Storage;
use crate::retention::Policy;
use crate::storage::Store;
use crate::storage::prune::plan_store;

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
    // A stopped prune has at worst turned one set incomplete: manifests go first.
    for (name, storage, policy) in &work {
        if let Err(error) = prune_one(ctx, name, storage, policy).await {
            return AttemptEnd::error(error);
        }
    }
    AttemptEnd::succeeded()
}

async fn prune_one(
    ctx: &StepContext<'_>,
    name: &str,
    storage: &Storage,
    policy: &Policy,
) -> Result<(), String> {
    let plan = &ctx.plan.name;
    let step = ctx.output.step();
    let store = Store::open(name, storage).map_err(|e| format!("prune: {e}"))?;
    // A set verified recently (a `verify:` step before the prune, a weekly `planrun verify`)
    // is not read again; one that was not is re-hashed before anything is removed.
    let decided = plan_store(&store, plan, policy, Utc::now())
        .await
        .map_err(|e| format!("prune `{name}`: {e}"))?;
    let refusal = decided.refusal();
    ctx.output
        .emit(Event::PruneDecided {
            step: step.clone(),
            storage: name.to_owned(),
            location: store.plan_location(plan),
            sets: decided
                .rows
                .iter()
                .map(|row| PruneDecision {
                    set: row.id.to_string(),
                    status: row.status,
                    keep: row.decision.keep,
                    reasons: row
                        .decision
                        .reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                })
                .collect(),
            refusal: refusal.clone(),
            checked: decided.checks.iter().map(ToString::to_string).collect(),
        })
        .await;
    if let Some(refusal) = refusal {
        return Err(format!("prune `{name}` refused: {refusal}"));
    }
    for id in decided.to_remove() {
        store
            .delete_set(plan, &id)
            .await
            .map_err(|e| format!("prune `{name}`: cannot remove set {id}: {e}"))?;
        ctx.output
            .emit(Event::SetRemoved {
                step: step.clone(),
                storage: name.to_owned(),
                set: id.to_string(),
            })
            .await;
    }
    Ok(())
}
