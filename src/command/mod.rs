//! The commands behind the CLI: each takes its parsed arguments and a [`Console`], prints its
//! results through the console, and returns its exit code or the [`CommandError`] that
//! stopped it. [`main`] is the edge that prints that error and turns it into the exit code.

mod console;
mod drill;
mod error;
mod execute;
mod history;
mod plan;
mod prune;
mod rendered_plan;
mod restore;
mod retention_simulate;
mod snapshots;
mod status;
mod validate;
mod verify;

pub use console::Console;
pub use error::CommandError;
pub use rendered_plan::human_size;

use crate::cli::{self, Command, RetentionCommand};
use crate::exit_code;

/// What a command returns: the exit code of a command that ran to its end (success, or
/// damage and failed storages it already reported), or the error that stopped it.
pub type CommandResult = Result<i32, CommandError>;

/// Parses the command line, runs the command, prints its error if any, and returns the
/// process exit code.
pub fn main() -> i32 {
    let command = match cli::parse() {
        Ok(command) => command,
        Err(code) => return code,
    };
    let mut console = Console::default();
    match run(command, &mut console) {
        Ok(code) => code,
        Err(error) => {
            console.report(&error);
            error.exit_code()
        }
    }
}

fn run(command: Command, console: &mut Console) -> CommandResult {
    match command {
        Command::Validate(args) => validate::run(&args, console),
        Command::Schema => Ok(schema(console)),
        Command::Plan(args) => plan::run(&args, console),
        Command::Execute(args) => execute::execute(&args, console),
        Command::History(args) => history::history(&args, console),
        Command::Snapshots(args) => snapshots::run(&args, console),
        Command::Verify(args) => verify::run(&args, console),
        Command::Restore(args) => restore::run(&args, console),
        Command::Prune(args) => prune::run(&args, console),
        Command::Drill(args) => drill::run(&args, console),
        Command::Status(args) => status::run(&args, console),
        Command::Retention(RetentionCommand::Simulate(args)) => {
            retention_simulate::run(&args, console)
        }
    }
}

fn schema(console: &Console) -> i32 {
    console.out(&crate::schema::schema_json());
    exit_code::SUCCESS
}
