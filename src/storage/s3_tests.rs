//! Backup sets on S3: copy (manifest last, resumable), verify reading the stored bytes, and
//! restore with the local copy gone. Against s3s-fs on loopback.

use std::path::{Path, PathBuf};

use tokio::io::AsyncReadExt;

use super::{
    ArtifactProblem, ArtifactSource, CopyError, CopyReport, LocalStore, Problem, S3Store, SetId,
    SetStatus, SetSummary, Store, copy_between, copy_set, verify_set,
};
use crate::s3::test_server::{S3Server, StopsServer, noise, sha256_hex};

const PLAN: &str = "crm";
const SET: &str = "20250214T020000Z-3f9a";

fn store(server: &S3Server) -> Store {
    Store::new(S3Store::new(server.bucket("backups/")))
}

fn id() -> SetId {
    SetId::parse(SET).unwrap()
}

/// Copies the set in the local folder `set_dir` (`<root>/<plan>/<id>`) to `to`.
async fn copy_local_set(set_dir: &Path, to: &Store) -> Result<CopyReport, CopyError> {
    let root = set_dir.parent().unwrap().parent().unwrap();
    copy_between(&Store::new(LocalStore::new(root)), to, PLAN, &id()).await
}

/// Re-hashes the stored set; the problems verify found.
async fn verify(store: &Store) -> Vec<ArtifactProblem> {
    let set = store.summary(PLAN, &id()).await.unwrap();
    verify_set(store, PLAN, &set, chrono::Utc::now())
        .await
        .unwrap()
        .problems
}

fn complete(sets: &[SetSummary]) -> bool {
    sets[0].status.restorable()
}

/// A local set folder as the backup code writes it: artifacts, then `manifest.json`.
fn local_set(root: &Path, artifacts: &[(&str, Vec<u8>)]) -> PathBuf {
    let dir = root.join(PLAN).join(SET);
    std::fs::create_dir_all(&dir).unwrap();
    let mut entries = Vec::new();
    for (name, data) in artifacts {
        std::fs::write(dir.join(name), data).unwrap();
        entries.push(serde_json::json!({
            "name": name, "source": "db", "kind": "pg_dump_custom_zstd",
            "size": data.len(), "sha256": sha256_hex(data), "facts": {}
        }));
    }
    let manifest = serde_json::json!({
        "format": 1, "planrun_version": "0.1.0", "set_id": SET,
        "plan": { "name": PLAN, "digest": "00" }, "host": "test",
        "started_at": "2025-02-14T02:00:00Z", "finished_at": "2025-02-14T02:01:00Z",
        "artifacts": entries,
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dir
}

fn artifacts() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("db.dump.zst", noise(14 * 1024 * 1024, 1)),
        ("media.tar.zst", noise(300_000, 2)),
        ("config.tar.zst", noise(2_000, 3)),
    ]
}

#[tokio::test]
async fn a_copied_set_is_complete_and_verifies_and_restores_without_the_local_folder() {
    let server = S3Server::start();
    let store = store(&server);
    let local = tempfile::tempdir().unwrap();
    let set_dir = local_set(local.path(), &artifacts());

    let report = copy_local_set(&set_dir, &store).await.unwrap();
    assert_eq!(
        report.uploaded,
        ["db.dump.zst", "media.tar.zst", "config.tar.zst"]
    );
    let sets = store.list_sets(PLAN).await.unwrap();
    assert_eq!(sets.len(), 1);
    assert!(complete(&sets));
    assert_eq!(verify(&store).await, []);

    // A second copy sends nothing.
    let again = copy_local_set(&set_dir, &store).await.unwrap();
    assert!(again.already_complete && again.uploaded.is_empty());

    // The data centre is gone: only the bucket is left.
    let manifest = std::fs::read(set_dir.join("manifest.json")).unwrap();
    drop(local);
    assert_eq!(
        store.read_manifest(PLAN, &id()).await.unwrap().unwrap(),
        manifest
    );
    for (name, data) in artifacts() {
        let mut reader = store.open_artifact(PLAN, &id(), name).await.unwrap();
        let mut back = Vec::new();
        reader.read_to_end(&mut back).await.unwrap();
        assert!(back == data, "{name} differs");
    }
}

#[tokio::test]
async fn a_byte_flipped_in_the_bucket_fails_verify() {
    let server = S3Server::start();
    let store = store(&server);
    let local = tempfile::tempdir().unwrap();
    let set_dir = local_set(local.path(), &artifacts());
    copy_local_set(&set_dir, &store).await.unwrap();

    let stored = server
        .bucket_dir()
        .join("backups")
        .join(PLAN)
        .join(SET)
        .join("media.tar.zst");
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[123_456] ^= 0x01;
    std::fs::write(&stored, &bytes).unwrap();

    let faults = verify(&store).await;
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].artifact, "media.tar.zst");
    assert!(
        matches!(faults[0].problem, Problem::HashMismatch { .. }),
        "{}",
        faults[0]
    );
}

#[tokio::test]
async fn a_damaged_local_artifact_is_not_replicated() {
    let server = S3Server::start();
    let store = store(&server);
    let local = tempfile::tempdir().unwrap();
    let set_dir = local_set(local.path(), &artifacts());
    std::fs::write(set_dir.join("config.tar.zst"), b"changed after the backup").unwrap();
    let error = copy_local_set(&set_dir, &store).await.unwrap_err();
    assert!(
        error.to_string().contains("config.tar.zst has sha256"),
        "{error}"
    );
    assert_eq!(
        store.list_sets(PLAN).await.unwrap()[0].status,
        SetStatus::Incomplete
    );
}

#[tokio::test]
async fn an_incomplete_local_set_is_not_copied() {
    let server = S3Server::start();
    let store = store(&server);
    let local = tempfile::tempdir().unwrap();
    let set_dir = local_set(local.path(), &artifacts());
    std::fs::remove_file(set_dir.join("manifest.json")).unwrap();
    let error = copy_local_set(&set_dir, &store).await.unwrap_err();
    assert!(matches!(error, CopyError::Incomplete { .. }), "{error}");
    assert!(store.list_sets(PLAN).await.unwrap().is_empty());
}

/// A set folder whose `artifact` stops the server `after` bytes.
struct Stopping {
    dir: PathBuf,
    artifact: &'static str,
    after: usize,
    server: std::sync::Arc<std::sync::Mutex<S3Server>>,
}

impl ArtifactSource for Stopping {
    type Reader = StopsServer;

    async fn open(&self, name: &str) -> Result<StopsServer, CopyError> {
        let data = std::fs::read(self.dir.join(name)).unwrap();
        let after = if name == self.artifact {
            self.after
        } else {
            usize::MAX
        };
        Ok(StopsServer::new(data, after, self.server.clone()))
    }
}

#[tokio::test]
async fn a_copy_cut_off_mid_upload_leaves_no_complete_set_and_the_rerun_completes() {
    let server = std::sync::Arc::new(std::sync::Mutex::new(S3Server::start()));
    let store = store(&server.lock().unwrap());
    let local = tempfile::tempdir().unwrap();
    let artifacts = artifacts();
    let set_dir = local_set(local.path(), &artifacts);
    let manifest = std::fs::read(set_dir.join("manifest.json")).unwrap();

    // The server dies 8 MiB into the first, multipart artifact.
    let source = Stopping {
        dir: set_dir.clone(),
        artifact: "db.dump.zst",
        after: 8 * 1024 * 1024,
        server: server.clone(),
    };
    let error = copy_set(manifest, &source, PLAN, &id(), &store)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("db.dump.zst"), "{error}");

    server.lock().unwrap().restart();
    let sets = store.list_sets(PLAN).await.unwrap();
    assert!(
        sets.iter().all(|set| set.status == SetStatus::Incomplete),
        "{sets:?}"
    );

    let report = copy_local_set(&set_dir, &store).await.unwrap();
    assert_eq!(
        report.uploaded,
        ["db.dump.zst", "media.tar.zst", "config.tar.zst"]
    );
    assert!(complete(&store.list_sets(PLAN).await.unwrap()));
    assert_eq!(verify(&store).await, []);
}

#[tokio::test]
async fn a_rerun_after_a_later_failure_resumes_the_stored_artifacts() {
    let server = std::sync::Arc::new(std::sync::Mutex::new(S3Server::start()));
    let store = store(&server.lock().unwrap());
    let local = tempfile::tempdir().unwrap();
    let set_dir = local_set(local.path(), &artifacts());
    let manifest = std::fs::read(set_dir.join("manifest.json")).unwrap();
    // The server dies at the start of the last artifact, after two are stored.
    let source = Stopping {
        dir: set_dir.clone(),
        artifact: "config.tar.zst",
        after: 0,
        server: server.clone(),
    };
    copy_set(manifest, &source, PLAN, &id(), &store)
        .await
        .unwrap_err();
    server.lock().unwrap().restart();
    let report = copy_local_set(&set_dir, &store).await.unwrap();
    assert_eq!(report.resumed, ["db.dump.zst", "media.tar.zst"]);
    assert_eq!(report.uploaded, ["config.tar.zst"]);
}

#[tokio::test]
async fn deleting_a_set_removes_the_manifest_first_and_everything_after() {
    let server = S3Server::start();
    let store = store(&server);
    let local = tempfile::tempdir().unwrap();
    let set_dir = local_set(local.path(), &artifacts());
    copy_local_set(&set_dir, &store).await.unwrap();
    store.delete_set(PLAN, &id()).await.unwrap();
    assert!(store.list_sets(PLAN).await.unwrap().is_empty());
}
