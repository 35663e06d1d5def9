//! A `copy:` step inside `planrun execute`, to s3s-fs on loopback, then checked with awscli.

mod support;

use assert_cmd::Command;
use support::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

#[test]
fn a_copy_step_replicates_the_newest_complete_set_and_awscli_reads_it() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    let dump = b"pretend this is pg_dump output".repeat(1000);
    let set = support::write_set(
        &backups,
        "crm",
        "20250214T020000Z-3f9a",
        &[("db.dump.zst", "db", &dump)],
    );
    // An older set without a manifest is never the one copied.
    std::fs::create_dir_all(backups.join("crm/20250215T020000Z-dead")).unwrap();

    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1
name: crm
storage:
  local:
    local: {{ path: \"{}\" }}
  offsite:
    s3: {{ bucket: {BUCKET}, prefix: offsite/, endpoint: \"{}\", path_style: true, allow_http: true }}
steps:
  - id: offsite
    copy: {{ to: offsite, set: latest }}
",
            backups.display(),
            server.endpoint()
        ),
    )
    .unwrap();
    Command::cargo_bin("planrun")
        .unwrap()
        .arg("execute")
        .arg(&plan)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .assert()
        .success();

    let fetched = dir.path().join("fetched");
    let status = server
        .aws()
        .args([
            "s3",
            "cp",
            "--only-show-errors",
            "--recursive",
            "s3://offsite/offsite/crm/20250214T020000Z-3f9a/",
        ])
        .arg(&fetched)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(fetched.join("db.dump.zst")).unwrap(), dump);
    assert_eq!(
        std::fs::read(fetched.join("manifest.json")).unwrap(),
        std::fs::read(set.join("manifest.json")).unwrap()
    );
    assert!(
        !server
            .bucket_dir()
            .join("offsite/crm/20250215T020000Z-dead")
            .exists()
    );
}

#[test]
fn a_prune_step_applies_the_plan_retention() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    for id in [
        "20250212T020000Z-aaaa",
        "20250213T020000Z-bbbb",
        "20250214T020000Z-cccc",
    ] {
        support::write_set(&backups, "crm", id, &[("db.dump.zst", "db", b"dump")]);
    }
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1
name: crm
timezone: Europe/Berlin
storage:
  local:
    local: {{ path: \"{}\" }}
retention: {{ keep_last: 2 }}
steps:
  - id: prune
    prune: [local]
",
            backups.display()
        ),
    )
    .unwrap();
    Command::cargo_bin("planrun")
        .unwrap()
        .arg("execute")
        .arg(&plan)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .assert()
        .success();
    assert_eq!(
        support::names(&backups.join("crm")),
        ["20250213T020000Z-bbbb", "20250214T020000Z-cccc"]
    );
}
