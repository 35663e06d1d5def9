//! `planrun restore PLAN --source NAME --to TARGET | --in-place`: restore one source from a
//! checked set.

use std::path::PathBuf;

use super::{CommandError, CommandResult, Console, rendered_plan};
use crate::cli::RestoreArgs;
use crate::exec_plan::ExecPlan;
use crate::exit_code;
use crate::leftovers;
use crate::lock::{Holder, PlanLock};
use crate::plan::Source;
use crate::source::RestoreTarget;
use crate::state_dir::StateDir;
use crate::storage::restore_source;

pub fn run(args: &RestoreArgs, console: &mut Console) -> CommandResult {
    let plan = rendered_plan::render(&args.input, true, console)?;
    let source = rendered_plan::source(&plan, &args.source)?.clone();
    let (storage_name, store) = rendered_plan::restore_storage(&plan, args.storage.as_deref())?;
    let target = match (&source, &args.to) {
        (Source::Postgres(_), Some(to)) => RestoreTarget {
            database: Some(to.clone()),
            path: None,
            force: args.force,
            keep_previous: None,
        },
        // `--in-place` is the source's own place: no path.
        (Source::Files(_) | Source::Directory(_), None) => RestoreTarget {
            database: None,
            path: None,
            force: args.force,
            keep_previous: None,
        },
        (_, Some(to)) => RestoreTarget {
            database: None,
            path: Some(PathBuf::from(to)),
            force: args.force,
            keep_previous: None,
        },
        (other, None) => {
            return Err(CommandError::InPlaceNeedsPath {
                name: args.source.clone(),
                kind: other.kind_name(),
            });
        }
    };
    let ledger = claim_leftovers(args, &plan)?;
    if let Err(error) = std::fs::create_dir_all(&plan.scratch) {
        ledger.finish(true);
        return Err(CommandError::Scratch {
            path: plan.scratch.clone(),
            error,
        });
    }
    let live = (std::io::IsTerminal::is_terminal(&std::io::stderr())
        && !args.output.json
        && !console.quiet())
    .then(|| crate::reporter::LiveBytes::start(&format!("restore {}", args.source), None));
    let result = rendered_plan::runtime()?.block_on(restore_source(
        &store,
        &plan.name,
        &args.source,
        &source,
        Some(&args.set),
        target,
        &plan.scratch,
    ));
    drop(live);
    let removed = match std::fs::remove_dir_all(&plan.scratch) {
        Ok(()) => true,
        Err(error) => error.kind() == std::io::ErrorKind::NotFound,
    };
    ledger.finish(removed);
    let (set, outcome) = result.map_err(|error| CommandError::Restore {
        name: args.source.clone(),
        error,
    })?;
    if args.output.json {
        let facts: serde_json::Map<String, serde_json::Value> = outcome
            .facts
            .iter()
            .map(|(fact, value)| (fact.to_string(), serde_json::json!(value)))
            .collect();
        console.line(
            serde_json::to_string_pretty(&serde_json::json!({
                "source": args.source,
                "storage": storage_name,
                "set": set.id.to_string(),
                "target": outcome.target.to_string(),
                "facts": facts,
            }))
            .unwrap_or_default(),
        );
    } else if !console.quiet() {
        console.line(format_args!(
            "restored {} from {storage_name} set {} into {}",
            args.source, set.id, outcome.target
        ));
        for (fact, value) in &outcome.facts {
            console.line(format_args!("  {fact}: {value}"));
        }
    }
    // Restored, but not exactly as the set records it: said on stderr, and exit 3.
    for warning in &outcome.warnings {
        console.notice(format_args!("warning: {warning}"));
    }
    if outcome.warnings.is_empty() {
        Ok(exit_code::SUCCESS)
    } else {
        Ok(exit_code::PARTIAL)
    }
}

/// Starts the restore's ledger (its scratch folder, temporary database and staging folders
/// are claimed in it before they exist), and, when the plan's lock is free, cleans up after
/// dead runs of the plan. A restore does not hold the lock while it works: it may run beside
/// a nightly `execute`, whose leftovers, like those of any live run, it never touches.
fn claim_leftovers(
    args: &RestoreArgs,
    plan: &ExecPlan,
) -> Result<leftovers::Installed, CommandError> {
    let state = StateDir::locate(args.state.state_dir.as_deref()).and_then(StateDir::create)?;
    let ledger = leftovers::install(
        &state,
        &plan.run_id,
        &plan.name,
        "restore",
        Some(&plan.scratch),
    )
    .map_err(CommandError::Ledger)?;
    let holder = Holder {
        pid: std::process::id(),
        host: crate::host::hostname(),
        run_id: plan.run_id.clone(),
        started_at: chrono::Utc::now(),
    };
    if let Ok(lock) = PlanLock::acquire(&state.lock(&plan.name), &plan.name, &holder) {
        leftovers::clean_and_report(&state, &plan.name, &plan.sources, plan.kill_grace);
        drop(lock);
    }
    Ok(ledger)
}
