//! Prometheus metrics for node_exporter's textfile collector: after every run planrun
//! writes `planrun-<plan>.prom` (one file per plan, so plans never race on a shared file),
//! atomically (temp name in the same folder, fsync, rename), with the series in [`FAMILIES`].
//!
//! Times are exported as timestamps, never ages: a file written by the last run does not
//! age by itself, so an age would stop rising exactly when runs stop. Alerts compute ages
//! with `time()`. Every series carries the `plan` label.
//!
//! A series a run does not know (the last drill's success) is kept from the previous file;
//! the drill updates it with [`record_drill_success`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::event::RunStatus;
use crate::exec_plan::ExecPlan;
use crate::run_record::{self, RunRecord};
use crate::state_dir::StateDir;
use crate::storage::{SetStatus, Store, newest_restorable_with_all};

/// How long listing one storage for its metrics may take.
pub const STORAGE_LIST_LIMIT: Duration = Duration::from_secs(30);

const LAST_RUN: &str = "planrun_last_run_timestamp_seconds";
const LAST_SUCCESS: &str = "planrun_last_success_timestamp_seconds";
const RUN_DURATION: &str = "planrun_run_duration_seconds";
const RUN_STATUS: &str = "planrun_run_status";
const STEP_DURATION: &str = "planrun_step_duration_seconds";
const SET_BYTES: &str = "planrun_backup_set_bytes";
const SETS: &str = "planrun_backup_sets";
const NEWEST_SET: &str = "planrun_newest_set_timestamp_seconds";
const LAST_DRILL: &str = "planrun_last_drill_success_timestamp_seconds";
const RPO: &str = "planrun_rpo_seconds";

/// Every family planrun writes, in file order, with its help text. All are gauges.
pub const FAMILIES: [(&str, &str); 10] = [
    (LAST_RUN, "When the plan's last run ended, in Unix time."),
    (
        LAST_SUCCESS,
        "When the plan's last successful run ended, in Unix time.",
    ),
    (RUN_DURATION, "How long the plan's last run took."),
    (
        RUN_STATUS,
        "1 for the status the plan's last run ended with, 0 for the others.",
    ),
    (
        STEP_DURATION,
        "How long each step of the plan's last run took.",
    ),
    (
        SET_BYTES,
        "Bytes of the newest restorable backup set in each storage.",
    ),
    (SETS, "Backup sets in each storage, by status."),
    (
        NEWEST_SET,
        "When the backup of the newest restorable set in each storage started, in Unix time.",
    ),
    (
        LAST_DRILL,
        "When the plan's last successful restore drill ended, in Unix time.",
    ),
    (
        RPO,
        "The plan's recovery point objective (recovery.objectives.rpo).",
    ),
];

/// The statuses `planrun_run_status` has a series for.
const RUN_STATUSES: [RunStatus; 4] = [
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::Partial,
    RunStatus::Interrupted,
];
const SET_STATUSES: [SetStatus; 4] = [
    SetStatus::Complete,
    SetStatus::Verified,
    SetStatus::Incomplete,
    SetStatus::Damaged,
];

/// What one storage holds, for the set series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageMetrics {
    pub name: String,
    pub counts: BTreeMap<String, u64>,
    /// The newest restorable set: its bytes and when its backup started.
    pub newest: Option<(u64, DateTime<Utc>)>,
}

/// What a finished run exports.
#[derive(Clone, Debug, PartialEq)]
pub struct RunMetrics {
    pub plan: String,
    pub finished_at: DateTime<Utc>,
    pub duration: Duration,
    pub status: RunStatus,
    /// Each step's duration, in the order they ended (a later id replaces an earlier one).
    pub steps: Vec<(String, Duration)>,
    /// The newest successful run of the plan, this one included.
    pub last_success: Option<DateTime<Utc>>,
    pub storages: Vec<StorageMetrics>,
    pub rpo: Option<Duration>,
}

impl RunMetrics {
    /// The metrics of the run `record` describes, with the plan's earlier successes from the
    /// state directory.
    pub fn from_record(
        record: &RunRecord,
        state: &StateDir,
        storages: Vec<StorageMetrics>,
        rpo: Option<Duration>,
    ) -> RunMetrics {
        let (records, _) = run_record::list(state);
        let last_success = records
            .iter()
            .filter(|r| r.plan == record.plan && r.status == RunStatus::Succeeded)
            .filter_map(|r| r.finished_at)
            .max();
        RunMetrics {
            plan: record.plan.clone(),
            finished_at: record.finished_at.unwrap_or_else(Utc::now),
            duration: Duration::from_millis(record.duration_ms.unwrap_or_default()),
            status: record.status,
            steps: record
                .steps
                .iter()
                .filter_map(|s| Some((s.id.clone(), Duration::from_millis(s.duration_ms?))))
                .collect(),
            last_success,
            storages,
            rpo,
        }
    }
}

/// Writes the metrics of the run that just ended (read back from its record) to
/// `DIR/planrun-<plan>.prom`. Blocking: it lists the storages on a runtime of its own.
/// Returns the warnings: a storage left out, or a file that could not be written.
pub fn write_after_run(plan: &ExecPlan, state: &StateDir, dir: &Path) -> Vec<String> {
    let record = match RunRecord::load(&state.run_record(&plan.run_id)) {
        Ok(record) => record,
        Err(error) => return vec![format!("metrics: not written: {error}")],
    };
    let (storages, mut warnings) =
        crate::monitor::block_on(storage_metrics(plan)).unwrap_or_default();
    let metrics = RunMetrics::from_record(&record, state, storages, plan.monitoring.rpo);
    match write_run(dir, &metrics) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => warnings.push(format!(
            "metrics: cannot write {}: the folder does not exist (point it at node_exporter's \
             --collector.textfile.directory)",
            file_path(dir, &plan.name).display()
        )),
        Err(error) => warnings.push(format!(
            "metrics: cannot write {}: {error}",
            file_path(dir, &plan.name).display()
        )),
    }
    warnings
}

/// `DIR/planrun-<plan>.prom`.
pub fn file_path(dir: &Path, plan: &str) -> PathBuf {
    dir.join(format!("planrun-{plan}.prom"))
}

/// Lists every storage of the plan for the set series; a storage that cannot be listed in
/// time is left out and named in the warnings.
pub async fn storage_metrics(plan: &ExecPlan) -> (Vec<StorageMetrics>, Vec<String>) {
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for (name, storage) in &plan.storage {
        let listed = match Store::open(name, storage) {
            Ok(store) => {
                match tokio::time::timeout(STORAGE_LIST_LIMIT, store.list_sets(&plan.name)).await {
                    Ok(Ok(sets)) => Ok(sets),
                    Ok(Err(error)) => Err(error.to_string()),
                    Err(_) => Err(format!(
                        "no listing within {}",
                        crate::duration::Duration(STORAGE_LIST_LIMIT)
                    )),
                }
            }
            Err(error) => Err(error.to_string()),
        };
        let sets = match listed {
            Ok(sets) => sets,
            Err(error) => {
                warnings.push(format!(
                    "metrics: storage `{name}` left out of the metrics: {error}"
                ));
                continue;
            }
        };
        let mut counts: BTreeMap<String, u64> =
            SET_STATUSES.iter().map(|s| (s.to_string(), 0)).collect();
        for set in &sets {
            *counts.entry(set.status.to_string()).or_default() += 1;
        }
        let newest = newest_restorable_with_all(&sets, &[]).map(|set| {
            let manifest = set.manifest.as_ref();
            (
                manifest.map_or(set.stored_bytes, |m| m.total_size()),
                manifest.map_or_else(|| set.id.started_at(), |m| m.started_at),
            )
        });
        out.push(StorageMetrics {
            name: name.clone(),
            counts,
            newest,
        });
    }
    (out, warnings)
}

/// Writes the run's metrics to `DIR/planrun-<plan>.prom`, keeping from the previous file
/// the series a run does not know (the last drill's success) and, when the state directory
/// no longer remembers a success, the last success it recorded.
pub fn write_run(dir: &Path, metrics: &RunMetrics) -> std::io::Result<PathBuf> {
    let path = file_path(dir, &metrics.plan);
    let previous = read_samples(&path);
    let plan = metrics.plan.as_str();
    let mut families: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut add = |family: &'static str, labels: &[(&str, &str)], value: f64| {
        families
            .entry(family)
            .or_default()
            .push(sample(family, plan, labels, value));
    };
    add(LAST_RUN, &[], unix(metrics.finished_at));
    if let Some(at) = metrics.last_success {
        add(LAST_SUCCESS, &[], unix(at));
    }
    add(RUN_DURATION, &[], metrics.duration.as_secs_f64());
    for status in RUN_STATUSES {
        let value = if status == metrics.status { 1.0 } else { 0.0 };
        add(RUN_STATUS, &[("status", status.as_str())], value);
    }
    let mut steps: Vec<(&str, Duration)> = Vec::new();
    for (id, duration) in &metrics.steps {
        steps.retain(|(seen, _)| seen != id);
        steps.push((id, *duration));
    }
    for (id, duration) in steps {
        add(STEP_DURATION, &[("step", id)], duration.as_secs_f64());
    }
    for storage in &metrics.storages {
        let name = storage.name.as_str();
        if let Some((bytes, started)) = storage.newest {
            add(SET_BYTES, &[("storage", name)], bytes as f64);
            add(NEWEST_SET, &[("storage", name)], unix(started));
        }
        for (status, count) in &storage.counts {
            add(
                SETS,
                &[("storage", name), ("status", status)],
                *count as f64,
            );
        }
    }
    if let Some(rpo) = metrics.rpo {
        add(RPO, &[], rpo.as_secs_f64());
    }
    for kept in [LAST_DRILL, LAST_SUCCESS] {
        if !families.contains_key(kept)
            && let Some(lines) = previous.get(kept)
        {
            families.insert(kept, lines.clone());
        }
    }
    write(&path, &families)?;
    Ok(path)
}

/// Sets `planrun_last_drill_success_timestamp_seconds` for `plan` to `at` in
/// `DIR/planrun-<plan>.prom`, keeping every other series of the file as the last run wrote
/// it. For `planrun drill` after a drill that passed.
pub fn record_drill_success(dir: &Path, plan: &str, at: DateTime<Utc>) -> std::io::Result<PathBuf> {
    let path = file_path(dir, plan);
    let mut families: BTreeMap<&str, Vec<String>> = read_samples(&path);
    families.insert(LAST_DRILL, vec![sample(LAST_DRILL, plan, &[], unix(at))]);
    write(&path, &families)?;
    Ok(path)
}

/// The sample lines of a metrics file by family, for the families planrun writes; nothing
/// for a file that is missing or unreadable.
fn read_samples(path: &Path) -> BTreeMap<&'static str, Vec<String>> {
    let mut out: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else {
        return out;
    };
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        if let Some((family, _)) = FAMILIES.iter().find(|(f, _)| *f == name) {
            out.entry(family).or_default().push(line.to_owned());
        }
    }
    out
}

fn write(path: &Path, families: &BTreeMap<&str, Vec<String>>) -> std::io::Result<()> {
    let mut text = String::new();
    for (family, help) in FAMILIES {
        let Some(lines) = families.get(family).filter(|l| !l.is_empty()) else {
            continue;
        };
        writeln!(text, "# HELP {family} {help}").ok();
        writeln!(text, "# TYPE {family} gauge").ok();
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
    }
    // node_exporter reads `*.prom` only, so the temp name (a dot file) is never collected.
    crate::run_record::write_atomically(path, text.as_bytes())
}

fn sample(family: &str, plan: &str, labels: &[(&str, &str)], value: f64) -> String {
    let mut line = format!("{family}{{plan=\"{}\"", escape(plan));
    for (name, value) in labels {
        write!(line, ",{name}=\"{}\"", escape(value)).ok();
    }
    write!(line, "}} {value}").ok();
    line
}

/// A label value in the text format: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn unix(at: DateTime<Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> RunMetrics {
        RunMetrics {
            plan: "crm".into(),
            finished_at: "2026-11-30T02:01:00.5Z".parse().unwrap(),
            duration: Duration::from_millis(60_500),
            status: RunStatus::Failed,
            steps: vec![
                ("db".into(), Duration::from_millis(1500)),
                ("say \"hi\"".into(), Duration::from_millis(10)),
            ],
            last_success: Some("2026-11-29T02:01:00Z".parse().unwrap()),
            storages: vec![StorageMetrics {
                name: "local".into(),
                counts: [("complete".to_owned(), 2), ("damaged".to_owned(), 0)]
                    .into_iter()
                    .collect(),
                newest: Some((4096, "2026-11-29T02:00:00Z".parse().unwrap())),
            }],
            rpo: Some(Duration::from_secs(86_400)),
        }
    }

    #[test]
    fn the_file_holds_timestamps_with_the_plan_label_and_keeps_the_drill() {
        let dir = tempfile::tempdir().unwrap();
        record_drill_success(dir.path(), "crm", "2026-11-01T04:00:00Z".parse().unwrap()).unwrap();
        let path = write_run(dir.path(), &metrics()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "planrun_last_run_timestamp_seconds{plan=\"crm\"} 1796004060.5",
                "planrun_last_success_timestamp_seconds{plan=\"crm\"} 1795917660",
                "planrun_run_duration_seconds{plan=\"crm\"} 60.5",
                "planrun_run_status{plan=\"crm\",status=\"succeeded\"} 0",
                "planrun_run_status{plan=\"crm\",status=\"failed\"} 1",
                "planrun_run_status{plan=\"crm\",status=\"partial\"} 0",
                "planrun_run_status{plan=\"crm\",status=\"interrupted\"} 0",
                "planrun_step_duration_seconds{plan=\"crm\",step=\"db\"} 1.5",
                "planrun_step_duration_seconds{plan=\"crm\",step=\"say \\\"hi\\\"\"} 0.01",
                "planrun_backup_set_bytes{plan=\"crm\",storage=\"local\"} 4096",
                "planrun_backup_sets{plan=\"crm\",storage=\"local\",status=\"complete\"} 2",
                "planrun_backup_sets{plan=\"crm\",storage=\"local\",status=\"damaged\"} 0",
                "planrun_newest_set_timestamp_seconds{plan=\"crm\",storage=\"local\"} 1795917600",
                "planrun_last_drill_success_timestamp_seconds{plan=\"crm\"} 1793505600",
                "planrun_rpo_seconds{plan=\"crm\"} 86400",
            ]
        );
        // The drill keeps what the run wrote.
        record_drill_success(dir.path(), "crm", "2026-12-01T04:00:00Z".parse().unwrap()).unwrap();
        let after = std::fs::read_to_string(&path).unwrap();
        assert_eq!(after.lines().count(), text.lines().count());
        assert!(
            after.contains(
                "planrun_last_drill_success_timestamp_seconds{plan=\"crm\"} 1796097600\n"
            )
        );
        assert!(after.contains("planrun_run_status{plan=\"crm\",status=\"failed\"} 1\n"));
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["planrun-crm.prom"]);
    }
}
