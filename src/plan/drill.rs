//! The restore drill: where to restore each source and what to check afterwards.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CheckStep, Schedule};

/// What `planrun drill` restores, where, and how it checks the result.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    /// When drills are meant to run (e.g. monthly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// The storage to restore from (default: the plan's first storage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<String>,
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
    /// For postgres: the scratch database (created, then dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// For other sources: the scratch path (created, then removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}
