//! `planrun verify PLAN [SET | latest | --all]`: re-hash stored sets against their manifests.

use chrono::Utc;
use serde_json::json;

use super::rendered_plan::{self, human_size};
use crate::cli::VerifyArgs;
use crate::exit_code;
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

pub fn run(args: &VerifyArgs) -> i32 {
    let plan = match rendered_plan::render(&args.plan, &args.vars, true) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    let storages = match rendered_plan::storages(&plan, args.storage.as_deref()) {
        Ok(storages) => storages,
        Err(code) => return code,
    };
    let runtime = rendered_plan::runtime();
    let mut code = exit_code::SUCCESS;
    let mut results = Vec::new();
    for (name, storage) in storages {
        let store = match Store::open(name, storage) {
            Ok(store) => store,
            Err(error) => {
                eprintln!("planrun: {error}");
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
                let record = verify_set(&store, &plan.name, &set, Utc::now()).await?;
                if !record.ok() {
                    code = exit_code::FAILURE;
                }
                if args.json {
                    results.push(json!({
                        "storage": name,
                        "set": set.id.as_str(),
                        "status": if record.ok() { "verified" } else { "damaged" },
                        "problems": record.problems,
                    }));
                } else if record.ok() {
                    let (count, size) = set
                        .manifest
                        .as_ref()
                        .map_or((0, 0), |m| (m.artifacts.len(), m.total_size()));
                    println!(
                        "{name} {}: verified ({count} artifacts, {})",
                        set.id,
                        human_size(size)
                    );
                } else {
                    println!("{name} {}: damaged", set.id);
                    for problem in &record.problems {
                        println!("  {problem}");
                    }
                }
            }
            Ok(())
        });
        if let Err(error) = outcome {
            eprintln!("planrun: storage `{name}`: {error}");
            code = exit_code::FAILURE;
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    }
    code
}
