//! A full disk while writing a set: no manifest, no temporary files, and the next backup
//! succeeds once space is freed. Needs root for a small tmpfs (CI runs as root).

#[path = "support/library.rs"]
mod library;
mod support;

use std::io::Write;
use std::process::Command;

use planrun::plan::{DirectorySource, Source};

struct Mount(std::path::PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
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
    let work = tempfile::tempdir().unwrap();
    let disk = work.path().join("disk");
    std::fs::create_dir(&disk).unwrap();
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(status.success(), "mount -t tmpfs failed");
    let _mount = Mount(disk.clone());

    let data = work.path().join("data");
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

    let source = Source::Directory(DirectorySource {
        path: data.display().to_string(),
        exclude: vec![],
        on_unreadable: None,
        level: None,
    });
    let storage = disk.join("backups");
    let (writer, result) = library::back_up(&storage, "app", "media", &source, work.path());
    let error = result.unwrap_err().to_string();
    assert!(error.contains("No space left on device"), "{error}");
    assert_eq!(
        support::names(writer.path()),
        Vec::<String>::new(),
        "no manifest, no partial file"
    );
    // The run's rollback removes the empty set folder.
    writer.abandon().unwrap();
    assert_eq!(support::names(&storage.join("app")), Vec::<String>::new());

    std::fs::remove_file(&filler).unwrap();
    let (writer, result) = library::back_up(&storage, "app", "media", &source, work.path());
    result.unwrap();
    assert_eq!(
        support::names(writer.path()),
        ["manifest.json", "media.tar.zst"]
    );
}
