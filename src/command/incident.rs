//! `planrun incident note ID "…"` and `planrun incident close ID`: document an incident
//! (lessons learned) and end it, which lifts the freeze on the plan's backups.

use chrono::Utc;

use super::{CommandError, CommandResult, Console};
use crate::cli::IncidentCommand;
use crate::exit_code;
use crate::recover::incident::{Incident, IncidentStatus, Note};
use crate::state_dir::StateDir;
use crate::step_kind::manual::os_user;

pub fn run(command: &IncidentCommand, console: &mut Console) -> CommandResult {
    let (id, state_dir) = match command {
        IncidentCommand::Note(args) => (&args.id, &args.state),
        IncidentCommand::Close(args) => (&args.id, &args.state),
    };
    let state = StateDir::locate(state_dir.state_dir.as_deref()).map(StateDir::existing)?;
    let mut incident =
        Incident::load(state.root(), id).map_err(|e| CommandError::Recover(e.to_string()))?;
    match command {
        IncidentCommand::Note(args) => {
            let text = args.text.trim();
            if text.is_empty() {
                return Err(CommandError::Recover("the note is empty".into()));
            }
            incident.notes.push(Note {
                at: Utc::now(),
                by: os_user(),
                text: text.to_owned(),
            });
            save(&incident, &state)?;
            console.line(format_args!(
                "noted in incident {} ({} note(s)); report: {}",
                incident.id,
                incident.notes.len(),
                incident.dir(&state).join("report.md").display()
            ));
        }
        IncidentCommand::Close(_) => {
            if incident.status == IncidentStatus::Closed {
                console.line(format_args!("incident {} is already closed", incident.id));
                return Ok(exit_code::SUCCESS);
            }
            incident.status = IncidentStatus::Closed;
            incident.closed_at = Some(Utc::now());
            save(&incident, &state)?;
            console.line(format_args!(
                "incident {} closed; backups of `{}` run again",
                incident.id, incident.plan.name
            ));
            if incident.notes.is_empty() {
                console.notice(format_args!(
                    "incident {} has no lessons learned recorded: add them with `planrun incident note {} \"…\"`",
                    incident.id, incident.id
                ));
            }
        }
    }
    Ok(exit_code::SUCCESS)
}

fn save(incident: &Incident, state: &StateDir) -> Result<(), CommandError> {
    incident
        .save(state)
        .map_err(|e| CommandError::Recover(e.to_string()))
}
