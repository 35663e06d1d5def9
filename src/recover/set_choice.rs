//! Which set a runbook's restore step reads: the newest restorable set holding the source,
//! from the plan's restore storage, else (when that storage is unreachable or holds none)
//! from the next storage that has one, said loudly. A step that names its storage, or
//! `--storage`, gets that storage and no other. Statuses and "newest" come from the one
//! storage layer, so a damaged or incomplete set is never chosen.

use chrono::{DateTime, Utc};

use crate::exec_plan::ExecPlan;
use crate::storage::choice::read_storage;
use crate::storage::{SetId, SetSummary, Store, newest_restorable_with};

/// The set chosen for one restore step.
#[derive(Clone, Debug)]
pub struct Chosen {
    pub storage: String,
    pub set: SetSummary,
    /// Why earlier storages were passed over, one line each (empty when the first served).
    pub passed_over: Vec<String>,
    /// A newer set of the source that exists (damaged, incomplete or elsewhere), when the
    /// chosen one is older: restoring it loses more data than expected.
    pub newer_seen: Option<SetId>,
}

impl Chosen {
    /// When the set's backup started: the restored data is as of then.
    pub fn taken_at(&self) -> DateTime<Utc> {
        self.set
            .manifest
            .as_ref()
            .map(|m| m.started_at)
            .unwrap_or_else(|| self.set.id.started_at())
    }
}

/// Why no set could be chosen: every storage tried, each with its reason.
#[derive(Debug, thiserror::Error)]
#[error("no restorable set holds `{source_name}`: {}", tried.join("; "))]
pub struct NoSet {
    pub source_name: String,
    pub tried: Vec<String>,
}

/// Chooses the set for `source`. `named` is the step's `storage:` or `--storage` (no
/// fallback); `selector` is `latest` or a set id (`--set` or the step's `from:`);
/// `expected` is the newest set a run recorded as committed, for the "older than expected"
/// warning.
pub async fn choose(
    plan: &ExecPlan,
    source: &str,
    selector: Option<&str>,
    named: Option<&str>,
    expected: Option<&SetId>,
) -> Result<Chosen, NoSet> {
    let order: Vec<&str> = match named {
        Some(name) => vec![name],
        None => {
            let first = read_storage(plan, None).ok().map(|(n, _)| n);
            first
                .into_iter()
                .chain(
                    plan.storage
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .filter(|n| Some(*n) != first),
                )
                .collect()
        }
    };
    let mut tried = Vec::new();
    let mut newest_seen: Option<SetId> = expected.cloned();
    for name in order {
        let Some((_, storage)) = plan.storage.iter().find(|(n, _)| n == name) else {
            tried.push(format!("`{name}` is not a storage of the plan"));
            continue;
        };
        let store = match Store::open(name, storage) {
            Ok(store) => store,
            Err(error) => {
                tried.push(format!("`{name}` cannot be opened ({error})"));
                continue;
            }
        };
        let sets = match store.list_sets(&plan.name).await {
            Ok(sets) => sets,
            Err(error) => {
                tried.push(format!("`{name}` is unreachable ({error})"));
                continue;
            }
        };
        for set in sets.iter().filter(|s| s.might_hold(source)) {
            if newest_seen.as_ref().is_none_or(|n| set.id > *n) {
                newest_seen = Some(set.id.clone());
            }
        }
        let found = match selector {
            None | Some("latest") => newest_restorable_with(&sets, source),
            Some(id) => sets
                .iter()
                .find(|s| s.id.as_str() == id && s.status.restorable()),
        };
        match found {
            Some(set) => {
                let newer_seen = newest_seen.filter(|n| *n > set.id);
                return Ok(Chosen {
                    storage: name.to_owned(),
                    set: set.clone(),
                    passed_over: tried,
                    newer_seen,
                });
            }
            None => tried.push(match selector {
                Some(id) if id != "latest" => {
                    format!("`{name}` has no restorable set {id}")
                }
                _ => format!("`{name}` has no restorable set holding `{source}`"),
            }),
        }
    }
    Err(NoSet {
        source_name: source.to_owned(),
        tried,
    })
}
