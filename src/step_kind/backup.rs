//! `backup: SOURCE` steps: back the source up into this run's set. Committing the set (the
//! manifest, once the last backup step has settled) is the engine's set-commit bookkeeping.

use super::{AttemptEnd, StepContext};
use crate::event::Event;

pub async fn execute(ctx: &mut StepContext<'_>, source: &str) -> AttemptEnd {
    let plan = ctx.plan;
    let writer = match ctx.run.backup_writer(plan) {
        Ok(writer) => writer,
        Err(error) => return AttemptEnd::error(format!("backup `{source}`: {error}")),
    };
    // The executor sets `ctx.stop` on a timeout or a signal: tools get SIGTERM, the plan's
    // kill_grace, then SIGKILL, and the executor waits for that before the attempt ends.
    let backup = match writer.back_up_source(plan, source, ctx.stop.clone()).await {
        Ok(backup) => backup,
        Err(error) => return AttemptEnd::error(format!("backup `{source}`: {error}")),
    };
    let step = ctx.output.step();
    for artifact in &backup.artifacts {
        ctx.output
            .emit(Event::ArtifactWritten {
                step: step.clone(),
                source: artifact.source.clone(),
                name: artifact.name.clone(),
                bytes: artifact.size,
                sha256: artifact.sha256.clone(),
                facts: serde_json::to_value(&artifact.facts).unwrap_or_default(),
            })
            .await;
    }
    for warning in &backup.warnings {
        ctx.output
            .emit(Event::StepWarning {
                step: step.clone(),
                message: warning.clone(),
            })
            .await;
    }
    AttemptEnd {
        warned: !backup.warnings.is_empty(),
        ..AttemptEnd::succeeded()
    }
}
