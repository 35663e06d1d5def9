//! Loading and rendering a plan for the commands that read backup sets, choosing its
//! storages by name, and the async runtimes the commands run on.

use std::sync::Arc;

use super::{CommandError, Console};
use crate::cli::PlanInput;
use crate::exec_plan::ExecPlan;
use crate::pipeline::{self, RenderOptions};
use crate::plan::Storage;
use crate::storage::Store;

/// Loads and renders the plan, and from then on masks the console with the plan's redactor.
/// Commands that open storage resolve secrets: S3 credentials are usually secrets, and a
/// masked one would only fail later with a signature error nobody can act on.
pub fn render(
    input: &PlanInput,
    resolve_secrets: bool,
    console: &mut Console,
) -> Result<ExecPlan, CommandError> {
    let loaded = load(&input.plan, console)?;
    render_loaded(&loaded, input, resolve_secrets, console)
}

/// Loads and validates the plan, and warns on stderr about old spellings it still accepts
/// (advice is `validate`'s to give; a deprecation is worth hearing on every run, but not
/// under `--quiet`, which promises silence on success).
pub fn load(
    plan: &std::path::Path,
    console: &mut Console,
) -> Result<pipeline::Loaded, CommandError> {
    let loaded = pipeline::load(plan)?;
    if !console.quiet() {
        let colour =
            crate::diagnostic::colour(std::io::IsTerminal::is_terminal(&std::io::stderr()));
        for d in loaded
            .warnings
            .iter()
            .filter(|d| d.layer == crate::diagnostic::Layer::Deprecation)
        {
            console.status(&if colour {
                d.render_styled(&loaded.path)
            } else {
                d.render(&loaded.path)
            });
        }
    }
    Ok(loaded)
}

/// [`render`] for a plan already loaded, for commands that also read the plan as written.
pub fn render_loaded(
    loaded: &pipeline::Loaded,
    input: &PlanInput,
    resolve_secrets: bool,
    console: &mut Console,
) -> Result<ExecPlan, CommandError> {
    let vars = input
        .vars
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    let plan = pipeline::render(loaded, &RenderOptions::for_now(vars, resolve_secrets))?;
    console.mask_with(Arc::clone(&plan.redactor));
    Ok(plan)
}

/// The storages a command reads: the one named, or all of them.
pub fn storages<'a>(
    plan: &'a ExecPlan,
    only: Option<&str>,
) -> Result<Vec<(&'a str, &'a Storage)>, CommandError> {
    let all: Vec<(&str, &Storage)> = plan.storage.iter().map(|(n, s)| (n.as_str(), s)).collect();
    match only {
        None if all.is_empty() => Err(CommandError::NoStorage),
        None => Ok(all),
        Some(name) => match all.iter().find(|(n, _)| *n == name) {
            Some(found) => Ok(vec![*found]),
            None => Err(CommandError::unknown(
                "storage",
                name,
                all.iter().map(|(n, _)| *n),
            )),
        },
    }
}

/// The storage a restore reads, by the rule every command and step kind shares
/// ([`crate::storage::choice::read_storage`]).
pub fn restore_storage(
    plan: &ExecPlan,
    only: Option<&str>,
) -> Result<(String, Store), CommandError> {
    Ok(crate::storage::choice::open_read_storage(plan, only)?)
}

/// Looks up a source by name.
pub fn source<'a>(plan: &'a ExecPlan, name: &str) -> Result<&'a crate::plan::Source, CommandError> {
    plan.sources
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .ok_or_else(|| {
            CommandError::unknown("source", name, plan.sources.iter().map(|(n, _)| n.as_str()))
        })
}

/// One thread, for commands that read storages one after another.
pub fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)
}

/// Two workers, for commands that run steps or storages side by side (`execute`, `prune`).
pub fn worker_runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)
}

/// `3h12m`, `2d4h`, `45s`: ages as people read them in a listing.
pub fn human_age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

pub use crate::reporter::human_size;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_well() {
        assert_eq!(human_age(42), "42s");
        assert_eq!(human_age(3 * 3600 + 12 * 60 + 5), "3h12m");
        assert_eq!(human_age(2 * 86400 + 4 * 3600), "2d04h");
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }
}
