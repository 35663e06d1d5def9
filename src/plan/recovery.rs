//! Roles and recovery runbooks (levels 1–4).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Step;
use crate::duration::Duration;

/// A person's role during recovery.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// The role's title, e.g. `Database administrator`.
    pub title: String,
    /// How to reach them: e-mail, phone, pager.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    /// Who stands in when they cannot be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deputy: Option<String>,
    /// What the role is responsible for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responsibility: Option<String>,
}

/// Recovery objectives and runbooks.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// Recovery point and time objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objectives: Option<Objectives>,
    /// Runbooks by disaster level: `1` data corruption, `2` hardware failure,
    /// `3` site disaster, `4` regional disaster.
    pub levels: BTreeMap<String, Level>,
}

/// How much data may be lost (RPO) and how long recovery may take (RTO).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Objectives {
    /// Recovery point objective, e.g. `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo: Option<Duration>,
    /// Recovery time objective, e.g. `4h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto: Option<Duration>,
}

/// One runbook.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// What kind of disaster this level is for.
    pub name: String,
    /// More words for the person reading the runbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The ordered actions.
    #[serde(default)]
    pub steps: Vec<Step>,
}
