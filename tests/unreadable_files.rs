//! An unreadable file fails a directory backup, unless the source says `on_unreadable: warn`,
//! which skips and names it. Root reads everything, so as root the test drops its effective
//! uid to `nobody` (this binary holds only this test, so no other thread is affected).

#[path = "support/library.rs"]
mod library;
mod support;

use std::os::unix::fs::PermissionsExt;

use planrun::plan::{DirectorySource, OnUnreadable, Source};

#[test]
fn unreadable_files_fail_or_warn() {
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = work.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("ok.txt"), b"fine\n").unwrap();
    std::fs::write(data.join("secret.key"), b"no\n").unwrap();
    std::fs::set_permissions(
        data.join("secret.key"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    let storage = work.path().join("store");
    std::fs::create_dir(&storage).unwrap();
    std::fs::set_permissions(&storage, std::fs::Permissions::from_mode(0o777)).unwrap();
    let scratch = work.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::set_permissions(&scratch, std::fs::Permissions::from_mode(0o777)).unwrap();

    let root = nix::unistd::geteuid().is_root();
    if root {
        nix::unistd::seteuid(nix::unistd::Uid::from_raw(65534)).unwrap();
    }
    let source = |on_unreadable| {
        Source::Directory(DirectorySource {
            path: data.display().to_string(),
            exclude: vec![],
            on_unreadable,
            level: None,
        })
    };
    let (failed, fail_result) = library::back_up(&storage, "app", "media", &source(None), &scratch);
    let (_, warn_result) = library::back_up(
        &storage,
        "app",
        "media",
        &source(Some(OnUnreadable::Warn)),
        &scratch,
    );
    let leftovers = support::names(failed.path());
    if root {
        nix::unistd::seteuid(nix::unistd::Uid::from_raw(0)).unwrap();
    }

    let error = fail_result.unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "cannot read {}: Permission denied (os error 13)",
            data.join("secret.key").display()
        )
    );
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let (backup, manifest) = warn_result.unwrap();
    assert_eq!(
        backup.warnings,
        [format!(
            "skipped {}: Permission denied (os error 13)",
            data.join("secret.key").display()
        )]
    );
    assert_eq!(
        manifest.warnings,
        [format!(
            "media: skipped {}: Permission denied (os error 13)",
            data.join("secret.key").display()
        )]
    );
    assert_eq!(backup.artifacts[0].facts["files"], 1);
}
