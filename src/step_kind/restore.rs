//! `restore:` steps: restore one source from a set after checking every artifact's sha256.

use super::{AttemptEnd, StepContext};
use crate::event::Event;
use crate::source::RestoreTarget;
use crate::storage::restore_step;

pub async fn execute(
    ctx: &mut StepContext<'_>,
    source: &str,
    set: Option<&str>,
    storage: Option<&str>,
    target: RestoreTarget,
) -> AttemptEnd {
    let drill_target = crate::drill::Target {
        database: target.database.clone(),
        host: None,
        port: None,
        path: target.path.clone(),
    };
    match restore_step(ctx.plan, source, set, storage, target).await {
        Ok((set, outcome)) => {
            if let Ok((storage, _)) = crate::storage::choice::read_storage(ctx.plan, storage) {
                ctx.run.note_restore(
                    source,
                    super::Restored {
                        storage: storage.to_owned(),
                        set: set.id.clone(),
                        target: drill_target,
                    },
                );
            }
            for warning in &outcome.warnings {
                ctx.output
                    .emit(Event::StepWarning {
                        step: ctx.output.step(),
                        message: warning.clone(),
                    })
                    .await;
            }
            let warned = !outcome.warnings.is_empty();
            ctx.output
                .emit(Event::RestoreFinished {
                    step: ctx.output.step(),
                    source: source.to_owned(),
                    set: set.id.to_string(),
                    target: outcome.target,
                    facts: serde_json::to_value(&outcome.facts).unwrap_or_default(),
                    kept: outcome.kept,
                })
                .await;
            AttemptEnd {
                warned,
                ..AttemptEnd::succeeded()
            }
        }
        Err(error) => AttemptEnd::error(format!("restore `{source}`: {error}")),
    }
}
