//! `planrun verify PLAN [SET | latest | --all]`: re-hash stored sets against their manifests.

use std::io::IsTerminal;

use chrono::Utc;
use serde_json::json;

use super::rendered_plan::{self, human_size};
use super::{CommandResult, Console};
use crate::cli::VerifyArgs;
use crate::exit_code;
use crate::reporter::LiveBytes;
use crate::storage::{SetStatus, SetSummary, Store, StoreError, newest_with_manifest, verify_set};

/// Which sets of a storage a verify reads: `latest` is the newest set with a manifest.
pub fn select(
    sets: Vec<SetSummary>,
    selector: Option<&str>,
    all: bool,
    plan: &str,
    location: &str,
) -> Result<Vec<SetSummary>, StoreError> {
    if all {
        return Ok(sets
            .into_iter()
            .filter(|s| s.status != SetStatus::Incomplete)
            .collect());
    }
    match selector {
        None | Some("latest") => newest_with_manifest(&sets)
            .cloned()
            .map(|s| vec![s])
            .ok_or_else(|| StoreError::NoCompleteSet {
                plan: plan.to_owned(),
                location: location.to_owned(),
            }),
        Some(id) => match sets.into_iter().find(|s| s.id.as_str() == id) {
            Some(set) if set.status == SetStatus::Incomplete => {
                Err(StoreError::Incomplete { set: id.to_owned() })
            }
            Some(set) => Ok(vec![set]),
            None => Err(StoreError::NoSuchSet {
                plan: plan.to_owned(),
                set: id.to_owned(),
                location: location.to_owned(),
            }),
        },
    }
}

pub fn run(args: &VerifyArgs, console: &mut Console) -> CommandResult {
    let plan = rendered_plan::render(&args.input, true, console)?;
    let storages = rendered_plan::storages(&plan, args.storage.storage.as_deref())?;
    let runtime = rendered_plan::runtime()?;
    let mut code = exit_code::SUCCESS;
    let mut results = Vec::new();
    for (name, storage) in storages {
        let store = match Store::open(name, storage) {
            Ok(store) => store,
            Err(error) => {
                console.notice(error);
                code = exit_code::FAILURE;
                continue;
            }
        };
        let outcome: Result<(), StoreError> = runtime.block_on(async {
            let sets = store.list_sets(&plan.name).await?;
            let chosen = select(
                sets,
                args.set.as_deref(),
                args.all,
                &plan.name,
                &store.location(),
            )?;
            for set in chosen {
                // Bytes re-read, the rate and the time left, for a person at a terminal.
                let live =
                    (std::io::stderr().is_terminal() && !args.output.json && !console.quiet())
                        .then(|| {
                            let size = set.manifest.as_ref().map(|m| m.total_size());
                            LiveBytes::start(&format!("{name} {}", set.id), size)
                        });
                let record = verify_set(&store, &plan.name, &set, Utc::now()).await?;
                drop(live);
                if !record.ok() {
                    code = exit_code::FAILURE;
                }
                if args.output.json {
                    results.push(json!({
                        "storage": name,
                        "set": set.id.as_str(),
                        "status": if record.ok() { "verified" } else { "damaged" },
                        "problems": record.problems,
                    }));
                } else if record.ok() && console.quiet() {
                    // `--quiet`: only damage is news.
                } else if record.ok() {
                    let (count, size) = set
                        .manifest
                        .as_ref()
                        .map_or((0, 0), |m| (m.artifacts.len(), m.total_size()));
                    console.line(format_args!(
                        "{name} {}: verified ({count} artifacts, {})",
                        set.id,
                        human_size(size)
                    ));
                } else {
                    console.line(format_args!("{name} {}: damaged", set.id));
                    for problem in &record.problems {
                        console.line(format_args!("  {problem}"));
                    }
                }
            }
            Ok(())
        });
        if let Err(error) = outcome {
            console.notice(format_args!("storage `{name}`: {error}"));
            code = exit_code::FAILURE;
        }
    }
    if args.output.json {
        console.line(serde_json::to_string_pretty(&results).unwrap_or_default());
    }
    Ok(code)
}
