//! `copy:` steps: replicate a backup set into another storage, verified, manifest last.

use super::{AttemptEnd, StepContext, bounded};
use crate::process::{LineSink, Stream};
use crate::storage::choice::{open_read_storage, read_storage};
use crate::storage::{SetId, Store, copy_between, newest_restorable_with_all};

pub async fn execute(
    ctx: &mut StepContext<'_>,
    to: &str,
    from: Option<&str>,
    set: Option<&str>,
) -> AttemptEnd {
    let plan = ctx.plan;
    let destination = match read_storage(plan, Some(to)) {
        Ok((_, storage)) => match Store::open(to, storage) {
            Ok(store) => store,
            Err(error) => return AttemptEnd::error(format!("copy to `{to}`: {error}")),
        },
        Err(error) => return AttemptEnd::error(format!("copy to `{to}`: {error}")),
    };
    // By default the copy reads the storage this run's backups were written to: the same
    // rule every command and step uses to pick the storage it reads.
    let (from_name, source) = match open_read_storage(plan, from) {
        Ok(found) => found,
        Err(error) => return AttemptEnd::error(format!("copy: {error}")),
    };
    if from_name == to {
        return AttemptEnd::error(format!(
            "copy: `{to}` is both the source and the destination"
        ));
    }
    let mut lines = Vec::new();
    let end = bounded(ctx, "copy", async {
        let id: SetId = match set {
            None => match ctx.run.set(&from_name).and(ctx.run.set_id()) {
                Some(id) if ctx.run.set_complete() => id,
                _ => {
                    return AttemptEnd::error(format!(
                        "copy: this run committed no backup set to `{from_name}`; name one with `set: latest` or a set id"
                    ));
                }
            },
            Some("latest") => {
                let sets = match source.list_sets(&plan.name).await {
                    Ok(sets) => sets,
                    Err(error) => return AttemptEnd::error(format!("copy: {error}")),
                };
                match newest_restorable_with_all(&sets, &[]) {
                    Some(newest) => newest.id.clone(),
                    None => {
                        return AttemptEnd::error(format!(
                            "copy: `{from_name}` holds no complete set of {}",
                            plan.name
                        ));
                    }
                }
            }
            Some(text) => match SetId::parse(text) {
                Some(id) => id,
                None => {
                    return AttemptEnd::error(format!("copy: `{text}` is not a set id"));
                }
            },
        };
        lines.push((
            Stream::Stdout,
            format!(
                "copying set {id} to {}",
                destination.plan_location(&plan.name)
            ),
        ));
        // A cancelled or timed-out copy has committed nothing: the manifest goes last, and
        // the next run resumes from the artifacts already stored.
        match copy_between(&source, &destination, &plan.name, &id).await {
            Err(error) => AttemptEnd::error(format!("copy to `{to}`: {error}")),
            Ok(report) => {
                for key in &report.aborted_uploads {
                    lines.push((
                        Stream::Stdout,
                        format!("aborted an abandoned upload of {key}"),
                    ));
                }
                for warning in &report.warnings {
                    lines.push((Stream::Stderr, format!("warning: {warning}")));
                }
                lines.push((
                    Stream::Stdout,
                    if report.already_complete {
                        format!("set {id} was already complete in `{to}`")
                    } else {
                        format!(
                            "copied set {id} to `{to}`: {} artifacts sent ({} bytes), {} already stored, verified",
                            report.uploaded.len(),
                            report.bytes_uploaded,
                            report.resumed.len()
                        )
                    },
                ));
                AttemptEnd::succeeded()
            }
        }
    })
    .await;
    for (stream, line) in lines {
        ctx.output.line(stream, line).await;
    }
    end
}
