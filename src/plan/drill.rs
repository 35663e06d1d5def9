//! The restore drill: where to restore each source and what to check afterwards.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CheckStep, Schedule};
use crate::duration::Duration;

/// What `planrun drill` restores, where, and how it checks the result.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    /// When drills are meant to run (e.g. monthly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// The storage to restore from (default: the storage restores read, see `restore`).
    /// Name the off-site one: a drill should prove the copy you would use in a disaster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
    /// Where scratch folders go (default: `drills/scratch` under the state directory, not
    /// `/tmp`, which is often RAM). Each drill works in `drill-<run id>` inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch_dir: Option<String>,
    /// How old the last passing drill may be before `planrun status` calls it overdue
    /// (default `35d`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Duration>,
    /// Scratch targets, by source name. Never the source's own database or path.
    pub restore: BTreeMap<String, DrillTarget>,
    /// Checks run against the restored data.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckStep>,
}

/// A scratch target for one source.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillTarget {
    /// For postgres: the scratch database (created, then dropped). It must carry
    /// `{{run.id}}`, so that it can never name an existing database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// For postgres: the server of the scratch database (default: the source's), so a
    /// drill can run on a separate server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// For postgres: the port of that server (default: the source's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// For other sources: the scratch path (created, then removed). A relative path is
    /// inside the drill's scratch folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
