//! Storage layer tests against [`MemoryStore`]: the status rules, the meanings of "newest",
//! per-source prune and its safety stop, verify and copy, all through the one [`Store`] API,
//! which is what proves a storage kind is one [`Backend`] implementation.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::memory_store::MemoryStore;
use super::prune::plan_prune;
use super::*;
use crate::plan::{Keep, Retention};
use crate::retention::Policy;

const PLAN: &str = "crm";

fn id(text: &str) -> SetId {
    SetId::parse(text).unwrap()
}

/// A manifest for `set` as planrun writes it, one artifact per `(source, bytes)`.
fn manifest(set: &SetId, artifacts: &[(&str, &[u8])], missing: &[&str]) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT,
        planrun_version: "0.1.0".into(),
        set_id: set.to_string(),
        plan: PlanRef {
            name: PLAN.into(),
            digest: "00".into(),
        },
        host: "test".into(),
        started_at: set.started_at(),
        finished_at: set.started_at(),
        artifacts: artifacts
            .iter()
            .map(|(source, bytes)| ArtifactEntry {
                name: format!("{source}.tar.zst"),
                source: (*source).into(),
                kind: ArtifactKind::TarZstd,
                size: bytes.len() as u64,
                sha256: hex(&Sha256::digest(bytes)),
                facts: Facts::new(),
            })
            .collect(),
        warnings: vec![],
        missing_sources: missing.iter().map(|s| (*s).into()).collect(),
    }
}

/// Writes a committed set holding `sources` into `memory`.
fn put_set(memory: &MemoryStore, set: &str, sources: &[&str]) -> SetId {
    let set = id(set);
    let artifacts: Vec<(&str, &[u8])> = sources.iter().map(|s| (*s, s.as_bytes())).collect();
    for (source, bytes) in &artifacts {
        memory.insert(PLAN, &set, &format!("{source}.tar.zst"), bytes);
    }
    memory.insert(
        PLAN,
        &set,
        MANIFEST,
        &manifest(&set, &artifacts, &[]).to_json(),
    );
    set
}

fn statuses(sets: &[SetSummary]) -> Vec<(String, SetStatus)> {
    sets.iter().map(|s| (s.id.to_string(), s.status)).collect()
}

fn now() -> DateTime<Utc> {
    "2026-12-01T00:00:00Z".parse().unwrap()
}

fn keep_last(n: u32) -> Policy {
    Policy::new(&Retention {
        keep_last: Some(Keep::Count(n)),
        ..Retention::default()
    })
    .unwrap()
}

#[tokio::test]
async fn forged_and_broken_manifests_are_damaged_and_a_format_1_manifest_is_complete() {
    let memory = MemoryStore::default();
    let good = put_set(&memory, "20261101T020000Z-0001", &["db"]);
    let forged = |set: &str, bytes: &[u8]| {
        let set = id(set);
        memory.insert(PLAN, &set, "db.tar.zst", b"db");
        memory.insert(PLAN, &set, MANIFEST, bytes);
    };
    forged("20261102T020000Z-0001", b"{}");
    forged("20261103T020000Z-0001", br#"{"format":1}"#);
    // One flipped bit in a key: `artifacts` becomes `artifactq`.
    let flipped = id("20261104T020000Z-0001");
    let mut bytes = manifest(&flipped, &[("db", b"db")], &[]).to_json();
    let at = bytes.windows(9).position(|w| w == b"artifacts").unwrap() + 8;
    bytes[at] ^= 0x02;
    forged("20261104T020000Z-0001", &bytes);
    // An artifact missing, and one truncated.
    let missing = put_set(&memory, "20261105T020000Z-0001", &["db"]);
    memory.delete(PLAN, &missing, "db.tar.zst");
    let truncated = put_set(&memory, "20261106T020000Z-0001", &["db"]);
    memory.insert(PLAN, &truncated, "db.tar.zst", b"d");
    // A manifest moved to another set's folder.
    let moved = id("20261107T020000Z-0001");
    memory.insert(PLAN, &moved, "db.tar.zst", b"db");
    memory.insert(
        PLAN,
        &moved,
        MANIFEST,
        &manifest(&good, &[("db", b"db")], &[]).to_json(),
    );
    // No manifest at all: incomplete, not damaged.
    memory.insert(PLAN, &id("20261108T020000Z-0001"), "db.tar.zst", b"d");

    let store = Store::new(memory.clone());
    let sets = store.list_sets(PLAN).await.unwrap();
    assert_eq!(
        statuses(&sets),
        [
            ("20261108T020000Z-0001".into(), SetStatus::Incomplete),
            ("20261107T020000Z-0001".into(), SetStatus::Damaged),
            ("20261106T020000Z-0001".into(), SetStatus::Damaged),
            ("20261105T020000Z-0001".into(), SetStatus::Damaged),
            ("20261104T020000Z-0001".into(), SetStatus::Damaged),
            ("20261103T020000Z-0001".into(), SetStatus::Damaged),
            ("20261102T020000Z-0001".into(), SetStatus::Damaged),
            ("20261101T020000Z-0001".into(), SetStatus::Complete),
        ]
    );
    assert_eq!(
        sets[2].damage,
        ["db.tar.zst: size 1 bytes, manifest says 2"]
    );
    assert_eq!(sets[3].damage, ["db.tar.zst: missing"]);
    assert!(sets[4].damage[0].starts_with("manifest.json: unknown field `artifactq`"));

    // `latest` for db skips every damaged and incomplete set; verify's newest takes damage.
    assert_eq!(newest_restorable_with(&sets, "db").unwrap().id, good);
    assert_eq!(newest_restorable_with(&sets, "media").map(|s| &s.id), None);
    assert_eq!(
        newest_with_manifest(&sets).unwrap().id,
        id("20261107T020000Z-0001")
    );
    let restore = store.set_to_restore(PLAN, None, "db").await.unwrap();
    assert_eq!(restore.id, good);
    let refused = store
        .set_to_restore(PLAN, Some("20261102T020000Z-0001"), "db")
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .starts_with("backup set `20261102T020000Z-0001` is damaged: manifest.json: "),
        "{refused}"
    );

    // Prune keeps everything and names the damaged set that is db's newest.
    let plan = plan_prune(&sets, &keep_last(1), now());
    assert!(plan.to_remove().is_empty());
    assert_eq!(
        plan.refusal().unwrap(),
        "set 20261107T020000Z-0001 is damaged (its manifest cannot be read) and may be the \
         newest set holding `db`: nothing is removed until it is verified or removed by hand"
    );
}

#[tokio::test]
async fn retention_decides_per_source_and_a_partial_set_never_pushes_out_another_source() {
    let memory = MemoryStore::default();
    let old_full = put_set(&memory, "20261128T020000Z-0001", &["db", "media"]);
    let full = put_set(&memory, "20261129T020000Z-0001", &["db", "media"]);
    let partial = put_set(&memory, "20261130T020000Z-0001", &["conf"]);
    let store = Store::new(memory);
    let sets = store.list_sets(PLAN).await.unwrap();

    assert_eq!(newest_restorable_with(&sets, "media").unwrap().id, full);
    assert_eq!(newest_restorable_with(&sets, "conf").unwrap().id, partial);
    assert_eq!(
        newest_restorable_with_all(&sets, &["db", "media"])
            .unwrap()
            .id,
        full
    );
    assert_eq!(newest_restorable_with_all(&sets, &[]).unwrap().id, partial);

    let plan = plan_prune(&sets, &keep_last(1), now());
    assert_eq!(plan.refusal(), None);
    let rows: Vec<(String, bool, String)> = plan
        .rows
        .iter()
        .map(|r| {
            let reasons: Vec<String> = r.decision.reasons.iter().map(ToString::to_string).collect();
            (r.id.to_string(), r.decision.keep, reasons.join("; "))
        })
        .collect();
    assert_eq!(
        rows,
        [
            (partial.to_string(), true, "conf: last".into()),
            (full.to_string(), true, "db, media: last".into()),
            (old_full.to_string(), false, String::new()),
        ]
    );
    assert_eq!(plan.to_remove(), std::slice::from_ref(&old_full));
    store.delete_set(PLAN, &old_full).await.unwrap();
    assert_eq!(store.list_sets(PLAN).await.unwrap().len(), 2);
}

#[tokio::test]
async fn verify_and_copy_work_on_any_backend() {
    let memory = MemoryStore::default();
    let set = put_set(&memory, "20261129T020000Z-0001", &["db", "media"]);
    let from = Store::new(memory.clone());
    let to = Store::new(MemoryStore::default());
    let report = copy_between(&from, &to, PLAN, &set).await.unwrap();
    assert_eq!(report.uploaded, ["db.tar.zst", "media.tar.zst"]);
    let copied = to.summary(PLAN, &set).await.unwrap();
    assert_eq!(copied.status, SetStatus::Complete);
    let record = verify_set(&to, PLAN, &copied, now()).await.unwrap();
    assert!(record.ok());
    assert_eq!(
        to.summary(PLAN, &set).await.unwrap().status,
        SetStatus::Verified
    );

    // Bit rot of the same size: only re-hashing finds it, and copy refuses to spread it.
    memory.insert(PLAN, &set, "media.tar.zst", b"mediA");
    let summary = from.summary(PLAN, &set).await.unwrap();
    let record = verify_set(&from, PLAN, &summary, now()).await.unwrap();
    assert_eq!(record.problems.len(), 1);
    assert_eq!(
        from.summary(PLAN, &set).await.unwrap().status,
        SetStatus::Damaged
    );
    let third = Store::new(MemoryStore::default());
    let error = copy_between(&from, &third, PLAN, &set).await.unwrap_err();
    assert!(
        error.to_string().contains("media.tar.zst has sha256"),
        "{error}"
    );
    assert_eq!(
        statuses(&third.list_sets(PLAN).await.unwrap()),
        [(set.to_string(), SetStatus::Incomplete)]
    );
}

#[tokio::test]
async fn a_missing_object_is_a_typed_not_found() {
    let store = Store::new(MemoryStore::default());
    let error = store
        .open_artifact(PLAN, &id("20261129T020000Z-0001"), "db.tar.zst")
        .await
        .err()
        .unwrap();
    assert!(matches!(error, StoreError::NotFound { .. }), "{error}");
}

#[test]
fn a_partial_manifest_names_what_it_lacks_and_old_manifests_are_full() {
    let set = id("20261129T020000Z-0001");
    let partial = manifest(&set, &[("conf", b"c")], &["db", "media"]);
    let read = Manifest::from_json(&partial.to_json(), PLAN, set.as_str()).unwrap();
    assert!(read.is_partial());
    assert_eq!(read.missing_sources, ["db", "media"]);
    let full = manifest(&set, &[("db", b"d")], &[]);
    let text = String::from_utf8(full.to_json()).unwrap();
    assert!(!text.contains("missing_sources"), "{text}");
    assert!(
        !Manifest::from_json(text.as_bytes(), PLAN, set.as_str())
            .unwrap()
            .is_partial()
    );
}
