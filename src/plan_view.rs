//! The rendered plan as `planrun plan` and `execute --dry-run` show it: stages of steps that
//! can run together, each step's command or action, limits and rollbacks. Secrets are masked.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::exec_plan::{Action, ExecPlan, ExecStep};
use crate::graph;
use crate::plan::{OnFailure, Plan, Schedule};
use crate::redact::Redactor;
use crate::schedule::CronSchedule;
use crate::template::display_quote;

/// The stages of the plan's `steps`, as indexes. Validated plans have no cycles.
pub fn stages(plan: &ExecPlan) -> Vec<Vec<usize>> {
    let edges: Vec<(String, Vec<String>)> = plan
        .steps
        .iter()
        .map(|s| (s.id.clone(), s.needs.clone()))
        .collect();
    graph::stages(&edges).unwrap_or_else(|_| vec![(0..plan.steps.len()).collect()])
}

/// One line saying what the action does.
pub fn describe(action: &Action) -> String {
    match action {
        Action::Run { program, args } => std::iter::once(program)
            .chain(args)
            .map(|a| display_quote(a))
            .collect::<Vec<_>>()
            .join(" "),
        Action::Shell { script } => {
            let lines: Vec<&str> = script.lines().collect();
            match lines.as_slice() {
                [one] => one.to_string(),
                _ => format!("bash script, {} lines", lines.len()),
            }
        }
        Action::Backup { source } => format!("back up source `{source}` into this run's set"),
        Action::Copy { to, from, set } => format!(
            "copy {} from `{}` to `{to}`, verified",
            set.as_deref()
                .map(|s| format!("set {s}"))
                .unwrap_or_else(|| "this run's set".into()),
            from.as_deref().unwrap_or("local")
        ),
        Action::Prune { storage } => format!(
            "apply retention to {}",
            storage
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::Verify { storage, set } => format!(
            "re-hash {} on `{storage}` against its manifest",
            set.as_deref()
                .map(|s| format!("set {s}"))
                .unwrap_or_else(|| "this run's set".into())
        ),
        Action::Restore {
            source,
            set,
            storage,
            database,
            path,
            force,
            ..
        } => {
            let mut text = format!(
                "restore `{source}` from {} on `{}`",
                set.as_deref().unwrap_or("latest"),
                storage.as_deref().unwrap_or("local")
            );
            if let Some(db) = database {
                write!(text, " into database `{db}`").ok();
            }
            if let Some(path) = path {
                write!(text, " into {path}").ok();
            }
            if *force {
                text.push_str(", replacing what is there");
            }
            text
        }
        Action::Check(check) => {
            let (what, kind) = crate::drill::evaluate::describe(check);
            match &check.expect {
                Some(expect) => format!(
                    "check ({kind}) {what}, expect {}",
                    serde_json::to_string(expect).unwrap_or_default()
                ),
                None => format!("check ({kind}) {what}"),
            }
        }
        Action::Manual { text } => text.lines().next().unwrap_or_default().to_string(),
        Action::Notify {
            webhook, message, ..
        } => match (webhook.as_deref().filter(|u| !u.trim().is_empty()), message) {
            (Some(url), _) => format!("notify {url}"),
            (None, Some(m)) => format!("no webhook set; message: {m}"),
            (None, None) => "no webhook set: nothing to send".into(),
        },
    }
}

/// True for the variables a shell script's references read, which are shown with their values.
fn is_reference(name: &str, action: &Action) -> bool {
    matches!(action, Action::Shell { .. })
        && (name.starts_with("PLANRUN_V_") || name.starts_with("PLANRUN_SECRET_"))
}

fn attributes(step: &ExecStep) -> Vec<String> {
    let mut attrs = Vec::new();
    if !step.needs.is_empty() {
        attrs.push(format!("needs {}", step.needs.join(", ")));
    }
    if let Some(t) = step.timeout {
        attrs.push(format!("timeout {}", crate::duration::Duration(t)));
    }
    if step.retries > 0 {
        attrs.push(format!(
            "retries {} (from {})",
            step.retries,
            crate::duration::Duration(step.retry_delay)
        ));
    }
    match step.on_failure {
        OnFailure::Fail => {}
        OnFailure::Warn => attrs.push("on failure: warn".into()),
        OnFailure::Ignore => attrs.push("on failure: ignore".into()),
    }
    if let Some(cwd) = &step.cwd {
        attrs.push(format!("in {}", cwd.display()));
    }
    let own_env: Vec<&str> = step
        .env
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !is_reference(k, &step.action))
        .collect();
    if !own_env.is_empty() {
        attrs.push(format!("env {}", own_env.join(", ")));
    }
    if let Some(reason) = &step.skip {
        attrs.push(format!("skipped: {reason}"));
    }
    attrs
}

/// What a script reference holds, as shown to a reader: secrets as `***`, other values
/// quoted on one line. `None` for the step's own `env:` entries.
fn reference_value(name: &str, value: &str, redactor: &Redactor) -> Option<String> {
    if name.starts_with("PLANRUN_SECRET_") {
        Some("***".into())
    } else if name.starts_with("PLANRUN_V_") {
        Some(display_quote(&redactor.redact(value)))
    } else {
        None
    }
}

fn write_step(out: &mut String, step: &ExecStep, indent: usize, width: usize, redactor: &Redactor) {
    let pad = " ".repeat(indent);
    writeln!(
        out,
        "{pad}{:<width$}  {:<7} {}",
        step.id,
        step.action.kind_name(),
        describe(&step.action)
    )
    .ok();
    let inner = " ".repeat(indent + width + 2);
    if let Action::Shell { script } = &step.action {
        if script.lines().count() > 1 {
            for line in script.lines() {
                writeln!(out, "{inner}| {line}").ok();
            }
        }
        // The script holds references; say what each one holds, so the reader sees the
        // values without their ever being part of the script.
        for (name, value) in &step.env {
            if let Some(shown) = reference_value(name, value, redactor) {
                writeln!(out, "{inner}${name} = {shown}").ok();
            }
        }
    }
    let attrs = attributes(step);
    if !attrs.is_empty() {
        writeln!(out, "{inner}{}", attrs.join(" · ")).ok();
    }
    for rollback in &step.rollback {
        writeln!(out, "{inner}rollback:").ok();
        write_step(
            out,
            rollback,
            indent + width + 4,
            rollback.id.len().max(8),
            redactor,
        );
    }
}

/// The text form.
pub fn text(plan: &ExecPlan) -> String {
    let mut out = String::new();
    let redactor = &*plan.redactor;
    let digest: String = plan.digest.chars().take(12).collect();
    writeln!(
        out,
        "plan {} ({}, digest {digest})",
        plan.name,
        plan.file.display()
    )
    .ok();
    let width = plan
        .steps
        .iter()
        .chain(&plan.on_failure)
        .chain(&plan.always)
        .map(|s| s.id.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let stages = stages(plan);
    writeln!(out).ok();
    writeln!(
        out,
        "steps: {} in {} stage{} (steps in one stage can run together)",
        plan.steps.len(),
        stages.len(),
        if stages.len() == 1 { "" } else { "s" }
    )
    .ok();
    for (n, stage) in stages.iter().enumerate() {
        writeln!(out, "  stage {}", n + 1).ok();
        for &i in stage {
            write_step(&mut out, &plan.steps[i], 4, width, redactor);
        }
    }
    for (title, list) in [
        ("on failure (after rollbacks)", &plan.on_failure),
        ("always", &plan.always),
    ] {
        if !list.is_empty() {
            writeln!(out, "{title}:").ok();
            for step in list {
                write_step(&mut out, step, 4, width, redactor);
            }
        }
    }
    out
}

fn step_json(step: &ExecStep, redactor: &Redactor) -> Value {
    json!({
        "id": step.id,
        "name": step.name,
        "kind": step.action.kind_name(),
        "description": describe(&step.action),
        "needs": step.needs,
        "timeout_ms": step.timeout.map(|t| t.as_millis() as u64),
        "retries": step.retries,
        "retry_delay_ms": step.retry_delay.as_millis() as u64,
        "on_failure": step.on_failure,
        "skip": step.skip,
        "cwd": step.cwd,
        "env": step.env.iter().map(|(k, _)| k.clone()).filter(|k| !is_reference(k, &step.action)).collect::<Vec<_>>(),
        "action": action_json(step, redactor),
        "rollback": step.rollback.iter().map(|r| step_json(r, redactor)).collect::<Vec<_>>(),
    })
}

fn action_json(step: &ExecStep, redactor: &Redactor) -> Value {
    match &step.action {
        Action::Run { program, args } => json!({ "program": program, "args": args }),
        Action::Shell { script } => {
            let values: serde_json::Map<String, Value> = step
                .env
                .iter()
                .filter(|(k, _)| is_reference(k, &step.action))
                .map(|(k, v)| {
                    let shown = if k.starts_with("PLANRUN_SECRET_") {
                        "***".to_owned()
                    } else {
                        redactor.redact(v).into_owned()
                    };
                    (k.clone(), Value::String(shown))
                })
                .collect();
            json!({ "script": script, "values": values })
        }
        other => json!({ "summary": describe(other) }),
    }
}

/// The JSON form.
pub fn json(plan: &ExecPlan) -> Value {
    let redactor = &*plan.redactor;
    let step_json = |s: &ExecStep| step_json(s, redactor);
    let stages: Vec<Vec<&str>> = stages(plan)
        .iter()
        .map(|stage| stage.iter().map(|&i| plan.steps[i].id.as_str()).collect())
        .collect();
    json!({
        "name": plan.name,
        "file": plan.file,
        "digest": plan.digest,
        "stages": stages,
        "steps": plan.steps.iter().map(&step_json).collect::<Vec<_>>(),
        "on_failure": plan.on_failure.iter().map(&step_json).collect::<Vec<_>>(),
        "always": plan.always.iter().map(&step_json).collect::<Vec<_>>(),
    })
}

/// How many future run times `planrun plan` shows for each schedule.
const NEXT_RUNS: usize = 3;

/// The plan's schedules, `(label, schedule)`: `schedule` and `drill.schedule`.
fn plan_schedules(plan: &Plan) -> Vec<(&'static str, &Schedule)> {
    let mut list = Vec::new();
    if let Some(s) = &plan.schedule {
        list.push(("schedule", s));
    }
    if let Some(s) = plan.drill.as_ref().and_then(|d| d.schedule.as_ref()) {
        list.push(("drill.schedule", s));
    }
    list
}

/// `schedule: 0 2 * * * (America/Sao_Paulo)` and the next run times after `now`, in the
/// schedule's zone; empty when the plan has none.
pub fn schedules(plan: &Plan, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = String::new();
    for (label, schedule) in plan_schedules(plan) {
        match CronSchedule::new(schedule, plan.timezone.as_deref()) {
            Ok(parsed) => {
                writeln!(
                    out,
                    "{label}: {} ({})",
                    parsed.expression,
                    parsed.zone.name()
                )
                .ok();
                for at in parsed.next(now, NEXT_RUNS) {
                    writeln!(out, "  next {}", at.format("%a %Y-%m-%d %H:%M %Z")).ok();
                }
            }
            Err(error) => {
                writeln!(out, "{label}: {error}").ok();
            }
        }
    }
    out
}

/// The JSON form of [`schedules`]: `{schedule: {cron, timezone, next: [RFC 3339…]}}`.
pub fn schedules_json(plan: &Plan, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut map = serde_json::Map::new();
    for (label, schedule) in plan_schedules(plan) {
        if let Ok(parsed) = CronSchedule::new(schedule, plan.timezone.as_deref()) {
            let next: Vec<String> = parsed
                .next(now, NEXT_RUNS)
                .iter()
                .map(|t| t.to_rfc3339())
                .collect();
            map.insert(
                label.to_owned(),
                json!({ "cron": parsed.expression, "timezone": parsed.zone.name(), "next": next }),
            );
        }
    }
    Value::Object(map)
}
