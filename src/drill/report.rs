//! `DrillReport`: the record of one drill, written as `report.json` and `report.md` into
//! `<state>/drills/<id>/` (and `--report DIR`), read back by `history --drills` and
//! `status`. The Markdown reads on its own: it is what goes to an auditor.

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::CheckResult;
use crate::state_dir::StateDir;

/// The report format this build writes.
pub const REPORT_FORMAT: u32 = 1;

/// How a drill ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DrillResult {
    /// Every check passed, within the objectives.
    Passed,
    /// Every check passed, but the restore took longer than the RTO or the set was older
    /// than the RPO.
    OverObjective,
    /// A check failed, or no set, storage or server could be reached.
    Failed,
}

impl DrillResult {
    pub fn as_str(self) -> &'static str {
        match self {
            DrillResult::Passed => "passed",
            DrillResult::OverObjective => "over objective",
            DrillResult::Failed => "failed",
        }
    }

    pub fn exit_code(self) -> i32 {
        match self {
            DrillResult::Passed => crate::exit_code::SUCCESS,
            DrillResult::OverObjective => crate::exit_code::PARTIAL,
            DrillResult::Failed => crate::exit_code::FAILURE,
        }
    }
}

/// A measured time against its objective.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub measured_ms: u64,
    /// The objective, when the plan has one.
    pub objective_ms: Option<u64>,
    /// `None` without an objective.
    pub within: Option<bool>,
}

impl Timing {
    pub fn new(measured_ms: u64, objective: Option<std::time::Duration>) -> Timing {
        let objective_ms = objective.map(|o| u64::try_from(o.as_millis()).unwrap_or(u64::MAX));
        Timing {
            measured_ms,
            objective_ms,
            within: objective_ms.map(|o| measured_ms <= o),
        }
    }
}

/// One drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DrillReport {
    pub format: u32,
    pub drill_id: String,
    pub plan: String,
    pub plan_file: PathBuf,
    pub plan_digest: String,
    pub host: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub storage: Option<String>,
    pub set: Option<String>,
    pub set_started_at: Option<DateTime<Utc>>,
    /// The restore (every source, sha256 checks included): the RTO evidence.
    pub restore: Timing,
    /// The set's age when the drill started: the RPO evidence.
    pub set_age: Option<Timing>,
    /// What was restored and checked, in order: the restores first (`kind: restore`).
    pub checks: Vec<CheckResult>,
    pub result: DrillResult,
    /// Why the drill could not restore or check at all, if so.
    pub failure: Option<String>,
    /// `--keep`: the scratch targets were left for inspection.
    pub kept: Vec<String>,
    /// What cleanup removed, and what it could not.
    pub cleanup: Vec<String>,
}

impl DrillReport {
    /// Decides the result from the checks and timings: a failed check or a drill that could
    /// not run is a failure, which wins over being over objective.
    pub fn decide(&mut self) {
        let failed = self.failure.is_some()
            || self.checks.is_empty()
            || self.checks.iter().any(|c| !c.passed);
        let over = self.restore.within == Some(false)
            || self
                .set_age
                .as_ref()
                .is_some_and(|t| t.within == Some(false));
        self.result = if failed {
            DrillResult::Failed
        } else if over {
            DrillResult::OverObjective
        } else {
            DrillResult::Passed
        };
    }

    /// Writes `report.json` and `report.md` into `dir`, each atomically.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        json.push(b'\n');
        crate::run_record::write_atomically(&dir.join("report.json"), &json)?;
        crate::run_record::write_atomically(&dir.join("report.md"), self.markdown().as_bytes())
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        md.push_str(&format!(
            "# Restore drill of `{}`: {}\n\n",
            self.plan,
            self.result.as_str()
        ));
        md.push_str("| | |\n| --- | --- |\n");
        md.push_str(&format!("| drill | `{}` |\n", self.drill_id));
        md.push_str(&format!(
            "| plan | `{}` (sha256 `{}`) |\n",
            self.plan_file.display(),
            self.plan_digest
        ));
        md.push_str(&format!("| host | {} |\n", self.host));
        md.push_str(&format!(
            "| started | {} |\n| finished | {} |\n",
            time(&self.started_at),
            time(&self.finished_at)
        ));
        md.push_str(&format!(
            "| storage | {} |\n",
            self.storage.as_deref().unwrap_or("-")
        ));
        md.push_str(&format!(
            "| set | {} |\n",
            match (&self.set, &self.set_started_at) {
                (Some(set), Some(at)) => format!("`{set}`, taken {}", time(at)),
                (Some(set), None) => format!("`{set}`"),
                _ => "-".into(),
            }
        ));
        md.push_str(&format!("| result | **{}** |\n\n", self.result.as_str()));
        if let Some(failure) = &self.failure {
            md.push_str(&format!("**The drill could not run:** {failure}\n\n"));
        }
        md.push_str("## Objectives\n\n| measure | measured | objective | within |\n| --- | --- | --- | --- |\n");
        let row = |name: &str, t: &Timing| {
            format!(
                "| {name} | {} | {} | {} |\n",
                millis(t.measured_ms),
                t.objective_ms.map_or("-".into(), millis),
                match t.within {
                    Some(true) => "yes",
                    Some(false) => "**no**",
                    None => "-",
                }
            )
        };
        md.push_str(&row("restore time (RTO)", &self.restore));
        if let Some(age) = &self.set_age {
            md.push_str(&row("set age (RPO)", age));
        }
        md.push_str("\n## Checks\n\n| # | check | kind | expected | actual | result |\n| --- | --- | --- | --- | --- | --- |\n");
        for (i, check) in self.checks.iter().enumerate() {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                i + 1,
                cell(&check.name),
                check.kind,
                cell(&check.expected),
                cell(&check.actual),
                if check.passed {
                    "pass".to_owned()
                } else {
                    format!("**FAIL**: {}", cell(&check.message))
                }
            ));
        }
        md.push('\n');
        if !self.kept.is_empty() {
            md.push_str("## Kept for inspection\n\n");
            for kept in &self.kept {
                md.push_str(&format!("- {kept}\n"));
            }
            md.push('\n');
        }
        if !self.cleanup.is_empty() {
            md.push_str("## Cleanup\n\n");
            for line in &self.cleanup {
                md.push_str(&format!("- {line}\n"));
            }
            md.push('\n');
        }
        md
    }
}

/// Text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `850ms`, `12.3s`, `4m05s`, `6h00m`, `35d00h`.
pub fn millis(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
        3_600_000..86_400_000 => format!("{}h{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
        _ => format!("{}d{:02}h", ms / 86_400_000, ms % 86_400_000 / 3_600_000),
    }
}

/// `<state>/drills`.
pub fn drills_dir(state: &StateDir) -> PathBuf {
    state.root().join("drills")
}

/// Every drill report in the state directory, newest first, and the reports that could not
/// be read.
pub fn list(state: &StateDir) -> (Vec<DrillReport>, Vec<String>) {
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    let Ok(entries) = std::fs::read_dir(drills_dir(state)) else {
        return (reports, errors);
    };
    for entry in entries.flatten() {
        let path = entry.path().join("report.json");
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        match serde_json::from_slice::<DrillReport>(&bytes) {
            Ok(report) => reports.push(report),
            Err(error) => errors.push(format!("cannot read {}: {error}", path.display())),
        }
    }
    reports.sort_by_key(|r| std::cmp::Reverse(r.started_at));
    (reports, errors)
}
