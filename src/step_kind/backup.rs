//! `backup: SOURCE` steps: back the source up into this run's set. The last backup step to
//! succeed writes the manifest that makes the set a backup.

use super::{AttemptEnd, Settled, StepContext};
use crate::event::Outcome;
use crate::process::{LineSink, Stream};
use crate::source::Stop;

/// How long past the kill grace a stopped backup is waited for: the watchdog's SIGKILL and
/// the thread's unwinding after it.
const STOP_MARGIN: std::time::Duration = std::time::Duration::from_millis(500);

pub async fn execute(ctx: &mut StepContext<'_>, source: &str) -> AttemptEnd {
    let plan = ctx.plan;
    let writer = match ctx.run.backup_writer(plan) {
        Ok(writer) => writer,
        Err(error) => return AttemptEnd::error(format!("backup `{source}`: {error}")),
    };
    let stop = Stop::with_grace(plan.kill_grace);
    let work = writer.back_up_source(plan, source, stop.clone());
    tokio::pin!(work);
    let limit = ctx.timeout.unwrap_or(std::time::Duration::MAX);
    let stopped = tokio::select! {
        result = tokio::time::timeout(limit, &mut work) => match result {
            Ok(result) => Ok(result),
            Err(_) => Err(AttemptEnd {
                outcome: Outcome::TimedOut,
                ..AttemptEnd::error(format!(
                    "backup `{source}` timed out after {}",
                    crate::duration::Duration(limit)
                ))
            }),
        },
        _ = ctx.cancel.cancelled() => Err(AttemptEnd {
            outcome: Outcome::Cancelled,
            ..AttemptEnd::error(format!("backup `{source}` interrupted"))
        }),
    };
    let (end, produced) = match stopped {
        Ok(Ok(backup)) => (AttemptEnd::succeeded(), Some(backup)),
        Ok(Err(error)) => (
            AttemptEnd::error(format!("backup `{source}`: {error}")),
            None,
        ),
        Err(end) => {
            // Tools get SIGTERM, the plan's kill_grace, then SIGKILL; the attempt ends once
            // the backup has, so a retry never writes beside a backup that is still going.
            // Work that cannot see the flag (one long SQLite call) is left after the grace.
            stop.stop();
            let wait = plan.kill_grace + STOP_MARGIN;
            let _ = tokio::time::timeout(wait, &mut work).await;
            (end, None)
        }
    };
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
        match ctx.run.backup_settled(
            source,
            end.outcome == Outcome::Succeeded,
            ctx.step.on_failure,
        ) {
            Ok(Settled::Finalized(manifest)) => {
                ctx.output
                    .line(Stream::Stdout, committed_line(&manifest))
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

/// What a backup step says when it commits the run's set.
pub fn committed_line(manifest: &crate::storage::Manifest) -> String {
    let what = if manifest.is_partial() {
        format!("partial (without {})", manifest.missing_sources.join(", "))
    } else {
        "complete".to_owned()
    };
    format!(
        "set {} is {what}: manifest written with {} artifacts ({} bytes)",
        manifest.set_id,
        manifest.artifacts.len(),
        manifest.total_size()
    )
}
