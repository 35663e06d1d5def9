//! Steps whose remote calls cannot hang, through the `planrun` binary: a copy step to an S3
//! server that accepts and never answers, and a notify step to a webhook that never answers
//! (a warning: a notification never changes the run's outcome).
//! The S3 client's own fault tests (frozen proxies, TLS, unknown hosts, refused credentials)
//! are unit tests beside it, in `src/s3/fault_tests.rs`.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use support::s3::{ACCESS_KEY, BUCKET, Frozen, SECRET_KEY, noise, sha256_hex};

/// A plan whose one step copies a finished local set to `endpoint`.
fn copy_plan(dir: &Path, endpoint: &str, stall: &str) -> std::path::PathBuf {
    let set = dir.join("backups/crm/20250214T020000Z-3f9a");
    std::fs::create_dir_all(&set).unwrap();
    let dump = noise(100_000, 1);
    std::fs::write(set.join("db.dump.zst"), &dump).unwrap();
    std::fs::write(
        set.join("manifest.json"),
        format!(
            r#"{{"format":1,"planrun_version":"0.1.0","set_id":"20250214T020000Z-3f9a",
"plan":{{"name":"crm","digest":"00"}},"host":"test",
"started_at":"2025-02-14T02:00:00Z","finished_at":"2025-02-14T02:01:00Z",
"artifacts":[{{"name":"db.dump.zst","source":"db","kind":"pg_dump_custom_zstd","size":{},"sha256":"{}","facts":{{}}}}]}}"#,
            dump.len(),
            sha256_hex(&dump)
        ),
    )
    .unwrap();
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1
name: crm
storage:
  local:
    local: {{ path: \"{}\" }}
  offsite:
    s3: {{ bucket: {BUCKET}, prefix: offsite/, endpoint: \"{endpoint}\", path_style: true, allow_http: true, stall_timeout: {stall} }}
steps:
  - id: offsite
    copy: {{ to: offsite, set: latest }}
",
            dir.join("backups").display(),
        ),
    )
    .unwrap();
    plan
}

#[test]
fn a_copy_step_to_a_frozen_server_fails_within_its_stall_timeout() {
    let frozen = Frozen::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = copy_plan(dir.path(), &frozen.endpoint(), "3s");
    let started = Instant::now();
    let output = Command::cargo_bin("planrun")
        .unwrap()
        .arg("execute")
        .arg(&plan)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "copy to `offsite`: s3://offsite/offsite/crm/20250214T020000Z-3f9a/manifest.json: \
             reading: the service made no progress for 3s (stall_timeout)"
        ),
        "{stdout}\n{stderr}"
    );
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn a_webhook_that_never_answers_is_a_warning_within_its_idle_timeout() {
    let frozen = Frozen::start();
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1
name: crm
steps:
  - id: ping
    notify: {{ webhook: \"{}/ping\" }}
",
            frozen.endpoint()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let output = Command::cargo_bin("planrun")
        .unwrap()
        .arg("execute")
        .arg(&plan)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // A notification never changes the run's outcome; its failure names the host only.
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let host = frozen.endpoint().trim_start_matches("http://").to_owned();
    assert!(
        stderr.contains(&format!("notify: {host} did not answer within 20s")),
        "{stdout}\n{stderr}"
    );
    assert!(
        elapsed >= Duration::from_secs(19) && elapsed < Duration::from_secs(28),
        "{elapsed:?}"
    );
}
