//! `planrun prune` through the real binary, on a local folder and on S3 (s3s-fs on loopback).

mod common;
mod support;

use std::path::Path;

use assert_cmd::Command;
use common::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

/// Writes a set folder; `complete` sets get a manifest.
fn make_set(root: &Path, id: &str, complete: bool) {
    let dir = root.join("crm").join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("db.dump.zst"), b"dump").unwrap();
    if complete {
        std::fs::write(
            dir.join("manifest.json"),
            br#"{"artifacts":[{"name":"db.dump.zst","size":4,"sha256":"5e4bd4c65e7a4f6ad11ae67dd07d1b2d8b8d4b7c2b8d7c1a1e5f0ad7a4b8c2b1"}]}"#,
        )
        .unwrap();
    }
}

fn write_plan(dir: &Path, storage: &str) -> std::path::PathBuf {
    let plan = format!(
        "version: 1
name: crm
storage:
{storage}
retention:
  keep_daily: 2
steps:
  - id: hello
    run: [\"true\"]
"
    );
    let path = dir.join("plan.yaml");
    std::fs::write(&path, plan).unwrap();
    path
}

fn planrun() -> Command {
    Command::cargo_bin("planrun").unwrap()
}

#[test]
fn dry_run_prints_the_table_and_removes_nothing_then_prune_removes() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    for (id, complete) in [
        ("20250210T020000Z-aaaa", true),
        ("20250211T020000Z-bbbb", true),
        ("20250212T020000Z-cccc", true),
        ("20250212T030000Z-dddd", false),
    ] {
        make_set(&backups, id, complete);
    }
    let plan = write_plan(
        dir.path(),
        &format!("  local:\n    local: {{ path: \"{}\" }}", backups.display()),
    );
    let table = format!(
        "storage local at {}/crm
SET                    STATUS      ACTION  REASONS
20250212T030000Z-dddd  incomplete  remove  incomplete for more than 1d
20250212T020000Z-cccc  complete    keep    daily 2025-02-12
20250211T020000Z-bbbb  complete    keep    daily 2025-02-11
20250210T020000Z-aaaa  complete    remove
",
        backups.display()
    );
    planrun()
        .args(["prune", "--dry-run"])
        .arg(&plan)
        .assert()
        .success()
        .stdout(format!("{table}dry run: 2 of 4 sets would be removed\n"));
    assert!(backups.join("crm/20250210T020000Z-aaaa").exists());

    planrun()
        .arg("prune")
        .arg(&plan)
        .assert()
        .success()
        .stdout(format!(
            "{table}removed 20250212T030000Z-dddd\nremoved 20250210T020000Z-aaaa\n2 of 4 sets removed\n"
        ));
    assert_eq!(
        support::names(&backups.join("crm")),
        ["20250211T020000Z-bbbb", "20250212T020000Z-cccc"]
    );
}

#[test]
fn an_unknown_storage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write_plan(dir.path(), "  local:\n    local: { path: /nonexistent }");
    planrun()
        .args(["prune", "--storage", "offsite"])
        .arg(&plan)
        .assert()
        .code(2)
        .stderr("planrun: the plan has no storage `offsite` (it has: local)\n");
}

#[test]
fn prune_on_s3_removes_sets_from_the_bucket() {
    let server = S3Server::start();
    let prefix = server.bucket_dir().join("backups");
    for (id, complete) in [
        ("20250210T020000Z-aaaa", true),
        ("20250211T020000Z-bbbb", true),
        ("20250212T020000Z-cccc", true),
    ] {
        make_set(&prefix, id, complete);
    }
    let dir = tempfile::tempdir().unwrap();
    let storage = format!(
        "  offsite:
    s3:
      bucket: {BUCKET}
      prefix: backups/
      endpoint: {}
      path_style: true
      allow_http: true",
        server.endpoint()
    );
    let plan = write_plan(dir.path(), &storage);
    let output = planrun()
        .args(["prune", "--json", "--storage", "offsite"])
        .arg(&plan)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let json: serde_json::Value = serde_json::from_slice(&output).unwrap();
    assert_eq!(json[0]["location"], "s3://offsite/backups/crm/");
    assert_eq!(
        json[0]["removed"],
        serde_json::json!(["20250210T020000Z-aaaa"])
    );
    assert_eq!(
        json[0]["sets"][0]["reasons"],
        serde_json::json!(["daily 2025-02-12"])
    );
    assert!(
        !prefix
            .join("crm/20250210T020000Z-aaaa/manifest.json")
            .exists()
    );
    assert!(
        !prefix
            .join("crm/20250210T020000Z-aaaa/db.dump.zst")
            .exists()
    );
    assert!(
        prefix
            .join("crm/20250211T020000Z-bbbb/manifest.json")
            .exists()
    );
}
