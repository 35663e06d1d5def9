//! `planrun prune` through the real binary, on a local folder and on S3 (s3s-fs on loopback).

mod support;

use std::path::Path;

use assert_cmd::Command;
use support::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

/// Writes a set folder of source `db`; `complete` sets get a manifest.
fn make_set(root: &Path, id: &str, complete: bool) {
    let dir = support::write_set(root, "crm", id, &[("db.dump.zst", "db", b"dump")]);
    if !complete {
        std::fs::remove_file(dir.join("manifest.json")).unwrap();
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
20250212T020000Z-cccc  complete    keep    db: daily 2025-02-12
20250211T020000Z-bbbb  complete    keep    db: daily 2025-02-11
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
        .stderr("planrun: unknown storage `offsite` (the plan has: local)\n");
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
        serde_json::json!(["db: daily 2025-02-12"])
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

/// Breaks a set folder in one way.
type Forgery = fn(&Path);

/// Each way a newest set can be broken, with its name.
fn forgeries() -> Vec<(&'static str, Forgery)> {
    vec![
        ("{}", |dir| {
            std::fs::write(dir.join("manifest.json"), b"{}").unwrap()
        }),
        ("format only", |dir| {
            std::fs::write(dir.join("manifest.json"), br#"{"format":1}"#).unwrap()
        }),
        ("a flipped bit in a key", |dir| {
            let mut bytes = std::fs::read(dir.join("manifest.json")).unwrap();
            let at = bytes.windows(9).position(|w| w == b"artifacts").unwrap();
            bytes[at] ^= 0x01;
            std::fs::write(dir.join("manifest.json"), bytes).unwrap();
        }),
        ("a missing artifact", |dir| {
            std::fs::remove_file(dir.join("db.dump.zst")).unwrap()
        }),
        ("a truncated artifact", |dir| {
            std::fs::write(dir.join("db.dump.zst"), b"du").unwrap()
        }),
    ]
}

#[test]
fn a_damaged_newest_set_stops_prune_whatever_broke_it() {
    for (what, forge) in forgeries() {
        let dir = tempfile::tempdir().unwrap();
        let backups = dir.path().join("backups");
        for id in [
            "20250210T020000Z-aaaa",
            "20250211T020000Z-bbbb",
            "20250212T020000Z-cccc",
        ] {
            make_set(&backups, id, true);
        }
        let newest = "20250213T020000Z-dddd";
        make_set(&backups, newest, true);
        forge(&backups.join("crm").join(newest));
        let plan = write_plan(
            dir.path(),
            &format!("  local:\n    local: {{ path: \"{}\" }}", backups.display()),
        );

        let snapshots = planrun()
            .args(["snapshots", "--json"])
            .arg(&plan)
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&snapshots.stdout).unwrap();
        assert_eq!(
            json["storage"][0]["sets"][0]["status"], "damaged",
            "{what}: {json:#}"
        );
        assert_eq!(
            json["storage"][0]["sets"][1]["status"], "complete",
            "{what}"
        );

        let output = planrun().arg("prune").arg(&plan).output().unwrap();
        assert_eq!(output.status.code(), Some(1), "{what}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.starts_with(&format!(
                "planrun: storage `local`: prune refused: set {newest} is damaged"
            )),
            "{what}: {stderr}"
        );
        assert!(
            stderr.ends_with(
                "newest set holding `db`: nothing is removed until it is verified or removed by hand\n"
            ),
            "{what}: {stderr}"
        );
        assert_eq!(
            support::names(&backups.join("crm")).len(),
            4,
            "{what}: prune removed a set"
        );
    }
}

#[test]
fn a_partial_set_does_not_push_out_the_only_full_set() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    support::write_set(
        &backups,
        "crm",
        "20250211T020000Z-aaaa",
        &[
            ("db.dump.zst", "db", b"d1"),
            ("media.tar.zst", "media", b"m1"),
        ],
    );
    support::write_set(
        &backups,
        "crm",
        "20250212T020000Z-bbbb",
        &[
            ("db.dump.zst", "db", b"d2"),
            ("media.tar.zst", "media", b"m2"),
        ],
    );
    support::write_set(
        &backups,
        "crm",
        "20250213T020000Z-cccc",
        &[("conf.tar.zst", "conf", b"c3")],
    );
    let plan = write_plan(
        dir.path(),
        &format!("  local:\n    local: {{ path: \"{}\" }}", backups.display()),
    )
    .to_owned();
    std::fs::write(
        &plan,
        std::fs::read_to_string(&plan)
            .unwrap()
            .replace("keep_daily: 2", "keep_last: 1"),
    )
    .unwrap();
    planrun()
        .arg("prune")
        .arg(&plan)
        .assert()
        .success()
        .stdout(format!(
            "storage local at {}/crm
SET                    STATUS      ACTION  REASONS
20250213T020000Z-cccc  complete    keep    conf: last
20250212T020000Z-bbbb  complete    keep    db, media: last
20250211T020000Z-aaaa  complete    remove
removed 20250211T020000Z-aaaa
1 of 3 sets removed
",
            backups.display()
        ));
}
