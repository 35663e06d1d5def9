//! `planrun plan PLAN`: the fully rendered plan, nothing executed, secrets masked.

use super::rendered_plan;
use crate::cli::PlanArgs;
use crate::exit_code;
use crate::plan_view;

pub fn run(args: &PlanArgs) -> i32 {
    // A preview reads no secrets: they show as `***` and need not be available.
    let plan = match rendered_plan::render(&args.plan, &args.vars, false) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&plan_view::json(&plan)).unwrap_or_default()
        );
    } else {
        print!("{}", plan_view::text(&plan));
    }
    exit_code::SUCCESS
}
