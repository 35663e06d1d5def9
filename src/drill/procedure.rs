//! One drill, start to end: choose the set, refuse live targets and a full disk, restore
//! every drilled source into its scratch target, run the checks, time it against the
//! objectives, and clean up whatever happened. Nothing here prints: the result is a
//! [`DrillReport`], and the command prints it.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;

use super::evaluate::{self, CheckScope, Target};
use super::report::{DrillResult, REPORT_FORMAT, Timing};
use super::{CheckResult, DrillReport};
use crate::cancel::Cancel;
use crate::engine::executor::{RunContext, run_step};
use crate::event::{Emitter, Event, Outcome, Phase};
use crate::exec_plan::{Action, ExecPlan, ExecStep};
use crate::plan::{CheckStep, Drill, OnFailure, PostgresSource, Source};
use crate::process::ProcessGroups;
use crate::source::{RestoreTarget, postgres};
use crate::storage::{SetSummary, Store, newest_restorable_with_all, restore_source};

/// What the command line adds to the plan's `drill:`.
#[derive(Clone, Debug, Default)]
pub struct DrillOptions {
    /// `--set ID` or `latest` (the default).
    pub set: Option<String>,
    /// `--storage NAME`, over `drill.storage`.
    pub storage: Option<String>,
    /// `--keep`: leave the scratch database and folder for inspection.
    pub keep: bool,
}

/// The drill's scratch targets, resolved: a relative `path` is inside the drill's scratch
/// folder, a postgres target is a database on the source's server unless it names its own.
pub fn targets(plan: &ExecPlan, drill: &Drill) -> BTreeMap<String, Target> {
    drill
        .restore
        .iter()
        .map(|(name, t)| {
            let path = t.path.as_ref().map(|p| {
                let p = Path::new(p);
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    plan.scratch.join(p)
                }
            });
            let target = Target {
                database: t.database.clone(),
                host: t.host.clone(),
                port: t.port,
                path,
            };
            (name.clone(), target)
        })
        .collect()
}

/// The postgres connections a drill's scratch databases live on, as sources: cleaning up
/// after a killed drill needs them to find the password and server of each database.
pub fn scratch_servers(plan: &ExecPlan) -> Vec<(String, Source)> {
    let mut out = plan.sources.clone();
    let Some(drill) = &plan.drill else { return out };
    for (name, target) in targets(plan, drill) {
        if let Some((_, Source::Postgres(pg))) = plan.sources.iter().find(|(n, _)| *n == name) {
            let (pg, _) = target.connection(pg);
            out.push((format!("{name} (drill)"), Source::Postgres(pg)));
        }
    }
    out
}

/// Why a target is the live source, or inside it, if it is. Checked again here at run
/// time, on the rendered values, before anything is restored.
pub fn live_target(source: &Source, target: &Target) -> Option<String> {
    match source {
        Source::Postgres(pg) => {
            let (scratch, database) = target.connection(pg);
            let same_server = scratch.host == pg.host && scratch.port == pg.port;
            (same_server && database == pg.database).then(|| {
                format!(
                    "the scratch database `{database}` is the source database itself on the same server"
                )
            })
        }
        other => {
            let path = target.path.as_ref()?;
            let sources = crate::analyzer::source_paths(other);
            let shown = path.display().to_string();
            sources
                .into_iter()
                .find(|s| {
                    crate::analyzer::overlaps(&shown, s) || canonical_overlap(path, Path::new(s))
                })
                .map(|s| format!("the scratch path {shown} is the source `{s}` or overlaps it"))
        }
    }
}

/// Overlap after resolving links, for the parts of both paths that exist.
fn canonical_overlap(a: &Path, b: &Path) -> bool {
    let resolve = |p: &Path| {
        let mut existing = p.to_path_buf();
        let mut rest = Vec::new();
        while !existing.exists() {
            match (existing.file_name(), existing.parent()) {
                (Some(name), Some(parent)) => {
                    rest.push(name.to_owned());
                    existing = parent.to_path_buf();
                }
                _ => return None,
            }
        }
        let mut path = existing.canonicalize().ok()?;
        path.extend(rest.iter().rev());
        Some(path)
    };
    match (resolve(a), resolve(b)) {
        (Some(a), Some(b)) => a.starts_with(&b) || b.starts_with(&a),
        _ => false,
    }
}

/// What the drill created, for cleanup.
#[derive(Default)]
struct Made {
    databases: Vec<(PostgresSource, String)>,
}

/// Runs the drill of `plan` (which has a `drill:` section, rendered with the drill's scratch
/// folder as `plan.scratch`, created by the caller). Cleans up what it made unless
/// `options.keep`.
pub async fn run(plan: Arc<ExecPlan>, options: &DrillOptions, cancel: &Cancel) -> DrillReport {
    let started_at = Utc::now();
    let mut report = DrillReport {
        format: REPORT_FORMAT,
        drill_id: plan.run_id.clone(),
        plan: plan.name.clone(),
        plan_file: std::path::absolute(&plan.file).unwrap_or_else(|_| plan.file.clone()),
        plan_digest: plan.digest.clone(),
        host: crate::host::hostname(),
        started_at,
        finished_at: started_at,
        storage: None,
        set: None,
        set_started_at: None,
        restore: Timing::default(),
        set_age: None,
        checks: Vec::new(),
        result: DrillResult::Failed,
        failure: None,
        kept: Vec::new(),
        cleanup: Vec::new(),
    };
    let mut made = Made::default();
    if let Err(failure) = drill(&plan, options, cancel, &mut report, &mut made).await {
        report.failure = Some(failure);
    }
    if let Some(reason) = cancel.reason() {
        report.failure.get_or_insert_with(|| {
            format!("the drill was {}", crate::engine::interrupted_word(reason))
        });
    }
    clean_up(&plan, options, &made, &mut report).await;
    report.finished_at = Utc::now();
    report.decide();
    report
}

async fn drill(
    plan: &Arc<ExecPlan>,
    options: &DrillOptions,
    cancel: &Cancel,
    report: &mut DrillReport,
    made: &mut Made,
) -> Result<(), String> {
    let drill = plan
        .drill
        .clone()
        .ok_or("the plan has no `drill:` section")?;
    let named = options.storage.as_deref().or(drill.storage.as_deref());
    let (storage_name, store) =
        crate::storage::choice::open_read_storage(plan, named).map_err(|e| e.to_string())?;
    report.storage = Some(storage_name);
    let sets = store
        .list_sets(&plan.name)
        .await
        .map_err(|e| e.to_string())?;
    let set = choose_set(&sets, &drill, options.set.as_deref(), &store)?.clone();
    report.set = Some(set.id.to_string());
    let set_started = set.id.started_at();
    report.set_started_at = Some(set_started);
    let objectives = plan.objectives.clone().unwrap_or(crate::plan::Objectives {
        rpo: None,
        rto: None,
    });
    let age = (report.started_at - set_started).num_milliseconds().max(0) as u64;
    report.set_age = Some(Timing::new(age, objectives.rpo.map(|d| d.as_std())));

    let targets = targets(plan, &drill);
    let source_of = |name: &str| {
        plan.sources
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| format!("the plan has no source `{name}`"))
    };
    // Refusals first, before anything is written anywhere.
    for (name, target) in &targets {
        let source = source_of(name)?;
        if let Some(why) = live_target(&source, target) {
            return Err(format!(
                "refusing to drill `{name}`: {why}; a drill restores into a scratch place"
            ));
        }
        if let Source::Postgres(pg) = &source {
            let (server, database) = target.connection(pg);
            let exists =
                tokio::task::spawn_blocking(move || postgres::database_exists(&server, &database))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("cannot reach the scratch server of `{name}`: {e}"))?;
            if exists {
                return Err(format!(
                    "refusing to drill `{name}`: the scratch database `{}` already exists, and a drill only drops what it created",
                    target.database.as_deref().unwrap_or_default()
                ));
            }
        }
    }
    check_free_space(plan, &set, &targets, &store)?;

    let scope_set = Some((&store, &set));
    let restore_started = Instant::now();
    // The sources restore side by side, as they would in a disaster: the database is mostly
    // the server's work and the folders planrun's, so together they take about the longer
    // of the two rather than their sum.
    let mut restores = Vec::new();
    for (name, target) in &targets {
        let source = source_of(name)?;
        let (config, restore_target) = match &source {
            Source::Postgres(pg) => {
                let (server, database) = target.connection(pg);
                // Claimed before it exists, so a drill killed from here on leaves a name
                // the next drill or run can prove is a leftover and drop.
                crate::leftovers::claim_database(&server, &database);
                made.databases.push((server.clone(), database.clone()));
                (
                    Source::Postgres(server),
                    RestoreTarget {
                        database: Some(database),
                        path: None,
                        force: false,
                        keep_previous: None,
                    },
                )
            }
            other => (
                other.clone(),
                RestoreTarget {
                    database: None,
                    path: target.path.clone(),
                    force: false,
                    keep_previous: None,
                },
            ),
        };
        let (store, set) = (&store, &set);
        restores.push(async move {
            let started = Instant::now();
            let outcome = restore_source(
                store,
                &plan.name,
                name,
                &config,
                Some(set.id.as_str()),
                restore_target,
                &plan.scratch,
            )
            .await;
            (name, started.elapsed(), outcome)
        });
    }
    let mut all = pin!(futures::future::join_all(restores));
    let outcomes = tokio::select! {
        outcomes = all.as_mut() => outcomes,
        _ = cancel.cancelled() => {
            // Restores stopped halfway: dropping their databases (WITH FORCE) ends the
            // tools writing into them; then the restores are let finish failing.
            drop_databases(made, &mut report.cleanup).await;
            let _ = tokio::time::timeout(plan.kill_grace, all.as_mut()).await;
            return Ok(());
        }
    };
    for (name, elapsed, outcome) in outcomes {
        let mut result = CheckResult::new(&format!("restore {name}"), "restore");
        match outcome {
            Ok((_, restored)) => {
                let (expected, actual) = restore_facts(&set, name, &restored.facts);
                result = result.compared(expected, actual, true);
                result.message = format!("restored into {}", restored.target);
            }
            Err(error) => {
                result = result.failed("a restore".into(), error.to_string());
            }
        }
        result.duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        report.checks.push(result);
    }
    let restore_ms = u64::try_from(restore_started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report.restore = Timing::new(restore_ms, objectives.rto.map(|d| d.as_std()));

    let scope = CheckScope {
        plan,
        targets: &targets,
        set: scope_set,
    };
    for (i, check) in drill.checks.iter().enumerate() {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let result = match &check.run {
            Some(argv) => run_check(plan, check, argv, &targets, i, cancel).await,
            None => evaluate::evaluate(check, &scope).await,
        };
        report.checks.push(result);
    }
    Ok(())
}

/// The set to drill: `--set ID`, else the newest restorable set holding every drilled source.
fn choose_set<'a>(
    sets: &'a [SetSummary],
    drill: &Drill,
    selector: Option<&str>,
    store: &Store,
) -> Result<&'a SetSummary, String> {
    let sources: Vec<&str> = drill.restore.keys().map(String::as_str).collect();
    match selector {
        None | Some("latest") => newest_restorable_with_all(sets, &sources).ok_or_else(|| {
            format!(
                "no restorable set in {} holds every drilled source ({})",
                store.location(),
                sources.join(", ")
            )
        }),
        Some(id) => {
            let set = sets
                .iter()
                .find(|s| s.id.as_str() == id)
                .ok_or_else(|| format!("no set `{id}` in {}", store.location()))?;
            if !set.status.restorable() {
                return Err(format!(
                    "set `{id}` is {}: it cannot be drilled",
                    set.status
                ));
            }
            if let Some(missing) = sources.iter().find(|s| !set.might_hold(s)) {
                return Err(format!("set `{id}` does not hold source `{missing}`"));
            }
            Ok(set)
        }
    }
}

/// What a restore proved, as expected and actual: the recorded facts it checks itself (the
/// git HEAD) and the counts it saw.
fn restore_facts(
    set: &SetSummary,
    source: &str,
    restored: &crate::storage::Facts,
) -> (String, String) {
    let recorded = set
        .manifest
        .as_ref()
        .and_then(|m| m.artifacts_of(source).next())
        .map(|a| a.facts.clone())
        .unwrap_or_default();
    if let (Some(head), Some(found)) = (recorded.get("head"), restored.get("head")) {
        return (format!("HEAD {head}"), format!("HEAD {found}"));
    }
    let artifacts = set
        .manifest
        .as_ref()
        .map_or(0, |m| m.artifacts_of(source).count());
    (
        format!("{artifacts} artifact(s) with the manifest's sha256"),
        "sha256 matched, restored".into(),
    )
}

/// Refuses a restore the scratch folder's file system cannot hold: the set's unpacked size
/// (what path targets receive, plus the artifacts when they must be downloaded first, all at
/// once since the sources restore side by side) plus 10%.
fn check_free_space(
    plan: &ExecPlan,
    set: &SetSummary,
    targets: &BTreeMap<String, Target>,
    store: &Store,
) -> Result<(), String> {
    let Some(manifest) = &set.manifest else {
        return Ok(());
    };
    let remote = manifest
        .artifacts
        .first()
        .is_some_and(|a| store.local_path(&plan.name, &set.id, &a.name).is_none());
    let mut unpacked = 0u64;
    let mut downloaded = 0u64;
    for (name, target) in targets {
        for artifact in manifest.artifacts_of(name) {
            downloaded += artifact.size;
            if target.path.is_some() {
                unpacked += artifact
                    .facts
                    .get("bytes")
                    .and_then(|b| b.as_u64())
                    .unwrap_or(artifact.size);
            }
        }
    }
    if remote {
        unpacked += downloaded;
    }
    let needed = unpacked + unpacked / 10;
    let stats = nix::sys::statvfs::statvfs(&plan.scratch).map_err(|e| {
        format!(
            "cannot read the free space of {}: {e}",
            plan.scratch.display()
        )
    })?;
    let free = stats.blocks_available() as u64 * stats.fragment_size() as u64;
    if free < needed {
        let size = crate::command::human_size;
        return Err(format!(
            "not enough free space in {}: the drill needs {} (the set's unpacked size, {}, plus 10%) and {} is free",
            plan.scratch.display(),
            size(needed),
            size(unpacked),
            size(free)
        ));
    }
    Ok(())
}

/// A `run` check: the program runs through the engine's executor as a step of its own,
/// with the scratch targets in its environment, and passes when it exits 0.
async fn run_check(
    plan: &Arc<ExecPlan>,
    check: &CheckStep,
    argv: &[String],
    targets: &BTreeMap<String, Target>,
    index: usize,
    cancel: &Cancel,
) -> CheckResult {
    let (name, kind) = evaluate::describe(check);
    let mut result = CheckResult::new(&name, kind);
    let Some((program, args)) = argv.split_first() else {
        return result.failed("exit code 0".into(), "an empty command");
    };
    let (emitter, mut events) = Emitter::channel(Arc::clone(&plan.redactor));
    let ctx = RunContext::new(Arc::clone(plan), ProcessGroups::global(), emitter);
    let step = ExecStep {
        id: format!("drill.check.{}", index + 1),
        name: Some(name.clone()),
        needs: Vec::new(),
        skip: None,
        timeout: Some(
            check
                .timeout
                .map_or(evaluate::DEFAULT_TIMEOUT, |t| t.as_std()),
        ),
        retries: 0,
        retry_delay: std::time::Duration::from_secs(1),
        on_failure: OnFailure::Fail,
        rollback: Vec::new(),
        env: target_env(targets),
        cwd: None,
        action: Action::Run {
            program: program.clone(),
            args: args.to_vec(),
        },
        redactor: Arc::clone(&plan.redactor),
    };
    // The last lines the command printed explain a failure better than its exit code.
    let collector = tokio::spawn(async move {
        let mut tail = VecDeque::new();
        while let Some(event) = events.recv().await {
            if let Event::StepOutput { line, .. } = event {
                if tail.len() == 3 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
        tail
    });
    let started = Instant::now();
    let end = run_step(&ctx, &step, Phase::Steps, cancel).await;
    drop(ctx);
    let tail: Vec<String> = collector.await.unwrap_or_default().into();
    let passed = end.outcome == Outcome::Succeeded;
    let actual = end.error.clone().unwrap_or_else(|| "exit code 0".into());
    result = result.compared("exit code 0".into(), actual.clone(), passed);
    if !passed && !tail.is_empty() {
        result.message = format!("{actual}: {}", tail.join(" / "));
    }
    result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// `PLANRUN_DRILL_<SOURCE>_DATABASE`, `_HOST`, `_PORT`, `_PATH`: the scratch targets, for
/// `run` checks (values reach programs only through the environment).
pub fn target_env(targets: &BTreeMap<String, Target>) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for (name, target) in targets {
        let key: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        let prefix = format!("PLANRUN_DRILL_{key}");
        if let Some(database) = &target.database {
            env.push((format!("{prefix}_DATABASE"), database.clone()));
        }
        if let Some(host) = &target.host {
            env.push((format!("{prefix}_HOST"), host.clone()));
        }
        if let Some(port) = target.port {
            env.push((format!("{prefix}_PORT"), port.to_string()));
        }
        if let Some(path) = &target.path {
            env.push((format!("{prefix}_PATH"), path.display().to_string()));
        }
    }
    env
}

async fn drop_databases(made: &mut Made, cleanup: &mut Vec<String>) {
    for (server, database) in std::mem::take(&mut made.databases) {
        let (s, d) = (server.clone(), database.clone());
        let dropped =
            tokio::task::spawn_blocking(move || postgres::drop_database_if_exists(&s, &d))
                .await
                .unwrap_or_else(|join| {
                    Err(crate::source::SourceError::Io {
                        action: "drop",
                        path: PathBuf::from(&database),
                        source: std::io::Error::other(join.to_string()),
                    })
                });
        match dropped {
            Ok(_) => {
                crate::leftovers::release_database(&database);
                cleanup.push(format!("dropped database {database}"));
            }
            // The claim stays in the ledger, so the next drill or run drops it.
            Err(error) => cleanup.push(format!(
                "could not drop database {database} (the next drill or run will): {error}"
            )),
        }
    }
}

async fn clean_up(plan: &ExecPlan, options: &DrillOptions, made: &Made, report: &mut DrillReport) {
    if options.keep {
        for (server, database) in &made.databases {
            // Kept on purpose: released from the ledger, so that no later run takes them
            // for a killed drill's leftovers.
            crate::leftovers::release_database(database);
            let host = server.host.as_deref().unwrap_or("localhost");
            let port = server.port.unwrap_or(5432);
            report.kept.push(format!(
                "database `{database}` on {host}:{port}: reach it with `psql -h {host} -p {port} {database}`, remove it with `dropdb -h {host} -p {port} '{database}'`"
            ));
        }
        report.kept.push(format!(
            "scratch folder {}: remove it with `rm -rf '{}'`",
            plan.scratch.display(),
            plan.scratch.display()
        ));
        return;
    }
    let mut made = Made {
        databases: made.databases.clone(),
    };
    drop_databases(&mut made, &mut report.cleanup).await;
    match std::fs::remove_dir_all(&plan.scratch) {
        Ok(()) => report
            .cleanup
            .push(format!("removed scratch folder {}", plan.scratch.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => report.cleanup.push(format!(
            "could not remove scratch folder {}: {error}",
            plan.scratch.display()
        )),
    }
}
