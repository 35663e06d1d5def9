//! `planrun restore PLAN --source NAME --to TARGET`: restore one source from a checked set.

use std::path::PathBuf;

use super::rendered_plan;
use crate::backup_set::restore_source;
use crate::cli::RestoreArgs;
use crate::exec_plan::ExecPlan;
use crate::exit_code;
use crate::leftovers;
use crate::lock::{Holder, PlanLock};
use crate::plan::Source;
use crate::source::RestoreTarget;
use crate::state_dir::StateDir;

pub fn run(args: &RestoreArgs) -> i32 {
    let plan = match rendered_plan::render(&args.plan, &args.vars, true) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let source = match rendered_plan::source(&plan, &args.source) {
        Ok(source) => source.clone(),
        Err(code) => return code,
    };
    let (storage_name, store) = match rendered_plan::restore_storage(&plan, args.storage.as_deref())
    {
        Ok(found) => found,
        Err(code) => return code,
    };
    let target = match &source {
        Source::Postgres(_) => RestoreTarget {
            database: Some(args.to.clone()),
            path: None,
            force: args.force,
        },
        _ => RestoreTarget {
            database: None,
            path: Some(PathBuf::from(&args.to)),
            force: args.force,
        },
    };
    let ledger = match claim_leftovers(args, &plan) {
        Ok(ledger) => ledger,
        Err(code) => return code,
    };
    if let Err(error) = std::fs::create_dir_all(&plan.scratch) {
        eprintln!("planrun: cannot create {}: {error}", plan.scratch.display());
        ledger.finish(true);
        return exit_code::FAILURE;
    }
    let result = rendered_plan::runtime().block_on(restore_source(
        &store,
        &plan.name,
        &args.source,
        &source,
        Some(&args.set),
        target,
        &plan.scratch,
    ));
    let removed = match std::fs::remove_dir_all(&plan.scratch) {
        Ok(()) => true,
        Err(error) => error.kind() == std::io::ErrorKind::NotFound,
    };
    ledger.finish(removed);
    match result {
        Ok((set, outcome)) => {
            println!(
                "restored {} from {storage_name} set {} into {}",
                args.source, set.id, outcome.target
            );
            for (fact, value) in &outcome.facts {
                println!("  {fact}: {value}");
            }
            exit_code::SUCCESS
        }
        Err(error) => {
            eprintln!("planrun: restore of {} failed: {error}", args.source);
            exit_code::FAILURE
        }
    }
}

/// Starts the restore's ledger (its scratch folder, temporary database and staging folders
/// are claimed in it before they exist), and, when the plan's lock is free, cleans up after
/// dead runs of the plan. A restore does not hold the lock while it works: it may run beside
/// a nightly `execute`, whose leftovers, like those of any live run, it never touches.
fn claim_leftovers(args: &RestoreArgs, plan: &ExecPlan) -> Result<leftovers::Installed, i32> {
    let state = StateDir::locate(args.state_dir.as_deref())
        .and_then(StateDir::create)
        .map_err(|error| {
            eprintln!("planrun: {error}");
            exit_code::FAILURE
        })?;
    let ledger = leftovers::install(
        &state,
        &plan.run_id,
        &plan.name,
        "restore",
        Some(&plan.scratch),
    )
    .map_err(|error| {
        eprintln!("planrun: cannot write the run ledger: {error}");
        exit_code::FAILURE
    })?;
    let holder = Holder {
        pid: std::process::id(),
        host: crate::engine::hostname(),
        run_id: plan.run_id.clone(),
        started_at: chrono::Utc::now(),
    };
    if let Ok(lock) = PlanLock::acquire(&state.lock(&plan.name), &plan.name, &holder) {
        leftovers::clean_and_report(&state, &plan.name, &plan.sources, plan.kill_grace);
        drop(lock);
    }
    Ok(ledger)
}
