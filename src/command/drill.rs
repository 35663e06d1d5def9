//! `planrun drill PLAN`: hold the plan's lock, restore the newest set into scratch targets,
//! check it, write the report, print its summary, and clean up (also after SIGINT/SIGTERM;
//! after kill -9 the next drill or run does, from the ledger).

use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use chrono::Utc;

use super::{CommandError, CommandResult, Console};
use crate::cancel::{Cancel, CancelReason};
use crate::cli::DrillArgs;
use crate::drill::DrillReport;
use crate::drill::procedure::{self, DrillOptions};
use crate::drill::report::{self, millis};
use crate::exit_code;
use crate::leftovers;
use crate::lock::{Holder, PlanLock};
use crate::pipeline::{self, RenderOptions};
use crate::process::ProcessGroups;
use crate::state_dir::StateDir;

pub fn run(args: &DrillArgs, console: &mut Console) -> CommandResult {
    let loaded = pipeline::load(&args.input.plan)?;
    if loaded.plan.drill.is_none() {
        return Err(CommandError::NoDrill {
            plan: loaded.plan.name.clone(),
        });
    }
    let state = StateDir::locate(args.state.state_dir.as_deref()).and_then(StateDir::create)?;
    let vars: Vec<(String, String)> = args
        .input
        .vars
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    // Rendered twice: once to read `drill.scratch_dir`, then with the drill's scratch folder
    // as `{{run.scratch}}`, so every relative and `{{run.scratch}}` target lands inside it.
    let mut options = RenderOptions::for_now(vars, true);
    let first = pipeline::render(&loaded, &options)?;
    let scratch_dir = first
        .drill
        .as_ref()
        .and_then(|d| d.scratch_dir.clone())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| report::drills_dir(&state).join("scratch"));
    let scratch_dir = std::path::absolute(&scratch_dir).unwrap_or(scratch_dir);
    options.scratch = scratch_dir.join(format!("drill-{}", options.run_id));
    let plan = pipeline::render(&loaded, &options)?;
    console.mask_with(Arc::clone(&plan.redactor));

    let holder = Holder {
        pid: std::process::id(),
        host: crate::host::hostname(),
        run_id: plan.run_id.clone(),
        started_at: Utc::now(),
    };
    let lock = PlanLock::acquire(&state.lock(&plan.name), &plan.name, &holder)?;
    let ledger = leftovers::install(
        &state,
        &plan.run_id,
        &plan.name,
        "drill",
        Some(&plan.scratch),
    )
    .map_err(CommandError::Ledger)?;
    leftovers::clean_and_report(
        &state,
        &plan.name,
        &procedure::scratch_servers(&plan),
        plan.kill_grace,
    );
    let made = std::fs::create_dir_all(&scratch_dir)
        .and_then(|()| std::fs::DirBuilder::new().mode(0o700).create(&plan.scratch));
    if let Err(error) = made {
        ledger.finish(true);
        return Err(CommandError::Scratch {
            path: plan.scratch.clone(),
            error,
        });
    }
    // Healthchecks hear of a drill as of a nightly: /start now, success or /fail at the end.
    let (pinger, warning) = crate::monitor::Pinger::start(&plan);
    if let Some(warning) = warning {
        console.notice(format_args!("warning: {warning}"));
    }
    let drill_options = DrillOptions {
        set: args.set.clone(),
        storage: args.storage.clone(),
        keep: args.keep,
    };
    let runtime = super::rendered_plan::worker_runtime()?;
    let cancel = Cancel::new();
    let plan = Arc::new(plan);
    let report = runtime.block_on(async {
        // The same handling as `execute`: the first signal cancels (the drill cleans up and
        // exits 130/143), a second kills the tools and exits at once, leaving the scratch
        // database and folder in the ledger for the next drill or run.
        let nothing_to_record = Arc::new(AtomicBool::new(true));
        if let Err(error) = super::execute::watch_signals(
            cancel.clone(),
            ProcessGroups::global(),
            nothing_to_record,
        ) {
            console.notice(format_args!("cannot handle signals: {error}"));
        }
        procedure::run(Arc::clone(&plan), &drill_options, &cancel).await
    });
    runtime.shutdown_timeout(Duration::from_millis(100));
    let cleaned = args.keep || !plan.scratch.exists();
    ledger.finish(cleaned);
    drop(lock);

    let dir = report::drills_dir(&state).join(&report.drill_id);
    let mut written = vec![dir.clone()];
    written.extend(args.report.clone());
    let mut code = report.result.exit_code();
    for dir in &written {
        if let Err(error) = report.write(dir) {
            console.notice(format_args!(
                "cannot write the drill report into {}: {error}",
                dir.display()
            ));
            code = exit_code::FAILURE;
        }
    }
    if args.json {
        let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
        text.push('\n');
        console.out(&text);
    } else {
        console.out(&summary(&report));
        let shown = written.last().unwrap_or(&dir);
        console.line(format_args!(
            "report: {}",
            shown.join("report.md").display()
        ));
    }
    for warning in report_outside(&plan, &pinger, &report, &summary(&report)) {
        console.notice(format_args!("warning: {warning}"));
    }
    Ok(match cancel.reason() {
        Some(CancelReason::Terminate) => exit_code::TERMINATED,
        Some(_) => exit_code::INTERRUPTED,
        None => code,
    })
}

/// Tells the world outside how the drill went: the healthchecks ping (success only when
/// every check passed within the objectives; the summary is the body of a `/fail`), and the
/// last passing drill in the metrics file. Neither changes the drill's exit code: what
/// fails is a warning.
fn report_outside(
    plan: &crate::exec_plan::ExecPlan,
    pinger: &crate::monitor::Pinger,
    report: &DrillReport,
    summary: &str,
) -> Vec<String> {
    use crate::drill::report::DrillResult;
    use crate::event::RunStatus;
    let status = match report.result {
        DrillResult::Passed => RunStatus::Succeeded,
        DrillResult::OverObjective | DrillResult::Failed => RunStatus::Failed,
    };
    let mut warnings: Vec<String> = pinger.finish(status, summary).into_iter().collect();
    if report.result != DrillResult::Failed
        && let Some(dir) = &plan.monitoring.textfile_dir
        && let Err(error) = crate::metrics::record_drill_success(dir, &plan.name, report.started_at)
    {
        warnings.push(format!(
            "cannot write the metrics file in {}: {error}",
            dir.display()
        ));
    }
    warnings
}

/// The summary table printed after a drill.
fn summary(report: &DrillReport) -> String {
    let mut text = format!("drill {} of plan {}", report.drill_id, report.plan);
    match (&report.set, &report.storage) {
        (Some(set), Some(storage)) => {
            let age = report
                .set_age
                .as_ref()
                .map(|t| format!(" (age {})", millis(t.measured_ms)))
                .unwrap_or_default();
            text.push_str(&format!(": set {set} from {storage}{age}\n"));
        }
        _ => text.push('\n'),
    }
    if let Some(failure) = &report.failure {
        text.push_str(&format!("could not run: {failure}\n"));
    }
    if !report.checks.is_empty() {
        let width = report
            .checks
            .iter()
            .map(|c| c.name.chars().count())
            .max()
            .unwrap_or(5)
            .clamp(5, 60);
        text.push_str(&format!("  #  {:<width$}  RESULT  DETAIL\n", "CHECK"));
        for (i, check) in report.checks.iter().enumerate() {
            let name: String = check.name.chars().take(60).collect();
            text.push_str(&format!(
                "{:>3}  {name:<width$}  {:<6}  {}\n",
                i + 1,
                if check.passed { "pass" } else { "FAIL" },
                check.message
            ));
        }
    }
    let timing = |label: &str, t: &report::Timing| {
        let objective = match (t.objective_ms, t.within) {
            (Some(o), Some(true)) => format!(" (objective {}: within)", millis(o)),
            (Some(o), _) => format!(" (objective {}: OVER)", millis(o)),
            _ => String::new(),
        };
        format!("{label} {}{objective}", millis(t.measured_ms))
    };
    let mut timings = vec![timing("restore", &report.restore)];
    if let Some(age) = &report.set_age {
        timings.push(timing("set age", age));
    }
    text.push_str(&timings.join(" · "));
    text.push('\n');
    for line in &report.kept {
        text.push_str(&format!("kept: {line}\n"));
    }
    for line in report.cleanup.iter().filter(|l| l.starts_with("could not")) {
        text.push_str(&format!("warning: {line}\n"));
    }
    text.push_str(&format!("result: {}\n", report.result.as_str()));
    text
}

/// `planrun history --drills`: past drills from their reports, newest first.
pub fn history(
    args: &crate::cli::HistoryArgs,
    state: &StateDir,
    console: &mut Console,
) -> CommandResult {
    let (reports, errors) = report::list(state);
    for error in &errors {
        console.notice(format_args!("warning: {error}"));
    }
    let reports: Vec<DrillReport> = reports
        .into_iter()
        .filter(|r| args.plan.as_ref().is_none_or(|plan| &r.plan == plan))
        .collect();
    if args.json {
        let mut text = serde_json::to_string_pretty(&reports).unwrap_or_default();
        text.push('\n');
        console.out(&text);
        return Ok(exit_code::SUCCESS);
    }
    if reports.is_empty() {
        console.notice(format_args!(
            "no drills recorded in {}",
            state.root().display()
        ));
        return Ok(exit_code::SUCCESS);
    }
    let mut text = String::from(
        "DRILL ID                            PLAN          RESULT          STARTED               RESTORE   SET AGE   CHECKS\n",
    );
    for r in &reports {
        let passed = r.checks.iter().filter(|c| c.passed).count();
        text.push_str(&format!(
            "{:<35} {:<13} {:<15} {}  {:>8}  {:>8}  {passed}/{} passed\n",
            r.drill_id,
            r.plan,
            r.result.as_str(),
            r.started_at.format("%Y-%m-%d %H:%M:%SZ"),
            millis(r.restore.measured_ms),
            r.set_age
                .as_ref()
                .map_or("-".into(), |t| millis(t.measured_ms)),
            r.checks.len()
        ));
    }
    console.out(&text);
    Ok(exit_code::SUCCESS)
}
