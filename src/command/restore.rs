//! `planrun restore PLAN --source NAME --to TARGET | --in-place`: restore one source from a
//! checked set.

use std::path::PathBuf;

use super::rendered_plan;
use crate::cli::RestoreArgs;
use crate::exit_code;
use crate::plan::Source;
use crate::source::RestoreTarget;
use crate::storage::restore_source;

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
            eprintln!(
                "planrun: --in-place restores a files or directory source to where it came from; `{}` is a {} source: name the target with --to",
                args.source,
                other.kind_name()
            );
            return exit_code::INVALID;
        }
    };
    if let Err(error) = std::fs::create_dir_all(&plan.scratch) {
        eprintln!("planrun: cannot create {}: {error}", plan.scratch.display());
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
    let _ = std::fs::remove_dir_all(&plan.scratch);
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
