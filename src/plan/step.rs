//! A step: common fields (id, needs, timeout, retries, rollback, …) plus exactly one kind key.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;

/// One step. It carries exactly one kind key (`run`, `shell`, `backup`, `copy`, `prune`,
/// `verify`, `restore`, `check`, `manual`, `notify`) beside the common fields.
///
/// The kind keys are optional fields rather than a tagged enum so that the common fields can
/// sit beside them with `deny_unknown_fields` (serde refuses `flatten` with it); the analyzer
/// checks that exactly one is present.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique step id, used by `needs`, `--only` and in logs. Required in `steps` and runbooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"))]
    pub id: Option<String>,
    /// A human name shown in progress output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Ids of steps that must succeed before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// A template; the step is skipped when it renders to ``, `false`, `0` or `no`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Stop the step (SIGTERM, grace, SIGKILL to its process group) after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// How many times to try again after a failure (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub retries: Option<u32>,
    /// Delay before the first retry (default `1s`); doubles for each further retry, capped at 5 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<Duration>,
    /// Extra environment variables for the step's process (values are templates).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Working directory for the step's process (a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// What a failure of this step means for the run (default `fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// Steps that undo this one; they run, newest completed first, when the run fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rollback: Vec<Step>,
    /// The role (from `roles`) responsible for the step in a runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Ask for confirmation before the step runs (runbooks); `--yes` answers for everyone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm: bool,

    /// Run a program with arguments, without a shell. Each element is rendered on its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    #[schemars(with = "Option<Vec<ArgSchema>>")]
    #[serde(deserialize_with = "argv")]
    pub run: Option<Vec<String>>,
    /// A bash script run with `set -euo pipefail`. Interpolated values are shell-quoted;
    /// `{{{triple}}}` inserts a value raw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Back up the named source into this run's backup set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Copy a backup set to another storage, verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<CopyStep>,
    /// Apply retention to the named storages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub prune: Option<Vec<String>>,
    /// Re-hash a stored backup set against its manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyStep>,
    /// Restore a source from a backup set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreStep>,
    /// Check restored data against an expectation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<CheckStep>,
    /// An instruction a person carries out and acknowledges (runbooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual: Option<String>,
    /// Send a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<NotifyStep>,
}

/// Schema of one `run:` element: YAML reads `true` and `5432` as a boolean and a number, but
/// as arguments they mean the words, so they are taken as text.
#[derive(JsonSchema)]
#[schemars(transform = arg_schema)]
struct ArgSchema;

fn arg_schema(schema: &mut schemars::Schema) {
    *schema = schemars::json_schema!({
        "description": "A program or argument; numbers and booleans are taken as their text.",
        "type": ["string", "number", "boolean"]
    });
}

fn argv<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let values = Vec::<serde_json::Value>::deserialize(deserializer)?;
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            other => Err(serde::de::Error::custom(format!(
                "expected a string, found {other}"
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The names of the step kind keys, in the order the documentation lists them.
pub const STEP_KINDS: [&str; 10] = [
    "run", "shell", "backup", "copy", "prune", "verify", "restore", "check", "manual", "notify",
];

/// A borrowed view of a step's one kind.
#[derive(Clone, Copy, Debug)]
pub enum StepKind<'a> {
    Run(&'a [String]),
    Shell(&'a str),
    Backup(&'a str),
    Copy(&'a CopyStep),
    Prune(&'a [String]),
    Verify(&'a VerifyStep),
    Restore(&'a RestoreStep),
    Check(&'a CheckStep),
    Manual(&'a str),
    Notify(&'a NotifyStep),
}

impl StepKind<'_> {
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Run(_) => "run",
            StepKind::Shell(_) => "shell",
            StepKind::Backup(_) => "backup",
            StepKind::Copy(_) => "copy",
            StepKind::Prune(_) => "prune",
            StepKind::Verify(_) => "verify",
            StepKind::Restore(_) => "restore",
            StepKind::Check(_) => "check",
            StepKind::Manual(_) => "manual",
            StepKind::Notify(_) => "notify",
        }
    }
}

impl Step {
    /// Every kind key the step carries; a valid step has exactly one.
    pub fn kinds(&self) -> Vec<StepKind<'_>> {
        let mut kinds = Vec::new();
        if let Some(v) = &self.run {
            kinds.push(StepKind::Run(v));
        }
        if let Some(v) = &self.shell {
            kinds.push(StepKind::Shell(v));
        }
        if let Some(v) = &self.backup {
            kinds.push(StepKind::Backup(v));
        }
        if let Some(v) = &self.copy {
            kinds.push(StepKind::Copy(v));
        }
        if let Some(v) = &self.prune {
            kinds.push(StepKind::Prune(v));
        }
        if let Some(v) = &self.verify {
            kinds.push(StepKind::Verify(v));
        }
        if let Some(v) = &self.restore {
            kinds.push(StepKind::Restore(v));
        }
        if let Some(v) = &self.check {
            kinds.push(StepKind::Check(v));
        }
        if let Some(v) = &self.manual {
            kinds.push(StepKind::Manual(v));
        }
        if let Some(v) = &self.notify {
            kinds.push(StepKind::Notify(v));
        }
        kinds
    }

    /// The step's kind. Only call on analyzed plans, where exactly one is present.
    pub fn kind(&self) -> StepKind<'_> {
        self.kinds()
            .into_iter()
            .next()
            .unwrap_or(StepKind::Manual("(no kind)"))
    }

    pub fn on_failure(&self) -> OnFailure {
        self.on_failure.unwrap_or_default()
    }
}

/// What a step's failure does to the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The run fails: nothing new starts, rollbacks run, exit code 1.
    #[default]
    Fail,
    /// The run goes on and exits 3 (partial).
    Warn,
    /// The failure is recorded and otherwise ignored.
    Ignore,
}

/// `copy:` replicates a backup set to another storage.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyStep {
    /// The storage to copy to.
    pub to: String,
    /// The storage to copy from (default: the plan's local storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The set to copy: a set id or `latest` (default: this run's set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
}

/// `verify:` re-hashes a stored set against its manifest.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyStep {
    /// The storage to read from.
    pub storage: String,
    /// A set id or `latest` (default: this run's set, else `latest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
}

/// The `path` of a restore step that means "where the source came from".
pub const ORIGINAL_PATH: &str = "original";

/// `restore:` restores one source from a backup set.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreStep {
    /// The source (from `sources`) to restore.
    pub source: String,
    // `set` and `from` are private: everything reads the set through `RestoreStep::set`,
    // which knows the old spelling.
    /// The set to restore: a set id or `latest` (default `latest`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    set: Option<String>,
    /// Deprecated: write `set`. `from` names a storage in `copy`, so here it read as one; it
    /// still works, with a warning, and is refused together with `set`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("deprecated" = true))]
    from: Option<String>,
    /// The storage to read from (default: the plan's local storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// For postgres sources: the database to restore into (default: the source's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// For file-based sources: the path to restore into (default: the source's). For a
    /// files source, a folder that receives the files in their recorded layout. `original`
    /// (files and directory sources) puts them back where they came from; it is also the
    /// default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Replace a target that exists and holds data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// The key a restore step names its set with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetKey {
    /// Neither: the newest restorable set.
    None,
    /// `set:`, the one spelling.
    Set,
    /// `from:`, the deprecated spelling.
    From,
    /// Both, which is refused: they could disagree.
    Both,
}

impl RestoreStep {
    /// The set to restore, a set id or `latest`, whichever key named it; `None` is `latest`.
    /// Everything that restores or describes a restore reads the set through this.
    pub fn set(&self) -> Option<&str> {
        self.set.as_deref().or(self.from.as_deref())
    }

    /// Which key named the set, for the deprecation warning and the both-keys error.
    pub fn set_key(&self) -> SetKey {
        match (&self.set, &self.from) {
            (None, None) => SetKey::None,
            (Some(_), None) => SetKey::Set,
            (None, Some(_)) => SetKey::From,
            (Some(_), Some(_)) => SetKey::Both,
        }
    }
}

/// `check:` compares restored data with an expectation. Exactly one of `sql`, `files`,
/// `verify`, `run` or `http` says what is checked.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckStep {
    /// A name for reports (default: a description of the check).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// An SQL query returning one value, run against the restored `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// The source the check reads (for `sql`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// A directory or files source whose restored tree is counted: files, bytes and
    /// symbolic links, compared with the backup's facts or with bounds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<String>,
    /// For `files` with `equals`, `min` or `max`: what is counted (default `files`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<FileCount>,
    /// `true`: re-read every artifact of the set and compare its sha256 with the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<bool>,
    /// A program and arguments (no shell) that must exit 0; the scratch targets are in its
    /// environment (`PLANRUN_DRILL_<SOURCE>_DATABASE`, `…_PATH`, `…_HOST`, `…_PORT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    #[schemars(with = "Option<Vec<ArgSchema>>")]
    #[serde(deserialize_with = "argv")]
    pub run: Option<Vec<String>>,
    /// A URL that must answer 2xx (or the status `expect` names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// How long the check may take (default `10m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// What the result must be: `matches_backup`, `{equals: V}` or `{min: N, max: N}`.
    /// Required for `sql` and `files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<Expect>,
}

/// What a `files` check counts when it is compared with bounds or a value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileCount {
    /// Regular files.
    #[default]
    Files,
    /// Bytes in regular files.
    Bytes,
    /// Symbolic links.
    Symlinks,
}

impl FileCount {
    pub fn as_str(self) -> &'static str {
        match self {
            FileCount::Files => "files",
            FileCount::Bytes => "bytes",
            FileCount::Symlinks => "symlinks",
        }
    }
}

/// The expectation of a check: `matches_backup`, `{equals: V}`, or `{min: N}`, `{max: N}`,
/// `{min: N, max: M}`.
///
/// Read by hand rather than as an untagged enum, so a mistake gets a message that names
/// the three forms; the schema describes the same forms.
#[derive(Clone, Debug, PartialEq)]
pub enum Expect {
    /// Equal to the fact recorded at backup time.
    MatchesBackup,
    /// Exactly this value.
    Equals(serde_json::Value),
    /// Within these bounds (inclusive); at least one is set.
    Range { min: Option<i64>, max: Option<i64> },
}

impl Serialize for Expect {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Expect::MatchesBackup => serializer.serialize_str("matches_backup"),
            Expect::Equals(value) => serde_json::json!({ "equals": value }).serialize(serializer),
            Expect::Range { min, max } => {
                let mut map = serde_json::Map::new();
                if let Some(min) = min {
                    map.insert("min".into(), (*min).into());
                }
                if let Some(max) = max {
                    map.insert("max".into(), (*max).into());
                }
                serde_json::Value::Object(map).serialize(serializer)
            }
        }
    }
}

const EXPECT_FORMS: &str = "expected `matches_backup`, `{equals: VALUE}` or `{min: N, max: N}`";

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        let integer = |key: &str, v: &serde_json::Value| {
            v.as_i64()
                .ok_or_else(|| D::Error::custom(format!("`{key}` must be an integer, found {v}")))
        };
        match value {
            serde_json::Value::String(s) if s == "matches_backup" => Ok(Expect::MatchesBackup),
            serde_json::Value::Object(map) => {
                if let Some(equals) = map.get("equals") {
                    if map.len() != 1 {
                        return Err(D::Error::custom(format!(
                            "`equals` stands alone; {EXPECT_FORMS}"
                        )));
                    }
                    return Ok(Expect::Equals(equals.clone()));
                }
                if let Some(key) = map.keys().find(|k| *k != "min" && *k != "max") {
                    return Err(D::Error::custom(format!(
                        "unknown key `{key}`; {EXPECT_FORMS}"
                    )));
                }
                let min = map.get("min").map(|v| integer("min", v)).transpose()?;
                let max = map.get("max").map(|v| integer("max", v)).transpose()?;
                if min.is_none() && max.is_none() {
                    return Err(D::Error::custom(EXPECT_FORMS));
                }
                Ok(Expect::Range { min, max })
            }
            other => Err(D::Error::custom(format!("{EXPECT_FORMS}, found {other}"))),
        }
    }
}

impl JsonSchema for Expect {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Expect".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "What the result must be.",
            "oneOf": [
                { "description": "Equal to the fact recorded at backup time.", "const": "matches_backup" },
                {
                    "description": "Exactly this value.",
                    "type": "object",
                    "properties": { "equals": {} },
                    "required": ["equals"],
                    "additionalProperties": false
                },
                {
                    "description": "Within these bounds, inclusive.",
                    "type": "object",
                    "properties": {
                        "min": { "description": "At least this number.", "type": "integer" },
                        "max": { "description": "At most this number.", "type": "integer" }
                    },
                    "minProperties": 1,
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// `notify:` sends a message when the step runs. A notification that fails is a warning:
/// it never changes the run's outcome.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyStep {
    /// An HTTP(S) URL that receives a POST with the run's outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// A message (a template) included in the notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A templated body sent as it is instead of the JSON summary (`application/json` when
    /// it parses as JSON, else `text/plain`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The shape of the default body: `json` (planrun's summary, the default) or `slack`
    /// (`{"text": …}`, which Slack and Mattermost incoming webhooks take).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<NotifyFormat>,
}

/// The shape of a notification's body.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyFormat {
    /// planrun's JSON summary of the run.
    #[default]
    Json,
    /// `{"text": "…"}`: one readable line for Slack or Mattermost.
    Slack,
}
