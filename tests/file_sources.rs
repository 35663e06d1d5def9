//! Round trips of the directory, files, sqlite and git sources through real sets, and the
//! checks restore makes before it writes anything.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

/// A plan `app` whose one source `src` is `source` (a YAML flow mapping such as
/// `{ git: { repo: /srv/repo } }`), backed up into the local storage `work/store`.
fn source_plan(work: &Path, source: &str) -> PathBuf {
    let plan = work.join("app.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1\nname: app\nsources:\n  src: {source}\n\
             storage:\n  local: {{ local: {{ path: {} }} }}\nsteps:\n  - {{ id: b, backup: src }}\n",
            work.join("store").display()
        ),
    )
    .unwrap();
    plan
}

/// The sets of plan `app` in `work/store`, oldest first.
fn sets(work: &Path) -> Vec<PathBuf> {
    let dir = work.join("store/app");
    if !dir.exists() {
        return Vec::new();
    }
    support::names(&dir).iter().map(|n| dir.join(n)).collect()
}

/// `planrun execute` of `plan`: the manifest of the newest set, or what the run printed to
/// stderr when it failed.
fn back_up(work: &Path, plan: &Path) -> Result<Value, String> {
    let output = planrun(
        work,
        &[
            "execute",
            plan.to_str().unwrap(),
            "--state-dir",
            work.join("state").to_str().unwrap(),
        ],
    );
    if output.status.code() != Some(0) {
        return Err(support::run::stderr(&output));
    }
    let newest = sets(work).pop().expect("the run made a set");
    Ok(serde_json::from_slice(&std::fs::read(newest.join("manifest.json")).unwrap()).unwrap())
}

/// `planrun restore` of source `src` of `plan` into `dest`: the facts it printed (one
/// `  name: json` line each), or what it printed to stderr when it failed.
fn restore(
    work: &Path,
    plan: &Path,
    dest: &Path,
    force: bool,
) -> Result<Map<String, Value>, String> {
    let mut args = vec![
        "restore",
        plan.to_str().unwrap(),
        "--source",
        "src",
        "--to",
        dest.to_str().unwrap(),
        "--state-dir",
    ];
    let state = work.join("state");
    args.push(state.to_str().unwrap());
    if force {
        args.push("--force");
    }
    let output = planrun(work, &args);
    if output.status.code() != Some(0) {
        return Err(support::run::stderr(&output));
    }
    let stdout = support::run::stdout(&output);
    let mut lines = stdout.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("restored src from local set "),
        "{stdout}"
    );
    Ok(lines
        .map(|line| {
            let (name, value) = line.trim_start().split_once(": ").unwrap();
            (name.to_owned(), serde_json::from_str(value).unwrap())
        })
        .collect())
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

    let plan = source_plan(
        work.path(),
        &format!(
            "{{ directory: {{ path: {}, exclude: [\"cache/**\", outside] }} }}",
            media.display()
        ),
    );
    let manifest = back_up(work.path(), &plan).unwrap();
    let facts = &manifest["artifacts"][0]["facts"];
    assert_eq!(facts["files"], 3, "{facts:?}");
    assert_eq!(facts["bytes"], 100_000 + 18 + 1);
    assert_eq!(manifest["artifacts"][0]["name"], "src.tar.zst");

    let restored = work.path().join("restored/media");
    let outcome = restore(work.path(), &plan, &restored, false).unwrap();
    assert_eq!(outcome["files"], 3);
    let mut expected = tree(&media);
    expected.retain(|(p, _)| !p.starts_with("cache") && p != Path::new("outside"));
    expected.push((PathBuf::from("cache"), "dir 755".into()));
    expected.sort();
    assert_eq!(tree(&restored), expected);

    // A second restore over the now non-empty folder needs force, and then replaces it.
    let again = restore(work.path(), &plan, &restored, false).unwrap_err();
    assert!(
        again.starts_with(&format!(
            "planrun: restore of src failed: refusing to replace {}: it exists and is not empty",
            restored.display()
        )),
        "{again}"
    );
    std::fs::write(restored.join("stray"), b"x").unwrap();
    restore(work.path(), &plan, &restored, true).unwrap();
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
    let plan = source_plan(work.path(), &format!("{{ files: [{}] }}", files.join(", ")));
    let manifest = back_up(work.path(), &plan).unwrap();
    assert_eq!(manifest["artifacts"][0]["facts"]["files"], 2);

    let dest = work.path().join("out");
    restore(work.path(), &plan, &dest, false).unwrap();
    assert_eq!(support::names(&dest), [".env", "settings.py"]);
    assert_eq!(
        std::fs::read(dest.join(".env")).unwrap(),
        b"SECRET_KEY=abc\n"
    );
    assert_eq!(
        std::fs::metadata(dest.join(".env")).unwrap().mode() & 0o777,
        0o640
    );
    let again = restore(work.path(), &plan, &dest, false).unwrap_err();
    assert!(again.contains("it exists; pass --force"), "{again}");

    let mut missing = files.clone();
    missing.push(config.join("local_settings.py").display().to_string());
    let plan = source_plan(
        work.path(),
        &format!("{{ files: [{}] }}", missing.join(", ")),
    );
    // The run fails naming the file, and its set folder goes away with nothing in it kept.
    let error = back_up(work.path(), &plan).unwrap_err();
    assert!(
        error.contains(&format!(
            ": backup `src`: {} is missing\n",
            config.join("local_settings.py").display()
        )),
        "{error}"
    );
    assert_eq!(sets(work.path()).len(), 1, "{error}");
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
    let plan = source_plan(
        work.path(),
        &format!("{{ sqlite: {{ path: {} }} }}", db.display()),
    );
    let result = back_up(work.path(), &plan);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(app.join().unwrap() > 0);
    let manifest = result.unwrap();
    let counts = &manifest["artifacts"][0]["facts"]["row_counts"];
    assert_eq!(counts["auth_user"], 2);
    let notes = counts["note"].as_u64().unwrap();
    assert!(notes >= 5000, "{counts}");

    let target = work.path().join("restored.sqlite3");
    let outcome = restore(work.path(), &plan, &target, false).unwrap();
    assert_eq!(&outcome["row_counts"], counts);
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
    let refused = restore(work.path(), &plan, &target, false).unwrap_err();
    assert!(refused.contains("it exists; pass --force"), "{refused}");
    restore(work.path(), &plan, &target, true).unwrap();
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
    let plan = source_plan(
        work.path(),
        &format!("{{ git: {{ repo: {} }} }}", repo.display()),
    );
    let manifest = back_up(work.path(), &plan).unwrap();
    assert_eq!(manifest["artifacts"][0]["facts"]["head"], head.as_str());

    let clone = work.path().join("clone");
    let outcome = restore(work.path(), &plan, &clone, false).unwrap();
    assert_eq!(outcome["head"], head.as_str());
    assert_eq!(
        git(&clone, &["log", "--format=%H %s", "main"]),
        git(&repo, &["log", "--format=%H %s", "main"])
    );
    assert_eq!(git(&clone, &["rev-parse", "origin/feature"]), head);
}

/// `planrun ARGS` in `dir`, with the environment nightly.yaml's secrets name.
fn planrun(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(args)
        .current_dir(dir)
        .env("CRM_DB_PASSWORD", "unused")
        .env("CRM_S3_ACCESS_KEY_ID", "unused")
        .env("CRM_S3_SECRET_ACCESS_KEY", "unused")
        .output()
        .unwrap()
}

/// The CRM's config: `.env` at the top, `settings.py` one folder down, modes that differ
/// from the defaults so a restore that invents them is caught.
fn crm_config(app: &Path) {
    std::fs::create_dir_all(app.join("saas_crm")).unwrap();
    std::fs::write(app.join(".env"), b"SECRET_KEY=abc\n").unwrap();
    std::fs::set_permissions(app.join(".env"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(app.join("saas_crm/settings.py"), b"DEBUG = False\n").unwrap();
    std::fs::set_permissions(app.join("saas_crm"), std::fs::Permissions::from_mode(0o750)).unwrap();
}

/// A plan with the CRM's files source and a local storage, and the set its backup made.
fn backed_up_config(work: &Path) -> PathBuf {
    let app = work.join("srv/crm");
    crm_config(&app);
    let plan = work.join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1\nname: crm\nsources:\n  config:\n    files:\n      - {app}/.env\n      - {app}/saas_crm/settings.py\n\
             storage:\n  local: {{ local: {{ path: {work}/backups }} }}\nsteps:\n  - {{ id: config, backup: config }}\n",
            app = app.display(),
            work = work.display()
        ),
    )
    .unwrap();
    let state = work.join("state");
    let output = planrun(
        work,
        &[
            "execute",
            plan.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    plan
}

fn restore_cli(work: &Path, plan: &Path, args: &[&str]) -> std::process::Output {
    let mut all = vec!["restore", plan.to_str().unwrap(), "--source", "config"];
    all.extend_from_slice(args);
    planrun(work, &all)
}

/// The one set of plan `crm` in `work/backups`, and its manifest.
fn only_set(work: &Path) -> (String, serde_json::Value) {
    let sets = support::names(&work.join("backups/crm"));
    assert_eq!(sets.len(), 1, "{sets:?}");
    let manifest = std::fs::read(
        work.join("backups/crm")
            .join(&sets[0])
            .join("manifest.json"),
    )
    .unwrap();
    (sets[0].clone(), serde_json::from_slice(&manifest).unwrap())
}

#[test]
fn files_restore_keeps_the_layout_below_the_common_folder() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let plan = backed_up_config(work);
    let app = work.join("srv/crm");
    let (set, manifest) = only_set(work);
    let facts = &manifest["artifacts"][0]["facts"];
    assert_eq!(facts["root"], app.display().to_string(), "{facts:#}");
    assert_eq!(facts["listing"][1]["name"], "saas_crm/settings.py");

    let out = work.join("out");
    let output = restore_cli(work, &plan, &["--to", out.to_str().unwrap()]);
    assert_eq!(
        support::run::stdout(&output),
        format!(
            "restored config from local set {set} into {}\n  files: 2\n",
            out.display()
        )
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(support::names(&out), [".env", "saas_crm"]);
    assert_eq!(support::names(&out.join("saas_crm")), ["settings.py"]);
    assert_eq!(
        std::fs::read(out.join(".env")).unwrap(),
        b"SECRET_KEY=abc\n"
    );
    assert_eq!(
        std::fs::read(out.join("saas_crm/settings.py")).unwrap(),
        b"DEBUG = False\n"
    );
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
    assert_eq!(mode(&out.join(".env")), 0o640);
    assert_eq!(
        mode(&out.join("saas_crm")),
        0o750,
        "the folder keeps its mode"
    );

    // A link where a folder of the layout goes is refused, not followed.
    let elsewhere = work.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let linked = work.join("linked");
    std::fs::create_dir(&linked).unwrap();
    std::os::unix::fs::symlink(&elsewhere, linked.join("saas_crm")).unwrap();
    let output = restore_cli(work, &plan, &["--to", linked.to_str().unwrap()]);
    assert_eq!(
        support::run::stderr(&output),
        format!(
            "planrun: restore of config failed: cannot restore into {}: it is a symlink or not a folder, and a restore never writes through links\n",
            linked.join("saas_crm").display()
        )
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(support::names(&elsewhere).is_empty());
    assert_eq!(support::names(&linked), ["saas_crm"], "nothing was written");
}

#[test]
fn files_restore_in_place_puts_each_file_back_and_never_writes_through_a_link() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let plan = backed_up_config(work);
    let app = work.join("srv/crm");

    // The app changed one file and lost the other: in place needs --force for the first,
    // and refuses before writing anything.
    std::fs::write(app.join(".env"), b"SECRET_KEY=changed\n").unwrap();
    std::fs::remove_file(app.join("saas_crm/settings.py")).unwrap();
    let output = restore_cli(work, &plan, &["--in-place"]);
    assert_eq!(
        support::run::stderr(&output),
        format!(
            "planrun: restore of config failed: refusing to replace {}: it exists; pass --force (or `force: true` in a restore step) to replace it\n",
            app.join(".env").display()
        )
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(support::names(&app.join("saas_crm")).is_empty());

    // `.env` is now a link to a file outside: the restore replaces the link, and the file it
    // pointed at is untouched.
    let victim = work.join("victim");
    std::fs::write(&victim, b"keep me\n").unwrap();
    std::fs::remove_file(app.join(".env")).unwrap();
    std::os::unix::fs::symlink(&victim, app.join(".env")).unwrap();
    let output = restore_cli(work, &plan, &["--in-place", "--force"]);
    let (set, _) = only_set(work);
    assert_eq!(
        support::run::stdout(&output),
        format!(
            "restored config from local set {set} into their original paths in {}\n  files: 2\n",
            app.display()
        )
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me\n");
    let env = std::fs::symlink_metadata(app.join(".env")).unwrap();
    assert!(env.is_file(), "the link was replaced by the file");
    assert_eq!(env.mode() & 0o7777, 0o640);
    assert_eq!(
        std::fs::read(app.join(".env")).unwrap(),
        b"SECRET_KEY=abc\n"
    );
    assert_eq!(
        std::fs::read(app.join("saas_crm/settings.py")).unwrap(),
        b"DEBUG = False\n"
    );
    assert_eq!(
        support::names(&app),
        [".env", "saas_crm"],
        "no temporary files left"
    );

    // In place, the app's own folders are taken as they resolve: a release symlink is the
    // app's layout, and the file lands in the folder it points at.
    let release = work.join("release-42/saas_crm");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(release.join("settings.py"), b"DEBUG = True\n").unwrap();
    std::fs::remove_dir_all(app.join("saas_crm")).unwrap();
    std::os::unix::fs::symlink(&release, app.join("saas_crm")).unwrap();
    let output = restore_cli(work, &plan, &["--in-place", "--force"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    assert!(
        std::fs::symlink_metadata(app.join("saas_crm"))
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read(release.join("settings.py")).unwrap(),
        b"DEBUG = False\n"
    );

    // A plan that no longer lists a file the set holds cannot restore it in place: the set
    // alone never decides where a file lands.
    let text = std::fs::read_to_string(&plan).unwrap();
    let narrowed = work.join("narrowed.yaml");
    std::fs::write(
        &narrowed,
        text.replace(&format!("      - {}/.env\n", app.display()), ""),
    )
    .unwrap();
    let output = restore_cli(work, &narrowed, &["--in-place", "--force"]);
    let artifact = work.join("backups/crm").join(&set).join("config.tar.zst");
    assert_eq!(
        support::run::stderr(&output),
        format!(
            "planrun: restore of config failed: cannot restore {}: it holds {}, which the plan's source does not list; restore it with --to DIR\n",
            artifact.display(),
            app.join(".env").display()
        )
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn in_place_is_refused_for_sources_that_have_no_files_to_put_back() {
    let work = tempfile::tempdir().unwrap();
    let plan = work.path().join("plan.yaml");
    let text = "version: 1\nname: crm\nsources:\n  db: { sqlite: { path: /srv/crm/db.sqlite3 } }\n\
                storage:\n  local: { local: { path: /unused } }\nsteps:\n  - { id: db, backup: db }\n";
    std::fs::write(&plan, text).unwrap();
    let output = planrun(
        work.path(),
        &[
            "restore",
            plan.to_str().unwrap(),
            "--source",
            "db",
            "--in-place",
        ],
    );
    assert_eq!(
        support::run::stderr(&output),
        "planrun: --in-place restores a files or directory source to where it came from; `db` is a sqlite source: name the target with --to\n"
    );
    assert_eq!(output.status.code(), Some(2));

    std::fs::write(
        &plan,
        format!("{text}  - {{ id: back, restore: {{ source: db, path: original }} }}\n"),
    )
    .unwrap();
    let output = planrun(work.path(), &["validate", plan.to_str().unwrap()]);
    assert_eq!(
        support::run::stdout(&output),
        format!(
            "{0}:9:46: error: steps[1].restore.path: `path: original` puts a files or directory source back where it came from, but `db` is a sqlite source\n\
             \x20 |\n\
             9 |   - {{ id: back, restore: {{ source: db, path: original }} }}\n\
             \x20 |                                              ^\n\
             \x20 = help: leave `path` out to restore to the source's own path, or name a path\n\
             {0}: invalid (1 error)\n",
            plan.display()
        )
    );
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn nightly_level_two_puts_the_config_back_where_it_was() {
    let nightly = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/nightly.yaml");
    let plan: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&nightly).unwrap()).unwrap();
    let step = plan["recovery"]["levels"]["2"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "restore-config")
        .unwrap()
        .clone();
    assert_eq!(
        step["restore"],
        serde_json::json!({"source": "config", "set": "latest", "path": "original"})
    );

    // Back up with nightly.yaml itself, on a fake /srv/crm.
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let app = work.join("srv/crm");
    crm_config(&app);
    let vars = [
        "--var".to_string(),
        format!("app={}", app.display()),
        "--var".into(),
        format!("backups={}", work.join("backups").display()),
        "--state-dir".into(),
        work.join("state").display().to_string(),
    ];
    let run = |plan: &Path, extra: &[&str]| {
        let mut args = vec!["execute", plan.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend(vars.iter().map(String::as_str));
        planrun(work, &args)
    };
    let output = run(&nightly, &["--only", "config"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );

    // The server is lost; level 2's step, exactly as nightly.yaml has it, runs on the new
    // one (recover is not built yet, so a plan with the same sources runs it).
    std::fs::remove_dir_all(work.join("srv")).unwrap();
    let level2 = work.join("level2.yaml");
    std::fs::write(
        &level2,
        format!(
            "version: 1\nname: crm\ninclude: [{}]\nsteps:\n  - {step}\n",
            nightly.with_file_name("common.yaml").display()
        ),
    )
    .unwrap();
    let output = run(&level2, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    assert_eq!(support::names(&app), [".env", "saas_crm"]);
    assert_eq!(
        std::fs::read(app.join(".env")).unwrap(),
        b"SECRET_KEY=abc\n"
    );
    assert_eq!(
        std::fs::read(app.join("saas_crm/settings.py")).unwrap(),
        b"DEBUG = False\n"
    );
    assert_eq!(
        std::fs::metadata(app.join(".env")).unwrap().mode() & 0o7777,
        0o640
    );
}

/// A set as the files source wrote it before the layout was kept: bare names when they
/// were distinct, full paths without the `/` when they clashed, and no `root` fact.
fn old_files_set(storage: &Path, files: &[(&str, &Path)]) {
    let mut builder = tar::Builder::new(Vec::new());
    let mut listing = Vec::new();
    for (name, path) in files {
        let data = std::fs::read(path).unwrap();
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o640);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, &data[..]).unwrap();
        listing.push(serde_json::json!({
            "path": path.display().to_string(), "name": name, "mode": "0640", "size": data.len(),
        }));
    }
    let tar = builder.into_inner().unwrap();
    let set = support::write_set(
        storage,
        "crm",
        "20250214T020000Z-3f9a",
        &[(
            "config.tar.zst",
            "config",
            &zstd::encode_all(&tar[..], 3).unwrap(),
        )],
    );
    // The facts the files source recorded then: a count and a listing, no `root`.
    let path = set.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["artifacts"][0]["facts"] = serde_json::json!({
        "files": files.len(),
        "listing": listing,
    });
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
}

#[test]
fn sets_written_before_the_layout_was_kept_restore_with_the_layout() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let app = work.join("srv/crm");
    crm_config(&app);
    let plan = work.join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "version: 1\nname: crm\nsources:\n  config:\n    files:\n      - {app}/.env\n      - {app}/saas_crm/settings.py\n\
             storage:\n  local: {{ local: {{ path: {work}/backups }} }}\nsteps:\n  - {{ id: config, backup: config }}\n",
            app = app.display(),
            work = work.display()
        ),
    )
    .unwrap();
    old_files_set(
        &work.join("backups"),
        &[
            (".env", &app.join(".env")),
            ("settings.py", &app.join("saas_crm/settings.py")),
        ],
    );
    let out = work.join("out");
    let output = restore_cli(work, &plan, &["--to", out.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    assert_eq!(support::names(&out), [".env", "saas_crm"]);
    assert_eq!(
        std::fs::read(out.join("saas_crm/settings.py")).unwrap(),
        b"DEBUG = False\n"
    );
    std::fs::remove_dir_all(&app).unwrap();
    let output = restore_cli(work, &plan, &["--in-place"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    assert_eq!(
        std::fs::read(app.join(".env")).unwrap(),
        b"SECRET_KEY=abc\n"
    );
    assert_eq!(
        std::fs::read(app.join("saas_crm/settings.py")).unwrap(),
        b"DEBUG = False\n"
    );

    // Names that clashed were stored as full paths; they too come back in their layout.
    std::fs::create_dir_all(app.join("a")).unwrap();
    std::fs::create_dir_all(app.join("b")).unwrap();
    std::fs::write(app.join("a/x.conf"), b"a\n").unwrap();
    std::fs::write(app.join("b/x.conf"), b"b\n").unwrap();
    let a = app.join("a/x.conf");
    let b = app.join("b/x.conf");
    let full = |p: &Path| p.display().to_string().trim_start_matches('/').to_owned();
    let (name_a, name_b) = (full(&a), full(&b));
    let storage = work.join("clash");
    old_files_set(&storage, &[(&name_a, &a), (&name_b, &b)]);
    let text = std::fs::read_to_string(&plan).unwrap();
    let clash_plan = work.join("clash.yaml");
    std::fs::write(
        &clash_plan,
        text.replace(
            &format!("{}/backups", work.display()),
            &storage.display().to_string(),
        ),
    )
    .unwrap();
    let out = work.join("clash-out");
    let output = restore_cli(work, &clash_plan, &["--to", out.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        support::run::stderr(&output)
    );
    assert_eq!(support::names(&out), ["a", "b"]);
    assert_eq!(std::fs::read(out.join("b/x.conf")).unwrap(), b"b\n");
}
