//! The commands behind the CLI: each takes parsed arguments and returns an exit code.

use std::io::Write;

pub mod retention;

use crate::cli::{PlanArgs, ValidateArgs};
use crate::exit_code;

pub fn schema() -> i32 {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`planrun schema | head`) is not an error worth a panic.
    match out.write_all(crate::schema::schema_json().as_bytes()) {
        Ok(()) => exit_code::SUCCESS,
        Err(_) => exit_code::FAILURE,
    }
}

pub fn validate(_args: &ValidateArgs) -> i32 {
    eprintln!("planrun: validate is being built");
    exit_code::INVALID
}

pub fn plan(_args: &PlanArgs) -> i32 {
    eprintln!("planrun: plan is being built");
    exit_code::INVALID
}
