//! `planrun drill` through the real binary against real PostgreSQL, SQLite, a real
//! S3-compatible server and real signals: a passing drill of a CRM-like plan from S3, drills
//! that must fail (a tampered dump, a media folder missing files, a failing `run` check), the
//! objectives, cleanup after success, failure, SIGTERM and kill -9, refusals of live targets,
//! the lock, `check` steps after a `restore` step, and the JSON report.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::postgres::{BIN_DIR, PgServer};
use support::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

fn planrun(work: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_planrun"));
    command
        .args(args)
        .arg("--state-dir")
        .arg(work.join("state"))
        .current_dir(work)
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    command
}

fn run(work: &Path, args: &[&str]) -> (i32, String, String) {
    let output: Output = planrun(work, args).output().unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn write_plan(work: &Path, text: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = work.join("plan.yaml");
    std::fs::write(&path, text.replace("DIR", &work.display().to_string())).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// The only drill report in the state dir.
fn report(work: &Path) -> Value {
    let drills = work.join("state/drills");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&drills).unwrap() {
        let path = entry.unwrap().path().join("report.json");
        if path.exists() {
            found.push(serde_json::from_slice::<Value>(&std::fs::read(path).unwrap()).unwrap());
        }
    }
    found.sort_by_key(|r| r["started_at"].as_str().unwrap().to_owned());
    found.pop().expect("a drill report")
}

/// `(name, passed, message)` of every check of a report.
fn checks(report: &Value) -> Vec<(String, bool, String)> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["passed"].as_bool().unwrap(),
                c["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `psql -l`: the databases of the server, by name.
fn databases(pg: &PgServer) -> Vec<String> {
    let output = Command::new(Path::new(BIN_DIR).join("psql"))
        .env("PGHOST", pg.socket_dir())
        .env("PGPORT", pg.port.to_string())
        .env("PGUSER", "postgres")
        .args(["-l", "-A", "-t"])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split('|').next())
        .filter(|n| !n.is_empty() && !n.contains('='))
        .map(str::to_owned)
        .collect()
}

fn drill_databases(pg: &PgServer) -> Vec<String> {
    databases(pg)
        .into_iter()
        .filter(|d| d.starts_with("planrun_drill_"))
        .collect()
}

fn seed(pg: &PgServer) {
    pg.psql("postgres", "CREATE DATABASE crm");
    pg.psql(
        "crm",
        "CREATE TABLE auth_user (id serial PRIMARY KEY, username text NOT NULL);
         CREATE TABLE customers_customer (id serial PRIMARY KEY, name text);
         CREATE TABLE sales_sale (id serial PRIMARY KEY, customer_id int REFERENCES customers_customer(id), amount numeric(10,2));
         INSERT INTO auth_user (username) SELECT 'user' || g FROM generate_series(1, 25) g;
         INSERT INTO customers_customer (name) SELECT 'Cliente ' || g FROM generate_series(1, 300) g;
         INSERT INTO sales_sale (customer_id, amount) SELECT 1 + g % 300, g FROM generate_series(1, 2000) g;",
    );
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=T", "-c", "user.email=t@example.com"])
        .args(["-c", "init.defaultBranch=main"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The CRM's files: media (with a symbolic link), `.env` and `settings.py`, and the code in Git.
fn crm_files(work: &Path) {
    let app = work.join("app");
    std::fs::create_dir_all(app.join("media/avatars")).unwrap();
    for i in 0..5 {
        std::fs::write(
            app.join(format!("media/avatars/{i}.png")),
            vec![b'x'; 100 + i],
        )
        .unwrap();
    }
    std::fs::write(app.join("media/invoice.pdf"), b"%PDF-1.4\n").unwrap();
    std::os::unix::fs::symlink("invoice.pdf", app.join("media/latest.pdf")).unwrap();
    std::fs::write(app.join(".env"), "DEBUG=0\n").unwrap();
    std::fs::write(app.join("settings.py"), "DEBUG = False\n").unwrap();
    let code = work.join("code");
    std::fs::create_dir_all(&code).unwrap();
    git(&code, &["init", "-q"]);
    std::fs::write(code.join("manage.py"), "print('ok')\n").unwrap();
    git(&code, &["add", "."]);
    git(&code, &["commit", "-qm", "first"]);
}

/// A plan like plans/nightly.yaml: the four CRM sources, a local folder and S3, a drill of
/// every source from S3 with the three counts and the media count.
fn crm_plan(work: &Path, pg: &PgServer, s3: &S3Server, drill_extra: &str, rto: &str) -> PathBuf {
    write_plan(
        work,
        &format!(
            r#"version: 1
name: crm
sources:
  db:
    postgres:
      database: crm
      host: {socket}
      port: {port}
      user: postgres
      bin_dir: {BIN_DIR}
      count_rows: [auth_user, customers_customer, sales_sale]
  media: {{ directory: {{ path: DIR/app/media }} }}
  config: {{ files: [DIR/app/.env, DIR/app/settings.py] }}
  code: {{ git: {{ repo: DIR/code }} }}
storage:
  local: {{ local: {{ path: DIR/backups }} }}
  offsite:
    s3: {{ bucket: {BUCKET}, prefix: crm/, endpoint: "{endpoint}", path_style: true, allow_http: true }}
steps:
  - {{ id: db, backup: db }}
  - {{ id: media, backup: media }}
  - {{ id: config, backup: config }}
  - {{ id: code, backup: code }}
  - {{ id: offsite, copy: {{ to: offsite }}, needs: [db, media, config, code] }}
recovery:
  objectives: {{ rpo: 24h, rto: {rto} }}
  levels: {{}}
drill:
  storage: offsite
  restore:
    db: {{ database: "planrun_drill_{{{{run.id}}}}" }}
    media: {{ path: media }}
    config: {{ path: config }}
    code: {{ path: code }}
  checks:
    - {{ name: users, sql: "SELECT count(*) FROM auth_user", source: db, expect: matches_backup }}
    - {{ name: customers, sql: "select COUNT(*)  from public.customers_customer;", source: db, expect: matches_backup }}
    - {{ name: sales, sql: "SELECT count(*) FROM sales_sale", source: db, expect: matches_backup }}
    - {{ name: media files, files: media, expect: matches_backup }}
    - {{ name: config files, files: config, expect: matches_backup }}
{drill_extra}"#,
            socket = pg.socket_dir().display(),
            port = pg.port,
            endpoint = s3.endpoint(),
        ),
    )
}

fn backed_up(work: &Path) {
    let (code, _, stderr) = run(work, &["execute", "plan.yaml"]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_crm_drill_from_s3_restores_every_source_and_matches_the_backup() {
    let pg = PgServer::start();
    seed(&pg);
    let s3 = S3Server::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    crm_files(work);
    crm_plan(work, &pg, &s3, "", "1h");
    backed_up(work);
    // A disaster: the local copy is gone; the drill proves the off-site one.
    std::fs::remove_dir_all(work.join("backups")).unwrap();

    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report = report(work);
    assert_eq!(report["result"], "passed");
    assert_eq!(report["storage"], "offsite");
    let head = git(&work.join("code"), &["rev-parse", "HEAD"]);
    let found = checks(&report);
    let names: Vec<&str> = found.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "restore code",
            "restore config",
            "restore db",
            "restore media",
            "users",
            "customers",
            "sales",
            "media files",
            "config files"
        ]
    );
    assert!(found.iter().all(|(_, passed, _)| *passed), "{found:?}");
    assert_eq!(report["checks"][0]["actual"], format!("HEAD \"{head}\""));
    assert_eq!(found[4].2, "25, as expected");
    assert_eq!(found[5].2, "300, as expected");
    assert_eq!(found[6].2, "2000, as expected");
    assert_eq!(found[7].2, "files 6, bytes 519, symlinks 1, as expected");
    assert!(stdout.contains("result: passed\n"), "{stdout}");
    assert!(stdout.contains("  7  sales "), "{stdout}");
    // Cleanup after success: the scratch database and folder are gone.
    assert_eq!(drill_databases(&pg), Vec::<String>::new());
    assert_eq!(
        support::names(&work.join("state/drills/scratch")),
        Vec::<String>::new()
    );
    let md = std::fs::read_to_string(
        work.join("state/drills")
            .join(report["drill_id"].as_str().unwrap())
            .join("report.md"),
    )
    .unwrap();
    assert!(md.starts_with("# Restore drill of `crm`: passed\n"), "{md}");
    assert!(
        md.contains("| 7 | sales | sql | 2000 | 2000 | pass |"),
        "{md}"
    );

    // `history --drills` lists it; `status` sees a fresh run, sets and drill.
    let (code, stdout, _) = run(work, &["history", "--drills"]);
    assert_eq!(code, 0);
    assert!(stdout.contains(" crm           passed "), "{stdout}");
    assert!(stdout.contains("9/9 passed"), "{stdout}");
}

/// Replaces the artifact of `source` in set `old` by the one in set `new`, rewriting the
/// manifest's sha256 and size to match but leaving the recorded facts as they were; then
/// removes `new`. What a bad dump that still hashes right looks like.
fn swap_artifact(store: &Path, old: &str, new: &str, source: &str) {
    let manifest_path = store.join(old).join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let newer: Value =
        serde_json::from_slice(&std::fs::read(store.join(new).join("manifest.json")).unwrap())
            .unwrap();
    let replacement = newer["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["source"] == source)
        .unwrap()
        .clone();
    for artifact in manifest["artifacts"].as_array_mut().unwrap() {
        if artifact["source"] == source {
            let name = artifact["name"].as_str().unwrap().to_owned();
            std::fs::copy(
                store.join(new).join(replacement["name"].as_str().unwrap()),
                store.join(old).join(&name),
            )
            .unwrap();
            artifact["sha256"] = replacement["sha256"].clone();
            artifact["size"] = replacement["size"].clone();
        }
    }
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    std::fs::remove_dir_all(store.join(new)).unwrap();
}

#[test]
fn matches_backup_catches_a_dump_taken_after_a_table_was_emptied() {
    let pg = PgServer::start();
    seed(&pg);
    let s3 = S3Server::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    crm_files(work);
    crm_plan(work, &pg, &s3, "", "1h");
    backed_up(work);
    pg.psql("crm", "DELETE FROM sales_sale");
    backed_up(work);
    let store = work.join("backups/crm");
    let sets = support::names(&store);
    swap_artifact(&store, &sets[0], &sets[1], "db");

    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml", "--storage", "local"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let report = report(work);
    assert_eq!(report["result"], "failed");
    assert_eq!(report["set"], sets[0].as_str());
    let failed: Vec<(String, bool, String)> =
        checks(&report).into_iter().filter(|c| !c.1).collect();
    assert_eq!(
        failed,
        [(
            "sales".to_owned(),
            false,
            "expected 2000, found 0".to_owned()
        )]
    );
    assert!(
        stdout.contains("FAIL    expected 2000, found 0"),
        "{stdout}"
    );
    // Cleanup after failure.
    assert_eq!(drill_databases(&pg), Vec::<String>::new());
}

/// A plan with one directory source `media` and the drill `checks` given.
fn media_plan(work: &Path, checks: &str, objectives: &str) -> PathBuf {
    let media = work.join("media");
    if !media.exists() {
        std::fs::create_dir_all(media.join("sub")).unwrap();
        std::fs::write(media.join("a.txt"), b"a\n").unwrap();
        std::fs::write(media.join("sub/b.txt"), b"bb\n").unwrap();
        std::fs::write(media.join("sub/c.txt"), b"ccc\n").unwrap();
    }
    write_plan(
        work,
        &format!(
            "version: 1
name: site
sources:
  media: {{ directory: {{ path: DIR/media }} }}
storage:
  local: {{ local: {{ path: DIR/backups }} }}
steps:
  - {{ id: media, backup: media }}
recovery:
  objectives: {objectives}
  levels: {{}}
drill:
  restore:
    media: {{ path: restored/media }}
  checks:
{checks}"
        ),
    )
}

#[test]
fn a_media_folder_missing_files_fails_the_files_check() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    media_plan(
        work,
        "    - { name: media, files: media, expect: matches_backup }\n",
        "{ rpo: 24h }",
    );
    backed_up(work);
    std::fs::remove_file(work.join("media/sub/c.txt")).unwrap();
    backed_up(work);
    let store = work.join("backups/site");
    let sets = support::names(&store);
    swap_artifact(&store, &sets[0], &sets[1], "media");

    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let found = checks(&report(work));
    assert_eq!(
        found[1],
        (
            "media".to_owned(),
            false,
            "files: expected 3, found 2; bytes: expected 9, found 5".to_owned()
        )
    );
}

#[test]
fn a_run_check_that_exits_1_fails_the_drill_and_every_check_still_runs() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    media_plan(
        work,
        "    - { name: app check, run: [sh, -c, 'echo \"no such table\" >&2; exit 1'] }
    - { name: env, run: [sh, -c, 'test -f \"$PLANRUN_DRILL_MEDIA_PATH/sub/b.txt\"'] }
    - { name: count, files: media, expect: { min: 3, max: 3 } }
",
        "{ rpo: 24h }",
    );
    backed_up(work);
    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let found = checks(&report(work));
    assert_eq!(
        found[1..],
        [
            (
                "app check".to_owned(),
                false,
                "exit code 1: no such table".to_owned()
            ),
            (
                "env".to_owned(),
                true,
                "exit code 0, as expected".to_owned()
            ),
            ("count".to_owned(), true, "files 3, as expected".to_owned()),
        ]
    );
}

#[test]
fn a_drill_over_its_rto_passes_its_checks_and_exits_3() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    media_plan(
        work,
        "    - { files: media, expect: matches_backup }\n",
        "{ rpo: 24h, rto: 1ms }",
    );
    backed_up(work);
    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(stdout.contains("(objective 1ms: OVER)"), "{stdout}");
    assert!(
        stdout.ends_with("result: over objective\nreport: ")
            || stdout.contains("result: over objective\n"),
        "{stdout}"
    );
    let report = report(work);
    assert_eq!(report["result"], "over_objective");
    assert_eq!(report["restore"]["within"], false);
    assert_eq!(report["set_age"]["within"], true);
}

/// The JSON report, with ids, times, durations, the host and the temp dir replaced.
#[test]
fn the_json_report_matches_its_snapshot() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    media_plan(
        work,
        "    - { name: media, files: media, expect: matches_backup }\n    - { verify: true }\n",
        "{ rpo: 24h, rto: 1h }",
    );
    backed_up(work);
    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml", "--json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report, self::report(work));
    for key in [
        "drill_id",
        "set",
        "started_at",
        "finished_at",
        "set_started_at",
        "host",
        "plan_digest",
    ] {
        report[key] = Value::from(key.to_uppercase());
    }
    for timing in ["restore", "set_age"] {
        report[timing]["measured_ms"] = Value::from(0);
    }
    for check in report["checks"].as_array_mut().unwrap() {
        check["duration_ms"] = Value::from(0);
    }
    let text = serde_json::to_string_pretty(&report)
        .unwrap()
        .replace(&work.display().to_string(), "DIR")
        .replace(
            &self::report(work)["drill_id"].as_str().unwrap().to_string(),
            "DRILL_ID",
        );
    assert_eq!(
        text,
        r#"{
  "format": 1,
  "drill_id": "DRILL_ID",
  "plan": "site",
  "plan_file": "DIR/plan.yaml",
  "plan_digest": "PLAN_DIGEST",
  "host": "HOST",
  "started_at": "STARTED_AT",
  "finished_at": "FINISHED_AT",
  "storage": "local",
  "set": "SET",
  "set_started_at": "SET_STARTED_AT",
  "restore": {
    "measured_ms": 0,
    "objective_ms": 3600000,
    "within": true
  },
  "set_age": {
    "measured_ms": 0,
    "objective_ms": 86400000,
    "within": true
  },
  "checks": [
    {
      "name": "restore media",
      "kind": "restore",
      "expected": "1 artifact(s) with the manifest's sha256",
      "actual": "sha256 matched, restored",
      "passed": true,
      "message": "restored into DIR/state/drills/scratch/drill-DRILL_ID/restored/media",
      "duration_ms": 0
    },
    {
      "name": "media",
      "kind": "files",
      "expected": "files 3, bytes 9, symlinks 0",
      "actual": "files 3, bytes 9, symlinks 0",
      "passed": true,
      "message": "files 3, bytes 9, symlinks 0, as expected",
      "duration_ms": 0
    },
    {
      "name": "sha256 of every artifact",
      "kind": "verify",
      "expected": "every sha256 as in the manifest",
      "actual": "1 artifacts match",
      "passed": true,
      "message": "1 artifacts match, as expected",
      "duration_ms": 0
    }
  ],
  "result": "passed",
  "failure": null,
  "kept": [],
  "cleanup": [
    "removed scratch folder DIR/state/drills/scratch/drill-DRILL_ID"
  ]
}"#
    );
}

#[test]
fn a_target_that_is_the_source_or_inside_it_is_refused_before_anything_runs() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    media_plan(
        work,
        "    - { files: media, expect: matches_backup }\n",
        "{ rpo: 24h }",
    );
    backed_up(work);
    // Written plainly, validate refuses it.
    let text = std::fs::read_to_string(work.join("plan.yaml"))
        .unwrap()
        .replace(
            "path: restored/media",
            &format!("path: {}/media/restored", work.display()),
        );
    write_plan(work, &text);
    let (code, _, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("error: drill.restore.media.path: the drill would restore into"),
        "{stderr}"
    );
    // Through a variable, validate cannot see it; the drill refuses it before restoring.
    let text = std::fs::read_to_string(work.join("plan.yaml"))
        .unwrap()
        .replace("version: 1\n", "version: 1\nvars: { into: DIR/media }\n")
        .replace(
            &format!("path: {}/media/restored", work.display()),
            "path: \"{{vars.into}}\"",
        );
    write_plan(work, &text);
    let before = support::names(&work.join("media"));
    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "could not run: refusing to drill `media`: the scratch path {0}/media is the source `{0}/media` or overlaps it",
            work.display()
        )),
        "{stdout}"
    );
    assert_eq!(support::names(&work.join("media")), before);
    assert_eq!(report(work)["checks"], Value::Array(Vec::new()));
}

#[test]
fn a_drill_takes_the_plan_lock() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    media_plan(
        work,
        "    - { files: media, expect: matches_backup }\n",
        "{ rpo: 24h }",
    );
    backed_up(work);
    let lock = work.join("state/locks/site.lock");
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "30"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, _, stderr) = run(work, &["drill", "plan.yaml"]);
        if code == 4 {
            assert!(
                stderr.contains("plan `site` is already running"),
                "{stderr}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never locked: {code} {stderr}");
        std::thread::sleep(Duration::from_millis(50));
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
}

/// Waits until `path` exists.
fn wait_for(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_scratch_database_is_dropped_after_sigterm_and_after_kill_9_by_the_next_drill() {
    let pg = PgServer::start();
    seed(&pg);
    let s3 = S3Server::start();
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    crm_files(work);
    // The check holds the drill while DIR/hold exists, with the scratch database restored.
    crm_plan(
        work,
        &pg,
        &s3,
        "    - { name: hold, run: [sh, -c, 'if [ -e DIR/hold ]; then touch DIR/holding; sleep 60; fi'] }\n",
        "1h",
    );
    backed_up(work);
    std::fs::write(work.join("hold"), "").unwrap();

    let child = planrun(work, &["drill", "plan.yaml"]).spawn().unwrap();
    wait_for(&work.join("holding"));
    assert_eq!(drill_databases(&pg).len(), 1);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143), "{output:?}");
    assert_eq!(drill_databases(&pg), Vec::<String>::new());
    assert_eq!(report(work)["result"], "failed");
    assert_eq!(
        report(work)["failure"],
        "the drill was terminated (SIGTERM)"
    );
    assert_eq!(
        support::names(&work.join("state/drills/scratch")),
        Vec::<String>::new()
    );

    std::fs::remove_file(work.join("holding")).unwrap();
    let mut child = planrun(work, &["drill", "plan.yaml"]).spawn().unwrap();
    wait_for(&work.join("holding"));
    let left = drill_databases(&pg);
    assert_eq!(left.len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed: nothing ran its cleanup.
    assert_eq!(drill_databases(&pg), left);
    assert_eq!(support::names(&work.join("state/drills/scratch")).len(), 1);

    std::fs::remove_file(work.join("hold")).unwrap();
    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("dropped database {}", left[0])),
        "{stderr}"
    );
    assert_eq!(drill_databases(&pg), Vec::<String>::new());
    assert_eq!(
        support::names(&work.join("state/drills/scratch")),
        Vec::<String>::new()
    );
}

#[test]
fn check_steps_run_after_a_restore_step_against_the_restored_target() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let db = work.join("app.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("CREATE TABLE users (id int); INSERT INTO users VALUES (1), (2), (3);")
        .output()
        .unwrap();
    assert!(out.status.success());
    let plan = |steps: &str| {
        write_plan(
            work,
            &format!(
                "version: 1
name: app
sources:
  app: {{ sqlite: {{ path: DIR/app.db }} }}
storage:
  local: {{ local: {{ path: DIR/backups }} }}
steps:
{steps}"
            ),
        )
    };
    plan("  - { id: app, backup: app }\n");
    backed_up(work);
    // The live database changes; the check reads the restored copy, not it.
    Command::new("sqlite3")
        .arg(&db)
        .arg("DELETE FROM users")
        .output()
        .unwrap();
    plan(
        "  - { id: restore, restore: { source: app, path: DIR/restored.db } }
  - { id: users, check: { sql: \"SELECT count(*) FROM users\", source: app, expect: matches_backup }, needs: [restore] }
  - { id: few, check: { sql: \"SELECT count(*) FROM users\", source: app, expect: { max: 2 } }, needs: [restore] }
",
    );
    let (code, _, stderr) = run(work, &["execute", "plan.yaml"]);
    assert_eq!(code, 1, "{stderr}");
    let record: Value = {
        let runs = work.join("state/runs");
        let mut names = support::names(&runs);
        names.sort();
        serde_json::from_slice(&std::fs::read(runs.join(names.last().unwrap())).unwrap()).unwrap()
    };
    let outcome = |id: &str| {
        let step = record["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap();
        (step["outcome"].clone(), step["reason"].clone())
    };
    assert_eq!(outcome("users"), (Value::from("succeeded"), Value::Null));
    assert_eq!(
        outcome("few"),
        (
            Value::from("failed"),
            Value::from("check `SELECT count(*) FROM users on app`: expected <= 2, found 3")
        )
    );
}

#[test]
fn validate_refuses_drill_targets_and_checks_that_cannot_work() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(["validate", "tests/plans/drill-errors.yaml"])
        .current_dir(root)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        std::fs::read_to_string(root.join("tests/plans/drill-errors.expected")).unwrap()
    );
}

#[test]
fn keep_leaves_the_scratch_targets_and_says_how_to_remove_them() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    media_plan(
        work,
        "    - { files: media, expect: matches_backup }\n",
        "{ rpo: 24h }",
    );
    backed_up(work);
    let (code, stdout, stderr) = run(work, &["drill", "plan.yaml", "--keep"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let kept = support::names(&work.join("state/drills/scratch"));
    assert_eq!(kept.len(), 1);
    let folder = work.join("state/drills/scratch").join(&kept[0]);
    assert!(
        stdout.contains(&format!(
            "kept: scratch folder {0}: remove it with `rm -rf '{0}'`",
            folder.display()
        )),
        "{stdout}"
    );
    assert!(folder.join("restored/media/sub/b.txt").exists());
    // Kept on purpose, so the next drill leaves it alone.
    let (code, _, stderr) = run(work, &["drill", "plan.yaml"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("cleaned up"), "{stderr}");
    assert!(folder.join("restored/media/sub/b.txt").exists());
}
