//! `planrun prune PLAN`: apply each storage's retention policy, table first, then removal.

use chrono::Utc;

use super::{CommandError, CommandResult, Console};
use crate::cli::PruneArgs;
use crate::exit_code;
use crate::lock::{Holder, PlanLock};
use crate::plan::Storage;
use crate::retention::Policy;
use crate::state_dir::StateDir;
use crate::storage::Store;
use crate::storage::prune::{PruneRow, plan_store, render_table, rows_json};

/// The outcome for one storage.
struct StorageOutcome {
    name: String,
    location: String,
    rows: Vec<PruneRow>,
    removed: Vec<String>,
    errors: Vec<String>,
}

pub fn run(args: &PruneArgs, console: &mut Console) -> CommandResult {
    // Credentials for S3 storage are secrets, so they are resolved even for a dry run.
    let plan = super::rendered_plan::render(&args.input, true, console)?;

    let mut chosen: Vec<(String, Storage)> = Vec::new();
    for name in &args.storage {
        match plan.storage.iter().find(|(n, _)| n == name) {
            Some(entry) => chosen.push(entry.clone()),
            None => {
                return Err(CommandError::unknown(
                    "storage",
                    name,
                    plan.storage.iter().map(|(n, _)| n.as_str()),
                ));
            }
        }
    }
    if chosen.is_empty() {
        chosen = plan.storage.clone();
    }

    // Every policy is checked before anything is listed or removed.
    let mut policies = Vec::new();
    for (name, storage) in &chosen {
        let retention = plan
            .retention_for(storage)
            .ok_or_else(|| CommandError::NoRetention {
                storage: name.clone(),
            })?;
        let policy = Policy::new(&retention).map_err(|error| CommandError::Policy {
            storage: name.clone(),
            error,
        })?;
        policies.push(policy);
    }

    // The plan's lock, as `execute` takes it: a run still writing its set must not see
    // that set removed as an old incomplete one.
    let _lock = lock_plan(args, &plan.name, &plan.run_id)?;
    let runtime = super::rendered_plan::worker_runtime()?;
    let print = (!args.output.json).then_some(&*console);
    let mut outcomes = Vec::new();
    for ((name, storage), policy) in chosen.iter().zip(&policies) {
        let outcome = runtime.block_on(prune_storage(
            name, storage, policy, &plan.name, args, print,
        ));
        outcomes.push(outcome);
    }

    let failed = outcomes.iter().any(|o| !o.errors.is_empty());
    if args.output.json {
        let json: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({
                    "storage": o.name,
                    "location": o.location,
                    "dry_run": args.dry_run,
                    "sets": rows_json(&o.rows),
                    "removed": o.removed,
                    "errors": o.errors,
                })
            })
            .collect();
        console.line(serde_json::to_string_pretty(&json).unwrap_or_default());
    }
    Ok(if failed {
        exit_code::FAILURE
    } else {
        exit_code::SUCCESS
    })
}

/// Lists, decides, prints the table (text mode, when given a console), then removes unless
/// `--dry-run`.
async fn prune_storage(
    name: &str,
    storage: &Storage,
    policy: &Policy,
    plan: &str,
    args: &PruneArgs,
    print: Option<&Console>,
) -> StorageOutcome {
    let mut outcome = StorageOutcome {
        name: name.to_owned(),
        location: String::new(),
        rows: Vec::new(),
        removed: Vec::new(),
        errors: Vec::new(),
    };
    let store = match Store::open(name, storage) {
        Ok(store) => store,
        Err(error) => {
            report_error(&mut outcome, print, error.to_string());
            return outcome;
        }
    };
    outcome.location = store.plan_location(plan);
    let decided = match plan_store(&store, plan, policy, Utc::now()).await {
        Ok(decided) => decided,
        Err(error) => {
            report_error(&mut outcome, print, format!("storage `{name}`: {error}"));
            return outcome;
        }
    };
    outcome.rows = decided.rows.clone();
    let to_remove = decided.to_remove();
    if let Some(console) = print {
        console.line(format_args!("storage {name} at {}", outcome.location));
        console.out(&render_table(&outcome.rows));
        for check in &decided.checks {
            console.line(check);
        }
    }
    // A damaged set where the newest backup of a source should be stops the whole storage:
    // the sets prune would remove may be that source's last good ones.
    if let Some(refusal) = decided.refusal() {
        report_error(
            &mut outcome,
            print,
            format!("storage `{name}`: prune refused: {refusal}"),
        );
        return outcome;
    }
    if !args.dry_run {
        for id in &to_remove {
            match store.delete_set(plan, id).await {
                Ok(()) => {
                    if let Some(console) = print {
                        console.line(format_args!("removed {id}"));
                    }
                    outcome.removed.push(id.to_string());
                }
                Err(error) => report_error(
                    &mut outcome,
                    print,
                    format!("cannot remove set {id}: {error}"),
                ),
            }
        }
    }
    if let Some(console) = print {
        let total = outcome.rows.len();
        let summary = if args.dry_run {
            format!(
                "dry run: {} of {total} sets would be removed\n",
                to_remove.len()
            )
        } else {
            format!("{} of {total} sets removed\n", outcome.removed.len())
        };
        console.out(&summary);
    }
    outcome
}

/// Failures of one storage are reported and prune goes on with the next.
fn report_error(outcome: &mut StorageOutcome, print: Option<&Console>, message: String) {
    if let Some(console) = print {
        console.notice(&message);
    }
    outcome.errors.push(message);
}

/// Takes the plan's lock for the whole prune; exit 4 naming the holder when a run has it.
fn lock_plan(args: &PruneArgs, plan: &str, run_id: &str) -> Result<PlanLock, CommandError> {
    let state = StateDir::locate(args.state.state_dir.as_deref()).and_then(StateDir::create)?;
    let holder = Holder {
        pid: std::process::id(),
        host: crate::host::hostname(),
        run_id: run_id.to_owned(),
        started_at: Utc::now(),
    };
    let lock = PlanLock::acquire(&state.lock(plan), plan, &holder)?;
    // The sets an open incident restores from are never removed.
    crate::storage::prune::hold(crate::recover::incident::held_sets(state.root(), plan));
    Ok(lock)
}
