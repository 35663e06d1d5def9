//! `planrun execute` with backup, verify, copy, prune and restore steps, driven through the
//! real binary: the embedded demo end to end, failed, partial, timed-out and interrupted
//! backups that must leave no set behind, a full 3-2-1 run to a real S3 server on loopback,
//! and a PostgreSQL round trip against a server the test starts.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Env;
use support::run::{gone, stderr, stdout, step};
use support::s3::{BUCKET, S3Server, SECRET_KEY};

/// Runs a command that must exit 0 and returns what it printed on stdout.
fn succeeds(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    stdout(&output)
}

/// The folders in `dir`, sorted; none when it does not exist.
fn folders(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Row counts of every table of a SQLite database, by table name.
fn sqlite_counts(path: &Path) -> Vec<(String, i64)> {
    let db = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    tables
        .into_iter()
        .map(|t| {
            let count = db
                .query_row(&format!("SELECT count(*) FROM \"{t}\""), [], |row| {
                    row.get(0)
                })
                .unwrap();
            (t, count)
        })
        .collect()
}

/// A small SQLite database with two tables.
fn make_sqlite(path: &Path) {
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT);
         CREATE TABLE sales (id INTEGER PRIMARY KEY, customer INTEGER, amount REAL);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40)
         INSERT INTO customers (name) SELECT 'customer ' || i FROM n;
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
         INSERT INTO sales (customer, amount) SELECT 1 + i % 40, i * 1.5 FROM n;",
    )
    .unwrap();
}

fn make_media(dir: &Path) {
    std::fs::create_dir_all(dir.join("avatars")).unwrap();
    std::fs::write(dir.join("avatars/a.png"), b"not really a png\n").unwrap();
    std::fs::write(dir.join("invoice-1.pdf"), b"invoice one\n").unwrap();
}

#[test]
fn the_demo_plan_backs_up_verifies_restores_and_prunes() {
    let env = Env::new();
    // The demo's storage is `{{plan.dir}}/../target/planrun-demo/backups`: with the plan in
    // DIR/plans that is DIR/target/..., inside the temp dir.
    let plans = env.path("plans");
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/demo"),
        &plans.join("demo"),
    );
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plans/demo.yaml"),
        plans.join("demo.yaml"),
    )
    .unwrap();
    let plan = plans.join("demo.yaml");
    let sets_dir = env.path("target/planrun-demo/backups/demo");

    let output = env.planrun(["execute"]).arg(&plan).output();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let first = env.record();
    assert_eq!(first["status"], "succeeded");
    let id = first["run_id"].as_str().unwrap().to_owned();
    assert_eq!(folders(&sets_dir), std::slice::from_ref(&id));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "planrun: set {id} is complete: manifest written with 2 artifacts ("
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "    verify | set {id} on `local` verified: 2 artifacts match their sha256\n"
        )),
        "{err}"
    );

    // The set: private folders and files, the manifest last and naming both artifacts.
    let set = sets_dir.join(&id);
    assert_eq!(
        folders(&set),
        [
            "db.sqlite3.zst",
            "manifest.json",
            "media.tar.zst",
            "verify.json"
        ]
    );
    assert_eq!(mode(&sets_dir), 0o700);
    assert_eq!(mode(&set), 0o700);
    for file in folders(&set) {
        assert_eq!(mode(&set.join(&file)), 0o600, "{file}");
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(set.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["plan"]["name"], "demo");
    let db = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["source"] == "db")
        .unwrap();
    let shipped = sqlite_counts(&plans.join("demo/crm.sqlite3"));
    for (table, count) in &shipped {
        assert_eq!(db["facts"]["row_counts"][table], *count, "{table}");
    }

    let sets = env.snapshots(&plan, "local");
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["id"], id.as_str());
    assert_eq!(sets[0]["status"], "verified");

    let restored = env.path("restored/crm.sqlite3");
    let printed = succeeds(&mut env.restore(
        &plan,
        &["--source", "db", "--to", restored.to_str().unwrap()],
    ));
    assert!(
        printed.starts_with(&format!("restored db from local set {id} into ")),
        "{printed}"
    );
    assert_eq!(sqlite_counts(&restored), shipped);

    // Four more nights. The policy (keep_last 3, keep_daily 7, keep_weekly 4) keeps the three
    // newest, and, as restic does while the daily and weekly rules have budget left, the
    // oldest; the second set is the one that goes.
    let mut ids = vec![id];
    let mut last = None;
    for _ in 0..4 {
        let output = env.planrun(["execute"]).arg(&plan).output();
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        ids.push(env.records()[0]["run_id"].as_str().unwrap().to_owned());
        last = Some(output);
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(
        sorted, ids,
        "set ids must sort in the order the runs made them"
    );
    assert!(
        ids.iter().all(|i| i[..8] == ids[0][..8]),
        "the runs crossed midnight: {ids:?}"
    );
    let kept = vec![
        ids[0].clone(),
        ids[2].clone(),
        ids[3].clone(),
        ids[4].clone(),
    ];
    assert_eq!(folders(&sets_dir), kept);
    let err = stderr(&last.unwrap());
    assert!(
        err.contains(&format!("    prune | removed {}\n", ids[1])),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "    prune | {}  verified    keep    db, media: last, daily ",
            ids[4]
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "    prune | {}  verified    keep    db, media: oldest\n",
            ids[0]
        )),
        "{err}"
    );
    let listed: Vec<Value> = env
        .snapshots(&plan, "local")
        .iter()
        .map(|s| s["id"].clone())
        .collect();
    let newest_first: Vec<Value> = kept.iter().rev().map(|i| Value::from(i.as_str())).collect();
    assert_eq!(listed, newest_first);
}

/// Two sources, a retention policy and a prune after the backups; `DB_PATH` and `DB_POLICY`
/// are filled in by each test.
const TWO_SOURCES: &str = r#"
version: 1
name: nightly
sources:
  db: { sqlite: { path: "DB_PATH" } }
  media: { directory: { path: "{{plan.dir}}/media" } }
storage:
  local: { local: { path: "{{plan.dir}}/backups" } }
retention: { keep_last: 1 }
steps:
  - { id: media, backup: media }
  - { id: db, backup: db, needs: [media]DB_POLICY }
  - { id: prune, prune: [local], needs: PRUNE_NEEDS }
"#;

/// `execute --json` says what planrun's own step kinds did as typed events, not as text.
#[test]
fn the_json_events_say_what_each_built_in_step_did() {
    let env = Env::new();
    make_media(&env.path("media"));
    let plan = env.plan(
        r#"
version: 1
name: crm
sources:
  media: { directory: { path: "{{plan.dir}}/media" } }
storage:
  local: { local: { path: "{{plan.dir}}/backups" } }
  second: { local: { path: "{{plan.dir}}/second" } }
retention: { keep_last: 1 }
steps:
  - { id: media, backup: media }
  - { id: verify, verify: { storage: local }, needs: [media] }
  - { id: copy, copy: { to: second }, needs: [verify] }
  - { id: prune, prune: [local], needs: [copy] }
  - { id: back, restore: { source: media, path: "{{plan.dir}}/restored" }, needs: [prune] }
  - { id: tell, notify: { message: "night done" }, needs: [back] }
"#,
    );
    let json = |output: &Output| -> Vec<Value> {
        assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let run = || {
        env.planrun(["execute", plan.to_str().unwrap(), "--json"])
            .output()
    };
    json(&run());
    let old = env.records()[0]["run_id"].as_str().unwrap().to_owned();
    std::fs::remove_dir_all(env.path("restored")).unwrap();
    let events = json(&run());
    let id = env.records()[0]["run_id"].as_str().unwrap().to_owned();
    let of = |kind: &str| -> Vec<&Value> { events.iter().filter(|e| e["event"] == kind).collect() };

    // Built-in kinds print no text lines: everything they did is an event.
    assert_eq!(of("step_output"), Vec::<&Value>::new());
    let artifact = of("artifact_written");
    assert_eq!(artifact.len(), 1, "{events:?}");
    assert_eq!(artifact[0]["step"], "media");
    assert_eq!(artifact[0]["source"], "media");
    assert_eq!(artifact[0]["name"], "media.tar.zst");
    assert_eq!(artifact[0]["sha256"].as_str().unwrap().len(), 64);
    let bytes = artifact[0]["bytes"].as_u64().unwrap();
    assert!(bytes > 0);
    assert!(artifact[0]["facts"].is_object(), "{artifact:?}");
    assert_eq!(
        *of("set_committed")[0],
        serde_json::json!({
            "event": "set_committed", "step": "media", "storage": "local", "set": id,
            "sources": ["media"], "missing": [], "partial": false, "artifacts": 1, "bytes": bytes,
        })
    );
    assert_eq!(
        *of("set_verified")[0],
        serde_json::json!({
            "event": "set_verified", "step": "verify", "storage": "local", "set": id,
            "artifacts": 1,
        })
    );
    let copied = of("set_copied")[0];
    assert_eq!(
        (&copied["from"], &copied["to"], &copied["set"]),
        (
            &Value::from("local"),
            &Value::from("second"),
            &Value::from(id.clone())
        )
    );
    assert_eq!(copied["artifacts_sent"], 1);
    assert_eq!(copied["already_complete"], false);
    let decided = of("prune_decided")[0];
    assert_eq!(decided["storage"], "local");
    assert_eq!(
        decided["sets"],
        serde_json::json!([
            { "set": id, "status": "verified", "keep": true, "reasons": ["media: last"] },
            { "set": old, "status": "verified", "keep": false, "reasons": [] },
        ])
    );
    assert_eq!(
        *of("set_removed")[0],
        serde_json::json!({ "event": "set_removed", "step": "prune", "storage": "local", "set": old })
    );
    let restored = of("restore_finished")[0];
    assert_eq!(restored["source"], "media");
    assert_eq!(restored["set"], Value::from(id.clone()));
    assert!(restored["facts"].is_object(), "{restored:?}");
    assert_eq!(
        *of("notified")[0],
        serde_json::json!({ "event": "notified", "step": "tell", "message": "night done" })
    );
}

fn two_sources(db_path: &str, db_policy: &str, prune_needs: &str) -> String {
    TWO_SOURCES
        .replace("DB_PATH", db_path)
        .replace("DB_POLICY", db_policy)
        .replace("PRUNE_NEEDS", prune_needs)
}

#[test]
fn a_failed_backup_leaves_no_set_and_prune_does_not_run() {
    let env = Env::new();
    make_media(&env.path("media"));
    // One good night first: prune must not get the chance to thin it out.
    make_sqlite(&env.path("crm.sqlite3"));
    env.plan(&two_sources("{{plan.dir}}/crm.sqlite3", "", "[db]"));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let good = env.records()[0]["run_id"].as_str().unwrap().to_owned();

    let missing = env.path("gone.sqlite3");
    let plan = env.plan(&two_sources("{{plan.dir}}/gone.sqlite3", "", "[db]"));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let record = env.records()[0].clone();
    let failed = record["run_id"].as_str().unwrap().to_owned();
    assert_eq!(record["status"], "failed");
    assert_eq!(record["exit_code"], 1);
    let db = step(&record, "db");
    assert_eq!(db["outcome"], "failed");
    let error = db["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("backup `db`: "), "{error}");
    assert!(error.contains(&missing.display().to_string()), "{error}");
    assert_eq!(step(&record, "media")["outcome"], "succeeded");
    assert_eq!(step(&record, "prune")["outcome"], "skipped");

    // The media artifact had been written into the run's set: the whole folder went.
    let set = env.path("backups/nightly").join(&failed);
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "planrun: the backup set was not completed; removed {}\n",
            set.display()
        )),
        "{err}"
    );
    assert!(
        !err.lines()
            .any(|l| l.starts_with("prune ") && l.contains(" succeeded ")),
        "{err}"
    );
    assert_eq!(
        folders(&env.path("backups/nightly")),
        std::slice::from_ref(&good)
    );
    let sets = env.snapshots(&plan, "local");
    let ids: Vec<&str> = sets.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [good.as_str()]);
}

#[test]
fn a_warned_backup_failure_commits_a_partial_set_exits_3_and_prune_refuses() {
    let env = Env::new();
    make_media(&env.path("media"));
    // Prune waits only for the backup that succeeds: it must still see a backup failed.
    let plan = env.plan(&two_sources(
        "{{plan.dir}}/gone.sqlite3",
        ", on_failure: warn",
        "[media], on_failure: warn",
    ));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let record = env.record();
    assert_eq!(record["status"], "partial");
    let id = record["run_id"].as_str().unwrap();
    assert_eq!(step(&record, "media")["outcome"], "succeeded");
    assert_eq!(step(&record, "db")["outcome"], "failed");
    let prune = step(&record, "prune");
    assert_eq!(prune["outcome"], "failed");
    let refused = prune["attempts"][0]["error"].as_str().unwrap();
    assert!(
        refused.starts_with("prune refused: this run's "),
        "{refused}"
    );
    assert!(refused.ends_with(", so nothing is removed"), "{refused}");

    // What did succeed is a backup: a set holding media, which says it lacks db.
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "set {id} is partial (without db): manifest written with 1 artifact ("
        )),
        "{err}"
    );
    assert_eq!(folders(&env.path("backups/nightly")), [id]);
    let sets = env.snapshots(&plan, "local");
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0]["status"], "complete");
    assert_eq!(sets[0]["sources"], serde_json::json!(["media"]));
    assert_eq!(sets[0]["missing_sources"], serde_json::json!(["db"]));
    let restored = env.path("restored/media");
    let printed = succeeds(&mut env.restore(
        &plan,
        &["--source", "media", "--to", restored.to_str().unwrap()],
    ));
    assert!(
        printed.starts_with(&format!("restored media from local set {id} into ")),
        "{printed}"
    );
    assert_eq!(
        std::fs::read(restored.join("invoice-1.pdf")).unwrap(),
        b"invoice one\n"
    );
    let output = env
        .restore(&plan, &["--source", "db", "--to", "x.sqlite3"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no complete backup set with `db` for plan `nightly`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn an_ignored_backup_failure_commits_the_other_sources_and_exits_3() {
    let env = Env::new();
    make_media(&env.path("media"));
    let plan = env.plan(
        r#"
version: 1
name: nightly
sources:
  db: { sqlite: { path: "{{plan.dir}}/gone.sqlite3" } }
  media: { directory: { path: "{{plan.dir}}/media" } }
storage:
  local: { local: { path: "{{plan.dir}}/backups" } }
steps:
  - { id: media, backup: media }
  - { id: db, backup: db, on_failure: ignore }
"#,
    );
    let output = env.execute(&[]);
    // `ignore` lets the run go on, but a night that lost a source is not a success.
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let record = env.record();
    assert_eq!(record["status"], "partial");
    let id = record["run_id"].as_str().unwrap();
    assert_eq!(folders(&env.path("backups/nightly")), [id]);
    let sets = env.snapshots(&plan, "local");
    assert_eq!(sets[0]["status"], "complete");
    assert_eq!(sets[0]["missing_sources"], serde_json::json!(["db"]));
}

#[test]
fn an_only_run_makes_a_partial_set_that_keeps_the_full_one_and_latest_per_source() {
    let env = Env::new();
    make_media(&env.path("media"));
    make_sqlite(&env.path("crm.sqlite3"));
    std::fs::create_dir_all(env.path("conf")).unwrap();
    std::fs::write(env.path("conf/.env"), b"DEBUG=0\n").unwrap();
    let plan = env.plan(
        r#"
version: 1
name: nightly
sources:
  db: { sqlite: { path: "{{plan.dir}}/crm.sqlite3" } }
  media: { directory: { path: "{{plan.dir}}/media" } }
  conf: { directory: { path: "{{plan.dir}}/conf" } }
storage:
  local: { local: { path: "{{plan.dir}}/backups" } }
retention: { keep_last: 1 }
steps:
  - { id: db, backup: db }
  - { id: media, backup: media }
  - { id: conf, backup: conf }
  - { id: prune, prune: [local], needs: [db, media, conf] }
"#,
    );
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let full = env.records()[0]["run_id"].as_str().unwrap().to_owned();

    let output = env
        .planrun([
            "execute",
            plan.to_str().unwrap(),
            "--only",
            "conf",
            "--only",
            "prune",
        ])
        .output();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let partial = env.records()[0]["run_id"].as_str().unwrap().to_owned();
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "set {partial} is partial (without db, media): manifest written with 1 artifact ("
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "    prune | {full}  complete    keep    db, media: last\n"
        )),
        "{err}"
    );
    // keep_last 1 did not push out the only set with the database and the media.
    assert_eq!(
        folders(&env.path("backups/nightly")),
        [full.clone(), partial.clone()]
    );

    let restored = env.path("restored/media");
    let printed = succeeds(&mut env.restore(
        &plan,
        &[
            "--source",
            "media",
            "--set",
            "latest",
            "--to",
            restored.to_str().unwrap(),
        ],
    ));
    assert!(
        printed.starts_with(&format!("restored media from local set {full} into ")),
        "{printed}"
    );
    let printed = succeeds(&mut env.restore(
        &plan,
        &[
            "--source",
            "conf",
            "--to",
            env.path("restored/conf").to_str().unwrap(),
        ],
    ));
    assert!(
        printed.starts_with(&format!("restored conf from local set {partial} into ")),
        "{printed}"
    );
}

/// Which of the fake PostgreSQL tools never finishes.
#[derive(Clone, Copy, PartialEq)]
enum Hang {
    /// pg_dump, once started on the dump.
    Dump,
    /// psql, on the row-count query (a count over a big or locked table).
    Count,
    /// pg_dump, which notes a SIGTERM in `got-term` and exits on it.
    DumpHandlingTerm,
    /// pg_dump, which ignores SIGTERM.
    DumpIgnoringTerm,
}

/// A `bin` folder with a psql that answers the backup's three questions and a pg_dump. The
/// one that hangs writes its pid to `hung.pid` and sleeps in its own place.
fn slow_pg_tools(env: &Env, hang: Hang) -> PathBuf {
    let bin = env.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let dir = env.dir().display();
    let hung = format!(
        "echo $$ > {dir}/hung.pid.tmp && mv {dir}/hung.pid.tmp {dir}/hung.pid; exec sleep 30"
    );
    let count = if hang == Hang::Count {
        hung.as_str()
    } else {
        "echo '{}'"
    };
    let psql = format!(
        "#!/bin/bash
while IFS= read -r line; do
  case \"$line\" in
    *pg_export_snapshot*) echo 00000003-00000002-1 ;;
    *server_version*) echo 15.0 ;;
    *\"'{{}}'\"*) {count} ;;
    '\\q') exit 0 ;;
  esac
done
"
    );
    let handling = format!(
        "trap 'echo term > {dir}/got-term; exit 143' TERM
echo $$ > {dir}/hung.pid.tmp && mv {dir}/hung.pid.tmp {dir}/hung.pid
sleep 30 &
wait"
    );
    let ignoring = format!("trap '' TERM\n{hung}");
    let dump = match hang {
        Hang::Dump => hung.as_str(),
        Hang::DumpHandlingTerm => handling.as_str(),
        Hang::DumpIgnoringTerm => ignoring.as_str(),
        Hang::Count => "printf 'PGDMP fake dump'",
    };
    let pg_dump = format!(
        "#!/bin/sh
case \"$1\" in --version) echo 'pg_dump (PostgreSQL) 15.0'; exit 0;; esac
{dump}
"
    );
    for (name, text) in [("psql", psql), ("pg_dump", pg_dump)] {
        std::fs::write(bin.join(name), text).unwrap();
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

const SLOW_DUMP: &str = r#"
version: 1
name: slow
kill_grace: 300ms
sources:
  db: { postgres: { database: crm, host: 127.0.0.1, user: postgres, bin_dir: "{{plan.dir}}/bin" } }
  media: { directory: { path: "{{plan.dir}}/media" } }
storage:
  local: { local: { path: "{{plan.dir}}/backups" } }
steps:
  - { id: media, backup: media }
  - { id: db, backup: db, needs: [media]TIMEOUT }
always:
  - { id: after, shell: "echo always >> DIR/trail" }
"#;

/// A backup step that runs out of time: the hung tool is killed, `always` runs, no set is left.
fn a_backup_timeout(hang: Hang) {
    let env = Env::new();
    make_media(&env.path("media"));
    slow_pg_tools(&env, hang);
    let plan = env.plan(&SLOW_DUMP.replace("TIMEOUT", ", timeout: 1s"));
    let started = Instant::now();
    let output = env.execute(&[]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(took < Duration::from_secs(5), "{took:?}");
    let record = env.record();
    assert_eq!(record["status"], "failed");
    let db = step(&record, "db");
    assert_eq!(db["outcome"], "timed_out");
    assert_eq!(db["attempts"][0]["error"], "timed out after 1s");
    let pid = env.wait_for("hung.pid");
    assert!(
        gone(&pid),
        "the hung tool {pid} outlived its step's timeout"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("trail")).unwrap(),
        "always\n"
    );
    assert_eq!(folders(&env.path("backups/slow")), Vec::<String>::new());
    assert_eq!(env.snapshots(&plan, "local"), Vec::<Value>::new());
}

#[test]
fn a_backup_timeout_kills_pg_dump_and_leaves_no_set() {
    a_backup_timeout(Hang::Dump);
}

#[test]
fn a_backup_timeout_during_the_row_counts_kills_psql() {
    a_backup_timeout(Hang::Count);
}

#[test]
fn a_timed_out_pg_dump_gets_sigterm_and_the_grace_before_sigkill() {
    let env = Env::new();
    make_media(&env.path("media"));
    slow_pg_tools(&env, Hang::DumpHandlingTerm);
    env.plan(&SLOW_DUMP.replace("TIMEOUT", ", timeout: 1s"));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(
        std::fs::read_to_string(env.path("got-term")).unwrap(),
        "term\n",
        "pg_dump was not sent SIGTERM first"
    );
    assert!(gone(&env.wait_for("hung.pid")));
    assert_eq!(folders(&env.path("backups/slow")), Vec::<String>::new());

    // One that ignores SIGTERM is killed once kill_grace (300ms) is over, and the step
    // waits for that before it ends.
    let env = Env::new();
    make_media(&env.path("media"));
    slow_pg_tools(&env, Hang::DumpIgnoringTerm);
    env.plan(&SLOW_DUMP.replace("TIMEOUT", ", timeout: 1s"));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let pid = env.wait_for("hung.pid");
    assert!(gone(&pid), "pg_dump {pid} survived SIGKILL");
    let record = env.record();
    let db = step(&record, "db");
    assert_eq!(db["outcome"], "timed_out");
    let took = db["duration_ms"].as_u64().unwrap();
    assert!(
        (1300..3000).contains(&took),
        "the step took {took} ms: not timeout plus grace"
    );
}

#[test]
fn a_directory_backup_stopped_mid_file_ends_and_its_retry_starts_clean() {
    let env = Env::new();
    // A sparse file far larger than a second of tar and zstd: the timeout hits mid-file.
    std::fs::create_dir(env.path("media")).unwrap();
    std::fs::File::create(env.path("media/huge.bin"))
        .unwrap()
        .set_len(20 << 30)
        .unwrap();
    env.plan(
        r#"
version: 1
name: huge
kill_grace: 300ms
sources:
  media: { directory: { path: "{{plan.dir}}/media" } }
storage:
  local: { local: { path: "{{plan.dir}}/backups" } }
steps:
  - { id: media, backup: media, timeout: 1s, retries: 1, retry_delay: 0s }
"#,
    );
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let record = env.record();
    let attempts = step(&record, "media")["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 2);
    // The first attempt's archive thread must be gone, or the retry finds its temp file.
    for attempt in &attempts {
        assert_eq!(attempt["outcome"], "timed_out", "{attempt}");
        assert_eq!(attempt["error"], "timed out after 1s");
    }
    assert_eq!(folders(&env.path("backups/huge")), Vec::<String>::new());
}

#[test]
fn sigterm_during_a_backup_exits_143_after_always_and_commits_nothing() {
    let env = Env::new();
    make_media(&env.path("media"));
    slow_pg_tools(&env, Hang::Dump);
    let plan = env.plan(&SLOW_DUMP.replace("TIMEOUT", ""));
    let child = env.spawn(&[]);
    let pid = env.wait_for("hung.pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    let record = env.record();
    assert_eq!(record["status"], "interrupted");
    assert_eq!(record["exit_code"], 143);
    assert_eq!(step(&record, "db")["outcome"], "cancelled");
    assert_eq!(step(&record, "after")["outcome"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(env.path("trail")).unwrap(),
        "always\n"
    );
    assert!(gone(&pid), "pg_dump {pid} outlived the run");
    let err = stderr(&output);
    assert!(
        err.contains("planrun: the backup set was not completed; removed "),
        "{err}"
    );
    assert_eq!(folders(&env.path("backups/slow")), Vec::<String>::new());
    assert_eq!(env.snapshots(&plan, "local"), Vec::<Value>::new());
}

#[test]
fn a_full_run_copies_off_site_prunes_both_and_restores_from_s3_alone() {
    let server = S3Server::start();
    let env = Env::new();
    make_media(&env.path("media"));
    make_sqlite(&env.path("crm.sqlite3"));
    let counts = sqlite_counts(&env.path("crm.sqlite3"));
    let plan = env.plan(&format!(
        r#"
version: 1
name: crm
secrets:
  s3_key: {{ env: PLANRUN_TEST_S3_KEY }}
  s3_secret: {{ env: PLANRUN_TEST_S3_SECRET }}
sources:
  db: {{ sqlite: {{ path: "{{{{plan.dir}}}}/crm.sqlite3" }} }}
  media: {{ directory: {{ path: "{{{{plan.dir}}}}/media" }} }}
storage:
  local: {{ local: {{ path: "{{{{plan.dir}}}}/backups" }} }}
  offsite:
    s3:
      bucket: {bucket}
      prefix: crm-backups/
      region: us-east-1
      endpoint: "{endpoint}"
      path_style: true
      allow_http: true
      access_key_id: "{{{{secrets.s3_key}}}}"
      secret_access_key: "{{{{secrets.s3_secret}}}}"
retention: {{ keep_last: 2 }}
steps:
  - {{ id: db, backup: db }}
  - {{ id: media, backup: media }}
  - {{ id: verify, verify: {{ storage: local }}, needs: [db, media] }}
  - {{ id: offsite, copy: {{ to: offsite }}, needs: [verify] }}
  - {{ id: prune, prune: [local, offsite], needs: [offsite] }}
"#,
        bucket = BUCKET,
        endpoint = server.endpoint()
    ));
    // Three nights: keep_last 2 then removes the first set from both storages. The keys come
    // from `secrets:`, so every command that talks to the bucket must resolve them.
    let mut ids = Vec::new();
    for night in 0..3 {
        let output = env.execute(&[]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let id = env.records()[0]["run_id"].as_str().unwrap().to_owned();
        let err = stderr(&output);
        assert!(
            err.contains(&format!(
                "    offsite | copied set {id} to `offsite`: 2 artifacts sent ("
            )),
            "{err}"
        );
        if night == 2 {
            for storage in ["local", "offsite"] {
                assert!(
                    err.contains(&format!(
                        "    prune | {id}  verified    keep    db, media: last\n"
                    )),
                    "{err}"
                );
                assert!(
                    err.contains(&format!("    prune | storage {storage} at ")),
                    "{err}"
                );
            }
            assert_eq!(
                err.matches(&format!("    prune | removed {}\n", ids[0]))
                    .count(),
                2,
                "{err}"
            );
        }
        ids.push(id);
    }
    assert_eq!(folders(&env.path("backups/crm")), ids[1..]);
    let remote: Vec<String> = env
        .snapshots(&plan, "offsite")
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(remote, [ids[2].clone(), ids[1].clone()]);

    // awscli, a standard client, sees the newest set with its manifest.
    let listing = server
        .aws()
        .args(["s3", "ls", "--recursive"])
        .arg(format!("s3://{}/crm-backups/crm/{}/", BUCKET, ids[2]))
        .output()
        .unwrap();
    assert!(listing.status.success(), "{}", stderr(&listing));
    let mut keys: Vec<String> = stdout(&listing)
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().to_owned())
        .collect();
    keys.sort();
    let prefix = format!("crm-backups/crm/{}/", ids[2]);
    // verify.json: prune re-hashed the set it keeps before removing the oldest one.
    assert_eq!(
        keys,
        [
            "db.sqlite3.zst",
            "manifest.json",
            "media.tar.zst",
            "verify.json"
        ]
        .map(|k| format!("{prefix}{k}"))
    );

    // The data centre is lost: the off-site copy alone brings the database back.
    std::fs::remove_dir_all(env.path("backups")).unwrap();
    std::fs::remove_file(env.path("crm.sqlite3")).unwrap();
    let restored = env.path("restored.sqlite3");
    let printed = succeeds(&mut env.restore(
        &plan,
        &[
            "--storage",
            "offsite",
            "--source",
            "db",
            "--to",
            restored.to_str().unwrap(),
        ],
    ));
    assert!(
        printed.starts_with(&format!("restored db from offsite set {} into ", ids[2])),
        "{printed}"
    );
    assert_eq!(sqlite_counts(&restored), counts);
    let state = env.state_files();
    assert!(
        !state.contains(SECRET_KEY),
        "the S3 secret is in the state dir: {state}"
    );
}

#[test]
fn a_postgres_database_round_trips_through_execute_and_the_password_stays_secret() {
    use support::postgres::{BIN_DIR, PASSWORD, PgServer};

    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE crm");
    pg.psql(
        "crm",
        "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
         CREATE TABLE sales (id serial PRIMARY KEY, customer int REFERENCES customers(id), amount numeric(10,2));
         INSERT INTO customers (name) SELECT 'Cliente ' || g FROM generate_series(1, 120) g;
         INSERT INTO sales (customer, amount) SELECT 1 + g % 120, g * 1.25 FROM generate_series(1, 700) g;",
    );
    let env = Env::new();
    // Over TCP the server checks the password, so a backup that works proves it was passed.
    let plan = env.plan(&format!(
        r#"
version: 1
name: pgcrm
secrets:
  pw: {{ env: PLANRUN_TEST_PG_PASSWORD }}
sources:
  db:
    postgres:
      database: crm
      host: 127.0.0.1
      port: {port}
      user: postgres
      password: "{{{{secrets.pw}}}}"
      bin_dir: {BIN_DIR}
      count_rows: [customers, sales]
storage:
  local: {{ local: {{ path: "{{{{plan.dir}}}}/backups" }} }}
steps:
  - {{ id: db, backup: db }}
  - {{ id: verify, verify: {{ storage: local }}, needs: [db] }}
"#,
        port = pg.port
    ));
    let output = env
        .planrun(["execute", plan.to_str().unwrap()])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let id = env.record()["run_id"].as_str().unwrap().to_owned();
    let set = env.path("backups/pgcrm").join(&id);
    let manifest_text = std::fs::read_to_string(set.join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_str(&manifest_text).unwrap();
    let facts = &manifest["artifacts"][0]["facts"];
    assert_eq!(manifest["artifacts"][0]["name"], "db.pgdump.zst");
    assert_eq!(facts["database"], "crm");
    assert_eq!(facts["row_counts"]["customers"], 120, "{facts}");
    assert_eq!(facts["row_counts"]["sales"], 700, "{facts}");

    let restore = env
        .planrun([
            "restore",
            plan.to_str().unwrap(),
            "--source",
            "db",
            "--to",
            "crm_restored",
        ])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(restore.status.code(), Some(0), "{}", stderr(&restore));
    assert!(
        stdout(&restore).starts_with(&format!(
            "restored db from local set {id} into database crm_restored"
        )),
        "{}",
        stdout(&restore)
    );
    for table in ["customers", "sales"] {
        let count = |db: &str| pg.psql(db, &format!("SELECT count(*) FROM {table}"));
        assert_eq!(count("crm_restored"), count("crm"), "{table}");
    }
    let ordered = |db: &str| {
        pg.psql(
            db,
            "SELECT md5(string_agg(x::text, ',' ORDER BY x.id)) FROM sales x",
        )
    };
    assert_eq!(ordered("crm_restored"), ordered("crm"));

    // The password went to the tools by passfile or environment only: it is in no record,
    // log, manifest or terminal output.
    let written = [
        ("state dir", env.state_files()),
        ("manifest", manifest_text),
        (
            "verify record",
            std::fs::read_to_string(set.join("verify.json")).unwrap(),
        ),
        ("execute output", stdout(&output) + &stderr(&output)),
        ("restore output", stdout(&restore) + &stderr(&restore)),
    ];
    for (what, text) in written {
        assert!(
            !text.contains(PASSWORD) && !text.contains("s3cret"),
            "the password is in the {what}: {text}"
        );
    }
}

#[test]
fn a_set_left_by_kill_9_stays_incomplete_and_the_next_run_does_not_count_it() {
    let env = Env::new();
    make_media(&env.path("media"));
    slow_pg_tools(&env, Hang::Dump);
    let plan = env.plan(&SLOW_DUMP.replace("TIMEOUT", ""));
    let mut child = env.spawn(&[]);
    let tool = env.wait_for("hung.pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
    // Nothing could clean up after a kill -9: the test stops the orphaned tool itself.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(tool.parse().unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .ok();
    let killed = env.records()[0]["run_id"].as_str().unwrap().to_owned();
    let sets = env.snapshots(&plan, "local");
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sets[0]["id"], killed.as_str());
    assert_eq!(sets[0]["status"], "incomplete");

    // The next night backs up the media only, then prunes to one set: the incomplete set
    // neither counts as the one kept nor goes before its 24 hours are up.
    let plan = env.plan(
        &SLOW_DUMP
            .replace(
                "  - { id: db, backup: db, needs: [media]TIMEOUT }",
                "  - { id: prune, prune: [local], needs: [media] }",
            )
            .replace("name: slow", "name: slow\nretention: { keep_last: 1 }"),
    );
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let records = env.records();
    assert_eq!(records[1]["status"], "abandoned");
    let good = records[0]["run_id"].as_str().unwrap().to_owned();
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "    prune | {killed}  incomplete  keep    incomplete, younger than 1d\n"
        )),
        "{err}"
    );
    let statuses: Vec<(String, String)> = env
        .snapshots(&plan, "local")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (good.clone(), "complete".to_owned()),
            (killed, "incomplete".to_owned())
        ]
    );
    // Restore takes the newest complete set, never the incomplete one.
    let printed = succeeds(&mut env.restore(&plan, &["--source", "media", "--to", "restored"]));
    assert!(
        printed.starts_with(&format!("restored media from local set {good} into ")),
        "{printed}"
    );
    assert_eq!(
        std::fs::read(env.path("restored/invoice-1.pdf")).unwrap(),
        b"invoice one\n"
    );
}
