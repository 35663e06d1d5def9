//! The plan model: the Rust types a plan file deserializes into, and from which the
//! published JSON Schema is generated. Everything a user can write lives here.

mod drill;
mod recovery;
mod retention;
mod source;
mod step;
mod storage;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use drill::Drill;
pub use recovery::{Objectives, Recovery, Role, add_span};
pub use retention::{Keep, Retention};
pub use source::{
    DirectorySource, GitSource, OnUnreadable, PgFormat, PostgresSource, Source, SqliteSource,
};
pub use step::{
    CheckStep, Expect, FileCount, NotifyFormat, ORIGINAL_PATH, OnFailure, RestoreStep, STEP_KINDS,
    SetKey, Step, StepKind,
};
#[cfg(test)]
pub use storage::LocalStorage;
pub use storage::{S3Storage, Storage};

use crate::duration::Duration;

/// A planrun plan: what to back up, where to, how long to keep it, how to prove it restores,
/// and how to recover when something breaks.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "planrun plan", extend("$id" = "https://planrun.dev/schemas/plan.schema.json"))]
pub struct Plan {
    /// Plan format version. Only `1` exists.
    #[schemars(range(min = 1, max = 1))]
    pub version: u32,
    /// The plan's name: names the lock, the run records and the backup sets' folder.
    #[schemars(regex(pattern = r"^[a-z0-9][a-z0-9_-]*$"), length(max = 64))]
    pub name: String,
    /// What this plan is for, for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Files (relative to this one) whose `sources`, `storage`, `roles`, `vars` and `secrets`
    /// are merged into this plan. A name defined twice is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// IANA time zone for the `now` helper and calendar decisions (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Plain values available to templates as `{{vars.NAME}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(with = "BTreeMap<String, VarValue>")]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Values resolved at run time from the environment or a file, available as
    /// `{{secrets.NAME}}` and masked as `***` everywhere planrun prints.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, SecretSource>,
    /// What to back up, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, Source>,
    /// Where backup sets are kept, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub storage: BTreeMap<String, Storage>,
    /// How many backup sets to keep (grandfather-father-son), for every storage that does not
    /// set its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// The steps `planrun execute` runs: a dependency graph through `needs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Steps run after the rollbacks when the run failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<Step>,
    /// Steps run at the end of every run, whatever happened (also after SIGTERM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub always: Vec<Step>,
    /// Grace period between SIGTERM and SIGKILL when a step is stopped (default `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace: Option<Duration>,
    /// When the plan is meant to run, for documentation and `planrun plan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// The restore drill `planrun drill` performs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<Drill>,
    /// People involved in recovery, by role name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, Role>,
    /// Recovery objectives and the level 1–4 runbooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// Healthchecks-style pings planrun sends itself at the start and end of every run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<Monitor>,
    /// Prometheus metrics written after every run, for node_exporter's textfile collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Metrics>,
}

/// Plan-level monitoring: planrun pings it itself, so no step can forget to.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    /// A healthchecks.io-style check URL (a template, usually a secret): `URL/start` when a
    /// run begins, then `URL` on success or `URL/fail` with the end of the log.
    pub healthchecks: String,
}

/// Where the metrics file goes.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// node_exporter's `--collector.textfile.directory` (a template): planrun writes
    /// `planrun-<plan>.prom` there atomically after every run.
    pub textfile_dir: String,
}

/// Where a secret's value comes from. Exactly one key.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// The name of an environment variable.
    Env(String),
    /// A file whose content (without the trailing newline) is the secret.
    File(String),
}

/// A cron schedule (5 fields) with an optional IANA time zone.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A 5-field cron expression, e.g. `0 2 * * *`.
    pub cron: String,
    /// IANA time zone the expression is read in (default: the plan's, else UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// A template variable: a string, number or boolean, or a map of them.
#[derive(JsonSchema)]
#[schemars(
    transform = var_value_schema,
    description = "A string, number, boolean, or a map of such values"
)]
struct VarValue;

fn var_value_schema(schema: &mut schemars::Schema) {
    *schema = schemars::json_schema!({
        "description": "A string, number, boolean, or a map of such values",
        "type": ["string", "number", "boolean", "object"]
    });
}
