//! `planrun runbook --level N [PLAN]`: prints a recovery level's runbook as Markdown or HTML.
//! It reads the plan and the state directory's incident records, nothing else: no storage,
//! database, network or secret, so it works on a laptop while the servers are down.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{CommandResult, Console};
use crate::cli::{RunbookArgs, RunbookFormat};
use crate::exit_code;
use crate::runbook::{self, RunbookError};
use crate::state_dir::StateDir;

pub fn run(args: &RunbookArgs, console: &mut Console) -> CommandResult {
    let path = super::locate_plan(args.plan.as_deref(), console)?;
    let loaded = crate::pipeline::load(&path)?;
    let file = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    // Without a state directory there is simply no rehearsal to show.
    let rehearsals = StateDir::locate(args.state.state_dir.as_deref())
        .map(|root| crate::recovery_health::rehearsals(&root, &loaded.plan.name))
        .unwrap_or_default();
    let book = runbook::build(&runbook::Input {
        plan: &loaded.plan,
        file: &file,
        digest: &loaded.digest,
        level: args.level,
        rehearsals: &rehearsals,
    })?;
    let text = match args.format {
        RunbookFormat::Markdown => runbook::markdown(&book),
        RunbookFormat::Html => runbook::html(&book),
    };
    match &args.output {
        None => console.out(&text),
        Some(path) => {
            write_whole(path, &text).map_err(|error| RunbookError::Write {
                path: path.clone(),
                error,
            })?;
            console.notice(format_args!("wrote the runbook to {}", path.display()));
        }
    }
    Ok(exit_code::SUCCESS)
}

/// Writes `text` to a temporary file beside `path` and renames it into place, so a reader
/// (or a printer) never sees half a runbook.
fn write_whole(path: &Path, text: &str) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut file = tempfile::NamedTempFile::new_in(folder)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    // A runbook holds contacts, not secrets; it is meant to be shared and printed.
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
