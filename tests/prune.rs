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

/// Dates a set folder and its files back to `time`, as if a run had written them then.
fn backdate(root: &Path, id: &str, time: std::time::SystemTime) {
    let dir = root.join("crm").join(id);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let file = std::fs::File::options()
            .write(true)
            .open(entry.unwrap().path())
            .unwrap();
        file.set_modified(time).unwrap();
    }
    std::fs::File::open(&dir)
        .unwrap()
        .set_modified(time)
        .unwrap();
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

/// `planrun prune` with its own state directory under `dir`, so that the plan's lock is this
/// test's alone.
fn prune(dir: &Path) -> Command {
    let mut command = planrun();
    command
        .arg("prune")
        .arg("--state-dir")
        .arg(dir.join("state"));
    command
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
    // The dead run's folder was last written when it died, in February 2025.
    backdate(
        &backups,
        "20250212T030000Z-dddd",
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_739_329_200),
    );
    let plan = write_plan(
        dir.path(),
        &format!("  local:\n    local: {{ path: \"{}\" }}", backups.display()),
    );
    let table = format!(
        "storage local at {}/crm
SET                    STATUS      ACTION  REASONS
20250212T030000Z-dddd  incomplete  remove  incomplete for more than 1d
20250212T020000Z-cccc  verified    keep    db: daily 2025-02-12
20250211T020000Z-bbbb  complete    keep    db: daily 2025-02-11
20250210T020000Z-aaaa  complete    remove
",
        backups.display()
    );
    // The newest set was never verified: it is re-hashed before anything is removed, and
    // the table says so.
    prune(dir.path())
        .arg("--dry-run")
        .arg(&plan)
        .assert()
        .success()
        .stdout(format!(
            "{table}set 20250212T020000Z-cccc re-hashed now: no verification of it in the last 7 days\n\
             dry run: 2 of 4 sets would be removed\n"
        ));
    assert!(backups.join("crm/20250210T020000Z-aaaa").exists());

    // That re-hash, minutes old, stands for the next prune, which says it used it.
    let verified = verified_at(&backups, "20250212T020000Z-cccc");
    prune(dir.path())
        .arg(&plan)
        .assert()
        .success()
        .stdout(format!(
            "{table}set 20250212T020000Z-cccc not read again: its verify.json found it intact at {verified}\n\
             removed 20250212T030000Z-dddd\nremoved 20250210T020000Z-aaaa\n2 of 4 sets removed\n"
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
    prune(dir.path())
        .args(["--storage", "offsite"])
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
        // Written just now under an old id: its objects' LastModified makes it young.
        ("20200101T000000Z-dead", false),
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
    let output = prune(dir.path())
        .args(["--json", "--storage", "offsite"])
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

        let output = prune(dir.path()).arg(&plan).output().unwrap();
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
    prune(dir.path())
        .arg(&plan)
        .assert()
        .success()
        .stdout(format!(
            "storage local at {}/crm
SET                    STATUS      ACTION  REASONS
20250213T020000Z-cccc  verified    keep    conf: last
20250212T020000Z-bbbb  verified    keep    db, media: last
20250211T020000Z-aaaa  complete    remove
set 20250213T020000Z-cccc re-hashed now: no verification of it in the last 7 days
set 20250212T020000Z-bbbb re-hashed now: no verification of it in the last 7 days
removed 20250211T020000Z-aaaa
1 of 3 sets removed
",
            backups.display()
        ));
}

/// A plan over the local folder `backups` with `retention` in place of `keep_daily: 2`.
fn local_plan(dir: &Path, backups: &Path, retention: &str) -> std::path::PathBuf {
    let plan = write_plan(
        dir,
        &format!("  local:\n    local: {{ path: \"{}\" }}", backups.display()),
    );
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("keep_daily: 2", retention);
    std::fs::write(&plan, text).unwrap();
    plan
}

/// Flips one bit of a file in place: same size, different bytes.
fn flip_a_bit(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[1] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

const THREE: [&str; 3] = [
    "20250210T020000Z-aaaa",
    "20250211T020000Z-bbbb",
    "20250212T020000Z-cccc",
];

/// The refusal for a newest set `cccc` that re-hashing found damaged.
const REFUSED: &str = "planrun: storage `local`: prune refused: set 20250212T020000Z-cccc is damaged and is the newest set holding `db`: nothing is removed until it is verified or removed by hand\n";

/// The status `snapshots` shows for the newest set.
fn status_of_newest(plan: &Path) -> serde_json::Value {
    let output = planrun()
        .args(["snapshots", "--json"])
        .arg(plan)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    json["storage"][0]["sets"][0]["status"].clone()
}

#[test]
fn a_same_size_bit_flip_in_the_newest_set_stops_prune() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    for id in THREE {
        make_set(&backups, id, true);
    }
    flip_a_bit(&backups.join("crm/20250212T020000Z-cccc/db.dump.zst"));
    let plan = local_plan(dir.path(), &backups, "keep_last: 1");
    // The listing alone cannot tell: names and sizes are as the manifest says.
    assert_eq!(status_of_newest(&plan), "complete");

    prune(dir.path())
        .arg(&plan)
        .assert()
        .code(1)
        .stderr(REFUSED)
        .stdout(format!(
            "storage local at {}/crm
SET                    STATUS      ACTION  REASONS
20250212T020000Z-cccc  damaged     keep    damaged, not counted
20250211T020000Z-bbbb  complete    keep    db: last
20250210T020000Z-aaaa  complete    remove
set 20250212T020000Z-cccc re-hashed now: no verification of it in the last 7 days
",
            backups.display()
        ));
    assert_eq!(support::names(&backups.join("crm")), THREE);
    // The re-hash was recorded as `verify` records it, so every command now sees it.
    assert_eq!(status_of_newest(&plan), "damaged");
}

/// The `verified_at` of a set's `verify.json`, to the second, as prune prints it.
fn verified_at(backups: &Path, id: &str) -> String {
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(backups.join("crm").join(id).join("verify.json")).unwrap(),
    )
    .unwrap();
    let at = record["verified_at"].as_str().unwrap();
    format!("{}Z", &at[..19])
}

/// Moves a set's verification `days` back in time, as if it had been made then.
fn age_verification(backups: &Path, id: &str, days: i64) {
    let path = backups.join("crm").join(id).join("verify.json");
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let at = chrono::Utc::now() - chrono::Duration::days(days);
    record["verified_at"] = serde_json::json!(at.to_rfc3339());
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
}

/// Three sets under `keep_last: 1`, the newest verified `days` ago and then rotted (a bit
/// flipped in place): the temp dir, the storage folder and the plan.
fn verified_then_rotted(days: i64) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    for id in THREE {
        make_set(&backups, id, true);
    }
    let plan = local_plan(dir.path(), &backups, "keep_last: 1");
    planrun().arg("verify").arg(&plan).assert().success();
    assert_eq!(status_of_newest(&plan), "verified");
    age_verification(&backups, "20250212T020000Z-cccc", days);
    flip_a_bit(&backups.join("crm/20250212T020000Z-cccc/db.dump.zst"));
    (dir, backups, plan)
}

#[test]
fn a_verification_older_than_a_week_is_not_trusted_so_rot_since_stops_prune() {
    let (dir, backups, plan) = verified_then_rotted(8);

    prune(dir.path())
        .arg(&plan)
        .assert()
        .code(1)
        .stderr(REFUSED);
    assert_eq!(support::names(&backups.join("crm")), THREE);
    assert_eq!(status_of_newest(&plan), "damaged");
}

/// A `planrun verify` (a weekly cron, say) spares the nightly prune the re-hash of the newest
/// set for a week, and the prune says which verification it relied on. What that costs is
/// shown plainly: a set that rots after its verification is not seen until the next one.
#[test]
fn a_verification_within_the_week_is_used_instead_of_reading_the_set_again() {
    // Not read again: a bit flipped since the verification goes unseen by this prune.
    let (dir, backups, plan) = verified_then_rotted(6);
    let verified = verified_at(&backups, "20250212T020000Z-cccc");
    prune(dir.path())
        .arg(&plan)
        .assert()
        .success()
        .stdout(format!(
            "storage local at {}/crm
SET                    STATUS      ACTION  REASONS
20250212T020000Z-cccc  verified    keep    db: last
20250211T020000Z-bbbb  complete    remove
20250210T020000Z-aaaa  complete    remove
set 20250212T020000Z-cccc not read again: its verify.json found it intact at {verified}
removed 20250211T020000Z-bbbb
removed 20250210T020000Z-aaaa
2 of 3 sets removed
",
            backups.display()
        ));
    // The next `verify` finds the rot, as it reads what is stored.
    planrun().arg("verify").arg(&plan).assert().code(1);
}

#[test]
fn a_prune_that_removes_nothing_reads_no_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    for id in THREE {
        make_set(&backups, id, true);
    }
    let plan = local_plan(dir.path(), &backups, "keep_last: 3");
    prune(dir.path()).arg(&plan).assert().success();
    for id in THREE {
        assert!(!backups.join("crm").join(id).join("verify.json").exists());
    }
}

#[test]
fn a_bit_flip_on_s3_is_found_by_streaming_the_object() {
    let server = S3Server::start();
    let prefix = server.bucket_dir().join("backups");
    for id in THREE {
        make_set(&prefix, id, true);
    }
    flip_a_bit(&prefix.join("crm/20250212T020000Z-cccc/db.dump.zst"));
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
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("keep_daily: 2", "keep_last: 1");
    std::fs::write(&plan, text).unwrap();
    prune(dir.path())
        .arg(&plan)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .assert()
        .code(1)
        .stderr("planrun: storage `offsite`: prune refused: set 20250212T020000Z-cccc is damaged and is the newest set holding `db`: nothing is removed until it is verified or removed by hand\n");
    assert_eq!(support::names(&prefix.join("crm")), THREE);
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(prefix.join("crm/20250212T020000Z-cccc/verify.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["problems"][0]["problem"]["kind"], "hash_mismatch");
}

#[test]
fn prune_exits_4_while_a_run_of_the_plan_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    for id in THREE {
        make_set(&backups, id, true);
    }
    // What a running execute looks like from outside: a set without its manifest yet.
    make_set(&backups, "20250212T030000Z-dddd", false);
    let plan = local_plan(dir.path(), &backups, "keep_last: 1\n  incomplete_after: 1h");
    let text = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("run: [\"true\"]", "run: [sleep, \"30\"]");
    std::fs::write(&plan, text).unwrap();
    let state = dir.path().join("state");
    let mut run = std::process::Command::new(assert_cmd::cargo::cargo_bin("planrun"))
        .arg("execute")
        .arg("--state-dir")
        .arg(&state)
        .arg(&plan)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = state.join("locks/crm.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("\"pid\"")) {
        assert!(std::time::Instant::now() < deadline, "execute never locked");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let output = prune(dir.path()).arg(&plan).output().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    run.wait().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "planrun: plan `crm` is already running: pid {} on ",
            run.id()
        )),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
    assert_eq!(support::names(&backups.join("crm")).len(), 4);
}

#[test]
fn an_incomplete_after_under_an_hour_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plan = local_plan(
        dir.path(),
        &dir.path().join("backups"),
        "keep_daily: 2\n  incomplete_after: 0s",
    );
    let output = planrun().arg("validate").arg(&plan).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains(
            "error: retention.incomplete_after: incomplete_after is shorter than 1h: a backup still being written could be removed"
        ),
        "{stdout}"
    );
    prune(dir.path()).arg(&plan).assert().code(2);
}

#[test]
fn a_fresh_folder_with_an_old_id_is_not_removed_as_old() {
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    for id in THREE {
        make_set(&backups, id, true);
    }
    make_set(&backups, "20200101T000000Z-dead", false);
    let plan = local_plan(dir.path(), &backups, "keep_last: 3");
    prune(dir.path())
        .arg(&plan)
        .assert()
        .success()
        .stdout(format!(
            "storage local at {}/crm
SET                    STATUS      ACTION  REASONS
20250212T020000Z-cccc  complete    keep    db: last
20250211T020000Z-bbbb  complete    keep    db: last
20250210T020000Z-aaaa  complete    keep    db: last
20200101T000000Z-dead  incomplete  keep    incomplete, younger than 1d
0 of 4 sets removed
",
            backups.display()
        ));
    assert!(backups.join("crm/20200101T000000Z-dead").exists());
}

#[test]
fn a_set_dated_in_the_future_stops_prune() {
    // Written while a clock was wrong, it would be "last" forever and push out every
    // night's real backup.
    let dir = tempfile::tempdir().unwrap();
    let backups = dir.path().join("backups");
    for id in THREE {
        make_set(&backups, id, true);
    }
    make_set(&backups, "20991231T000000Z-f00d", true);
    let plan = local_plan(dir.path(), &backups, "keep_last: 1");
    let output = prune(dir.path()).arg(&plan).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "planrun: storage `local`: prune refused: set 20991231T000000Z-f00d is dated in the future (was a clock wrong when it was written?); move it aside: nothing is removed until it is verified or removed by hand\n"
    );
    let mut all = THREE.to_vec();
    all.push("20991231T000000Z-f00d");
    assert_eq!(support::names(&backups.join("crm")), all);
}
