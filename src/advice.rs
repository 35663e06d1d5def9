//! Advice: warnings that do not make a plan invalid but that a careful operator wants to
//! hear (the 3-2-1 rule, retention, drills, runbook gaps, secrets written in the plan).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::analyzer::{backup_storage, execute_steps};
use crate::diagnostic::{Diagnostic, Layer, key_path};
use crate::loader::LoadedValue;
use crate::plan::{Plan, Step, StepKind, Storage};

/// Keys whose literal value is a credential.
const SECRET_KEYS: [&str; 7] = [
    "password",
    "secret_access_key",
    "session_token",
    "token",
    "secret",
    "api_key",
    "passphrase",
];

pub fn check(plan: &Plan, loaded: &LoadedValue) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let placed = execute_steps(plan);
    if placed
        .iter()
        .any(|p| matches!(p.step.kind(), StepKind::Backup(_)))
    {
        let mut unbacked = Vec::new();
        for (name, coverage) in unbacked_sources(plan) {
            let pointer = format!("/sources/{name}");
            let (message, help) = match coverage {
                Coverage::Never => (
                    format!("source `{name}` is never backed up: no step has `backup: {name}`"),
                    format!(
                        "add `- {{ id: {name}, backup: {name} }}` to `steps`, or remove the source"
                    ),
                ),
                Coverage::OnlyOnFailure => (
                    format!(
                        "source `{name}` is backed up only when a run fails: `backup: {name}` is only in a `rollback` or `on_failure` list"
                    ),
                    format!(
                        "add `- {{ id: {name}, backup: {name} }}` to `steps`, or remove the source"
                    ),
                ),
                Coverage::OnlyWhen(step, when) => (
                    format!(
                        "source `{name}` is backed up only conditionally (when: {when}): a night it renders false has no `{name}` backup"
                    ),
                    format!(
                        "if that is meant, ignore this; else remove `when` from step `{step}` or add an unconditional backup of `{name}`"
                    ),
                ),
                Coverage::NeedsConditional(step, gate, when) => (
                    format!(
                        "source `{name}` is backed up only when step `{gate}` runs (when: {when}): step `{step}` needs it, so a night it renders false the backup is skipped and the run exits 3"
                    ),
                    format!(
                        "if that is meant, ignore this; else remove `{gate}` from the `needs` of step `{step}`, or `when` from step `{gate}`"
                    ),
                ),
            };
            let d = Diagnostic::warning(Layer::Advice, message)
                .path(key_path(&pointer))
                .help(help);
            let location = loaded.locate_key(&pointer);
            unbacked.push(loaded.place(d, location));
        }
        // In the order the sources are written, not alphabetical.
        unbacked.sort_by_key(|d| d.location.as_ref().map(|l| (l.line, l.column)));
        out.append(&mut unbacked);
    }
    let mut warn = |pointer: &str, message: String, help: &str| {
        let d = Diagnostic::warning(Layer::Advice, message)
            .path(key_path(pointer))
            .help(help);
        let location = loaded.locate(pointer);
        out.push(loaded.place(d, location));
    };

    let first_backup = placed
        .iter()
        .find(|p| matches!(p.step.kind(), StepKind::Backup(_)) && p.step.kinds().len() == 1);
    if let Some(backup) = first_backup {
        let mut written: BTreeSet<&str> = BTreeSet::new();
        if let Some(local) = backup_storage(plan) {
            written.insert(local);
        }
        for p in &placed {
            if let (1, StepKind::Copy(copy)) = (p.step.kinds().len(), p.step.kind()) {
                written.insert(copy.to.as_str());
            }
        }
        let kinds: BTreeSet<&str> = written
            .iter()
            .filter_map(|name| plan.storage.get(*name))
            .map(Storage::kind_name)
            .collect();
        let copies = written.len() + 1;
        if copies < 3 {
            warn(
                &backup.pointer,
                format!("3-2-1: {copies} copies of the data counting the source; keep at least 3"),
                "add a `copy: { to: … }` step to a second storage",
            );
        }
        if kinds.len() < 2 {
            warn(
                &backup.pointer,
                "3-2-1: every copy is on the same kind of medium".into(),
                "copy the sets to a different kind of storage, such as S3-compatible object storage",
            );
        }
        if !kinds.contains("s3") {
            warn(
                &backup.pointer,
                "3-2-1: no copy is kept off-site".into(),
                "add an `s3` storage and a `copy: { to: … }` step",
            );
        }
        let has_retention = plan.retention.is_some()
            || written.iter().any(|name| {
                plan.storage
                    .get(*name)
                    .is_some_and(|s| s.retention().is_some())
            });
        if !has_retention {
            warn(
                "",
                "no retention: backup sets pile up until the disk is full".into(),
                "add `retention:`, e.g. `{ keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: unlimited }`",
            );
        }
        if plan.drill.is_none() {
            warn(
                "",
                "no drill: nothing proves these backups restore".into(),
                "add a `drill:` section and run `planrun drill` monthly",
            );
        }
    }

    if let Some(recovery) = &plan.recovery {
        for (level, runbook) in &recovery.levels {
            let pointer = format!("/recovery/levels/{level}");
            if runbook.steps.is_empty() {
                warn(
                    &pointer,
                    format!("recovery level {level} ({}) has no steps", runbook.name),
                    "write down what to do: at 3 a.m. nobody remembers",
                );
            }
            let mut reported = BTreeSet::new();
            for (i, step) in runbook.steps.iter().enumerate() {
                let Some(role) = &step.role else { continue };
                let Some(definition) = plan.roles.get(role) else {
                    continue;
                };
                if definition
                    .contact
                    .as_deref()
                    .is_none_or(|c| c.trim().is_empty())
                    && reported.insert(role.clone())
                {
                    warn(
                        &format!("{pointer}/steps/{i}/role"),
                        format!("role `{role}` in recovery level {level} has no contact"),
                        "add `contact:` (e-mail, phone) to the role: who do you call at 3 a.m.?",
                    );
                }
            }
        }
    }

    let mut inline = Vec::new();
    find_inline_secrets(&loaded.value, String::new(), &mut inline);
    for pointer in inline {
        warn(
            &pointer,
            "a secret is written in the plan; plans live in Git".into(),
            "move it to `secrets:` (from `env` or `file`) and write `{{secrets.NAME}}` here",
        );
    }
    out
}

/// How a source that is not backed up on every run is reached, if at all.
enum Coverage {
    /// No step in `steps` backs it up, nor any other.
    Never,
    /// Only a `rollback` or `on_failure` step does, which runs only when something failed.
    OnlyOnFailure,
    /// Only steps in `steps` guarded by `when` do: the first one's id (or position) and its
    /// condition.
    OnlyWhen(String, String),
    /// Only steps that need, directly or not, a step guarded by `when` do, and they are
    /// skipped whenever it is: the backup step, the guarded step and its condition.
    NeedsConditional(String, String, String),
}

/// The first step `step` needs, directly or through other steps, that has a `when`: its id
/// and condition. When that step is skipped, so is every step that needs it.
fn conditional_need(plan: &Plan, step: &Step) -> Option<(String, String)> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut todo: Vec<&str> = step.needs.iter().map(String::as_str).collect();
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        let Some(needed) = plan.steps.iter().find(|s| s.id.as_deref() == Some(id)) else {
            continue;
        };
        if let Some(when) = &needed.when {
            return Some((id.to_owned(), when.clone()));
        }
        todo.extend(needed.needs.iter().map(String::as_str));
    }
    None
}

/// Sources not backed up by every successful run, usually because a `backup:` step was
/// forgotten or put in the wrong list. Only unguarded steps in `steps` count: a
/// rollback or `on_failure` step runs only when something failed, and a `when` may skip. Only
/// plans that back something up are asked, since a runbook or drill plan may name sources it
/// restores or checks without backing them up.
fn unbacked_sources(plan: &Plan) -> Vec<(&str, Coverage)> {
    let backs = |step: &Step, name: &str| matches!(step.kind(), StepKind::Backup(s) if s == name);
    let mut out = Vec::new();
    for name in plan.sources.keys().map(String::as_str) {
        let mut guarded = None;
        let mut always = false;
        // Not `always`: it runs after the run's set is settled, and after failures too (the
        // analyzer refuses a backup there).
        for (i, step) in plan.steps.iter().enumerate() {
            if !backs(step, name) {
                continue;
            }
            let id = step
                .id
                .clone()
                .unwrap_or_else(|| format!("steps.{}", i + 1));
            match (&step.when, conditional_need(plan, step)) {
                (None, None) => always = true,
                (Some(when), _) if guarded.is_none() => {
                    guarded = Some(Coverage::OnlyWhen(id, when.clone()));
                }
                (None, Some((gate, when))) if guarded.is_none() => {
                    guarded = Some(Coverage::NeedsConditional(id, gate, when));
                }
                _ => {}
            }
        }
        if always {
            continue;
        }
        let coverage = match guarded {
            Some(coverage) => coverage,
            None if execute_steps(plan).iter().any(|p| backs(p.step, name)) => {
                Coverage::OnlyOnFailure
            }
            None => Coverage::Never,
        };
        out.push((name, coverage));
    }
    out
}

fn looks_secret(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SECRET_KEYS.contains(&lower.as_str())
        || ["password", "secret", "token"]
            .iter()
            .any(|w| lower.contains(w))
            && key
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
}

fn find_inline_secrets(value: &Value, pointer: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_pointer = format!("{pointer}/{key}");
                // The `secrets` section itself only says where values come from.
                if pointer.is_empty() && key == "secrets" {
                    continue;
                }
                match child {
                    Value::String(text)
                        if looks_secret(key) && !text.contains("{{") && !text.is_empty() =>
                    {
                        out.push(child_pointer)
                    }
                    _ => find_inline_secrets(child, child_pointer, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_inline_secrets(item, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}
