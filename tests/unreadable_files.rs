//! An unreadable file fails a directory backup, unless the source says `on_unreadable: warn`,
//! which skips and names it. Root reads everything, so as root the test runs `planrun` as
//! `nobody`, in a temp dir that user can enter and a state dir and storage it can write.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use support::run::{stderr, step};
use support::{Env, Test};

const NOBODY: u32 = 65534;

/// A plan backing up `data` as source `media`, with `on_unreadable` set when given. Written
/// by hand, not with `Env::plan`: `nobody` must be able to read it (mode 0644).
fn write_plan(dir: &Path, on_unreadable: &str) {
    let plan = dir.join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            r#"
version: 1
name: app
sources:
  media: {{ directory: {{ path: "{{{{plan.dir}}}}/data"{on_unreadable} }} }}
storage:
  local: {{ local: {{ path: "{{{{plan.dir}}}}/store" }} }}
steps:
  - {{ id: media, backup: media }}
"#
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plan, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn unreadable_files_fail_or_warn() {
    let env = Env::new();
    let work = env.dir();
    std::fs::set_permissions(work, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = work.join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("ok.txt"), b"fine\n").unwrap();
    std::fs::write(data.join("secret.key"), b"no\n").unwrap();
    std::fs::set_permissions(
        data.join("secret.key"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    for folder in ["store", "state"] {
        std::fs::create_dir(work.join(folder)).unwrap();
    }
    let root = nix::unistd::geteuid().is_root();
    if root {
        let nobody = Some(nix::unistd::Uid::from_raw(NOBODY));
        nix::unistd::chown(&work.join("store"), nobody, None).unwrap();
        nix::unistd::chown(&work.join("state"), nobody, None).unwrap();
    }
    let execute = |on_unreadable: &str| {
        write_plan(work, on_unreadable);
        let mut command = Test::in_env(&env).args(["execute", "plan.yaml"]).command();
        if root {
            command.uid(NOBODY).gid(NOBODY);
        }
        command.output().unwrap()
    };

    let failed = execute("");
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let record = env.records()[0].clone();
    let error = step(&record, "media")["attempts"][0]["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        error,
        format!(
            "backup `media`: cannot read {}: Permission denied (os error 13)",
            data.join("secret.key").display()
        )
    );
    let leftovers = support::names(&work.join("store/app"));
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let warned = execute(", on_unreadable: warn");
    assert_eq!(warned.status.code(), Some(3), "{}", stderr(&warned));
    let log = env.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split_once(" media: warning: ").map(|(_, w)| w))
        .collect();
    assert_eq!(
        warnings,
        [format!(
            "skipped {}: Permission denied (os error 13)",
            data.join("secret.key").display()
        )]
    );
    let sets = support::names(&work.join("store/app"));
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(work.join("store/app").join(&sets[0]).join("manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        manifest["warnings"],
        serde_json::json!([format!(
            "media: skipped {}: Permission denied (os error 13)",
            data.join("secret.key").display()
        )])
    );
    assert_eq!(manifest["artifacts"][0]["facts"]["files"], 1);
}
