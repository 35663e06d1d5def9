//! `verify: {storage, set}` steps: re-hash a stored set against its manifest and record it.

use super::{AttemptEnd, StepContext, bounded};
use crate::process::{LineSink, Stream};
use crate::storage::verify_step;

pub async fn execute(ctx: &mut StepContext<'_>, storage: &str, set: Option<&str>) -> AttemptEnd {
    let plan = ctx.plan;
    // This run's set, when the step names none and the run wrote one to that storage.
    let current = ctx.run.set(storage).and(ctx.run.set_id());
    let mut line = None;
    let end = bounded(ctx, "verify", async {
        match verify_step(plan, storage, set, current.as_ref(), chrono::Utc::now()).await {
            Ok((summary, _record)) => {
                let count = summary.manifest.as_ref().map_or(0, |m| m.artifacts.len());
                line = Some(format!(
                    "set {} on `{storage}` verified: {count} artifacts match their sha256",
                    summary.id
                ));
                AttemptEnd::succeeded()
            }
            Err(error) => AttemptEnd::error(format!("verify `{storage}`: {error}")),
        }
    })
    .await;
    if let Some(line) = line {
        ctx.output.line(Stream::Stdout, line).await;
    }
    end
}
