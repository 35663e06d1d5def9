//! The API the executor's backup, verify and restore step kinds call, on an ExecPlan built by
//! hand: one set per run, finalized or abandoned, verified, restored.

use std::sync::Arc;

use chrono::Utc;
use planrun::backup_set::{
    LocalStore, SetId, SetWriter, StepError, Store, restore_step, verify_step,
};
use planrun::exec_plan::ExecPlan;
use planrun::plan::{DirectorySource, LocalStorage, Source, Storage};
use planrun::source::RestoreTarget;

fn plan(root: &std::path::Path) -> ExecPlan {
    ExecPlan {
        name: "crm".into(),
        file: root.join("plan.yaml"),
        digest: "d1g3st".into(),
        run_id: SetId::new(Utc::now()).to_string(),
        scratch: root.join("scratch"),
        steps: vec![],
        on_failure: vec![],
        always: vec![],
        kill_grace: std::time::Duration::from_secs(1),
        secret_values: vec![],
        sources: vec![(
            "media".into(),
            Source::Directory(DirectorySource {
                path: root.join("media").display().to_string(),
                exclude: vec![],
                on_unreadable: None,
                level: None,
            }),
        )],
        storage: vec![(
            "local".into(),
            Storage::Local(LocalStorage {
                path: root.join("backups").display().to_string(),
                retention: None,
            }),
        )],
    }
}

#[tokio::test]
async fn backup_finalize_verify_restore_and_abandon() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("media/a")).unwrap();
    std::fs::write(work.path().join("media/a/f.txt"), b"data").unwrap();
    std::fs::create_dir_all(work.path().join("scratch")).unwrap();
    let plan = plan(work.path());

    let set = Arc::new(SetWriter::for_plan(&plan, Utc::now()).unwrap());
    assert_eq!(
        set.id().as_str(),
        plan.run_id,
        "the set is named after the run"
    );
    let backup = set.back_up_source(&plan, "media").await.unwrap();
    assert!(backup.warnings.is_empty());
    let manifest = set.finalize(Utc::now()).unwrap();
    assert_eq!(manifest.plan.digest, "d1g3st");
    assert_eq!(manifest.artifacts.len(), 1);
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    assert_eq!(mode(set.path()), 0o700);
    assert_eq!(mode(&work.path().join("backups/crm")), 0o700);
    assert_eq!(mode(&set.path().join("manifest.json")), 0o600);
    assert_eq!(mode(&set.path().join("media.tar.zst")), 0o600);

    let (verified, record) = verify_step(&plan, "local", None, Some(set.id()), Utc::now())
        .await
        .unwrap();
    assert_eq!(&verified.id, set.id());
    assert!(record.ok());

    let target = RestoreTarget {
        database: None,
        path: Some(work.path().join("restored")),
        force: false,
    };
    let (_, outcome) = restore_step(&plan, "media", None, None, target)
        .await
        .unwrap();
    assert_eq!(outcome.facts["files"], 1);
    assert_eq!(
        std::fs::read(work.path().join("restored/a/f.txt")).unwrap(),
        b"data"
    );

    // A failed run: its set folder goes away and the completed one stays the latest.
    let mut second = plan.clone();
    second.run_id = SetId::new(Utc::now()).to_string();
    let failed = SetWriter::for_plan(&second, Utc::now()).unwrap();
    assert!(failed.path().exists());
    failed.abandon().unwrap();
    assert!(!failed.path().exists());

    // Copying an artifact into another set through the storage API hashes it on the way.
    let store = Store::Local(LocalStore::new(work.path().join("backups")));
    let copy = store.list_sets("crm").await.unwrap().remove(0);
    let reader = store
        .open_artifact("crm", set.id(), "media.tar.zst")
        .await
        .unwrap();
    std::fs::create_dir_all(work.path().join("backups/crm/20200101T000000Z-0000")).unwrap();
    let copied_id = SetId::parse("20200101T000000Z-0000").unwrap();
    let digest = store
        .put_artifact("crm", &copied_id, "media.tar.zst", reader)
        .await
        .unwrap();
    assert_eq!(digest.sha256, manifest.artifacts[0].sha256);
    assert_eq!(&copy.id, set.id());

    std::fs::remove_file(set.path().join("media.tar.zst")).unwrap();
    match verify_step(&plan, "local", Some(set.id().as_str()), None, Utc::now()).await {
        Err(error) => assert_eq!(
            error.to_string(),
            format!("set `{}` is damaged: media.tar.zst: missing", set.id())
        ),
        Ok(_) => panic!("a missing artifact must fail verify"),
    }
    std::fs::write(set.path().join("media.tar.zst"), b"garbage").unwrap();
    match verify_step(&plan, "local", Some("latest"), None, Utc::now()).await {
        Err(StepError::Damaged {
            set: damaged,
            problems,
        }) => {
            assert_eq!(damaged, set.id().as_str());
            assert_eq!(problems.len(), 1);
        }
        other => panic!("expected damage, got {other:?}"),
    }
}
