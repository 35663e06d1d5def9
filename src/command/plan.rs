//! `planrun plan PLAN`: the fully rendered plan, nothing executed, secrets masked.

use crate::cli::PlanArgs;
use crate::exit_code;
use crate::pipeline::{self, RenderOptions};
use crate::plan_view;

pub fn run(args: &PlanArgs) -> i32 {
    let loaded = match pipeline::load(&args.plan) {
        Ok(loaded) => loaded,
        Err(failure) => {
            eprint!("{}", failure.render());
            return exit_code::INVALID;
        }
    };
    let vars = args
        .vars
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    let options = RenderOptions::for_now(vars, false);
    let plan = match pipeline::render(&loaded, &options) {
        Ok(plan) => plan,
        Err(failure) => {
            eprint!("{}", failure.render());
            return exit_code::INVALID;
        }
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
