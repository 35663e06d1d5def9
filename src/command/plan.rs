//! `planrun plan PLAN`: the fully rendered plan, nothing executed, secrets masked.

use super::{CommandResult, Console, rendered_plan};
use crate::cli::PlanArgs;
use crate::exit_code;
use crate::plan_view;

pub fn run(args: &PlanArgs, console: &mut Console) -> CommandResult {
    // A preview reads no secrets: they show as `***` and need not be available.
    let plan = rendered_plan::render(&args.input, false, console)?;
    if args.output.json {
        console.line(serde_json::to_string_pretty(&plan_view::json(&plan)).unwrap_or_default());
    } else {
        console.out(&plan_view::text(&plan));
    }
    Ok(exit_code::SUCCESS)
}
