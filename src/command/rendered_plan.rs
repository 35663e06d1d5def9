//! Loading and rendering a plan for the commands that read backup sets, choosing its
//! storages by name, and the async runtimes the commands run on.

use std::path::Path;

use crate::cli::VarOverride;
use crate::exec_plan::ExecPlan;
use crate::exit_code;
use crate::pipeline::{self, RenderOptions};
use crate::plan::Storage;
use crate::storage::Store;

/// Loads and renders `path`; on failure prints the diagnostics and returns the exit code.
/// Commands that open storage resolve secrets: S3 credentials are usually secrets, and a
/// masked one would only fail later with a signature error nobody can act on.
pub fn render(path: &Path, vars: &[VarOverride], resolve_secrets: bool) -> Result<ExecPlan, i32> {
    let loaded = pipeline::load(path).map_err(|failure| {
        eprint!("{}", failure.render());
        exit_code::INVALID
    })?;
    let vars = vars
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    pipeline::render(&loaded, &RenderOptions::for_now(vars, resolve_secrets)).map_err(|failure| {
        eprint!("{}", failure.render());
        exit_code::INVALID
    })
}

fn unknown(kind: &str, name: &str, known: Vec<&str>) -> i32 {
    let hint = crate::diagnostic::did_you_mean(name, known.iter().copied())
        .map(|c| format!(", did you mean `{c}`?"))
        .unwrap_or_else(|| format!(" (the plan has: {})", known.join(", ")));
    eprintln!("planrun: unknown {kind} `{name}`{hint}");
    exit_code::INVALID
}

/// The storages a command reads: the one named, or all of them.
pub fn storages<'a>(
    plan: &'a ExecPlan,
    only: Option<&str>,
) -> Result<Vec<(&'a str, &'a Storage)>, i32> {
    let all: Vec<(&str, &Storage)> = plan.storage.iter().map(|(n, s)| (n.as_str(), s)).collect();
    match only {
        None if all.is_empty() => {
            eprintln!("planrun: the plan has no storage");
            Err(exit_code::INVALID)
        }
        None => Ok(all),
        Some(name) => match all.iter().find(|(n, _)| *n == name) {
            Some(found) => Ok(vec![*found]),
            None => Err(unknown(
                "storage",
                name,
                all.iter().map(|(n, _)| *n).collect(),
            )),
        },
    }
}

/// The storage a restore reads, by the rule every command and step kind shares
/// ([`crate::storage::choice::read_storage`]); failures are printed and become exit codes.
pub fn restore_storage(plan: &ExecPlan, only: Option<&str>) -> Result<(String, Store), i32> {
    use crate::storage::choice::{ChoiceError, open_read_storage};
    open_read_storage(plan, only).map_err(|error| {
        eprintln!("planrun: {error}");
        match error {
            ChoiceError::Open(_) => exit_code::FAILURE,
            _ => exit_code::INVALID,
        }
    })
}

/// Looks up a source by name.
pub fn source<'a>(plan: &'a ExecPlan, name: &str) -> Result<&'a crate::plan::Source, i32> {
    plan.sources
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, s)| s)
        .ok_or_else(|| {
            unknown(
                "source",
                name,
                plan.sources.iter().map(|(n, _)| n.as_str()).collect(),
            )
        })
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts")
}

/// Two workers, for commands that run steps or storages side by side (`execute`, `prune`);
/// a runtime that cannot start is reported, and its exit code returned.
pub fn worker_runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("planrun: cannot start the async runtime: {error}");
            exit_code::FAILURE
        })
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

/// `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

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
