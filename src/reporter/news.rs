//! What planrun's own step kinds did, in words: the lines the human reporter and the run
//! log show for the typed events (a set committed, copied, verified, a prune table, …).
//! [`lines`] is the whole account (the log, `-v`); [`brief`] is what a person reads by
//! default: no hashes and no raw facts.

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
                "{name}: {}, sha256 {sha256}, facts {facts}",
                count(*bytes, "byte")
            )],
        ),
        Event::StepWarning { step, message } => (Some(step), vec![format!("warning: {message}")]),
        // The set is committed by the engine when the run's backups settled, not by the
        // step that happened to finish last.
        Event::SetCommitted {
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
                None,
                vec![format!(
                    "set {set} is {what}: manifest written with {} ({})",
                    count(*artifacts as u64, "artifact"),
                    count(*bytes, "byte")
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
                    "copied set {set} to `{to}`: {} sent ({}), {already_stored} already stored, verified",
                    count(*artifacts_sent as u64, "artifact"),
                    count(*bytes, "byte")
                )
            });
            (Some(step), lines)
        }
        Event::PruneDecided {
            step,
            storage,
            location,
            sets,
            checked,
            ..
        } => {
            let mut lines = vec![format!("storage {storage} at {location}")];
            lines.extend(table(sets).lines().map(str::to_owned));
            lines.extend(checked.iter().cloned());
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
                "set {set} on `{storage}` verified: {} {}",
                count(*artifacts as u64, "artifact"),
                if *artifacts == 1 {
                    "matches its sha256"
                } else {
                    "match their sha256"
                }
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

/// What a person reads by default: the same news without hashes and raw facts. `None` for events that are not news, or are detail only.
pub fn brief(event: &Event) -> Option<(Option<&str>, Vec<String>)> {
    match event {
        Event::ArtifactWritten { .. } => None,
        Event::RestoreFinished {
            step,
            source,
            set,
            target,
            ..
        } => Some((
            Some(step),
            vec![format!("restored `{source}` from set {set} into {target}")],
        )),
        other => lines(other),
    }
}

/// `1 artifact`, `3 artifacts`.
pub fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
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
