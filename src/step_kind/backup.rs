//! `backup: SOURCE` steps: back the source up into this run's set. The last backup step to
//! succeed writes the manifest that makes the set a backup.

use super::{AttemptEnd, Settled, StepContext, bounded};
use crate::event::Outcome;
use crate::process::{LineSink, Stream};
use crate::source::Stop;

pub async fn execute(ctx: &mut StepContext<'_>, source: &str) -> AttemptEnd {
    let plan = ctx.plan;
    let writer = match ctx.run.backup_writer(plan) {
        Ok(writer) => writer,
        Err(error) => return AttemptEnd::error(format!("backup `{source}`: {error}")),
    };
    // Dropping the backup future (timeout, cancel) sets the stop flag and kills its tools.
    let work = async {
        match writer.back_up_source(plan, source, Stop::new()).await {
            Ok(backup) => Ok(backup),
            Err(error) => Err(AttemptEnd::error(format!("backup `{source}`: {error}"))),
        }
    };
    let mut produced = None;
    let end = bounded(ctx, &format!("backup `{source}`"), async {
        match work.await {
            Ok(backup) => {
                produced = Some(backup);
                AttemptEnd::succeeded()
            }
            Err(end) => end,
        }
    })
    .await;
    let mut end = end;
    if let Some(backup) = produced {
        for artifact in &backup.artifacts {
            let facts = serde_json::to_string(&artifact.facts).unwrap_or_default();
            ctx.output
                .line(
                    Stream::Stdout,
                    format!(
                        "{}: {} bytes, sha256 {}, facts {facts}",
                        artifact.name, artifact.size, artifact.sha256
                    ),
                )
                .await;
        }
        for warning in &backup.warnings {
            ctx.output
                .line(Stream::Stderr, format!("warning: {warning}"))
                .await;
        }
        end.warned = !backup.warnings.is_empty();
    }
    // Only the step's final outcome counts towards committing the set.
    let last_attempt = end.outcome == Outcome::Succeeded
        || ctx.attempt > ctx.step.retries
        || end.outcome == Outcome::Cancelled;
    if last_attempt {
        match ctx
            .run
            .backup_settled(source, end.outcome == Outcome::Succeeded)
        {
            Ok(Settled::Finalized(manifest)) => {
                ctx.output
                    .line(
                        Stream::Stdout,
                        format!(
                            "set {} is complete: manifest written with {} artifacts ({} bytes)",
                            manifest.set_id,
                            manifest.artifacts.len(),
                            manifest.total_size()
                        ),
                    )
                    .await;
            }
            Ok(Settled::Pending | Settled::Failed) => {}
            Err(error) => {
                return AttemptEnd::error(format!(
                    "backup `{source}`: cannot write the manifest: {error}"
                ));
            }
        }
    }
    end
}
