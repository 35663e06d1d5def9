//! `copy:` steps: replicate a backup set into another storage, verified, manifest last.

use super::{AttemptEnd, StepContext};
use crate::event::Event;
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
            None => return AttemptEnd::error(format!("copy: `{text}` is not a set id")),
        },
    };
    // A stopped copy has committed nothing: the manifest goes last, and the next run
    // resumes from the artifacts already stored.
    let report = match copy_between(&source, &destination, &plan.name, &id).await {
        Ok(report) => report,
        Err(error) => return AttemptEnd::error(format!("copy to `{to}`: {error}")),
    };
    let step = ctx.output.step();
    for warning in &report.warnings {
        ctx.output
            .emit(Event::StepWarning {
                step: step.clone(),
                message: warning.clone(),
            })
            .await;
    }
    ctx.output
        .emit(Event::SetCopied {
            step,
            from: from_name,
            to: to.to_owned(),
            location: destination.plan_location(&plan.name),
            set: id.to_string(),
            artifacts_sent: report.uploaded.len(),
            bytes: report.bytes_uploaded,
            already_stored: report.resumed.len(),
            already_complete: report.already_complete,
            aborted_uploads: report.aborted_uploads,
        })
        .await;
    AttemptEnd::succeeded()
}
