//! `planrun completions SHELL` and `planrun man`: generated from the clap definitions, so
//! they list exactly the commands and flags the binary accepts.

use clap::CommandFactory;

use super::{CommandError, CommandResult, Console};
use crate::cli::{Cli, CompletionShell, CompletionsArgs};
use crate::exit_code;

pub fn completions(args: &CompletionsArgs, console: &Console) -> i32 {
    let shell = match args.shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    // Generated into memory and printed through the console: `generate` panics on a closed
    // pipe, the console does not.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "planrun", &mut script);
    console.out(&String::from_utf8_lossy(&script));
    exit_code::SUCCESS
}

pub fn man(console: &Console) -> CommandResult {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| CommandError::Usage(format!("cannot render the manual page: {e}")))?;
    console.out(&String::from_utf8_lossy(&page));
    Ok(exit_code::SUCCESS)
}
