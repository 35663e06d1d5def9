//! `check:` steps: the drill's checks, run as a step after a `restore` step (or in a
//! runbook, after a restore in place). A source a `restore` step of this run restored is read
//! where it went; any other source where the plan says it lives. `matches_backup` and
//! `verify` compare with the set that restore read, else the newest restorable set holding
//! the source on the storage restores read.

use std::collections::BTreeMap;

use super::{AttemptEnd, StepContext};
use crate::drill::evaluate::{self, CheckScope};
use crate::event::Event;
use crate::plan::CheckStep;
use crate::process::Stream;
use crate::storage::newest_restorable_with_all;

pub async fn execute(ctx: &mut StepContext<'_>, check: &CheckStep) -> AttemptEnd {
    if let Some((program, args)) = check.run.as_deref().and_then(<[String]>::split_first) {
        return super::run_process(ctx, program, args.to_vec()).await;
    }
    let restored = ctx.run.restored();
    let targets: BTreeMap<String, evaluate::Target> = restored
        .iter()
        .map(|(source, r)| (source.clone(), r.target.clone()))
        .collect();
    let source = check.source.as_deref().or(check.files.as_deref());
    let from = source.and_then(|s| restored.get(s));
    let storage = from.map(|r| r.storage.as_str());
    let needs_set =
        matches!(check.expect, Some(crate::plan::Expect::MatchesBackup)) || check.verify.is_some();
    let mut opened = None;
    if needs_set {
        let found = async {
            let (_, store) = crate::storage::choice::open_read_storage(ctx.plan, storage)
                .map_err(|e| e.to_string())?;
            let sets = store
                .list_sets(&ctx.plan.name)
                .await
                .map_err(|e| e.to_string())?;
            let set = match from {
                Some(r) => sets.into_iter().find(|s| s.id == r.set),
                None => newest_restorable_with_all(&sets, &source.into_iter().collect::<Vec<_>>())
                    .cloned(),
            };
            Ok::<_, String>(set.map(|set| (store, set)))
        }
        .await;
        match found {
            Ok(found) => opened = found,
            Err(error) => return AttemptEnd::error(format!("check: {error}")),
        }
    }
    let scope = CheckScope {
        plan: ctx.plan,
        targets: &targets,
        set: opened.as_ref().map(|(store, set)| (store, set)),
    };
    let result = evaluate::evaluate(check, &scope).await;
    let line = if result.passed {
        format!("check passed: {}: {}", result.name, result.message)
    } else {
        format!("check failed: {}: {}", result.name, result.message)
    };
    ctx.output
        .emit(Event::StepOutput {
            step: ctx.output.step(),
            stream: Stream::Stdout,
            line,
        })
        .await;
    if result.passed {
        AttemptEnd::succeeded()
    } else {
        AttemptEnd::error(format!("check `{}`: {}", result.name, result.message))
    }
}
