//! `planrun plan PLAN`: the fully rendered plan, nothing executed, secrets masked, and when
//! its schedules run next.

use super::{CommandResult, Console, rendered_plan};
use crate::cli::PlanArgs;
use crate::exit_code;
use crate::plan_view;

pub fn run(args: &PlanArgs, console: &mut Console) -> CommandResult {
    let loaded = rendered_plan::load(&args.input.plan, console)?;
    // A preview reads no secrets: they show as `***` and need not be available.
    let plan = rendered_plan::render_loaded(&loaded, &args.input, false, console)?;
    let now = chrono::Utc::now();
    if args.output.json {
        let mut json = plan_view::json(&plan);
        json["schedules"] = plan_view::schedules_json(&loaded.plan, now);
        console.line(serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        console.out(&plan_view::text(&plan));
        console.out(&plan_view::schedules(&loaded.plan, now));
    }
    Ok(exit_code::SUCCESS)
}
