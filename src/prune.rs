//! Prune: list a storage's sets, let the retention policy decide, show the table, then remove.
//!
//! The decision is [`crate::retention::decide`]; this module adds what a storage knows (ids,
//! status) and the order of removal. Removal deletes the manifest first, so an interrupted
//! prune leaves an incomplete set, never a complete-looking one with artifacts missing.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::plan::Storage;
use crate::retention::{Decision, Policy, SetInfo, SetStatus, decide};
use crate::s3::{S3Error, Tuning, hex};
use crate::s3_store::{MANIFEST, S3Store, SetStoreError, VERIFY, set_time};

/// A set as prune sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    pub time: DateTime<Utc>,
    pub status: SetStatus,
}

/// One line of the decision table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PruneRow {
    pub id: String,
    pub status: SetStatus,
    pub decision: Decision,
}

/// The decision for every set, newest first.
pub fn decide_prune(sets: &[Candidate], policy: &Policy, now: DateTime<Utc>) -> Vec<PruneRow> {
    // Listings come in directory or bucket order, and ids carry whole seconds only in `time`:
    // in id order, the later of two sets made in the same second is the newer one to `decide`.
    let mut sets = sets.to_vec();
    sets.sort_by(|a, b| a.id.cmp(&b.id));
    let infos: Vec<SetInfo> = sets
        .iter()
        .map(|s| SetInfo {
            time: s.time,
            status: s.status,
        })
        .collect();
    let decisions = decide(&infos, policy, now);
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
    rows
}

pub fn status_name(status: SetStatus) -> &'static str {
    match status {
        SetStatus::Complete => "complete",
        SetStatus::Incomplete => "incomplete",
        SetStatus::Damaged => "damaged",
    }
}

/// The decision table as people read it.
pub fn render_table(rows: &[PruneRow]) -> String {
    let width = rows
        .iter()
        .map(|r| r.id.len())
        .max()
        .unwrap_or(0)
        .max("SET".len());
    let mut out = format!(
        "{:width$}  {:10}  {:6}  REASONS\n",
        "SET", "STATUS", "ACTION"
    );
    for row in rows {
        let action = if row.decision.keep { "keep" } else { "remove" };
        let reasons: Vec<String> = row
            .decision
            .reasons
            .iter()
            .map(ToString::to_string)
            .collect();
        let line = format!(
            "{:width$}  {:10}  {action:6}  {}",
            row.id,
            status_name(row.status),
            reasons.join(", ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn rows_json(rows: &[PruneRow]) -> serde_json::Value {
    rows.iter()
        .map(|row| {
            serde_json::json!({
                "set": row.id,
                "status": status_name(row.status),
                "keep": row.decision.keep,
                "reasons": row.decision.reasons.iter().map(ToString::to_string).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("cannot {action} {}: {source}", path.display())]
    Local {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Remote(#[from] SetStoreError),
}

/// The part of `verify.json` that decides whether a set is damaged.
#[derive(Deserialize)]
struct VerifyView {
    manifest_sha256: String,
    problems: Vec<serde_json::Value>,
}

/// Status from what is stored: no manifest is incomplete; an unreadable manifest, or a verify
/// record of *this* manifest with problems, is damaged.
pub fn status_from(manifest: Option<&[u8]>, verify: Option<&[u8]>) -> SetStatus {
    let Some(manifest) = manifest else {
        return SetStatus::Incomplete;
    };
    if serde_json::from_slice::<serde_json::Value>(manifest).is_err() {
        return SetStatus::Damaged;
    }
    let manifest_sha = hex(&Sha256::digest(manifest));
    match verify.and_then(|v| serde_json::from_slice::<VerifyView>(v).ok()) {
        Some(record) if record.manifest_sha256 == manifest_sha && !record.problems.is_empty() => {
            SetStatus::Damaged
        }
        _ => SetStatus::Complete,
    }
}

/// Where the sets to prune live.
pub enum Target {
    /// A local storage folder (`<path>`; sets at `<path>/<plan>/<id>/`).
    Local(PathBuf),
    S3(S3Store),
}

impl Target {
    /// Opens a rendered storage (S3 credentials from the storage or the environment).
    pub fn open(storage: &Storage) -> Result<Target, S3Error> {
        Ok(match storage {
            Storage::Local(local) => Target::Local(PathBuf::from(&local.path)),
            Storage::S3(s3) => Target::S3(S3Store::open(s3, Tuning::default())?),
        })
    }

    pub fn location(&self, plan: &str) -> String {
        match self {
            Target::Local(root) => root.join(plan).display().to_string(),
            Target::S3(store) => store.location(plan),
        }
    }

    pub async fn candidates(&self, plan: &str) -> Result<Vec<Candidate>, PruneError> {
        let mut out = Vec::new();
        match self {
            Target::Local(root) => {
                let dir = root.join(plan);
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(source) => {
                        return Err(PruneError::Local {
                            action: "list",
                            path: dir,
                            source,
                        });
                    }
                };
                for entry in entries {
                    let entry = entry.map_err(|source| PruneError::Local {
                        action: "list",
                        path: dir.clone(),
                        source,
                    })?;
                    let id = entry.file_name().to_string_lossy().into_owned();
                    let Some(time) = set_time(&id) else { continue };
                    if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                        continue;
                    }
                    let manifest = std::fs::read(entry.path().join(MANIFEST)).ok();
                    let verify = std::fs::read(entry.path().join(VERIFY)).ok();
                    out.push(Candidate {
                        id,
                        time,
                        status: status_from(manifest.as_deref(), verify.as_deref()),
                    });
                }
            }
            Target::S3(store) => {
                use futures::{StreamExt, TryStreamExt};
                // Manifests are read a few at a time: one round trip after another would make
                // a bucket with thousands of sets slow to prune.
                let sets = store.list_sets(plan).await?;
                out = futures::stream::iter(sets)
                    .filter_map(|set| async move { set_time(&set.id).map(|time| (set, time)) })
                    .map(|(set, time)| async move {
                        let manifest = if set.is_complete() {
                            store.read_manifest(plan, &set.id).await?
                        } else {
                            None
                        };
                        let verify = if set.has(VERIFY) {
                            store.read_verify(plan, &set.id).await?
                        } else {
                            None
                        };
                        let status = status_from(manifest.as_deref(), verify.as_deref());
                        Ok::<_, PruneError>(Candidate {
                            id: set.id,
                            time,
                            status,
                        })
                    })
                    .buffered(16)
                    .try_collect()
                    .await?;
            }
        }
        Ok(out)
    }

    /// Deletes one set, manifest first.
    pub async fn delete(&self, plan: &str, id: &str) -> Result<(), PruneError> {
        match self {
            Target::Local(root) => {
                let dir = root.join(plan).join(id);
                let local = |action, path: &Path| {
                    let path = path.to_owned();
                    move |source| PruneError::Local {
                        action,
                        path,
                        source,
                    }
                };
                match std::fs::remove_file(dir.join(MANIFEST)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(PruneError::Local {
                            action: "remove",
                            path: dir.join(MANIFEST),
                            source,
                        });
                    }
                }
                // The manifest's removal must reach the disk before the artifacts go.
                std::fs::File::open(&dir)
                    .and_then(|d| d.sync_all())
                    .map_err(local("sync", &dir))?;
                std::fs::remove_dir_all(&dir).map_err(local("remove", &dir))?;
                Ok(())
            }
            Target::S3(store) => Ok(store.delete_set(plan, id).await?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Keep, Retention};

    fn candidate(id: &str, status: SetStatus) -> Candidate {
        Candidate {
            id: id.into(),
            time: set_time(id).unwrap(),
            status,
        }
    }

    #[test]
    fn sets_of_one_second_count_newest_by_id_whatever_the_listing_order() {
        // Ids made in one second differ in their millisecond suffix; the listing order is
        // the directory's, which says nothing about age.
        let sets = [
            candidate("20250214T020000Z-5001234", SetStatus::Complete),
            candidate("20250214T020000Z-900ffff", SetStatus::Complete),
            candidate("20250214T020000Z-0100000", SetStatus::Complete),
        ];
        let policy = Policy::new(&Retention {
            keep_last: Some(Keep::Count(2)),
            ..Retention::default()
        })
        .unwrap();
        let now = set_time("20250214T030000Z").unwrap();
        let rows = decide_prune(&sets, &policy, now);
        let kept: Vec<(&str, bool)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.decision.keep))
            .collect();
        assert_eq!(
            kept,
            [
                ("20250214T020000Z-900ffff", true),
                ("20250214T020000Z-5001234", true),
                ("20250214T020000Z-0100000", false),
            ]
        );
    }

    #[test]
    fn the_table_lists_newest_first_with_reasons() {
        let sets = [
            candidate("20250212T020000Z-aaaa", SetStatus::Complete),
            candidate("20250214T020000Z-cccc", SetStatus::Incomplete),
            candidate("20250213T020000Z-bbbb", SetStatus::Complete),
            candidate("20250211T020000Z-dddd", SetStatus::Damaged),
        ];
        let policy = Policy::new(&Retention {
            keep_last: Some(Keep::Count(1)),
            ..Retention::default()
        })
        .unwrap();
        let now = set_time("20250214T030000Z").unwrap();
        let rows = decide_prune(&sets, &policy, now);
        assert_eq!(
            render_table(&rows),
            "SET                    STATUS      ACTION  REASONS
20250214T020000Z-cccc  incomplete  keep    incomplete, younger than 1d
20250213T020000Z-bbbb  complete    keep    last
20250212T020000Z-aaaa  complete    remove
20250211T020000Z-dddd  damaged     keep    damaged, not counted
"
        );
        assert_eq!(
            rows_json(&rows)[2],
            serde_json::json!({"set": "20250212T020000Z-aaaa", "status": "complete", "keep": false, "reasons": []})
        );
    }

    #[test]
    fn status_follows_the_manifest_and_its_verify_record() {
        let manifest = br#"{"artifacts":[]}"#;
        let sha = hex(&Sha256::digest(manifest));
        let bad = format!(
            r#"{{"manifest_sha256":"{sha}","problems":[{{"artifact":"a","problem":{{"kind":"missing"}}}}]}}"#
        );
        let stale = r#"{"manifest_sha256":"00","problems":[{"artifact":"a"}]}"#;
        assert_eq!(status_from(None, None), SetStatus::Incomplete);
        assert_eq!(status_from(Some(manifest), None), SetStatus::Complete);
        assert_eq!(
            status_from(Some(manifest), Some(bad.as_bytes())),
            SetStatus::Damaged
        );
        assert_eq!(
            status_from(Some(manifest), Some(stale.as_bytes())),
            SetStatus::Complete
        );
        assert_eq!(status_from(Some(b"{truncated"), None), SetStatus::Damaged);
    }

    #[tokio::test]
    async fn local_sets_are_listed_and_removed_manifest_first() {
        let root = tempfile::tempdir().unwrap();
        for (id, complete) in [
            ("20250213T020000Z-bbbb", true),
            ("20250212T020000Z-aaaa", false),
        ] {
            let dir = root.path().join("crm").join(id);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("db.dump.zst"), b"x").unwrap();
            if complete {
                std::fs::write(dir.join(MANIFEST), br#"{"artifacts":[]}"#).unwrap();
            }
        }
        std::fs::create_dir_all(root.path().join("crm/lost+found")).unwrap();
        let target = Target::Local(root.path().to_owned());
        let mut sets = target.candidates("crm").await.unwrap();
        sets.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(
            sets.iter()
                .map(|s| (s.id.as_str(), s.status))
                .collect::<Vec<_>>(),
            [
                ("20250212T020000Z-aaaa", SetStatus::Incomplete),
                ("20250213T020000Z-bbbb", SetStatus::Complete)
            ]
        );
        target.delete("crm", "20250213T020000Z-bbbb").await.unwrap();
        assert!(!root.path().join("crm/20250213T020000Z-bbbb").exists());
    }
}
