//! `planrun snapshots PLAN`: every backup set per storage, newest first, with its status.

use chrono::Utc;
use serde_json::json;

use super::rendered_plan::{self, human_age, human_size};
use super::{CommandResult, Console};
use crate::cli::SnapshotsArgs;
use crate::exit_code;
use crate::storage::{SetSummary, Store};

pub fn run(args: &SnapshotsArgs, console: &mut Console) -> CommandResult {
    let plan = rendered_plan::render(&args.input, true, console)?;
    let storages = rendered_plan::storages(&plan, args.storage.storage.as_deref())?;
    let runtime = rendered_plan::runtime()?;
    let now = Utc::now();
    let mut code = exit_code::SUCCESS;
    let mut json_storages = Vec::new();
    let mut text = String::new();
    for (name, storage) in storages {
        let store = match Store::open(name, storage) {
            Ok(store) => store,
            Err(error) => {
                console.notice(error);
                code = exit_code::FAILURE;
                continue;
            }
        };
        let sets = match runtime.block_on(store.list_sets(&plan.name)) {
            Ok(sets) => sets,
            Err(error) => {
                console.notice(format_args!("storage `{name}`: {error}"));
                code = exit_code::FAILURE;
                continue;
            }
        };
        if args.output.json {
            json_storages.push(json!({
                "name": name,
                "location": store.location(),
                "sets": sets.iter().map(|set| set_json(set, now)).collect::<Vec<_>>(),
            }));
        } else {
            text.push_str(&table(name, &store, &sets, now));
        }
    }
    if args.output.json {
        let out = json!({ "plan": plan.name, "storage": json_storages });
        console.line(serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        console.out(&text);
    }
    Ok(code)
}

fn set_json(set: &SetSummary, now: chrono::DateTime<Utc>) -> serde_json::Value {
    let started = set
        .manifest
        .as_ref()
        .map_or_else(|| set.id.started_at(), |m| m.started_at);
    json!({
        "id": set.id.as_str(),
        "status": set.status,
        "started_at": started,
        "finished_at": set.manifest.as_ref().map(|m| m.finished_at),
        "age_seconds": (now - started).num_seconds(),
        "size": set.manifest.as_ref().map_or(set.stored_bytes, |m| m.total_size()),
        "verified_at": set.verify.as_ref().map(|v| v.verified_at),
        "artifacts": set.manifest.as_ref().map(|m| {
            m.artifacts
                .iter()
                .map(|a| json!({"name": a.name, "source": a.source, "kind": a.kind, "size": a.size, "sha256": a.sha256}))
                .collect::<Vec<_>>()
        }).unwrap_or_default(),
        "warnings": set.manifest.as_ref().map(|m| m.warnings.clone()).unwrap_or_default(),
        "sources": set.sources().map(|s| s.into_iter().collect::<Vec<_>>()),
        "missing_sources": set.manifest.as_ref().map(|m| m.missing_sources.clone()).unwrap_or_default(),
        "damage": set.damage,
    })
}

fn table(name: &str, store: &Store, sets: &[SetSummary], now: chrono::DateTime<Utc>) -> String {
    let mut out = format!("{name} ({})\n", store.location());
    if sets.is_empty() {
        out.push_str("  no backup sets\n");
        return out;
    }
    let rows: Vec<[String; 5]> = sets
        .iter()
        .map(|set| {
            let started = set
                .manifest
                .as_ref()
                .map_or_else(|| set.id.started_at(), |m| m.started_at);
            let size = set
                .manifest
                .as_ref()
                .map_or(set.stored_bytes, |m| m.total_size());
            let artifacts = match &set.manifest {
                Some(m) if m.is_partial() => format!(
                    "{} (partial: without {})",
                    artifact_names(m),
                    m.missing_sources.join(", ")
                ),
                Some(m) => artifact_names(m),
                None => "-".to_owned(),
            };
            [
                set.id.to_string(),
                set.status.to_string(),
                human_age((now - started).num_seconds()),
                human_size(size),
                artifacts,
            ]
        })
        .collect();
    let header = ["SET", "STATUS", "AGE", "SIZE", "ARTIFACTS"];
    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: [&str; 5]| {
        format!(
            "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            cells[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    out.push_str(&line(header));
    for row in &rows {
        out.push_str(&line([&row[0], &row[1], &row[2], &row[3], &row[4]]));
    }
    out
}

fn artifact_names(manifest: &crate::storage::Manifest) -> String {
    manifest
        .artifacts
        .iter()
        .map(|a| a.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
