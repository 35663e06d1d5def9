//! A full disk while writing a set: no manifest, no temporary files, and the next backup
//! succeeds once space is freed. Needs root for a small tmpfs (CI runs as root).

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::Env;
use support::run::{stderr, step};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Every file under `dir`, recursively; none when it does not exist.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Incompressible bytes, so the archive is as large as the data.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_full_disk_leaves_no_manifest_and_no_temp_files() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test mounts a tmpfs and must run as root (CI does)"
    );
    let env = Env::new();
    let work = env.dir();
    let disk = work.join("disk");
    std::fs::create_dir(&disk).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t tmpfs failed");
    let _mount = Mount(disk.clone());

    let data = work.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::File::create(data.join("blob"))
        .unwrap()
        .write_all(&noise(1200 << 10, 7))
        .unwrap();
    let filler = disk.join("filler");
    std::fs::File::create(&filler)
        .unwrap()
        .write_all(&noise(1200 << 10, 9))
        .unwrap();

    env.plan(
        r#"
version: 1
name: app
sources:
  media: { directory: { path: "DIR/data" } }
storage:
  local: { local: { path: "DIR/disk/backups" } }
steps:
  - { id: media, backup: media }
"#,
    );
    let storage = disk.join("backups");
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let record = env.record();
    let error = step(&record, "media")["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("No space left on device"), "{error}");
    assert_eq!(
        files_under(&storage),
        Vec::<PathBuf>::new(),
        "no manifest, no partial file"
    );
    // The run's rollback removes the empty set folder.
    assert_eq!(support::names(&storage.join("app")), Vec::<String>::new());

    std::fs::remove_file(&filler).unwrap();
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let id = env.records()[0]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(
        support::names(&storage.join("app").join(id)),
        ["manifest.json", "media.tar.zst"]
    );
}
