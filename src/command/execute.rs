//! `planrun execute PLAN`: load and check the plan, take the plan's lock, run the engine
//! with signal handling, and feed its events to the reporters, the run log and the record.

use std::io::IsTerminal;
use std::os::unix::fs::DirBuilderExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::{CommandError, CommandResult, Console};
use crate::cancel::{Cancel, CancelReason};
use crate::cli::ExecuteArgs;
use crate::engine;
use crate::event::{Emitter, Event};
use crate::exec_plan::ExecPlan;
use crate::exit_code;
use crate::leftovers;
use crate::lock::{Holder, PlanLock};
use crate::monitor;
use crate::plan_view;
use crate::process::ProcessGroups;
use crate::redact::Redactor;
use crate::reporter::{self, Reporter};
use crate::run_log::RunLog;
use crate::run_record::RunRecord;
use crate::state_dir::StateDir;

pub fn execute(args: &ExecuteArgs, console: &mut Console) -> CommandResult {
    // A dry run resolves no secrets (they show as `***`), like `planrun plan`.
    let plan = super::rendered_plan::render(&args.input, !args.dry_run, console)?;
    let redactor = Arc::clone(&plan.redactor);
    let state_root = StateDir::locate(args.state.state_dir.as_deref())?;
    let options = engine::Options {
        concurrency: args
            .concurrency
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
        only: args.only.clone(),
    };
    let refusals = engine::check(&plan, &options);
    if !refusals.is_empty() {
        return Err(CommandError::Refused(refusals));
    }
    let state = StateDir::create(state_root)?;
    // An open incident freezes the plan: last night's damage must not become the newest set.
    if let Some(incident) = crate::recover::incident::open_for(state.root(), &plan.name).first()
        && !args.during_incident
        && !args.dry_run
    {
        return Err(CommandError::Frozen {
            plan: plan.name.clone(),
            incident: incident.id.clone(),
            level: incident.level,
            started: crate::recover::incident::time(incident.started_at),
        });
    }
    crate::storage::prune::hold(crate::recover::incident::held_sets(
        state.root(),
        &plan.name,
    ));
    let holder = Holder {
        pid: std::process::id(),
        host: crate::host::hostname(),
        run_id: plan.run_id.clone(),
        started_at: Utc::now(),
    };
    let lock = PlanLock::acquire(&state.lock(&plan.name), &plan.name, &holder)?;
    if args.dry_run {
        let mut text = plan_view::text(&plan);
        if !text.ends_with('\n') {
            text.push('\n');
        }
        if !options.only.is_empty() {
            text.push_str(&format!(
                "--only: runs {}; every other step is skipped\n",
                options.only.join(", ")
            ));
        }
        console.out(&text);
        console.notice("dry run: the lock is free; nothing was run");
        return Ok(exit_code::SUCCESS);
    }
    // The run's ledger claims the scratch folder before it exists, and then every process
    // group and temporary thing as it is made, so that if planrun is killed the next run
    // can remove them.
    let ledger = leftovers::install(
        &state,
        &plan.run_id,
        &plan.name,
        "execute",
        Some(&plan.scratch),
    )
    .map_err(CommandError::Ledger)?;
    // Holding the lock, before any step starts: stop and remove what killed runs left.
    leftovers::clean_and_report(&state, &plan.name, &plan.sources, plan.kill_grace);
    // The run's private scratch folder: created 0700 for the steps (`{{run.scratch}}`),
    // removed at the end whatever happened.
    let scratch = plan.scratch.clone();
    if let Err(error) = std::fs::DirBuilder::new().mode(0o700).create(&scratch) {
        ledger.finish(true);
        return Err(CommandError::Scratch {
            path: scratch,
            error,
        });
    }
    let detail = match (console.quiet(), console.verbose()) {
        (true, _) => reporter::Detail::Quiet,
        (false, 0) => reporter::Detail::Normal,
        (false, _) => reporter::Detail::Verbose,
    };
    // Healthchecks and metrics report the run outside planrun; they never change its outcome.
    let plan = Arc::new(plan);
    let (pinger, warning) = monitor::Pinger::start(&plan);
    let before: Vec<String> = warning.into_iter().collect();
    before
        .iter()
        .for_each(|w| console.notice(format_args!("warning: {w}")));
    let code = run(
        Arc::clone(&plan),
        &options,
        &state,
        redactor,
        args.json,
        detail,
    )
    .map(|summary| {
        let metrics_dir = args.metrics_dir.as_deref();
        let after = monitor::after_run(&plan, &state, &pinger, summary.status, metrics_dir);
        after
            .iter()
            .for_each(|w| console.notice(format_args!("warning: {w}")));
        if let Err(error) = monitor::record_warnings(&state, &plan.run_id, &before, &after) {
            console.notice(format_args!("warning: {error}"));
        }
        summary.exit_code
    });
    let removed = std::fs::remove_dir_all(&scratch).or_else(|error| match error.kind() {
        std::io::ErrorKind::NotFound => Ok(()),
        _ => Err(error),
    });
    if let Err(error) = &removed {
        console.notice(format_args!(
            "warning: cannot remove scratch folder {}: {error}",
            scratch.display()
        ));
    }
    ledger.finish(removed.is_ok());
    drop(lock);
    code
}

fn run(
    plan: Arc<ExecPlan>,
    options: &engine::Options,
    state: &StateDir,
    redactor: Arc<Redactor>,
    json: bool,
    detail: reporter::Detail,
) -> Result<engine::Summary, CommandError> {
    let runtime = super::rendered_plan::worker_runtime()?;
    let (emitter, events) = Emitter::channel(Arc::clone(&redactor));
    let log_path = state.run_log(&plan.run_id);
    // Set once the run record is on disk, so that a second signal does not exit before a
    // busy machine let the consumer write it: `history` must still see the killed run.
    let recorded = Arc::new(AtomicBool::new(false));
    let consumer = {
        let state = state.clone();
        let log_path = log_path.clone();
        let recorded = Arc::clone(&recorded);
        std::thread::spawn(move || consume(events, &state, &log_path, json, detail, &recorded))
    };
    let cancel = Cancel::new();
    let groups = ProcessGroups::global();
    let summary = runtime.block_on(async {
        if let Err(error) = watch_signals(cancel.clone(), groups.clone(), recorded) {
            eprintln!("planrun: cannot handle signals: {error}");
        }
        engine::execute(plan, options, cancel, groups, emitter).await
    });
    // The engine dropped its emitters; the consumer drains what is left and ends.
    consumer.join().ok();
    runtime.shutdown_timeout(Duration::from_millis(100));
    Ok(summary)
}

/// First SIGINT/SIGTERM: cancel the run (it cleans up and exits 130/143). Second: SIGKILL
/// every child group and exit at once; the lock goes with the process.
pub(super) fn watch_signals(
    cancel: Cancel,
    groups: ProcessGroups,
    recorded: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        let first = tokio::select! {
            _ = interrupt.recv() => CancelReason::Interrupt,
            _ = terminate.recv() => CancelReason::Terminate,
        };
        cancel.cancel(first);
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        groups.kill_all();
        // At most a second for the first record, then out whatever happened.
        for _ in 0..20 {
            if recorded.load(Ordering::Acquire) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!("planrun: second signal: killed running steps without cleanup");
        std::process::exit(match first {
            CancelReason::Terminate => exit_code::TERMINATED,
            _ => exit_code::INTERRUPTED,
        });
    });
    Ok(())
}

/// The most events handled between two writes of the run record.
const MAX_BATCH: usize = 1024;

/// Feeds every event to the run record, the run log and the reporters, in order.
fn consume(
    mut events: mpsc::Receiver<Event>,
    state: &StateDir,
    log_path: &std::path::Path,
    json: bool,
    detail: reporter::Detail,
    recorded: &AtomicBool,
) {
    let log = match RunLog::open(log_path) {
        Ok(log) => Some(log),
        Err(error) => {
            eprintln!(
                "planrun: cannot write the run log {}: {error}",
                log_path.display()
            );
            None
        }
    };
    // The live view draws with control characters: only for a person at a terminal, and
    // not when stdout carries JSON for a program.
    let mut reporters: Vec<Box<dyn Reporter>> = vec![Box::new(reporter::Human::new(
        log.as_ref().map(|_| log_path.to_path_buf()),
        std::io::stderr().is_terminal() && !json,
        detail,
    ))];
    if json {
        reporters.push(Box::new(reporter::Json::new(std::io::stdout())));
    }
    let mut record: Option<RunRecord> = None;
    let mut record_failed = false;
    while let Some(first) = events.blocking_recv() {
        // Everything already queued is handled before the record is written: a burst of
        // step ends costs one atomic write (with its fsyncs), not one each. The batch is
        // bounded so that a step printing without pause cannot hold the record back.
        let mut dirty = false;
        let mut next = Some(first);
        let mut batch = 0;
        while let Some(event) = next {
            dirty |= match &mut record {
                Some(record) => record.apply(&event),
                None => {
                    record = RunRecord::from_start(&event);
                    record.is_some()
                }
            };
            if let Some(log) = &log {
                log.event(&event);
            }
            for reporter in &mut reporters {
                reporter.event(&event);
            }
            batch += 1;
            next = if batch < MAX_BATCH {
                events.try_recv().ok()
            } else {
                None
            };
        }
        if dirty && let Some(record) = &record {
            match record.save(state) {
                Ok(()) => recorded.store(true, Ordering::Release),
                Err(error) if !record_failed => {
                    record_failed = true;
                    eprintln!("planrun: {error}");
                }
                Err(_) => {}
            }
        }
    }
}
