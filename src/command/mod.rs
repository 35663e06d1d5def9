//! The commands behind the CLI: each takes parsed arguments and returns an exit code.

mod execute;
mod history;

pub use execute::execute;
pub use history::history;

use std::io::Write;

pub mod prune;
pub mod retention;

use crate::cli::{PlanArgs, RestoreArgs, SnapshotsArgs, ValidateArgs, VerifyArgs};
use crate::exit_code;

mod plan;
mod rendered_plan;
mod restore;
mod snapshots;
mod validate;
mod verify;

pub fn schema() -> i32 {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`planrun schema | head`) is not an error worth a panic.
    match out.write_all(crate::schema::schema_json().as_bytes()) {
        Ok(()) => exit_code::SUCCESS,
        Err(_) => exit_code::FAILURE,
    }
}

pub fn validate(args: &ValidateArgs) -> i32 {
    validate::run(args)
}

pub fn plan(args: &PlanArgs) -> i32 {
    plan::run(args)
}

pub fn snapshots(args: &SnapshotsArgs) -> i32 {
    snapshots::run(args)
}

pub fn verify(args: &VerifyArgs) -> i32 {
    verify::run(args)
}

pub fn restore(args: &RestoreArgs) -> i32 {
    restore::run(args)
}
