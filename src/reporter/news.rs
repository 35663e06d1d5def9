//! What planrun's own step kinds did, in words: the lines the human reporter and the run
//! log show for the typed events (a set committed, copied, verified, a prune table, …).

use crate::event::{Event, PruneDecision};
use crate::storage::prune::TableRow;

/// The step a piece of news belongs to (none for the engine's own), and its lines. `None`
/// for events that are not news of what a step did.
pub fn lines(event: &Event) -> Option<(Option<&str>, Vec<String>)> {
    let (step, lines) = match event {
        Event::ArtifactWritten {
            step,
            name,
            bytes,
            sha256,
            facts,
            ..
        } => (
            Some(step),
            vec![format!(
                "{name}: {bytes} bytes, sha256 {sha256}, facts {facts}"
            )],
        ),
        Event::StepWarning { step, message } => (Some(step), vec![format!("warning: {message}")]),
        Event::SetCommitted {
            step,
            set,
            missing,
            artifacts,
            bytes,
            ..
        } => {
            let what = if missing.is_empty() {
                "complete".to_owned()
            } else {
                format!("partial (without {})", missing.join(", "))
            };
            (
                step.as_ref(),
                vec![format!(
                    "set {set} is {what}: manifest written with {artifacts} artifacts ({bytes} bytes)"
                )],
            )
        }
        Event::SetCopied {
            step,
            to,
            set,
            artifacts_sent,
            bytes,
            already_stored,
            already_complete,
            aborted_uploads,
            ..
        } => {
            let mut lines: Vec<String> = aborted_uploads
                .iter()
                .map(|key| format!("aborted an abandoned upload of {key}"))
                .collect();
            lines.push(if *already_complete {
                format!("set {set} was already complete in `{to}`")
            } else {
                format!(
                    "copied set {set} to `{to}`: {artifacts_sent} artifacts sent ({bytes} bytes), {already_stored} already stored, verified"
                )
            });
            (Some(step), lines)
        }
        Event::PruneDecided {
            step,
            storage,
            location,
            sets,
            ..
        } => {
            let mut lines = vec![format!("storage {storage} at {location}")];
            lines.extend(table(sets).lines().map(str::to_owned));
            (Some(step), lines)
        }
        Event::SetRemoved { step, set, .. } => (Some(step), vec![format!("removed {set}")]),
        Event::SetVerified {
            step,
            storage,
            set,
            artifacts,
        } => (
            Some(step),
            vec![format!(
                "set {set} on `{storage}` verified: {artifacts} artifacts match their sha256"
            )],
        ),
        Event::RestoreFinished {
            step,
            source,
            set,
            target,
            facts,
            kept,
        } => (
            Some(step),
            vec![match kept {
                Some(kept) => format!(
                    "restored `{source}` from set {set} into {target}; facts {facts}; the replaced state is kept as {kept}"
                ),
                None => format!("restored `{source}` from set {set} into {target}; facts {facts}"),
            }],
        ),
        Event::Notified {
            step,
            status,
            message,
        } => {
            let line = match status {
                Some(code) => format!("notified the webhook (HTTP {code})"),
                None if message.is_empty() => "no webhook set: nothing sent".to_owned(),
                None => message.clone(),
            };
            (Some(step), vec![line])
        }
        _ => return None,
    };
    Some((step.map(String::as_str), lines))
}

/// The prune decision table, the same as `planrun prune` prints.
fn table(sets: &[PruneDecision]) -> String {
    let rows: Vec<TableRow<'_>> = sets
        .iter()
        .map(|row| TableRow {
            set: &row.set,
            status: row.status,
            keep: row.keep,
            reasons: row.reasons.clone(),
        })
        .collect();
    crate::storage::prune::table(&rows)
}
