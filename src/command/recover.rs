//! `planrun recover --level N [PLAN]`: run a recovery runbook (see [`crate::recover`]).

use super::{CommandResult, Console};
use crate::cli::RecoverArgs;
use crate::pipeline;
use crate::recover::runner::{self, Options};

pub fn run(args: &RecoverArgs, console: &mut Console) -> CommandResult {
    let plan = super::locate_plan(args.plan.as_deref(), console)?;
    let loaded = pipeline::load(&plan)?;
    let options = Options {
        level: args.level,
        set: args.set.clone(),
        storage: args.storage.clone(),
        yes: args.yes,
        confirm: args.confirm.clone(),
        resume: args
            .resume
            .as_ref()
            .map(|id| Some(id.clone()).filter(|id| !id.is_empty())),
        rehearse: args.rehearse,
        json: args.json,
        vars: args
            .vars
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect(),
        state_dir: args.state.state_dir.clone(),
    };
    runner::run(&loaded, &options, console)
}
