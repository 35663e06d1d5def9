//! `planrun restore PLAN --source NAME --to TARGET | --in-place`: restore one source from a
//! checked set.

use std::path::PathBuf;

use super::{CommandError, CommandResult, Console, rendered_plan};
use crate::cli::RestoreArgs;
use crate::exit_code;
use crate::plan::Source;
use crate::source::RestoreTarget;
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
        },
        // `--in-place` is the source's own place: no path.
        (Source::Files(_) | Source::Directory(_), None) => RestoreTarget {
            database: None,
            path: None,
            force: args.force,
        },
        (_, Some(to)) => RestoreTarget {
            database: None,
            path: Some(PathBuf::from(to)),
            force: args.force,
        },
        (other, None) => {
            return Err(CommandError::InPlaceNeedsPath {
                name: args.source.clone(),
                kind: other.kind_name(),
            });
        }
    };
    std::fs::create_dir_all(&plan.scratch).map_err(|error| CommandError::Scratch {
        path: plan.scratch.clone(),
        error,
    })?;
    let result = rendered_plan::runtime()?.block_on(restore_source(
        &store,
        &plan.name,
        &args.source,
        &source,
        Some(&args.set),
        target,
        &plan.scratch,
    ));
    let _ = std::fs::remove_dir_all(&plan.scratch);
    let (set, outcome) = result.map_err(|error| CommandError::Restore {
        name: args.source.clone(),
        error,
    })?;
    console.line(format_args!(
        "restored {} from {storage_name} set {} into {}",
        args.source, set.id, outcome.target
    ));
    for (fact, value) in &outcome.facts {
        console.line(format_args!("  {fact}: {value}"));
    }
    Ok(exit_code::SUCCESS)
}
