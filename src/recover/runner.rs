//! Runs one recovery level: the opening screen, the checks that fail closed before anything
//! changes, then each step in order through the executor (automated steps) or a person
//! (manual steps), with the incident record checkpointed durably after every step.

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::incident::{
    Answer, ChosenSet, Incident, IncidentStatus, Kept, PlanInfo, Progress, StepOutcome, StepRecord,
    against, time,
};
use super::prompt::{Prompt, Reply};
use super::set_choice::{self, Chosen};
use crate::cancel::{Cancel, CancelReason};
use crate::command::{CommandError, CommandResult, Console, human_age, human_size};
use crate::engine::executor::{RunContext, run_step};
use crate::event::{Emitter, Event, Phase};
use crate::exec_plan::{Action, ExecPlan, ExecStep};
use crate::exit_code;
use crate::lock::{Holder, PlanLock};
use crate::pipeline::{self, Loaded, RenderOptions};
use crate::plan::Source;
use crate::process::ProcessGroups;
use crate::reporter::{self, Reporter};
use crate::run_log::RunLog;
use crate::state_dir::StateDir;
use crate::step_kind::manual;

/// What `planrun recover` was asked.
#[derive(Clone, Debug)]
pub struct Options {
    pub level: u8,
    pub set: Option<String>,
    pub storage: Option<String>,
    pub yes: bool,
    pub confirm: Vec<String>,
    /// `--resume` (`Some(None)`: the newest unfinished incident).
    pub resume: Option<Option<String>>,
    pub rehearse: bool,
    pub json: bool,
    pub vars: Vec<(String, String)>,
    pub state_dir: Option<PathBuf>,
}

/// The confirmation id that accepts a set older than one seen or recorded.
fn older_id(step: &str) -> String {
    format!("{step}.older-set")
}

/// One step of the level, as rendered, with what the plan says about it.
struct Planned {
    step: ExecStep,
    role: Option<String>,
    owner: Option<String>,
    confirm: bool,
    chosen: Option<Chosen>,
}

pub fn run(loaded: &Loaded, options: &Options, console: &mut Console) -> CommandResult {
    let level = options.level.to_string();
    let plan_def = &loaded.plan;
    let Some(runbook) = plan_def
        .recovery
        .as_ref()
        .and_then(|r| r.levels.get(&level))
    else {
        let known: Vec<String> = plan_def
            .recovery
            .as_ref()
            .map(|r| r.levels.keys().cloned().collect())
            .unwrap_or_default();
        return Err(CommandError::unknown(
            "recovery level",
            &level,
            known.iter().map(String::as_str),
        ));
    };
    let state = StateDir::locate(options.state_dir.as_deref()).and_then(StateDir::create)?;

    // Which incident: a new one, or the unfinished one being resumed.
    let resumed = match &options.resume {
        Some(wanted) => Some(find_unfinished(&state, &plan_def.name, wanted.as_deref())?),
        None => {
            if !options.rehearse
                && let Some(open) = super::incident::open_for(state.root(), &plan_def.name)
                    .into_iter()
                    .find(|i| i.progress != Progress::Completed)
            {
                return Err(CommandError::Recover(format!(
                    "incident {} (level {}) of plan `{}` is unfinished: continue it with `--resume {}`, or close it with `planrun incident close {}`",
                    open.id, open.level, open.plan.name, open.id, open.id
                )));
            }
            None
        }
    };
    if let Some(incident) = &resumed
        && incident.level != options.level
    {
        return Err(CommandError::Recover(format!(
            "incident {} is a level {} recovery, not level {}: resume it with `--level {}`",
            incident.id, incident.level, options.level, incident.level
        )));
    }

    let mut render_options = RenderOptions::for_now(options.vars.clone(), true);
    let incident_id = resumed
        .as_ref()
        .map(|i| i.id.clone())
        .unwrap_or_else(|| render_options.run_id.clone());
    // The data-loss window is known once the sets are chosen, which needs the rendered
    // restore steps: so the level renders first with it `unknown`, then again below.
    render_options.incident = Some(pipeline::IncidentVars {
        id: incident_id.clone(),
        level: options.level,
        data_loss_window: "unknown".into(),
    });
    let (plan, rendered) = pipeline::render_level(loaded, &render_options, &level)?;
    console.mask_with(Arc::clone(&plan.redactor));
    let rehearse = resumed.as_ref().map_or(options.rehearse, |i| i.rehearsal);

    // The plan's lock: no nightly, prune or second recovery of this plan meanwhile.
    let holder = Holder {
        pid: std::process::id(),
        host: crate::host::hostname(),
        run_id: plan.run_id.clone(),
        started_at: Utc::now(),
    };
    let lock = PlanLock::acquire(&state.lock(&plan.name), &plan.name, &holder)?;
    crate::leftovers::clean_and_report(&state, &plan.name, &plan.sources, plan.kill_grace);

    let runtime = crate::command::worker_runtime()?;
    let expected = last_backup_recorded(&state, &plan.name);
    let mut planned = Vec::new();
    for (step, def) in rendered.steps.into_iter().zip(&runbook.steps) {
        let role = def.role.clone();
        let owner = role.as_ref().map(|r| match plan_def.roles.get(r) {
            Some(found) => {
                let mut text = found.title.clone();
                if let Some(contact) = &found.contact {
                    text.push_str(&format!(", {contact}"));
                }
                text
            }
            None => r.clone(),
        });
        planned.push(Planned {
            step,
            role,
            owner,
            confirm: def.confirm,
            chosen: None,
        });
    }
    // A `--confirm` that names no step of this level is a typo at 3 a.m.: it would confirm
    // nothing while the person believes it did. Refused before anything is chosen or runs.
    let ids: Vec<&str> = planned.iter().map(|p| p.step.id.as_str()).collect();
    if let Some(unknown) = options.confirm.iter().find(|c| {
        let step = c.strip_suffix(".older-set").unwrap_or(c);
        !ids.contains(&step)
    }) {
        return Err(CommandError::Recover(format!(
            "--confirm {unknown}: level {level} has no such step; its steps are {} (add `.older-set` to a restore step's id to accept an older set)",
            ids.join(", ")
        )));
    }
    // The sets: chosen once, when the incident opens, and pinned in its record, so a resume
    // restores from the same sets.
    let mut choice_errors = Vec::new();
    for p in &mut planned {
        let Action::Restore {
            source,
            set: from,
            storage,
            ..
        } = &p.step.action
        else {
            continue;
        };
        if let Some(previous) = resumed
            .as_ref()
            .and_then(|i| i.steps.iter().find(|s| s.id == p.step.id))
            .and_then(|s| s.set.as_ref())
        {
            let pinned = runtime.block_on(set_choice::choose(
                &plan,
                source,
                Some(&previous.id),
                Some(&previous.storage),
                None,
            ));
            match pinned {
                Ok(chosen) => p.chosen = Some(chosen),
                Err(error) => choice_errors.push(format!("step `{}`: {error}", p.step.id)),
            }
            continue;
        }
        let selector = options.set.as_deref().or(from.as_deref());
        let named = options.storage.as_deref().or(storage.as_deref());
        match runtime.block_on(set_choice::choose(
            &plan,
            source,
            selector,
            named,
            expected.as_ref(),
        )) {
            Ok(chosen) => p.chosen = Some(chosen),
            Err(error) => choice_errors.push(format!("step `{}`: {error}", p.step.id)),
        }
    }

    // Now the window is known: the steps that tell people about it (a manual step's
    // message to users) render again with it. Restores keep the sets just chosen.
    let incident_start = resumed.as_ref().map_or_else(Utc::now, |i| i.started_at);
    if let Some(oldest) = planned
        .iter()
        .filter_map(|p| p.chosen.as_ref())
        .map(Chosen::taken_at)
        .min()
    {
        let window = human_age((incident_start - oldest).num_seconds());
        if let Some(vars) = &mut render_options.incident {
            vars.data_loss_window = window;
        }
        let (_, again) = pipeline::render_level(loaded, &render_options, &level)?;
        for (p, step) in planned.iter_mut().zip(again.steps) {
            if !matches!(p.step.action, Action::Restore { .. }) {
                p.step = step;
            }
        }
    }

    let show = |text: &str| {
        if options.json {
            console.status(text);
        } else {
            console.out(text);
        }
    };
    let started_at = incident_start;
    show(&opening_screen(
        loaded,
        &plan,
        &level,
        &planned,
        &incident_id,
        rehearse,
        resumed.is_some(),
        started_at,
    ));
    if let Some(incident) = &resumed
        && incident.plan.digest != plan.digest
    {
        show(&format!(
            "!!! THE PLAN CHANGED since incident {} started (digest {} then, {} now): the steps left are run as the plan says now\n\n",
            incident.id,
            &incident.plan.digest[..incident.plan.digest.len().min(12)],
            &plan.digest[..plan.digest.len().min(12)]
        ));
    }
    if !choice_errors.is_empty() {
        return Err(CommandError::Recover(format!(
            "no set to restore from, so nothing was changed:\n  {}",
            choice_errors.join("\n  ")
        )));
    }
    // A step of a kind this build cannot run would stop the runbook half way: refused now.
    let unavailable: Vec<String> = planned
        .iter()
        .filter(|p| {
            !matches!(p.step.action, Action::Manual { .. })
                && !crate::step_kind::is_available(&p.step.action)
        })
        .map(|p| format!("`{}` ({})", p.step.id, p.step.action.kind_name()))
        .collect();
    if !unavailable.is_empty() {
        return Err(CommandError::Recover(format!(
            "this build of planrun cannot run steps {}, so nothing was changed",
            unavailable.join(", ")
        )));
    }
    if let Some(problem) = nested_order_problem(&plan, &planned) {
        return Err(CommandError::Recover(problem));
    }

    // Fail closed: without a terminal, every step that needs a person must be covered by a
    // flag before anything at all runs.
    let prompt = Prompt::from_stdin();
    let suffix = format!("_before_{incident_id}");
    let mut incident = match resumed {
        Some(incident) => incident,
        None => new_incident(
            &plan,
            loaded,
            options,
            &planned,
            &incident_id,
            started_at,
            rehearse,
        ),
    };
    // Steps the plan gained since the incident started are run in their place.
    for (i, p) in planned.iter().enumerate() {
        if !incident.steps.iter().any(|s| s.id == p.step.id) {
            let at = i.min(incident.steps.len());
            incident.steps.insert(at, step_record(&plan, p));
        }
    }
    let needed = confirmations_needed(&planned, &incident, rehearse);
    if !prompt.interactive() {
        let missing: Vec<&String> = needed.iter().filter(|id| !covered(options, id)).collect();
        if !missing.is_empty() {
            let flags: Vec<String> = missing.iter().map(|id| format!("--confirm {id}")).collect();
            return Err(CommandError::Recover(format!(
                "no terminal to confirm on, so nothing was changed: these steps need a person: {}; run from a terminal, or confirm them with {} (or --yes for all)",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                flags.join(" ")
            )));
        }
    }

    incident.progress = Progress::Running;
    incident.ended_at = None;
    save(&incident, &state)?;
    show(&format!(
        "{} {}: recorded in {}\n",
        if rehearse { "rehearsal" } else { "incident" },
        incident.id,
        incident.dir(&state).display()
    ));

    // The run's ledger: temporary databases and staging folders a killed recovery leaves
    // are removed by the next run of the plan.
    let ledger = crate::leftovers::install(
        &state,
        &plan.run_id,
        &plan.name,
        "recover",
        Some(&plan.scratch),
    )
    .map_err(CommandError::Ledger)?;
    // Made here and now (never an existing folder): a rehearsal restores into it and
    // removes what it put there.
    if let Err(error) = std::fs::DirBuilder::new().mode(0o700).create(&plan.scratch) {
        ledger.finish(true);
        return Err(CommandError::Scratch {
            path: plan.scratch.clone(),
            error,
        });
    }

    let mut session = Session {
        plan: Arc::new(plan),
        state: &state,
        options,
        prompt,
        console,
        cancel: Cancel::new(),
        in_step: Arc::new(AtomicBool::new(false)),
        suffix,
        rehearse,
        restored: Vec::new(),
    };
    let result = runtime.block_on(async { session.watch_signals() });
    if let Err(error) = result {
        session
            .console
            .notice(format_args!("cannot handle signals: {error}"));
    }
    let (emitter, events) = Emitter::channel(Arc::clone(&session.plan.redactor));
    let log = RunLog::open(&state.run_log(&incident.id)).ok();
    let mut sink = EventSink {
        events,
        human: reporter::Human::new(None, false, reporter::Detail::Normal),
        log,
        restored: Vec::new(),
    };
    let ctx = RunContext::new(Arc::clone(&session.plan), ProcessGroups::global(), emitter);
    let code = session.steps(&mut incident, &planned, &runtime, &ctx, &mut sink);
    if rehearse {
        session.drop_scratch(&mut incident, &runtime);
    }
    // A restore stopped by its timeout or a signal left its temporary database: gone now,
    // not at the next run of the plan.
    let own = ledger.drop_own_databases(&session.plan.sources);
    for done in &own.done {
        session
            .console
            .notice(format_args!("cleaned up after a stopped restore: {done}"));
    }
    for failed in &own.failed {
        session.console.notice(format_args!("warning: {failed}"));
    }
    let removed =
        std::fs::remove_dir_all(&session.plan.scratch).is_ok() || !session.plan.scratch.exists();
    ledger.finish(removed);
    save(&incident, &state)?;
    session.summary(&incident);
    if options.json {
        let mut json = serde_json::to_string_pretty(&incident).unwrap_or_default();
        json.push('\n');
        session.console.out(&json);
    }
    drop(lock);
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(code)
}

/// The newest unfinished (not completed, not closed) incident of the plan, or the one named.
fn find_unfinished(
    state: &StateDir,
    plan: &str,
    wanted: Option<&str>,
) -> Result<Incident, CommandError> {
    if let Some(id) = wanted {
        let incident =
            Incident::load(state.root(), id).map_err(|e| CommandError::Recover(e.to_string()))?;
        if incident.plan.name != plan {
            return Err(CommandError::Recover(format!(
                "incident {id} is of plan `{}`, not `{plan}`",
                incident.plan.name
            )));
        }
        // A rehearsal's scratch copies are dropped whenever it stops, so a resumed one would
        // check the live targets instead: it starts again instead.
        if incident.rehearsal {
            return Err(CommandError::Recover(format!(
                "incident {id} is a rehearsal: its scratch copies were dropped when it stopped, so it is not resumed; start a new one with --rehearse"
            )));
        }
        if incident.progress == Progress::Completed || incident.status == IncidentStatus::Closed {
            return Err(CommandError::Recover(format!(
                "incident {id} is finished: nothing to resume"
            )));
        }
        return Ok(incident);
    }
    super::incident::list(state.root())
        .0
        .into_iter()
        .find(|i| {
            i.plan.name == plan
                && !i.rehearsal
                && i.status == IncidentStatus::Open
                && i.progress != Progress::Completed
        })
        .ok_or_else(|| {
            CommandError::Recover(format!(
                "no unfinished incident of plan `{plan}` in {}",
                super::incident::root(state.root()).display()
            ))
        })
}

/// The newest set a run of the plan recorded as backed up: a restore from an older one
/// loses more than the last backup promised.
fn last_backup_recorded(state: &StateDir, plan: &str) -> Option<crate::storage::SetId> {
    let (records, _) = crate::run_record::list(state);
    records
        .into_iter()
        .filter(|r| r.plan == plan)
        .filter(|r| {
            r.steps.iter().any(|s| {
                s.kind.as_deref() == Some("backup")
                    && s.outcome == Some(crate::event::Outcome::Succeeded)
            })
        })
        .filter_map(|r| crate::storage::SetId::parse(&r.run_id))
        .max()
}

fn covered(options: &Options, id: &str) -> bool {
    options.yes || options.confirm.iter().any(|c| c == id)
}

/// Every id that needs a person's go before it runs: manual steps, `confirm: true` steps,
/// restores onto live targets, sets older than expected, and steps that were interrupted.
fn confirmations_needed(planned: &[Planned], incident: &Incident, rehearse: bool) -> Vec<String> {
    let mut out = Vec::new();
    for p in planned {
        let record = incident.steps.iter().find(|s| s.id == p.step.id);
        let outcome = record.map_or(StepOutcome::Pending, |r| r.outcome);
        if outcome.is_settled() {
            continue;
        }
        if rehearse {
            continue;
        }
        let destructive = matches!(p.step.action, Action::Restore { .. })
            || matches!(p.step.action, Action::Manual { .. })
            || p.confirm
            || outcome == StepOutcome::Running;
        if destructive {
            out.push(p.step.id.clone());
        }
        if let Some(chosen) = &p.chosen
            && chosen.newer_seen.is_some()
        {
            out.push(older_id(&p.step.id));
        }
    }
    out
}

/// Where a path restore writes, when it writes a folder (directory sources).
fn folder_target(plan: &ExecPlan, step: &ExecStep) -> Option<PathBuf> {
    let Action::Restore { source, path, .. } = &step.action else {
        return None;
    };
    let (_, config) = plan.sources.iter().find(|(n, _)| n == source)?;
    match config {
        Source::Directory(dir) => Some(PathBuf::from(
            path.as_deref()
                .filter(|p| *p != crate::plan::ORIGINAL_PATH)
                .unwrap_or(&dir.path),
        )),
        _ => None,
    }
}

/// A restore into a folder that a later step replaces as a whole would be undone by that
/// step: the outer target must come first, and the inner one is restored into it.
fn nested_order_problem(plan: &ExecPlan, planned: &[Planned]) -> Option<String> {
    let targets: Vec<(usize, PathBuf)> = planned
        .iter()
        .enumerate()
        .filter_map(|(i, p)| folder_target(plan, &p.step).map(|t| (i, t)))
        .collect();
    for (i, inner) in &targets {
        for (j, outer) in &targets {
            if j > i && inner != outer && inner.starts_with(outer) {
                return Some(format!(
                    "step `{}` restores {} inside {}, which step `{}` replaces after it: the outer target must be restored first; move `{}` before `{}` in the runbook",
                    planned[*i].step.id,
                    inner.display(),
                    outer.display(),
                    planned[*j].step.id,
                    planned[*j].step.id,
                    planned[*i].step.id
                ));
            }
        }
    }
    None
}

#[expect(clippy::too_many_arguments, reason = "the screen shows all of them")]
fn opening_screen(
    loaded: &Loaded,
    plan: &ExecPlan,
    level: &str,
    planned: &[Planned],
    incident: &str,
    rehearse: bool,
    resumed: bool,
    started_at: DateTime<Utc>,
) -> String {
    let plan_def = &loaded.plan;
    let recovery = plan_def.recovery.as_ref();
    let runbook = recovery.and_then(|r| r.levels.get(level));
    let rule = "=".repeat(72);
    let mut out = format!("{rule}\n");
    let kind = if rehearse {
        "REHEARSAL OF RECOVERY"
    } else {
        "RECOVERY"
    };
    out.push_str(&format!(
        "{kind} LEVEL {level}: {}\n",
        runbook.map(|r| r.name.as_str()).unwrap_or("")
    ));
    if let Some(description) = runbook.and_then(|r| r.description.as_deref()) {
        out.push_str(&format!("{}\n", description.trim_end()));
    }
    out.push_str(&format!(
        "plan `{}` ({}, digest {}) · {} {incident}{}\n",
        plan.name,
        plan.file.display(),
        &plan.digest[..plan.digest.len().min(12)],
        if rehearse { "rehearsal" } else { "incident" },
        if resumed { " (resumed)" } else { "" }
    ));
    if rehearse {
        out.push_str("restores go to scratch targets and are dropped afterwards; manual steps are read out; destructive steps are shown, not run\n");
    }
    let objectives = recovery.and_then(|r| r.objectives.as_ref());
    let rpo = objectives.and_then(|o| o.rpo).map(|d| d.as_std().as_secs());
    let written = |d: Option<crate::duration::Duration>| {
        d.map(|d| d.to_string()).unwrap_or_else(|| "not set".into())
    };
    out.push_str(&format!(
        "objectives: RPO {} (most data that may be lost) · RTO {} (back in service within)\n",
        written(objectives.and_then(|o| o.rpo)),
        written(objectives.and_then(|o| o.rto)),
    ));
    out.push_str(&format!("{rule}\n\nroles\n"));
    let mut roles: Vec<&String> = planned.iter().filter_map(|p| p.role.as_ref()).collect();
    roles.sort();
    roles.dedup();
    if roles.is_empty() {
        out.push_str("  (no step names a role)\n");
    }
    for role in roles {
        match plan_def.roles.get(role) {
            Some(r) => {
                out.push_str(&format!("  {role:<16} {}\n", r.title));
                out.push_str(&format!(
                    "  {:<16} contact: {}\n",
                    "",
                    r.contact.as_deref().unwrap_or("(none given)")
                ));
                if let Some(deputy) = &r.deputy {
                    out.push_str(&format!("  {:<16} deputy:  {deputy}\n", ""));
                }
            }
            None => out.push_str(&format!("  {role}\n")),
        }
    }
    out.push_str("\nsteps\n");
    let width = planned.iter().map(|p| p.step.id.len()).max().unwrap_or(0);
    for (i, p) in planned.iter().enumerate() {
        let mut what = describe(plan, &p.step);
        if rehearse && let Action::Restore { source, .. } = &p.step.action {
            // Not where the plan says: a rehearsal restores into a scratch copy.
            what = format!("restore {source} into a scratch copy (rehearsal), dropped afterwards");
        } else if p.confirm && !matches!(p.step.action, Action::Manual { .. }) {
            what.push_str(" (asks first)");
        }
        out.push_str(&format!(
            "  {:>2}. {:<width$}  {:<12} {what}\n",
            i + 1,
            p.step.id,
            p.role.as_deref().unwrap_or("-"),
        ));
    }
    let restores: Vec<&Planned> = planned.iter().filter(|p| p.chosen.is_some()).collect();
    if !restores.is_empty() {
        out.push_str("\nbackup sets\n");
    }
    for p in restores {
        let Some(chosen) = &p.chosen else { continue };
        let age = (started_at - chosen.taken_at()).num_seconds().max(0);
        out.push_str(&format!(
            "  {:<width$}  set {} on `{}`, age {}, {}\n",
            p.step.id,
            chosen.set.id,
            chosen.storage,
            human_age(age),
            if chosen.set.status == crate::storage::SetStatus::Verified {
                "verified"
            } else {
                "not verified since it was written"
            }
        ));
        for why in &chosen.passed_over {
            out.push_str(&format!("  !!! {why}\n"));
        }
        if !chosen.passed_over.is_empty() {
            out.push_str(&format!(
                "  !!! FELL BACK to storage `{}`\n",
                chosen.storage
            ));
        }
        if let Some(newer) = &chosen.newer_seen {
            out.push_str(&format!(
                "  !!! a NEWER set {newer} exists or was recorded, but cannot be restored: this set is OLDER and needs its own confirmation ({})\n",
                older_id(&p.step.id)
            ));
        }
        if let Some(rpo) = rpo
            && age as u64 > rpo
        {
            out.push_str(&format!(
                "  !!! DATA LOSS WINDOW {} EXCEEDS THE RPO OF {}: everything written after {} is lost\n",
                human_age(age),
                human_age(rpo as i64),
                time(chosen.taken_at())
            ));
        } else {
            out.push_str(&format!(
                "      data-loss window: {} (everything written after {})\n",
                human_age(age),
                time(chosen.taken_at())
            ));
        }
    }
    out.push('\n');
    out
}

/// One line saying what a step does.
fn describe(plan: &ExecPlan, step: &ExecStep) -> String {
    match &step.action {
        Action::Manual { text } => format!("manual: {text}"),
        Action::Restore {
            source,
            database,
            path,
            ..
        } => {
            let target = match (database, path) {
                (Some(db), _) => format!("database {db}"),
                (None, Some(p)) if p != crate::plan::ORIGINAL_PATH => p.clone(),
                _ => match plan.sources.iter().find(|(n, _)| n == source) {
                    Some((_, Source::Postgres(pg))) => format!("database {}", pg.database),
                    Some((_, Source::Directory(d))) => d.path.clone(),
                    _ => "its original place".into(),
                },
            };
            format!("restore `{source}` into {target}")
        }
        Action::Run { program, args } => format!("run {program} {}", args.join(" ")),
        Action::Shell { .. } => "shell script".into(),
        other => other.kind_name().to_owned(),
    }
}

fn new_incident(
    plan: &ExecPlan,
    loaded: &Loaded,
    options: &Options,
    planned: &[Planned],
    id: &str,
    started_at: DateTime<Utc>,
    rehearse: bool,
) -> Incident {
    let recovery = loaded.plan.recovery.as_ref();
    let objectives = recovery.and_then(|r| r.objectives.as_ref());
    Incident {
        format: super::incident::FORMAT,
        id: id.to_owned(),
        plan: PlanInfo {
            name: plan.name.clone(),
            file: std::path::absolute(&plan.file)
                .unwrap_or_else(|_| plan.file.clone())
                .display()
                .to_string(),
            digest: plan.digest.clone(),
        },
        level: options.level,
        level_name: recovery
            .and_then(|r| r.levels.get(&options.level.to_string()))
            .map(|l| l.name.clone())
            .unwrap_or_default(),
        rehearsal: rehearse,
        status: IncidentStatus::Open,
        progress: Progress::Running,
        host: crate::host::hostname(),
        user: manual::os_user(),
        started_at,
        ended_at: None,
        closed_at: None,
        rpo_s: objectives.and_then(|o| o.rpo).map(|d| d.as_std().as_secs()),
        rto_s: objectives.and_then(|o| o.rto).map(|d| d.as_std().as_secs()),
        steps: planned.iter().map(|p| step_record(plan, p)).collect(),
        notes: Vec::new(),
        scratch: Vec::new(),
    }
}

/// A step's record before it runs, with the set chosen for it.
fn step_record(plan: &ExecPlan, p: &Planned) -> StepRecord {
    StepRecord {
        id: p.step.id.clone(),
        kind: p.step.action.kind_name().to_owned(),
        role: p.role.clone(),
        owner: p.owner.clone(),
        what: describe(plan, &p.step),
        outcome: StepOutcome::Pending,
        started_at: None,
        ended_at: None,
        duration_ms: None,
        error: None,
        reason: None,
        answers: Vec::new(),
        set: p.chosen.as_ref().map(|c| ChosenSet {
            storage: c.storage.clone(),
            id: c.set.id.to_string(),
            taken_at: c.taken_at(),
            status: c.set.status.to_string(),
            fell_back: (!c.passed_over.is_empty()).then(|| c.passed_over.join("; ")),
            older_than: c.newer_seen.as_ref().map(ToString::to_string),
        }),
        target: None,
        kept: None,
    }
}

fn save(incident: &Incident, state: &StateDir) -> Result<(), CommandError> {
    incident
        .save(state)
        .map_err(|e| CommandError::Recover(e.to_string()))
}

/// Events from the executor, handled on the thread that runs the steps, so that what a
/// step printed is on the screen before the next question.
struct EventSink {
    events: mpsc::Receiver<Event>,
    human: reporter::Human,
    log: Option<RunLog>,
    /// `(step, target, kept)` of every restore that finished.
    restored: Vec<(String, String, Option<String>)>,
}

impl EventSink {
    fn handle(&mut self, event: &Event) {
        if let Event::RestoreFinished {
            step, target, kept, ..
        } = event
        {
            self.restored
                .push((step.clone(), target.clone(), kept.clone()));
        }
        if let Some(log) = &self.log {
            log.event(event);
        }
        self.human.event(event);
    }
}

/// How a step ended, as the runbook sees it.
enum Next {
    Go,
    Abort,
}

struct Session<'a> {
    plan: Arc<ExecPlan>,
    state: &'a StateDir,
    options: &'a Options,
    prompt: Prompt,
    console: &'a mut Console,
    cancel: Cancel,
    /// A step is running: a signal stops it (and the runbook aborts, resumable); between
    /// steps, the record is already on disk and planrun exits at once.
    in_step: Arc<AtomicBool>,
    suffix: String,
    rehearse: bool,
    restored: Vec<String>,
}

impl Session<'_> {
    fn show(&self, text: &str) {
        if self.options.json {
            self.console.status(text);
        } else {
            self.console.out(text);
        }
    }

    fn answer(&self, answer: &str, how: &str) -> Answer {
        Answer {
            answer: answer.to_owned(),
            how: how.to_owned(),
            user: manual::os_user(),
            host: crate::host::hostname(),
            at: Utc::now(),
        }
    }

    /// How a flag answered for `id`, if one did.
    fn flag_for(&self, id: &str) -> Option<&'static str> {
        if self.options.confirm.iter().any(|c| c == id) {
            Some("--confirm")
        } else if self.options.yes {
            Some("--yes")
        } else {
            None
        }
    }

    fn watch_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        let cancel = self.cancel.clone();
        let in_step = Arc::clone(&self.in_step);
        tokio::spawn(async move {
            let reason = tokio::select! {
                _ = interrupt.recv() => CancelReason::Interrupt,
                _ = terminate.recv() => CancelReason::Terminate,
            };
            cancel.cancel(reason);
            if !in_step.load(Ordering::Acquire) {
                // Waiting for a person: the record on disk already says where we are.
                eprintln!("\nplanrun: stopped; the incident is saved and resumable with --resume");
                std::process::exit(match reason {
                    CancelReason::Terminate => exit_code::TERMINATED,
                    _ => exit_code::INTERRUPTED,
                });
            }
        });
        Ok(())
    }

    /// Runs every step not settled yet, in order. Returns the exit code.
    fn steps(
        &mut self,
        incident: &mut Incident,
        planned: &[Planned],
        runtime: &tokio::runtime::Runtime,
        ctx: &RunContext,
        sink: &mut EventSink,
    ) -> i32 {
        let total = planned.len();
        let mut warned = false;
        for (i, p) in planned.iter().enumerate() {
            let Some(index) = incident.steps.iter().position(|s| s.id == p.step.id) else {
                continue;
            };
            let outcome = incident.steps[index].outcome;
            if outcome.is_settled() {
                self.show(&format!(
                    "step {}/{total} [{}] already {}: not repeated\n",
                    i + 1,
                    p.step.id,
                    outcome.as_str()
                ));
                continue;
            }
            let header = format!(
                "\n--- step {}/{total} [{}]{} ---\n",
                i + 1,
                p.step.id,
                p.owner
                    .as_ref()
                    .map(|o| format!(" owner: {} ({o})", p.role.as_deref().unwrap_or("")))
                    .unwrap_or_default()
            );
            self.show(&header);
            let next = if outcome == StepOutcome::Running
                && !matches!(p.step.action, Action::Manual { .. })
            {
                self.interrupted(incident, index, p)
            } else {
                Next::Go
            };
            if let Next::Abort = next {
                return self.abort(incident, &p.step.id);
            }
            if incident.steps[index].outcome.is_settled() {
                save(incident, self.state).ok();
                continue;
            }
            let next = self.run_one(incident, index, p, runtime, ctx, sink);
            if let Err(error) = save(incident, self.state) {
                self.console.notice(format_args!("{error}"));
            }
            match next {
                Next::Go => {
                    warned |= incident.steps[index].outcome == StepOutcome::Warned;
                }
                Next::Abort => return self.abort(incident, &p.step.id),
            }
        }
        incident.progress = Progress::Completed;
        incident.ended_at = Some(Utc::now());
        if incident.rehearsal {
            incident.status = IncidentStatus::Closed;
            incident.closed_at = incident.ended_at;
        }
        if warned {
            exit_code::PARTIAL
        } else {
            exit_code::SUCCESS
        }
    }

    fn abort(&mut self, incident: &mut Incident, at: &str) -> i32 {
        incident.progress = Progress::Aborted;
        if let Err(error) = save(incident, self.state) {
            self.console.notice(format_args!("{error}"));
        }
        self.console.notice(format_args!(
            "{} {} aborted at step `{at}`; the steps done so far are recorded; continue with `planrun recover --level {} {} --resume {}`",
            if incident.rehearsal { "rehearsal" } else { "incident" },
            incident.id,
            incident.level,
            incident.plan.file,
            incident.id
        ));
        match self.cancel.reason() {
            Some(CancelReason::Terminate) => exit_code::TERMINATED,
            Some(_) => exit_code::INTERRUPTED,
            None => exit_code::FAILURE,
        }
    }

    /// A step that was running when planrun stopped: the engineer decides.
    fn interrupted(&mut self, incident: &mut Incident, index: usize, p: &Planned) -> Next {
        let record = &incident.steps[index];
        self.show(&format!(
            "step [{}] was INTERRUPTED: it was running (since {}) when planrun stopped; it may have done part of its work\n",
            p.step.id,
            record.started_at.map(time).unwrap_or_else(|| "?".into())
        ));
        if let Some(how) = self.flag_for(&p.step.id) {
            let answer = self.answer("rerun", how);
            incident.steps[index].answers.push(answer);
            return Next::Go;
        }
        let show = |t: &str| self.show(t);
        match self.prompt.choose(
            "re-run it, mark it done, skip it or abort?",
            &["rerun", "done", "skip", "abort"],
            &show,
        ) {
            Reply::Word("rerun") => {
                let answer = self.answer("rerun", "terminal");
                incident.steps[index].answers.push(answer);
                Next::Go
            }
            Reply::Word("done") => {
                let answer = self.answer("done", "terminal");
                let step = &mut incident.steps[index];
                step.answers.push(answer);
                step.outcome = StepOutcome::Done;
                Next::Go
            }
            Reply::Word("skip") if self.skip(&mut incident.steps[index]) => Next::Go,
            _ => Next::Abort,
        }
    }

    /// Asks why a step is skipped (a reason is required) and records the skip; false when
    /// the terminal went away first.
    fn skip(&self, step: &mut StepRecord) -> bool {
        let show = |t: &str| self.show(t);
        let Some(reason) = self.prompt.text("reason for skipping:", &show) else {
            return false;
        };
        step.answers.push(self.answer("skip", "terminal"));
        settle(step, StepOutcome::Skipped, None);
        step.reason = Some(reason);
        true
    }

    /// Asks for the go of a step that needs one (or takes the flag's). `Ok(true)` go,
    /// `Ok(false)` skipped (recorded), `Err` abort.
    fn go_ahead(
        &mut self,
        incident: &mut Incident,
        index: usize,
        id: &str,
        question: &str,
        yes_word: &'static str,
    ) -> Result<bool, ()> {
        if let Some(how) = self.flag_for(id) {
            self.show(&format!("answered `{yes_word}` for {id} by {how}\n"));
            let answer = self.answer(yes_word, how);
            incident.steps[index].answers.push(answer);
            return Ok(true);
        }
        if !self.prompt.interactive() {
            // The preflight makes this unreachable; fail closed all the same.
            return Err(());
        }
        let show = |t: &str| self.show(t);
        match self
            .prompt
            .choose(question, &[yes_word, "skip", "abort"], &show)
        {
            Reply::Word("skip") if self.skip(&mut incident.steps[index]) => Ok(false),
            Reply::Word(word) if word == yes_word => {
                let answer = self.answer(yes_word, "terminal");
                incident.steps[index].answers.push(answer);
                Ok(true)
            }
            _ => Err(()),
        }
    }

    fn run_one(
        &mut self,
        incident: &mut Incident,
        index: usize,
        p: &Planned,
        runtime: &tokio::runtime::Runtime,
        ctx: &RunContext,
        sink: &mut EventSink,
    ) -> Next {
        let id = p.step.id.clone();
        // A manual step: the person is the executor.
        if let Action::Manual { text } = &p.step.action {
            self.show(&format!(
                "{}\n",
                manual::instruction(text, p.owner.as_deref())
            ));
            if self.rehearse {
                settle(&mut incident.steps[index], StepOutcome::ReadOut, None);
                return Next::Go;
            }
            mark_running(incident, index, self.state);
            return match self.go_ahead(incident, index, &id, "when it is done, type done:", "done")
            {
                Ok(true) => {
                    settle(&mut incident.steps[index], StepOutcome::Done, None);
                    Next::Go
                }
                Ok(false) => Next::Go,
                Err(()) => {
                    incident.steps[index].outcome = StepOutcome::Pending;
                    Next::Abort
                }
            };
        }
        let mut step = p.step.clone();
        // Restores: pinned to the chosen set; beside the live target and swapped in, the
        // previous state kept; or, in a rehearsal, into a scratch target.
        if let (
            Action::Restore {
                source,
                set: from,
                storage,
                database,
                path,
                force,
                keep_previous,
            },
            Some(chosen),
        ) = (&mut step.action, &p.chosen)
        {
            *from = Some(chosen.set.id.to_string());
            *storage = Some(chosen.storage.clone());
            if self.rehearse {
                let (db, dir) = self.scratch_target(source);
                let is_pg = matches!(
                    self.plan.sources.iter().find(|(n, _)| n == source),
                    Some((_, Source::Postgres(_)))
                );
                if is_pg {
                    *database = Some(db.clone());
                    *path = None;
                    // Only a database this rehearsal makes is dropped by it; one that exists
                    // already (it cannot, by its name) is left for the restore to refuse.
                    let exists = self.plan.sources.iter().any(|(n, s)| {
                        n == source
                            && matches!(s, Source::Postgres(pg)
                                if crate::source::postgres::database_exists(pg, &db)
                                    .unwrap_or(true))
                    });
                    if !exists {
                        incident.scratch.push(format!("database {db}"));
                    }
                } else {
                    *database = None;
                    *path = Some(dir.display().to_string());
                    incident.scratch.push(dir.display().to_string());
                }
            } else {
                *force = true;
                *keep_previous = Some(self.suffix.clone());
            }
            let target = describe(&self.plan, &step);
            incident.steps[index].target = Some(target.clone());
            let space = self.space_check(&step, chosen);
            let mut question = format!(
                "{target} from set {} on `{}`",
                chosen.set.id, chosen.storage
            );
            if !self.rehearse {
                question.push_str(&format!(
                    "; whatever is there now is KEPT as its name + `{}`, not removed",
                    self.suffix
                ));
            }
            self.show(&format!("{question}\n"));
            if let Some((line, _)) = &space {
                self.show(&format!("{line}\n"));
            }
            if !self.rehearse {
                if chosen.newer_seen.is_some() {
                    let older = older_id(&id);
                    match self.go_ahead(
                        incident,
                        index,
                        &older,
                        "this set is OLDER than one seen or recorded; restore it anyway? type yes:",
                        "yes",
                    ) {
                        Ok(true) => {}
                        Ok(false) => return Next::Go,
                        Err(()) => return Next::Abort,
                    }
                }
                match self.go_ahead(incident, index, &id, "replace it? type yes:", "yes") {
                    Ok(true) => {}
                    Ok(false) => return Next::Go,
                    Err(()) => return Next::Abort,
                }
            }
        } else if p.confirm || (self.rehearse && matches!(step.action, Action::Notify { .. })) {
            if self.rehearse {
                self.show(&format!(
                    "rehearsal: shown, not run: {}\n",
                    describe(&self.plan, &step)
                ));
                settle(&mut incident.steps[index], StepOutcome::Shown, None);
                return Next::Go;
            }
            let question = format!("{}: run it? type yes:", describe(&self.plan, &step));
            match self.go_ahead(incident, index, &id, &question, "yes") {
                Ok(true) => {}
                Ok(false) => return Next::Go,
                Err(()) => return Next::Abort,
            }
        }

        loop {
            mark_running(incident, index, self.state);
            let started = Instant::now();
            let space_problem = p
                .chosen
                .as_ref()
                .and_then(|chosen| self.space_check(&step, chosen))
                .and_then(|(_, problem)| problem);
            let end = if let Some(problem) = space_problem {
                // Not enough room: the step fails before anything is written.
                crate::engine::executor::StepEnd {
                    outcome: crate::event::Outcome::Failed,
                    attempts: 0,
                    error: Some(problem),
                    warned: false,
                }
            } else {
                self.in_step.store(true, Ordering::Release);
                let end = runtime.block_on(async {
                    let work = run_step(ctx, &step, Phase::Steps, &self.cancel);
                    tokio::pin!(work);
                    loop {
                        tokio::select! {
                            end = &mut work => {
                                while let Ok(event) = sink.events.try_recv() {
                                    sink.handle(&event);
                                }
                                break end;
                            }
                            Some(event) = sink.events.recv() => sink.handle(&event),
                        }
                    }
                });
                self.in_step.store(false, Ordering::Release);
                end
            };
            let record = &mut incident.steps[index];
            record.duration_ms = Some(started.elapsed().as_millis() as u64);
            if !end.outcome.is_failure() {
                if let Some((_, target, kept)) =
                    sink.restored.iter().rev().find(|(s, ..)| *s == id).cloned()
                {
                    record.target = Some(target.clone());
                    record.kept = kept.map(|what| self.kept(&id, &target, &what));
                    self.restored.push(target);
                }
                settle(record, StepOutcome::Succeeded, None);
                return Next::Go;
            }
            let error = end.error.unwrap_or_else(|| end.outcome.as_str().to_owned());
            if matches!(step.action, Action::Notify { .. }) {
                self.show(&format!(
                    "warning: the notification failed ({error}); the runbook goes on\n"
                ));
                settle(record, StepOutcome::Warned, Some(error));
                return Next::Go;
            }
            settle(record, StepOutcome::Failed, Some(error.clone()));
            save(incident, self.state).ok();
            if self.cancel.reason().is_some() || !self.prompt.interactive() {
                return Next::Abort;
            }
            let show = |t: &str| self.show(t);
            self.show(&format!("step [{id}] FAILED: {error}\n"));
            match self.prompt.choose(
                "retry it, skip it or abort?",
                &["retry", "skip", "abort"],
                &show,
            ) {
                Reply::Word("retry") => {
                    let answer = self.answer("retry", "terminal");
                    incident.steps[index].answers.push(answer);
                    incident.steps[index].error = None;
                }
                Reply::Word("skip") if self.skip(&mut incident.steps[index]) => return Next::Go,
                _ => return Next::Abort,
            }
        }
    }

    /// The scratch database name and folder for `source` in a rehearsal. Always generated
    /// by planrun, never read from the plan: a name a template decides (a drill target whose
    /// `{{run.id}}` hides in a comment, a symbolic link to the live folder) could be a live
    /// target, and a rehearsal drops what it restored into. The name holds this run's id,
    /// and the folder is inside this run's fresh scratch folder, so neither can exist yet.
    fn scratch_target(&self, source: &str) -> (String, PathBuf) {
        let db: String = format!(
            "planrun_rehearse_{}_{source}",
            self.plan.run_id.to_lowercase().replace('-', "_")
        )
        .chars()
        .take(63)
        .collect();
        (db, self.plan.scratch.join("rehearse").join(source))
    }

    /// Free space where a folder restore writes, against what the set says it holds; a
    /// problem when it will not fit.
    fn space_check(&self, step: &ExecStep, chosen: &Chosen) -> Option<(String, Option<String>)> {
        let Action::Restore { source, path, .. } = &step.action else {
            return None;
        };
        let (_, config) = self.plan.sources.iter().find(|(n, _)| n == source)?;
        let target = match (config, path) {
            (Source::Postgres(_), _) => return None,
            (_, Some(p)) if p != crate::plan::ORIGINAL_PATH => PathBuf::from(p),
            (Source::Directory(d), _) => PathBuf::from(&d.path),
            (Source::Sqlite(s), _) => PathBuf::from(&s.path),
            (Source::Git(g), _) => PathBuf::from(&g.repo),
            (Source::Files(files), _) => PathBuf::from(files.first()?),
        };
        let manifest = chosen.set.manifest.as_ref()?;
        let need: u64 = manifest
            .artifacts_of(source)
            .map(|a| {
                a.facts
                    .get("bytes")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(a.size)
            })
            .sum();
        let mut probe: &Path = &target;
        let stat = loop {
            if let Ok(stat) = nix::sys::statvfs::statvfs(probe) {
                break stat;
            }
            probe = probe.parent()?;
        };
        let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
        let line = format!(
            "free space at {}: {}; the restore needs about {}",
            probe.display(),
            human_size(free),
            human_size(need)
        );
        let problem = (free < need).then(|| {
            format!(
                "not enough space at {}: {} free, about {} needed; nothing was written",
                probe.display(),
                human_size(free),
                human_size(need)
            )
        });
        Some((line, problem))
    }

    /// What a `_before_` copy holds and how to remove it.
    fn kept(&self, step: &str, target: &str, what: &str) -> Kept {
        let earlier = self
            .restored
            .iter()
            .find(|t| Path::new(target).starts_with(Path::new(t.as_str())) && t.as_str() != target);
        let holds = match earlier {
            Some(outer) => format!(
                "{target} as restored into {outer} by an earlier step of this incident, replaced by step `{step}`; the pre-incident state of {target} is inside {outer}{}",
                self.suffix
            ),
            None => format!("{target} as it was before this incident, replaced by step `{step}`"),
        };
        let remove = match what.strip_prefix("database ") {
            Some(db) => format!(
                "psql -c {}",
                shlex::try_quote(&format!(
                    "DROP DATABASE {}",
                    crate::source::postgres::quote_ident(db)
                ))
                .map(|q| q.into_owned())
                .unwrap_or_default()
            ),
            None => format!(
                "rm -rf -- {}",
                shlex::try_quote(what)
                    .map(|q| q.into_owned())
                    .unwrap_or_default()
            ),
        };
        Kept {
            what: what.to_owned(),
            holds,
            remove,
        }
    }

    /// A rehearsal's scratch targets go once it ends, whatever happened.
    fn drop_scratch(&mut self, incident: &mut Incident, _runtime: &tokio::runtime::Runtime) {
        let mut left = Vec::new();
        for item in std::mem::take(&mut incident.scratch) {
            let gone = match item.strip_prefix("database ") {
                Some(db) => self
                    .plan
                    .sources
                    .iter()
                    .filter_map(|(_, s)| match s {
                        Source::Postgres(pg) => Some(pg),
                        _ => None,
                    })
                    .any(|pg| crate::source::postgres::drop_database_if_exists(pg, db).is_ok()),
                None => match std::fs::remove_dir_all(&item) {
                    Ok(()) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::NotFound,
                },
            };
            if !gone {
                self.console
                    .notice(format_args!("warning: cannot remove scratch target {item}"));
                left.push(item);
            }
        }
        incident.scratch = left;
    }

    fn summary(&self, incident: &Incident) {
        let mut out = String::from("\n");
        let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
        for step in &incident.steps {
            *outcomes.entry(step.outcome.as_str()).or_default() += 1;
        }
        out.push_str(&format!(
            "{} {}: {}\n",
            if incident.rehearsal {
                "rehearsal"
            } else {
                "incident"
            },
            incident.id,
            outcomes
                .iter()
                .map(|(o, n)| format!("{n} {o}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        out.push_str(&format!(
            "  data-loss window (RPO): {}\n  time to recovery (RTO): {}\n",
            against(incident.rpo_achieved_s(), incident.rpo_s),
            against(incident.rto_achieved_s(), incident.rto_s)
        ));
        for step in &incident.steps {
            if let Some(kept) = &step.kept {
                out.push_str(&format!(
                    "  kept: {} ({}); remove it once nobody needs it: {}\n",
                    kept.what, kept.holds, kept.remove
                ));
            }
        }
        out.push_str(&format!(
            "  report: {}\n",
            incident.dir(self.state).join("report.md").display()
        ));
        if !incident.rehearsal && incident.progress == Progress::Completed {
            out.push_str(&format!(
                "  backups of `{}` stay frozen until the incident is closed: write down the lessons learned with `planrun incident note {} \"…\"`, then `planrun incident close {}`\n",
                incident.plan.name, incident.id, incident.id
            ));
        }
        if self.options.json {
            self.console.status(&out);
        } else {
            self.console.out(&out);
        }
    }
}

fn mark_running(incident: &mut Incident, index: usize, state: &StateDir) {
    let step = &mut incident.steps[index];
    step.outcome = StepOutcome::Running;
    step.started_at = Some(Utc::now());
    step.error = None;
    // Durable before the step starts, so that after a crash it reads "interrupted".
    let _ = incident.save(state);
}

fn settle(step: &mut StepRecord, outcome: StepOutcome, error: Option<String>) {
    let now = Utc::now();
    step.outcome = outcome;
    step.error = error;
    step.ended_at = Some(now);
    if step.duration_ms.is_none()
        && let Some(started) = step.started_at
    {
        step.duration_ms = Some((now - started).num_milliseconds().max(0) as u64);
    }
}
