//! `snapshots`, `verify` and `restore` against S3 (s3s-fs on loopback) through the real binary,
//! exactly as against a local folder: the level 3/4 disaster, with the local folder gone.

mod support;

use std::path::Path;

use assert_cmd::cargo::CommandCargoExt;
use support::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

/// `planrun COMMAND plan.yaml --storage offsite ARGS` in `dir`: every command here works on
/// the off-site copy alone.
fn offsite(dir: &Path, command: &str, args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::cargo_bin("planrun")
        .unwrap()
        .args([command, "plan.yaml", "--storage", "offsite"])
        .args(args)
        .current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn snapshots_verify_and_restore_work_from_s3_with_the_local_folder_gone() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("app/media");
    std::fs::create_dir_all(media.join("avatars")).unwrap();
    std::fs::write(media.join("avatars/a.txt"), b"avatar a\n").unwrap();
    std::fs::write(media.join("invoice.txt"), b"invoice 1\n").unwrap();
    std::fs::write(
        dir.path().join("plan.yaml"),
        format!(
            "version: 1
name: crm
sources:
  media: {{ directory: {{ path: \"{{{{plan.dir}}}}/app/media\" }} }}
storage:
  local: {{ local: {{ path: \"{{{{plan.dir}}}}/backups\" }} }}
  offsite:
    s3: {{ bucket: {BUCKET}, prefix: crm-backups/, endpoint: \"{}\", path_style: true, allow_http: true }}
steps:
  - {{ id: media, backup: media }}
  - {{ id: offsite, copy: {{ to: offsite }}, needs: [media] }}
",
            server.endpoint()
        ),
    )
    .unwrap();

    // Last night's run: the set written locally and copied off-site by its `copy` step.
    let output = std::process::Command::cargo_bin("planrun")
        .unwrap()
        .args(["execute", "plan.yaml", "--state-dir", "state"])
        .current_dir(dir.path())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let id = support::names(&dir.path().join("backups/crm"))
        .pop()
        .unwrap();

    // The data centre is lost.
    std::fs::remove_dir_all(dir.path().join("backups")).unwrap();
    std::fs::remove_dir_all(dir.path().join("app")).unwrap();

    let (code, out, err) = offsite(dir.path(), "snapshots", &["--json"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sets = json["storage"][0]["sets"].as_array().unwrap();
    assert_eq!(sets.len(), 1, "{out}");
    assert_eq!(sets[0]["status"], "complete");

    let (code, out, err) = offsite(dir.path(), "verify", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(&format!("offsite {}: verified", id.as_str())),
        "{out}"
    );
    // verify.json now sits beside the manifest in the bucket, so the status says so.
    let (_, out, _) = offsite(dir.path(), "snapshots", &["--json"]);
    assert!(out.contains("\"verified\""), "{out}");

    let (code, out, err) = offsite(
        dir.path(),
        "restore",
        &["--source", "media", "--to", "restored/media"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("restored media from offsite set {}", id.as_str())),
        "{out}"
    );
    assert_eq!(
        std::fs::read(dir.path().join("restored/media/avatars/a.txt")).unwrap(),
        b"avatar a\n"
    );
    assert_eq!(
        std::fs::read(dir.path().join("restored/media/invoice.txt")).unwrap(),
        b"invoice 1\n"
    );

    // One byte flipped in the bucket: verify reads the stored object and fails.
    let object = server
        .bucket_dir()
        .join("crm-backups/crm")
        .join(id.as_str())
        .join("media.tar.zst");
    let mut bytes = std::fs::read(&object).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&object, &bytes).unwrap();
    let (code, out, _) = offsite(dir.path(), "verify", &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("media.tar.zst: sha256 "), "{out}");
    // Restore refuses it: by status (verify recorded the damage), and by hash when named.
    let (code, _, err) = offsite(
        dir.path(),
        "restore",
        &["--source", "media", "--to", "again"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no complete backup set"), "{err}");
    let (code, _, err) = offsite(
        dir.path(),
        "restore",
        &["--source", "media", "--set", id.as_str(), "--to", "again"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("media.tar.zst: sha256 "), "{err}");
    assert!(!dir.path().join("again").exists());
}
