//! `run:` steps: a program and its arguments, started directly, without a shell.

use super::{AttemptEnd, StepContext, run_process};

pub async fn execute(ctx: &mut StepContext<'_>, program: &str, args: &[String]) -> AttemptEnd {
    run_process(ctx, program, args.to_vec()).await
}
