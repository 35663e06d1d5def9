//! `verify: {storage, set}` steps: re-hash a stored set against its manifest and record it.

use super::{AttemptEnd, StepContext};
use crate::event::Event;
use crate::storage::verify_step;

pub async fn execute(ctx: &mut StepContext<'_>, storage: &str, set: Option<&str>) -> AttemptEnd {
    // This run's set, when the step names none and the run wrote one to that storage.
    let current = ctx.run.set(storage).and(ctx.run.set_id());
    match verify_step(ctx.plan, storage, set, current.as_ref(), chrono::Utc::now()).await {
        Ok((summary, _record)) => {
            ctx.output
                .emit(Event::SetVerified {
                    step: ctx.output.step(),
                    storage: storage.to_owned(),
                    set: summary.id.to_string(),
                    artifacts: summary.manifest.as_ref().map_or(0, |m| m.artifacts.len()),
                })
                .await;
            AttemptEnd::succeeded()
        }
        Err(error) => AttemptEnd::error(format!("verify `{storage}`: {error}")),
    }
}
