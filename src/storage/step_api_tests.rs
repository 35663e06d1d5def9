//! The API the executor's backup, verify and restore step kinds call, on an ExecPlan built by
//! hand: one set per run, finalized or abandoned, verified, restored.

use std::sync::Arc;

use chrono::Utc;

use super::{LocalStore, SetId, SetWriter, StepError, Store, restore_step, verify_step};
use crate::exec_plan::ExecPlan;
use crate::plan::{DirectorySource, LocalStorage, Source, Storage};
use crate::source::{RestoreTarget, Stop};

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
        redactor: Default::default(),
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
        backup_storage: Some("local".into()),
        retention: None,
        timezone: None,
        monitoring: Default::default(),
        cleanup_templates: None,
        drill: None,
        objectives: None,
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
    let backup = set
        .back_up_source(&plan, "media", Stop::new())
        .await
        .unwrap();
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
        keep_previous: None,
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
    let store = Store::new(LocalStore::new(work.path().join("backups")));
    let copy = store.list_sets("crm").await.unwrap().remove(0);
    let reader = store
        .open_artifact("crm", set.id(), "media.tar.zst")
        .await
        .unwrap();
    std::fs::create_dir_all(work.path().join("backups/crm/20200101T000000Z-0000")).unwrap();
    let copied_id = SetId::parse("20200101T000000Z-0000").unwrap();
    let digest = store
        .put_artifact(
            "crm",
            &copied_id,
            "media.tar.zst",
            reader,
            &manifest.artifacts[0].sha256,
        )
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

#[tokio::test]
async fn a_timed_out_backup_stops_its_tools_and_leaves_no_artifact() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let bin = work.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(work.path().join("scratch")).unwrap();
    // A psql that answers the snapshot session, and a pg_dump that writes 2 MB and hangs.
    let psql = "#!/bin/sh\nwhile read -r line; do case \"$line\" in\n*pg_export_snapshot*) echo snap;;\n*server_version*) echo 15.0;;\n*\"SELECT '{}'\"*) echo '{}';;\n*q*) exit 0;;\nesac; done\n";
    let pidfile = work.path().join("pg_dump.pid");
    let pg_dump = format!(
        "#!/bin/sh\ncase \"$1\" in --version) echo 'pg_dump (PostgreSQL) 15.0'; exit 0;; esac\necho $$ > {}\nhead -c 2000000 /dev/urandom\nexec sleep 60\n",
        pidfile.display()
    );
    for (name, text) in [("psql", psql.to_owned()), ("pg_dump", pg_dump)] {
        std::fs::write(bin.join(name), text).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut plan = plan(work.path());
    plan.sources = vec![(
        "db".into(),
        Source::Postgres(crate::plan::PostgresSource {
            database: "crm".into(),
            host: None,
            port: None,
            user: None,
            password: None,
            format: None,
            jobs: None,
            count_rows: vec![],
            bin_dir: Some(bin.display().to_string()),
        }),
    )];
    let set = Arc::new(SetWriter::for_plan(&plan, Utc::now()).unwrap());
    let started = std::time::Instant::now();
    let timed_out = tokio::time::timeout(
        std::time::Duration::from_millis(800),
        set.back_up_source(&plan, "db", Stop::new()),
    )
    .await;
    assert!(timed_out.is_err(), "the fake pg_dump never finishes");
    let pid: i32 = loop {
        if let Ok(text) = std::fs::read_to_string(&pidfile) {
            break text.trim().parse().unwrap();
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    // The watchdog kills the group within ~50 ms and the blocking thread reaps it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "pg_dump (pid {pid}) still runs after the timeout"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let left: Vec<_> = std::fs::read_dir(set.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
