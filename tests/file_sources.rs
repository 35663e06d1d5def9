//! Round trips of the directory, files, sqlite and git sources through real sets, and the
//! checks restore makes before it writes anything.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use planrun::plan::{DirectorySource, GitSource, Source, SqliteSource};
use planrun::source::RestoreTarget;
use planrun::storage::{LocalStore, Store};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn restore(
    storage: &Path,
    source: &Source,
    target: RestoreTarget,
    scratch: &Path,
) -> Result<planrun::source::RestoreOutcome, String> {
    let store = Store::new(LocalStore::new(storage));
    runtime()
        .block_on(planrun::storage::restore_source(
            &store,
            "app",
            "src",
            source,
            Some("latest"),
            target,
            scratch,
        ))
        .map(|(_, outcome)| outcome)
        .map_err(|e| e.to_string())
}

fn to(path: &Path) -> RestoreTarget {
    RestoreTarget {
        database: None,
        path: Some(path.to_owned()),
        force: false,
    }
}

/// Every entry under `root`: relative path, kind, mode, and content or link target.
fn tree(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(root.join(rel))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        entries.sort();
        for name in entries {
            let rel = rel.join(name);
            let path = root.join(&rel);
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.mode() & 0o7777;
            let desc = if meta.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                format!("dir {mode:o}")
            } else {
                format!(
                    "file {mode:o} {:?} mtime {}",
                    std::fs::read(&path).unwrap(),
                    meta.mtime()
                )
            };
            out.push((rel.clone(), desc));
            if meta.is_dir() {
                walk(root, &rel, out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}

#[test]
fn directory_round_trip_keeps_modes_symlinks_and_honours_excludes() {
    let work = tempfile::tempdir().unwrap();
    let media = work.path().join("media");
    std::fs::create_dir_all(media.join("uploads/2026")).unwrap();
    std::fs::create_dir_all(media.join("cache/thumbs")).unwrap();
    std::fs::write(media.join("uploads/2026/invoice.pdf"), vec![7u8; 100_000]).unwrap();
    std::fs::write(media.join("uploads/script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(
        media.join("uploads/script.sh"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    std::fs::write(media.join("private.key"), b"k").unwrap();
    std::fs::set_permissions(
        media.join("private.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(media.join("cache/thumbs/a.png"), b"thumb").unwrap();
    std::os::unix::fs::symlink("uploads/2026/invoice.pdf", media.join("latest.pdf")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", media.join("outside")).unwrap();
    std::fs::set_permissions(
        media.join("uploads"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();

    let source = Source::Directory(DirectorySource {
        path: media.display().to_string(),
        exclude: vec!["cache/**".into(), "outside".into()],
        on_unreadable: None,
        level: None,
    });
    let storage = work.path().join("store");
    let (_, result) = support::back_up(&storage, "app", "src", &source, work.path());
    let (backup, manifest) = result.unwrap();
    let facts = &backup.artifacts[0].facts;
    assert_eq!(facts["files"], 3, "{facts:?}");
    assert_eq!(facts["bytes"], 100_000 + 18 + 1);
    assert_eq!(manifest.artifacts[0].name, "src.tar.zst");

    let restored = work.path().join("restored/media");
    let outcome = restore(&storage, &source, to(&restored), work.path()).unwrap();
    assert_eq!(outcome.facts["files"], 3);
    let mut expected = tree(&media);
    expected.retain(|(p, _)| !p.starts_with("cache") && p != Path::new("outside"));
    expected.push((PathBuf::from("cache"), "dir 755".into()));
    expected.sort();
    assert_eq!(tree(&restored), expected);

    // A second restore over the now non-empty folder needs force, and then replaces it.
    let again = restore(&storage, &source, to(&restored), work.path()).unwrap_err();
    assert!(
        again.starts_with(&format!(
            "refusing to replace {}: it exists and is not empty",
            restored.display()
        )),
        "{again}"
    );
    std::fs::write(restored.join("stray"), b"x").unwrap();
    restore(
        &storage,
        &source,
        RestoreTarget {
            force: true,
            ..to(&restored)
        },
        work.path(),
    )
    .unwrap();
    assert!(!restored.join("stray").exists());
    assert_eq!(
        support::names(&work.path().join("restored")),
        ["media"],
        "no staging folders left"
    );
}

#[test]
fn files_round_trip_with_modes_and_a_missing_file_is_named() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join(".env"), b"SECRET_KEY=abc\n").unwrap();
    std::fs::set_permissions(config.join(".env"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(config.join("settings.py"), b"DEBUG = False\n").unwrap();
    let files = vec![
        config.join(".env").display().to_string(),
        config.join("settings.py").display().to_string(),
    ];
    let storage = work.path().join("store");
    let (_, result) = support::back_up(
        &storage,
        "app",
        "src",
        &Source::Files(files.clone()),
        work.path(),
    );
    let (backup, _) = result.unwrap();
    assert_eq!(backup.artifacts[0].facts["files"], 2);

    let dest = work.path().join("out");
    restore(
        &storage,
        &Source::Files(files.clone()),
        to(&dest),
        work.path(),
    )
    .unwrap();
    assert_eq!(support::names(&dest), [".env", "settings.py"]);
    assert_eq!(
        std::fs::read(dest.join(".env")).unwrap(),
        b"SECRET_KEY=abc\n"
    );
    assert_eq!(
        std::fs::metadata(dest.join(".env")).unwrap().mode() & 0o777,
        0o640
    );
    let again = restore(
        &storage,
        &Source::Files(files.clone()),
        to(&dest),
        work.path(),
    )
    .unwrap_err();
    assert!(again.contains("it exists; pass --force"), "{again}");

    let mut missing = files.clone();
    missing.push(config.join("local_settings.py").display().to_string());
    let (writer, result) =
        support::back_up(&storage, "app", "src", &Source::Files(missing), work.path());
    let error = result.unwrap_err().to_string();
    assert_eq!(
        error,
        format!("{} is missing", config.join("local_settings.py").display())
    );
    assert!(support::names(writer.path()).is_empty());
}

#[test]
fn sqlite_round_trip_while_the_app_writes() {
    let work = tempfile::tempdir().unwrap();
    let db = work.path().join("app.sqlite3");
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .unwrap();
    connection
        .execute_batch(
            "CREATE TABLE auth_user (id INTEGER PRIMARY KEY, username TEXT);
             CREATE TABLE note (id INTEGER PRIMARY KEY, body BLOB);
             WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 5000)
             INSERT INTO note (body) SELECT randomblob(200) FROM g;
             INSERT INTO auth_user (username) VALUES ('ana'), ('bruno');",
        )
        .unwrap();
    // A writer keeps inserting while the backup runs.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_db = db.clone();
    let flag = stop.clone();
    let app = std::thread::spawn(move || {
        let connection = rusqlite::Connection::open(&writer_db).unwrap();
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let mut n = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            connection
                .execute("INSERT INTO note (body) VALUES (randomblob(100))", [])
                .unwrap();
            n += 1;
        }
        n
    });
    let source = Source::Sqlite(SqliteSource {
        path: db.display().to_string(),
        count_rows: None,
    });
    let storage = work.path().join("store");
    let (_, result) = support::back_up(&storage, "app", "src", &source, work.path());
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(app.join().unwrap() > 0);
    let (backup, _) = result.unwrap();
    let counts = &backup.artifacts[0].facts["row_counts"];
    assert_eq!(counts["auth_user"], 2);
    let notes = counts["note"].as_u64().unwrap();
    assert!(notes >= 5000, "{counts}");

    let target = work.path().join("restored.sqlite3");
    let outcome = restore(&storage, &source, to(&target), work.path()).unwrap();
    assert_eq!(&outcome.facts["row_counts"], counts);
    let restored = rusqlite::Connection::open(&target).unwrap();
    let users: Vec<String> = restored
        .prepare("SELECT username FROM auth_user ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(users, ["ana", "bruno"]);
    // Same content as the live database had for the rows the copy holds.
    let sum = |c: &rusqlite::Connection| -> String {
        c.query_row(&format!("SELECT hex(sha3_query) FROM (SELECT group_concat(hex(body)) AS sha3_query FROM (SELECT body FROM note WHERE id <= {notes} ORDER BY id))"), [], |r| r.get(0)).unwrap()
    };
    assert_eq!(sum(&restored), sum(&connection));

    // Replacing an existing file needs force; the sqlite3 CLI then reads the result.
    let refused = restore(&storage, &source, to(&target), work.path()).unwrap_err();
    assert!(refused.contains("it exists; pass --force"), "{refused}");
    restore(
        &storage,
        &source,
        RestoreTarget {
            force: true,
            ..to(&target)
        },
        work.path(),
    )
    .unwrap();
    let cli = Command::new("sqlite3")
        .arg(&target)
        .arg("SELECT count(*) FROM auth_user")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), "2");
}

#[test]
fn git_round_trip_keeps_head_and_history() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    let git = |dir: &Path, args: &[&str]| {
        let out = Command::new("git")
            .current_dir(dir)
            .args([
                "-c",
                "user.name=T",
                "-c",
                "user.email=t@example.com",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    for i in 0..3 {
        std::fs::write(repo.join("file.txt"), format!("v{i}\n")).unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-qm", &format!("commit {i}")]);
    }
    git(&repo, &["branch", "feature"]);
    let head = git(&repo, &["rev-parse", "HEAD"]);
    let source = Source::Git(GitSource {
        repo: repo.display().to_string(),
    });
    let storage = work.path().join("store");
    let (_, result) = support::back_up(&storage, "app", "src", &source, work.path());
    let (backup, _) = result.unwrap();
    assert_eq!(backup.artifacts[0].facts["head"], head.as_str());

    let clone = work.path().join("clone");
    let outcome = restore(&storage, &source, to(&clone), work.path()).unwrap();
    assert_eq!(outcome.facts["head"], head.as_str());
    assert_eq!(
        git(&clone, &["log", "--format=%H %s", "main"]),
        git(&repo, &["log", "--format=%H %s", "main"])
    );
    assert_eq!(git(&clone, &["rev-parse", "origin/feature"]), head);
}
