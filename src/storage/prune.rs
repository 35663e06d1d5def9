//! Prune: list a storage's sets, let the retention policy decide per source, re-hash the
//! sets it protects, show the table, then remove, unless a damaged set stands where the
//! newest backup of a source should be.
//!
//! The decision is [`crate::retention::decide_per_source`]; this module adds what a storage
//! knows (ids, status, the sources each set holds), the safety stop, and the removal.
//! Removal goes through [`Store::delete_set`], manifest first.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{SetId, SetStatus, SetSummary, Store, StoreError, newest_restorable_with, verify_set};
use crate::retention::{Decision, Policy, Reason, SourcedSet, decide_per_source};

/// One line of the decision table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneRow {
    pub id: SetId,
    pub status: SetStatus,
    pub decision: Decision,
}

/// A damaged set that is the newest set holding a source: while it is there, prune removes
/// nothing, since the sets it would remove may be that source's last good backups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub set: SetId,
    /// The sources it is (or, with an unreadable manifest, may be) the newest set of.
    pub sources: Vec<String>,
    /// Its manifest cannot be read, so it might hold any source.
    pub unreadable: bool,
    /// Dated after now (a clock that was wrong when it was written): as the "newest" set it
    /// would keep every slot forever and push out each night's real backup.
    pub future: bool,
}

impl std::fmt::Display for Blocker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources = self
            .sources
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.future {
            return write!(
                f,
                "set {} is dated in the future (was a clock wrong when it was written?); move it aside",
                self.set
            );
        }
        match (self.unreadable, sources.is_empty()) {
            (false, _) => write!(
                f,
                "set {} is damaged and is the newest set holding {sources}",
                self.set
            ),
            (true, false) => write!(
                f,
                "set {} is damaged (its manifest cannot be read) and may be the newest set holding {sources}",
                self.set
            ),
            (true, true) => write!(
                f,
                "set {} is damaged (its manifest cannot be read) and no good set is newer",
                self.set
            ),
        }
    }
}

/// What prune will do on one storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrunePlan {
    /// Every set, newest first.
    pub rows: Vec<PruneRow>,
    /// When not empty, nothing is removed.
    pub blockers: Vec<Blocker>,
    /// How each set kept as a source's newest restorable set was known to be intact, newest
    /// first; empty when prune removes nothing (and so reads nothing).
    pub checks: Vec<IntegrityCheck>,
}

/// How long a verification of a set's exact manifest stands in for reading the set again
/// before a prune removes anything: a week, so that a weekly `planrun verify` (or a
/// `verify:` step, or an earlier prune's re-hash) spares the nightly prune a download of the
/// newest off-site set. A set with no such verification is re-hashed first, as always.
pub const TRUSTED_VERIFY_AGE: chrono::TimeDelta = chrono::TimeDelta::days(7);

/// How prune knew that a set it keeps as the newest restorable set of a source is intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntegrityCheck {
    pub set: SetId,
    pub by: CheckedBy,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckedBy {
    /// Re-read and re-hashed by this prune (its `verify.json` written, as `verify` does).
    Rehashed,
    /// A verification of this manifest, after the set was written and within
    /// [`TRUSTED_VERIFY_AGE`], found it intact.
    Record { verified_at: DateTime<Utc> },
}

impl std::fmt::Display for IntegrityCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.by {
            CheckedBy::Rehashed => write!(
                f,
                "set {} re-hashed now: no verification of it in the last {} days",
                self.set,
                TRUSTED_VERIFY_AGE.num_days()
            ),
            CheckedBy::Record { verified_at } => write!(
                f,
                "set {} not read again: its verify.json found it intact at {}",
                self.set,
                verified_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        }
    }
}

impl PrunePlan {
    /// The sets to remove: none while a blocker stands.
    pub fn to_remove(&self) -> Vec<SetId> {
        if !self.blockers.is_empty() {
            return Vec::new();
        }
        self.rows
            .iter()
            .filter(|r| !r.decision.keep)
            .map(|r| r.id.clone())
            .collect()
    }

    /// Why nothing is removed, as one line.
    pub fn refusal(&self) -> Option<String> {
        if self.blockers.is_empty() {
            return None;
        }
        let why: Vec<String> = self.blockers.iter().map(ToString::to_string).collect();
        Some(format!(
            "{}: nothing is removed until it is verified or removed by hand",
            why.join("; ")
        ))
    }
}

/// Sets that no prune of this process may remove, each with why (the sets an open incident
/// restores from). Set once by the command, from the state directory, before any prune.
static HELD: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Holds `sets` (`(set id, why)`) for every prune this process plans.
pub fn hold(sets: Vec<(String, String)>) {
    let _ = HELD.set(sets);
}

/// Decides for every set (newest first, as listed) and finds what must stop the removal.
pub fn plan_prune(sets: &[SetSummary], policy: &Policy, now: DateTime<Utc>) -> PrunePlan {
    // `decide` wants oldest first; ids sort by time, to the millisecond, so that is id order.
    let mut sets: Vec<&SetSummary> = sets.iter().collect();
    sets.sort_by(|a, b| a.id.cmp(&b.id));
    let sourced: Vec<SourcedSet> = sets
        .iter()
        .map(|set| SourcedSet {
            time: retention_time(set),
            status: set.status,
            sources: set
                .sources()
                .map(|s| s.into_iter().map(str::to_owned).collect())
                .unwrap_or_default(),
        })
        .collect();
    let decisions = decide_per_source(&sourced, policy, now);
    let mut rows: Vec<PruneRow> = sets
        .iter()
        .zip(decisions)
        .map(|(set, decision)| PruneRow {
            id: set.id.clone(),
            status: set.status,
            decision,
        })
        .collect();
    rows.sort_by(|a, b| b.id.cmp(&a.id));
    // Sets an open incident reads are kept, whatever the policy says.
    for row in &mut rows {
        for (_, why) in HELD
            .get()
            .into_iter()
            .flatten()
            .filter(|(id, _)| row.id.as_str() == id)
        {
            row.decision.keep = true;
            row.decision.reasons.push(Reason::Held(why.clone()));
        }
    }
    sets.reverse();
    PrunePlan {
        rows,
        blockers: blockers(&sets, now),
        checks: Vec::new(),
    }
}

/// The time retention measures a set by: its id's time, except that an incomplete set is as
/// young as its newest object. An id is only a name: a folder created a moment ago under an
/// old id may be a run that is still writing.
fn retention_time(set: &SetSummary) -> DateTime<Utc> {
    let named = set.id.started_at();
    match set.status {
        SetStatus::Incomplete => named.max(set.last_modified.unwrap_or(named)),
        _ => named,
    }
}

/// The damaged sets that are the newest set holding some source. `sets` is newest first.
fn blockers(sets: &[&SetSummary], now: DateTime<Utc>) -> Vec<Blocker> {
    // A set more than an hour ahead of this clock cannot be judged by its age at all.
    let future: Vec<Blocker> = sets
        .iter()
        .filter(|s| s.id.started_at() > now + chrono::Duration::hours(1))
        .map(|s| Blocker {
            set: s.id.clone(),
            sources: Vec::new(),
            unreadable: false,
            future: true,
        })
        .collect();
    if !future.is_empty() {
        return future;
    }
    let counted: Vec<&SetSummary> = sets
        .iter()
        .copied()
        .filter(|s| s.status != SetStatus::Incomplete)
        .collect();
    let sources: BTreeSet<&str> = counted
        .iter()
        .filter_map(|s| s.sources())
        .flatten()
        .collect();
    let mut found: Vec<Blocker> = Vec::new();
    for source in &sources {
        let Some(newest) = counted.iter().find(|s| s.might_hold(source)) else {
            continue;
        };
        if newest.status != SetStatus::Damaged {
            continue;
        }
        match found.iter_mut().find(|b| b.set == newest.id) {
            Some(blocker) => blocker.sources.push((*source).to_owned()),
            None => found.push(Blocker {
                set: newest.id.clone(),
                sources: vec![(*source).to_owned()],
                unreadable: newest.sources().is_none(),
                future: false,
            }),
        }
    }
    // With no readable manifest anywhere, nothing says which sources a damaged set held.
    if sources.is_empty()
        && let Some(damaged) = counted.iter().find(|s| s.status == SetStatus::Damaged)
    {
        found.push(Blocker {
            set: damaged.id.clone(),
            sources: Vec::new(),
            unreadable: damaged.sources().is_none(),
            future: false,
        });
    }
    found
}

/// One line of the decision table, from a plan ([`PruneRow`]) or an event.
pub struct TableRow<'a> {
    pub set: &'a str,
    pub status: SetStatus,
    pub keep: bool,
    pub reasons: Vec<String>,
}

/// The decision table as people read it: `planrun prune` and the `prune:` step print the same.
pub fn table(rows: &[TableRow<'_>]) -> String {
    let width = rows
        .iter()
        .map(|r| r.set.len())
        .max()
        .unwrap_or(0)
        .max("SET".len());
    let mut out = format!(
        "{:width$}  {:10}  {:6}  REASONS\n",
        "SET", "STATUS", "ACTION"
    );
    for row in rows {
        let action = if row.keep { "keep" } else { "remove" };
        let line = format!(
            "{:width$}  {:10}  {action:6}  {}",
            row.set,
            row.status.to_string(),
            row.reasons.join("; ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The table of a prune plan's rows.
pub fn render_table(rows: &[PruneRow]) -> String {
    let rows: Vec<TableRow<'_>> = rows
        .iter()
        .map(|row| TableRow {
            set: row.id.as_str(),
            status: row.status,
            keep: row.decision.keep,
            reasons: reasons(&row.decision),
        })
        .collect();
    table(&rows)
}

fn reasons(decision: &Decision) -> Vec<String> {
    decision.reasons.iter().map(ToString::to_string).collect()
}

pub fn rows_json(rows: &[PruneRow]) -> serde_json::Value {
    rows.iter()
        .map(|row| {
            serde_json::json!({
                "set": row.id.as_str(),
                "status": row.status,
                "keep": row.decision.keep,
                "reasons": reasons(&row.decision),
            })
        })
        .collect()
}

/// The sets a prune keeps as the newest restorable set of some source, newest first: the
/// sets that must really be restorable before anything older is removed.
fn protected(sets: &[SetSummary]) -> Vec<&SetSummary> {
    let sources: BTreeSet<&str> = sets
        .iter()
        .filter(|s| s.status.restorable())
        .filter_map(SetSummary::sources)
        .flatten()
        .collect();
    let mut found: Vec<&SetSummary> = Vec::new();
    for source in sources {
        if let Some(set) = newest_restorable_with(sets, source)
            && !found.iter().any(|f| f.id == set.id)
        {
            found.push(set);
        }
    }
    found.sort_by(|a, b| b.id.cmp(&a.id));
    found
}

/// Lists the store and plans the prune of `plan`.
///
/// A set counts as complete from its listing (manifest, names and sizes), but a byte
/// flipped in place keeps the size. So when the plan would remove anything, the set kept as
/// the newest restorable set of each source must be known intact: by a verification of that
/// exact manifest made after the set was written and within [`TRUSTED_VERIFY_AGE`] of `now`
/// (a `verify` command or step, or an earlier prune's re-hash), or else by re-hashing it now
/// (and writing its `verify.json`, as `verify` does). A set that turns out damaged then stops
/// the prune, as any damaged newest set does. A prune that removes nothing reads no
/// artifact. The plan's `checks` say which was used for each set.
pub async fn plan_store(
    store: &Store,
    plan: &str,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<PrunePlan, StoreError> {
    let sets = store.list_sets(plan).await?;
    let decided = plan_prune(&sets, policy, now);
    if decided.to_remove().is_empty() {
        return Ok(decided);
    }
    let mut checks = Vec::new();
    let mut stale = Vec::new();
    for set in protected(&sets) {
        match trusted_record(set, now) {
            Some(verified_at) => checks.push(IntegrityCheck {
                set: set.id.clone(),
                by: CheckedBy::Record { verified_at },
            }),
            None => stale.push(set),
        }
    }
    if stale.is_empty() {
        return Ok(PrunePlan { checks, ..decided });
    }
    for set in stale {
        verify_set(store, plan, set, now).await?;
        checks.push(IntegrityCheck {
            set: set.id.clone(),
            by: CheckedBy::Rehashed,
        });
    }
    checks.sort_by(|a, b| b.set.cmp(&a.set));
    // Decided again from a fresh listing, so the status comes from the one place that
    // decides it, now with the verify records just written.
    let sets = store.list_sets(plan).await?;
    Ok(PrunePlan {
        checks,
        ..plan_prune(&sets, policy, now)
    })
}

/// When a verification that prune may rely on found `set` intact: one of its exact manifest
/// (the listing keeps only such records), with no problem, made after the set was written
/// and within [`TRUSTED_VERIFY_AGE`] of `now`, and not in the future.
fn trusted_record(set: &SetSummary, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let record = set.verify.as_ref().filter(|r| r.ok())?;
    let written = set
        .manifest
        .as_ref()
        .map_or_else(|| set.id.started_at(), |m| m.finished_at);
    (record.verified_at >= written
        && record.verified_at <= now
        && now - record.verified_at <= TRUSTED_VERIFY_AGE)
        .then_some(record.verified_at)
}
