//! `planrun history`: past runs from the state directory, newest first.

use super::{CommandResult, Console};
use crate::cli::HistoryArgs;
use crate::event::Outcome;
use crate::exit_code;
use crate::run_record;
use crate::state_dir::StateDir;

/// Run records hold what the run log's redactor already masked; the console has no plan.
pub fn history(args: &HistoryArgs, console: &mut Console) -> CommandResult {
    let root = StateDir::locate(args.state.state_dir.as_deref())?;
    let state = StateDir::existing(root);
    if args.incidents {
        return incidents(args, &state, console);
    }
    if args.drills {
        return super::drill::history(args, &state, console);
    }
    let (records, errors) = run_record::list(&state);
    for error in &errors {
        console.notice(format_args!("warning: {error}"));
    }
    let mut records: Vec<_> = records
        .into_iter()
        .filter(|r| args.plan.as_ref().is_none_or(|plan| &r.plan == plan))
        .collect();
    for record in &mut records {
        record.status = record.effective_status(&state);
    }
    let text = if args.json {
        let mut text = serde_json::to_string_pretty(&records).unwrap_or_default();
        text.push('\n');
        text
    } else if records.is_empty() {
        console.notice(format_args!(
            "no runs recorded in {}",
            state.root().display()
        ));
        String::new()
    } else {
        let mut text = String::from(
            "RUN ID                              PLAN          STATUS       STARTED               DURATION  STEPS\n",
        );
        for r in &records {
            let ok = r
                .steps
                .iter()
                .filter(|s| s.outcome == Some(Outcome::Succeeded))
                .count();
            let duration = r
                .duration_ms
                .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".into());
            text.push_str(&format!(
                "{:<35} {:<13} {:<12} {}  {:>8}  {ok}/{} succeeded\n",
                r.run_id,
                r.plan,
                r.status.as_str(),
                r.started_at.format("%Y-%m-%d %H:%M:%SZ"),
                duration,
                r.steps.len()
            ));
        }
        text
    };
    console.out(&text);
    Ok(exit_code::SUCCESS)
}

/// `history --incidents`: incidents and rehearsals, newest first, with the objectives met
/// or missed.
fn incidents(args: &HistoryArgs, state: &StateDir, console: &mut Console) -> CommandResult {
    use crate::recover::incident::{self, IncidentStatus, Progress};
    let (found, errors) = incident::list(state.root());
    for error in &errors {
        console.notice(format_args!("warning: {error}"));
    }
    let found: Vec<_> = found
        .into_iter()
        .filter(|i| args.plan.as_ref().is_none_or(|plan| &i.plan.name == plan))
        .collect();
    if args.json {
        let mut text = serde_json::to_string_pretty(&found).unwrap_or_default();
        text.push('\n');
        console.out(&text);
        return Ok(exit_code::SUCCESS);
    }
    if found.is_empty() {
        console.notice(format_args!(
            "no incidents recorded in {}",
            state.root().display()
        ));
        return Ok(exit_code::SUCCESS);
    }
    let mut text = format!(
        "{:<26} {:<13} {:<5} {:<9} {:<20} {:<20} {:<32} {}\n",
        "INCIDENT", "PLAN", "LEVEL", "KIND", "STATUS", "STARTED", "RPO ACHIEVED", "RTO ACHIEVED"
    );
    for i in &found {
        let status = match (i.status, i.progress) {
            (IncidentStatus::Closed, Progress::Completed) => "closed",
            (IncidentStatus::Closed, _) => "closed, unfinished",
            (_, Progress::Running) => "open, running",
            (_, Progress::Aborted) => "open, aborted",
            (_, Progress::Completed) => "open, recovered",
        };
        text.push_str(&format!(
            "{:<26} {:<13} {:<5} {:<9} {:<20} {:<20} {:<32} {}\n",
            i.id,
            i.plan.name,
            i.level,
            if i.rehearsal { "rehearsal" } else { "incident" },
            status,
            i.started_at.format("%Y-%m-%d %H:%M:%SZ"),
            incident::against(i.rpo_achieved_s(), i.rpo_s),
            incident::against(i.rto_achieved_s(), i.rto_s),
        ));
    }
    console.out(&text);
    Ok(exit_code::SUCCESS)
}
