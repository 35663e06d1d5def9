//! `restore:` steps: restore one source from a set after checking every artifact's sha256.

use super::{AttemptEnd, StepContext, bounded};
use crate::process::{LineSink, Stream};
use crate::source::RestoreTarget;
use crate::storage::restore_step;

pub async fn execute(
    ctx: &mut StepContext<'_>,
    source: &str,
    from: Option<&str>,
    storage: Option<&str>,
    target: RestoreTarget,
) -> AttemptEnd {
    let plan = ctx.plan;
    let mut line = None;
    let end = bounded(ctx, &format!("restore `{source}`"), async {
        match restore_step(plan, source, from, storage, target).await {
            Ok((set, outcome)) => {
                let facts = serde_json::to_string(&outcome.facts).unwrap_or_default();
                line = Some(format!(
                    "restored `{source}` from set {} into {}; facts {facts}",
                    set.id, outcome.target
                ));
                AttemptEnd::succeeded()
            }
            Err(error) => AttemptEnd::error(format!("restore `{source}`: {error}")),
        }
    })
    .await;
    if let Some(line) = line {
        ctx.output.line(Stream::Stdout, line).await;
    }
    end
}
