//! `planrun recover --level N [PLAN]`: run a recovery runbook (see [`crate::recover`]).

use std::path::{Path, PathBuf};

use super::{CommandError, CommandResult, Console};
use crate::cli::RecoverArgs;
use crate::pipeline;
use crate::recover::runner::{self, Options};

pub fn run(args: &RecoverArgs, console: &mut Console) -> CommandResult {
    let plan = locate_plan(args.plan.as_deref())?;
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

/// The plan file: the one named. (Plan discovery, when none is named, plugs in here.)
fn locate_plan(plan: Option<&Path>) -> Result<PathBuf, CommandError> {
    plan.map(Path::to_path_buf).ok_or_else(|| {
        CommandError::Recover("name the plan file: planrun recover --level N PLAN".into())
    })
}
