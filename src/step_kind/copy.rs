//! `copy:` steps: replicate a backup set from a local storage to S3, verified, manifest last.

use std::path::PathBuf;

use super::{AttemptEnd, StepContext};
use crate::copy::copy_local_set;
use crate::event::Outcome;
use crate::plan::Storage;
use crate::process::{LineSink, Stream};
use crate::prune::Target;
use crate::retention::SetStatus;
use crate::s3::Tuning;
use crate::s3_store::S3Store;

pub async fn execute(
    ctx: &mut StepContext<'_>,
    to: &str,
    from: Option<&str>,
    set: Option<&str>,
) -> AttemptEnd {
    let plan = ctx.plan;
    let storage = |name: &str| plan.storage.iter().find(|(n, _)| n == name).map(|(_, s)| s);
    let destination = match storage(to) {
        Some(Storage::S3(s3)) => s3,
        Some(other) => {
            return AttemptEnd::error(format!(
                "copy to `{to}`: {} storage cannot receive copies yet; copy to s3 storage",
                other.kind_name()
            ));
        }
        None => return AttemptEnd::error(format!("copy to `{to}`: the plan has no such storage")),
    };
    // By default the copy reads the storage this run's backups were written to.
    let from_name = match from.or(plan.backup_storage.as_deref()) {
        Some(name) => name.to_owned(),
        None => {
            return AttemptEnd::error(
                "copy: the plan has no local storage to copy from; set `from`",
            );
        }
    };
    let Some(Storage::Local(local)) = storage(&from_name) else {
        return AttemptEnd::error(format!(
            "copy from `{from_name}`: only local storage can be copied from yet"
        ));
    };

    let set_dir: PathBuf = match set {
        None => match ctx.run.set(&from_name) {
            Some(dir) => dir,
            None => {
                return AttemptEnd::error(format!(
                    "copy: this run wrote no backup set to `{from_name}`; name one with `set: latest` or a set id"
                ));
            }
        },
        Some("latest") => {
            let target = Target::Local(PathBuf::from(&local.path));
            let newest = match target.candidates(&plan.name).await {
                Ok(sets) => sets
                    .into_iter()
                    .filter(|s| s.status == SetStatus::Complete)
                    .map(|s| s.id)
                    .max(),
                Err(error) => return AttemptEnd::error(format!("copy: {error}")),
            };
            match newest {
                Some(id) => PathBuf::from(&local.path).join(&plan.name).join(id),
                None => {
                    return AttemptEnd::error(format!(
                        "copy: `{from_name}` holds no complete set of {}",
                        plan.name
                    ));
                }
            }
        }
        Some(id) => PathBuf::from(&local.path).join(&plan.name).join(id),
    };
    let id = set_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();

    let store = match S3Store::open(destination, Tuning::default()) {
        Ok(store) => store,
        Err(error) => return AttemptEnd::error(format!("copy to `{to}`: {error}")),
    };
    ctx.output
        .line(
            Stream::Stdout,
            format!("copying set {id} to {}", store.location(&plan.name)),
        )
        .await;
    let copy = copy_local_set(&set_dir, &plan.name, &id, &store);
    let limit = ctx.timeout.unwrap_or(std::time::Duration::MAX);
    // A cancelled or timed-out copy has committed nothing: the manifest goes last, and the next
    // run resumes from the artifacts already stored.
    let result = tokio::select! {
        result = tokio::time::timeout(limit, copy) => result,
        _ = ctx.cancel.cancelled() => {
            return AttemptEnd { outcome: Outcome::Cancelled, ..AttemptEnd::error("copy interrupted before its manifest was stored") };
        }
    };
    match result {
        Err(_) => AttemptEnd {
            outcome: Outcome::TimedOut,
            ..AttemptEnd::error("copy timed out before its manifest was stored")
        },
        Ok(Err(error)) => AttemptEnd::error(format!("copy to `{to}`: {error}")),
        Ok(Ok(report)) => {
            for key in &report.aborted_uploads {
                ctx.output
                    .line(
                        Stream::Stdout,
                        format!("aborted an abandoned upload of {key}"),
                    )
                    .await;
            }
            for warning in &report.warnings {
                ctx.output
                    .line(Stream::Stderr, format!("warning: {warning}"))
                    .await;
            }
            let line = if report.already_complete {
                format!("set {id} was already complete in `{to}`")
            } else {
                format!(
                    "copied set {id} to `{to}`: {} artifacts sent ({} bytes), {} already stored, verified",
                    report.uploaded.len(),
                    report.bytes_uploaded,
                    report.resumed.len()
                )
            };
            ctx.output.line(Stream::Stdout, line).await;
            AttemptEnd::succeeded()
        }
    }
}
