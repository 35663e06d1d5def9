//! Archives built to escape the destination are refused before anything is written, and
//! nothing appears outside the destination.

mod support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use chrono::Utc;
use planrun::plan::{DirectorySource, Source};
use planrun::source::RestoreTarget;
use planrun::storage::{ArtifactEntry, ArtifactKind, ArtifactWriter, LocalStore, Store};

enum Item<'a> {
    File(&'a str, u32),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Device(&'a str),
}

/// A tar stream with raw names: the tar crate's safe setters refuse `..`, so the name bytes
/// are written into the header directly.
fn hostile_tar(items: &[Item]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        let mut header = tar::Header::new_old();
        let (name, kind, link, mode, data): (&str, tar::EntryType, Option<&str>, u32, &[u8]) =
            match item {
                Item::File(name, mode) => (name, tar::EntryType::Regular, None, *mode, b"pwned\n"),
                Item::Dir(name) => (name, tar::EntryType::Directory, None, 0o755, b""),
                Item::Symlink(name, target) => {
                    (name, tar::EntryType::Symlink, Some(target), 0o777, b"")
                }
                Item::Device(name) => (name, tar::EntryType::Char, None, 0o666, b""),
            };
        let raw = header.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(link) = link {
            raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Stores `tar` as the artifact of source `src` in a complete set.
fn store_set(storage: &Path, tar: &[u8]) {
    let now = Utc::now();
    let set = support::begin_set(storage, "app", now);
    let mut writer = ArtifactWriter::create(set.path(), "src.tar.zst").unwrap();
    writer
        .write_all(&zstd::encode_all(tar, 3).unwrap())
        .unwrap();
    let digest = writer.finish().unwrap();
    let mut manifest = set.finalize(now).unwrap();
    manifest.artifacts.push(ArtifactEntry {
        name: "src.tar.zst".into(),
        source: "src".into(),
        kind: ArtifactKind::TarZstd,
        size: digest.size,
        sha256: digest.sha256,
        facts: Default::default(),
    });
    planrun::storage::write_atomically(set.path(), "manifest.json", &manifest.to_json()).unwrap();
}

fn restore(storage: &Path, dest: &Path) -> Result<(), String> {
    let source = Source::Directory(DirectorySource {
        path: "/unused".into(),
        exclude: vec![],
        on_unreadable: None,
        level: None,
    });
    let store = Store::new(LocalStore::new(storage));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(planrun::storage::restore_source(
            &store,
            "app",
            "src",
            &source,
            None,
            RestoreTarget {
                database: None,
                path: Some(dest.to_owned()),
                force: false,
            },
            storage,
        ))
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn escaping_entries_are_refused_and_nothing_is_written() {
    let work = tempfile::tempdir().unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let absolute = outside.join("abs.txt");
    let absolute = absolute.to_str().unwrap();
    let outside_str = outside.to_str().unwrap();
    let cases: Vec<(Vec<Item>, String)> = vec![
        (
            vec![
                Item::File("ok.txt", 0o644),
                Item::File("../../outside/evil.txt", 0o644),
            ],
            "`../../outside/evil.txt`: its path contains `..`".into(),
        ),
        (
            vec![Item::File(absolute, 0o644)],
            format!("`{absolute}`: its path is absolute"),
        ),
        (
            vec![
                Item::Symlink("escape", outside_str),
                Item::File("escape/evil.txt", 0o644),
            ],
            "`escape`: it is a symlink to an absolute path".into(),
        ),
        (
            vec![
                Item::Symlink("up", "../../outside"),
                Item::File("up/evil.txt", 0o644),
            ],
            "`up`: it is a symlink escaping the destination".into(),
        ),
        (
            vec![
                Item::Dir("sub"),
                Item::Symlink("sub/here", ".."),
                Item::File("sub/here/evil.txt", 0o644),
            ],
            "`sub/here/evil.txt`: it lies beneath a symlink or file of the archive".into(),
        ),
        (
            vec![Item::Device("null")],
            "`null`: it is a device node".into(),
        ),
    ];
    for (i, (items, reason)) in cases.into_iter().enumerate() {
        let storage = work.path().join(format!("store{i}"));
        store_set(&storage, &hostile_tar(&items));
        let dest = work.path().join(format!("dest{i}/tree"));
        let error = restore(&storage, &dest).unwrap_err();
        assert_eq!(
            error,
            format!("refusing archive entry {reason}; nothing was written"),
            "case {i}"
        );
        assert!(
            !dest.exists(),
            "case {i}: the destination must not be created"
        );
        assert!(
            support::names(&outside).is_empty(),
            "case {i}: something escaped"
        );
        assert!(
            !work.path().join(format!("dest{i}")).exists()
                || support::names(&work.path().join(format!("dest{i}"))).is_empty()
        );
    }
}

#[test]
fn setuid_bits_are_dropped() {
    let work = tempfile::tempdir().unwrap();
    let storage = work.path().join("store");
    store_set(
        &storage,
        &hostile_tar(&[Item::Dir("bin"), Item::File("bin/tool", 0o4755)]),
    );
    let dest = work.path().join("tree");
    restore(&storage, &dest).unwrap();
    assert_eq!(
        std::fs::metadata(dest.join("bin/tool")).unwrap().mode() & 0o7777,
        0o755
    );
}
