//! The commands behind the CLI: each takes its parsed arguments and a [`Console`], prints its
//! results through the console, and returns its exit code or the [`CommandError`] that
//! stopped it. [`main`] is the edge that prints that error and turns it into the exit code.

mod completions;
mod console;
mod drill;
mod error;
mod execute;
mod history;
mod incident;
mod init;
mod plan;
mod prune;
mod recover;
mod rendered_plan;
mod restore;
mod retention_simulate;
mod runbook;
mod schedule;
mod snapshots;
mod status;
mod validate;
mod verify;

pub use console::Console;
pub use error::CommandError;
pub use rendered_plan::{human_age, human_size, worker_runtime};

use crate::cli::{self, Command, RetentionCommand};
use crate::exit_code;

/// What a command returns: the exit code of a command that ran to its end (success, or
/// damage and failed storages it already reported), or the error that stopped it.
pub type CommandResult = Result<i32, CommandError>;

/// Parses the command line, runs the command, prints its error if any, and returns the
/// process exit code.
pub fn main() -> i32 {
    let (command, verbosity) = match cli::parse() {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let mut console = Console::with_verbosity(verbosity);
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
        Command::Runbook(args) => runbook::run(&args, console),
        Command::Recover(args) => recover::run(&args, console),
        Command::Incident(command) => incident::run(&command, console),
        Command::Drill(args) => drill::run(&args, console),
        Command::Status(args) => status::run(&args, console),
        Command::Retention(RetentionCommand::Simulate(args)) => {
            retention_simulate::run(&args, console)
        }
        Command::Schedule(args) => schedule::run(&args, console),
        Command::Init(args) => init::run(&args, console),
        Command::Completions(args) => Ok(completions::completions(&args, console)),
        Command::Man => completions::man(console),
    }
}

fn schema(console: &Console) -> i32 {
    console.out(&crate::schema::schema_json());
    exit_code::SUCCESS
}

/// The plan a command reads when PLAN may be left out (`recover`, `runbook`): the one named,
/// else the first found where `plan_discovery` looks, said on stderr so nobody wonders which
/// file an incident ran.
fn locate_plan(
    plan: Option<&std::path::Path>,
    console: &Console,
) -> Result<std::path::PathBuf, CommandError> {
    let located = crate::plan_discovery::locate(plan)?;
    if plan.is_none() {
        console.notice(format_args!(
            "using the plan {} ({})",
            located.path.display(),
            located.how
        ));
    }
    Ok(located.path)
}
