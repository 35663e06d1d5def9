//! `planrun recover --level N` through the real binary, against a real PostgreSQL server and
//! a real S3-compatible server: level 1 end to end, failing closed without a terminal,
//! resuming after `kill -9`, level 3 from the off-site copy alone, rehearsals, and a person
//! answering under a pseudo-terminal.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::postgres::{BIN_DIR, PASSWORD, PgServer};
use support::run::{stderr, stdout, step};
use support::s3::{BUCKET, S3Server};
use support::{Env, names};

/// Runs a `Test` with stdin from /dev/null: no terminal, as cron and CI run recover.
trait NoTerminal {
    fn no_terminal(&self) -> std::process::Output;
}

impl NoTerminal for support::Test {
    fn no_terminal(&self) -> std::process::Output {
        self.command().stdin(Stdio::null()).output().unwrap()
    }
}

/// A plan backing up one media folder, with level 2 made of `steps` (YAML list items), and
/// its first backup made.
fn media_level_2(steps: &str) -> Env {
    let env = Env::new();
    std::fs::create_dir_all(env.path("app/media")).unwrap();
    std::fs::write(env.path("app/media/a.txt"), "good\n").unwrap();
    env.plan(&format!(
        r#"
version: 1
name: crm
sources:
  media: {{ directory: {{ path: "DIR/app/media" }} }}
storage:
  local: {{ local: {{ path: "DIR/backups" }} }}
steps:
  - {{ id: media, backup: media }}
roles:
  sysadmin: {{ title: Systems administrator, contact: "ops@example.com" }}
recovery:
  levels:
    2:
      name: Local hardware failure
      steps:
{steps}"#
    ));
    let ran = env.execute(&[]);
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    env
}

/// The one incident recorded in the state dir.
fn only_incident(env: &Env) -> Value {
    let dir = env.state().join("incidents");
    let ids = names(&dir);
    assert_eq!(ids.len(), 1, "{ids:?}");
    serde_json::from_slice(&std::fs::read(dir.join(&ids[0]).join("incident.json")).unwrap())
        .unwrap()
}

fn report(env: &Env, id: &str) -> String {
    std::fs::read_to_string(env.state().join("incidents").join(id).join("report.md")).unwrap()
}

/// A CRM database with 120 customers owned by the role `crm_app`, backed up by `plan`.
fn crm(pg: &PgServer) {
    pg.psql("postgres", "CREATE ROLE crm_app NOLOGIN");
    pg.psql("postgres", "CREATE DATABASE crm OWNER crm_app");
    pg.psql(
        "crm",
        "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL);
         ALTER TABLE customers OWNER TO crm_app;
         INSERT INTO customers (name) SELECT 'Cliente ' || g FROM generate_series(1, 120) g;",
    );
}

fn pg_plan(pg: &PgServer, extra_storage: &str, levels: &str) -> String {
    format!(
        r#"
version: 1
name: crm
secrets:
  pw: {{ env: PLANRUN_TEST_PG_PASSWORD }}
  s3: {{ env: PLANRUN_TEST_S3_SECRET }}
  s3key: {{ env: PLANRUN_TEST_S3_KEY }}
sources:
  db:
    postgres:
      database: crm
      host: 127.0.0.1
      port: {port}
      user: postgres
      password: "{{{{secrets.pw}}}}"
      bin_dir: {BIN_DIR}
      count_rows: [customers]
storage:
  local: {{ local: {{ path: "{{{{plan.dir}}}}/backups" }} }}
{extra_storage}
steps:
  - {{ id: db, backup: db }}
roles:
  dba: {{ title: Database administrator, contact: "dba@example.com", deputy: "Bia, +55 11 1111-1111" }}
  sysadmin: {{ title: Systems administrator, contact: "ops@example.com" }}
recovery:
  objectives: {{ rpo: 24h, rto: 4h }}
  levels:
{levels}
"#,
        port = pg.port
    )
}

const LEVEL_1: &str = r#"
    1:
      name: Data corruption or accidental deletion
      steps:
        - { id: suspend, role: sysadmin, manual: "Put the CRM in maintenance mode" }
        - { id: restore, role: dba, restore: { source: db, database: crm }, confirm: true }
        - { id: resume, role: sysadmin, manual: "Restore user access" }
"#;

fn count(pg: &PgServer, database: &str) -> String {
    pg.psql(database, "SELECT count(*) FROM customers")
}

#[test]
fn level_1_end_to_end_brings_the_rows_back_and_keeps_the_damaged_database() {
    let pg = PgServer::start();
    crm(&pg);
    let env = Env::new();
    let plan = env.plan(&pg_plan(&pg, "", LEVEL_1));
    let ran = env
        .planrun(["execute", plan.to_str().unwrap()])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let set = names(&env.path("backups/crm")).pop().unwrap();

    // The accident.
    pg.psql("crm", "DELETE FROM customers WHERE id > 20");
    assert_eq!(count(&pg, "crm"), "20");

    // A rehearsal first: a scratch database, dropped afterwards; the live one untouched.
    let rehearsal = env
        .planrun(["recover", "--level", "1", "plan.yaml", "--rehearse"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .no_terminal();
    assert_eq!(
        rehearsal.status.code(),
        Some(0),
        "{}{}",
        stdout(&rehearsal),
        stderr(&rehearsal)
    );
    let out = stdout(&rehearsal);
    assert!(out.contains("REHEARSAL OF RECOVERY LEVEL 1"), "{out}");
    assert!(
        out.contains("  >> Put the CRM in maintenance mode"),
        "{out}"
    );
    assert_eq!(
        count(&pg, "crm"),
        "20",
        "a rehearsal never touches the live database"
    );
    let databases = pg.psql(
        "postgres",
        "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database",
    );
    assert_eq!(
        databases, "crm,postgres,template0,template1",
        "the scratch database is dropped"
    );
    let record = only_incident(&env);
    assert_eq!(record["rehearsal"], true);
    assert_eq!(record["status"], "closed");
    assert_eq!(step(&record, "suspend")["outcome"], "read_out");
    assert_eq!(step(&record, "restore")["outcome"], "succeeded");
    assert!(
        step(&record, "restore")["target"]
            .as_str()
            .unwrap()
            .starts_with("database planrun_rehearse_")
    );
    std::fs::remove_dir_all(env.state().join("incidents")).unwrap();

    let recovered = env
        .planrun(["recover", "--level", "1", "plan.yaml", "--yes"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .no_terminal();
    let (out, err) = (stdout(&recovered), stderr(&recovered));
    assert_eq!(recovered.status.code(), Some(0), "{out}{err}");
    // The opening screen: level, objectives, roles with contact and deputy, steps, the set.
    for expected in [
        "RECOVERY LEVEL 1: Data corruption or accidental deletion",
        "objectives: RPO 1d (most data that may be lost) · RTO 4h (back in service within)",
        "  dba              Database administrator\n                   contact: dba@example.com\n                   deputy:  Bia, +55 11 1111-1111\n",
        "   1. suspend  sysadmin     manual: Put the CRM in maintenance mode\n",
        "   2. restore  dba          restore `db` into database crm (asks first)\n",
        &format!("  restore  set {set} on `local`, age "),
        "data-loss window: ",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
    assert_eq!(count(&pg, "crm"), "120", "the rows are back");
    let record = only_incident(&env);
    let id = record["id"].as_str().unwrap().to_owned();
    let before = format!("crm_before_{id}");
    assert_eq!(count(&pg, &before), "20", "the damaged state is kept");
    // Owner and grants came back with the database.
    assert_eq!(
        pg.psql(
            "crm",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'customers'"
        ),
        "crm_app"
    );
    assert_eq!(record["status"], "open");
    assert_eq!(record["progress"], "completed");
    let restore = step(&record, "restore");
    assert_eq!(restore["set"]["id"], set.as_str());
    assert_eq!(restore["set"]["storage"], "local");
    assert_eq!(restore["kept"]["what"], format!("database {before}"));
    assert_eq!(restore["answers"][0]["how"], "--yes");
    assert_eq!(step(&record, "suspend")["outcome"], "done");
    let text = report(&env, &id);
    assert!(text.contains(&format!("set {set} from `local`")), "{text}");
    assert!(text.contains("| data-loss window (RPO) | "), "{text}");
    assert!(text.contains("(objective 1d00h: met)"), "{text}");
    assert!(text.contains("| time to recovery (RTO) | "), "{text}");
    assert!(
        text.contains(&format!("DROP DATABASE \"{before}\"")),
        "{text}"
    );

    // The incident freezes the backups: the nightly refuses, naming it; prune keeps its set.
    let nightly = env
        .planrun(["execute", plan.to_str().unwrap()])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(nightly.status.code(), Some(4));
    assert!(
        stderr(&nightly).contains(&format!(
            "plan `crm` is frozen by open incident {id} (level 1"
        )),
        "{}",
        stderr(&nightly)
    );
    assert_eq!(names(&env.path("backups/crm")), [set.as_str()]);

    // Lessons learned, then closed: the nightly runs again.
    env.planrun([
        "incident",
        "note",
        &id,
        "the delete came from a migration run by hand",
    ])
    .run();
    env.planrun(["incident", "close", &id]).run();
    let text = report(&env, &id);
    assert!(
        text.contains("the delete came from a migration run by hand"),
        "{text}"
    );
    assert!(text.contains("| status | closed |"), "{text}");
    let history = env.planrun(["history", "--incidents"]).run();
    assert!(
        history
            .stdout
            .contains(&format!("{id}   crm           1     incident  closed")),
        "{}",
        history.stdout
    );
    let nightly = env
        .planrun(["execute", plan.to_str().unwrap()])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(nightly.status.code(), Some(0), "{}", stderr(&nightly));
}

/// A plan whose level 2 runs shell steps that leave a trail, and restores a folder.
fn trail_plan(env: &Env) -> std::path::PathBuf {
    std::fs::create_dir_all(env.path("app/media")).unwrap();
    std::fs::write(env.path("app/media/a.txt"), "good\n").unwrap();
    let plan = env.plan(
        r#"
version: 1
name: crm
sources:
  media: { directory: { path: "DIR/app/media" } }
storage:
  local: { local: { path: "DIR/backups" } }
steps:
  - { id: media, backup: media }
roles:
  sysadmin: { title: Systems administrator, contact: "ops@example.com" }
recovery:
  levels:
    2:
      name: Local hardware failure
      steps:
        - { id: one, role: sysadmin, shell: "echo one >> TRAIL" }
        - id: two
          role: sysadmin
          shell: "echo two >> TRAIL; if [ ! -e DIR/two-started ]; then echo started > DIR/two-started; sleep 30; fi"
        - { id: restore, role: sysadmin, restore: { source: media } }
        - { id: three, role: sysadmin, shell: "echo three >> TRAIL" }
"#,
    );
    let ran = env.execute(&[]);
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    plan
}

#[test]
fn without_a_terminal_recovery_fails_closed_before_anything_changes() {
    let env = Env::new();
    trail_plan(&env);
    std::fs::write(env.path("app/media/a.txt"), "damaged\n").unwrap();
    let ran = env
        .planrun(["recover", "--level", "2", "plan.yaml", "--confirm", "two"])
        .no_terminal();
    assert_eq!(ran.status.code(), Some(2));
    assert_eq!(
        stderr(&ran),
        "planrun: no terminal to confirm on, so nothing was changed: these steps need a person: restore; run from a terminal, or confirm them with --confirm restore (or --yes for all)\n"
    );
    assert_eq!(env.trail(), "", "no step ran");
    assert_eq!(
        std::fs::read_to_string(env.path("app/media/a.txt")).unwrap(),
        "damaged\n"
    );
    assert!(
        !env.state().join("incidents").exists(),
        "no incident was opened"
    );
}

#[test]
fn a_resumed_incident_never_repeats_a_completed_step_after_kill_9() {
    let env = Env::new();
    trail_plan(&env);
    std::fs::write(env.path("app/media/a.txt"), "damaged\n").unwrap();
    let mut child = env
        .planrun(["recover", "--level", "2", "plan.yaml", "--yes"])
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    env.wait_for("two-started");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(env.trail(), "one\ntwo\n");
    let record = only_incident(&env);
    assert_eq!(step(&record, "one")["outcome"], "succeeded");
    assert_eq!(step(&record, "two")["outcome"], "running");

    // Without a terminal, the interrupted step needs its own go.
    let refused = env
        .planrun(["recover", "--level", "2", "plan.yaml", "--resume"])
        .no_terminal();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("these steps need a person: two, restore;"),
        "{}",
        stderr(&refused)
    );

    let resumed = env
        .planrun([
            "recover",
            "--level",
            "2",
            "plan.yaml",
            "--resume",
            "--confirm",
            "two",
            "--confirm",
            "restore",
        ])
        .no_terminal();
    let out = stdout(&resumed);
    assert_eq!(resumed.status.code(), Some(0), "{out}{}", stderr(&resumed));
    assert!(
        out.contains("step 1/4 [one] already succeeded: not repeated"),
        "{out}"
    );
    assert!(out.contains("step [two] was INTERRUPTED"), "{out}");
    // `one` ran once; `two`, interrupted, ran again because the engineer said so.
    assert_eq!(env.trail(), "one\ntwo\ntwo\nthree\n");
    let record = only_incident(&env);
    assert_eq!(record["progress"], "completed");
    assert_eq!(step(&record, "two")["answers"][0]["answer"], "rerun");
    assert_eq!(step(&record, "two")["answers"][0]["how"], "--confirm");
    let id = record["id"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(env.path("app/media/a.txt")).unwrap(),
        "good\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.path(&format!("app/media_before_{id}/a.txt"))).unwrap(),
        "damaged\n"
    );
}

#[test]
fn level_3_restores_from_s3_alone_and_says_it_fell_back() {
    let pg = PgServer::start();
    crm(&pg);
    let server = S3Server::start();
    let env = Env::new();
    let offsite = format!(
        "  offsite:\n    s3: {{ bucket: {BUCKET}, prefix: crm/, endpoint: \"{}\", path_style: true, allow_http: true, access_key_id: \"{{{{secrets.s3key}}}}\", secret_access_key: \"{{{{secrets.s3}}}}\" }}",
        server.endpoint()
    );
    let levels = r#"
    3:
      name: Data centre or main site disaster
      steps:
        - { id: activate, role: sysadmin, manual: "Activate the recovery site" }
        - { id: restore-db, role: dba, restore: { source: db, database: crm }, confirm: true }
"#;
    let mut text = pg_plan(&pg, &offsite, levels);
    text = text.replace(
        "  - { id: db, backup: db }",
        "  - { id: db, backup: db }\n  - { id: offsite, copy: { to: offsite }, needs: [db] }",
    );
    let plan = env.plan(&text);
    let ran = env
        .planrun(["execute", plan.to_str().unwrap()])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let set = names(&env.path("backups/crm")).pop().unwrap();

    // The site is gone: local storage, state dir, the database and its owner role.
    std::fs::remove_dir_all(env.path("backups")).unwrap();
    std::fs::remove_dir_all(env.state()).unwrap();
    pg.psql("postgres", "DROP DATABASE crm");
    pg.psql("postgres", "DROP ROLE crm_app");

    let recovered = env
        .planrun(["recover", "--level", "3", "plan.yaml", "--yes"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .no_terminal();
    let (out, err) = (stdout(&recovered), stderr(&recovered));
    assert_eq!(recovered.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("  !!! `local` has no restorable set holding `db`\n  !!! FELL BACK to storage `offsite`\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!("  restore-db  set {set} on `offsite`, age ")),
        "{out}"
    );
    assert_eq!(count(&pg, "crm"), "120");
    assert_eq!(
        pg.psql(
            "crm",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'customers'"
        ),
        "crm_app",
        "the owner role was created from the set's globals"
    );
    let record = only_incident(&env);
    let restore = step(&record, "restore-db");
    assert_eq!(restore["set"]["storage"], "offsite");
    assert!(
        restore["set"]["fell_back"]
            .as_str()
            .unwrap()
            .contains("`local` has no restorable set"),
        "{restore:#}"
    );
    assert!(restore.get("kept").is_none(), "nothing was there to keep");
}

#[test]
fn a_person_answers_done_skip_with_a_reason_retry_and_abort_under_a_terminal() {
    use expectrl::{Eof, Expect, Session};

    let env = Env::new();
    std::fs::create_dir_all(env.path("app/media")).unwrap();
    std::fs::write(env.path("app/media/a.txt"), "good\n").unwrap();
    env.plan(
        r#"
version: 1
name: crm
sources:
  media: { directory: { path: "DIR/app/media" } }
storage:
  local: { local: { path: "DIR/backups" } }
steps:
  - { id: media, backup: media }
roles:
  sysadmin: { title: Systems administrator, contact: "ops@example.com" }
recovery:
  levels:
    1:
      name: Data corruption or accidental deletion
      steps:
        - { id: suspend, role: sysadmin, manual: "Put the CRM in maintenance mode" }
        - { id: restore, role: sysadmin, restore: { source: media }, confirm: true }
        - { id: flaky, role: sysadmin, shell: "if [ -e DIR/tried ]; then echo fixed >> TRAIL; else touch DIR/tried; exit 7; fi" }
        - { id: resume, role: sysadmin, manual: "Restore user access" }
"#,
    );
    let ran = env.execute(&[]);
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    std::fs::write(env.path("app/media/a.txt"), "damaged\n").unwrap();

    let recover = |extra: &[&str]| {
        let mut command = env
            .planrun(["recover", "--level", "1", "plan.yaml"])
            .args(extra)
            .command();
        command.env("TERM", "dumb");
        let mut session = Session::spawn(command).unwrap();
        session.set_expect_timeout(Some(Duration::from_secs(60)));
        session
    };
    let mut p = recover(&[]);
    p.expect("Put the CRM in maintenance mode").unwrap();
    p.expect("[done / skip / abort]").unwrap();
    // One stray key confirms nothing.
    p.send_line("d").unwrap();
    p.expect("`d` is not an answer: type one of done / skip / abort in full")
        .unwrap();
    p.send_line("done").unwrap();
    p.expect("replace it? type yes: [yes / skip / abort]")
        .unwrap();
    p.send_line("skip").unwrap();
    p.expect("reason for skipping:").unwrap();
    p.send_line("").unwrap();
    p.expect("a reason is required").unwrap();
    p.send_line("only the thumbnails were lost").unwrap();
    p.expect("step [flaky] FAILED: exit code 7").unwrap();
    p.send_line("retry").unwrap();
    p.expect("Restore user access").unwrap();
    p.send_line("abort").unwrap();
    p.expect(Eof).unwrap();
    assert_eq!(
        p.get_process().wait().unwrap(),
        expectrl::process::unix::WaitStatus::Exited(p.get_process().pid(), 1)
    );

    let record = only_incident(&env);
    let id = record["id"].as_str().unwrap().to_owned();
    assert_eq!(record["progress"], "aborted");
    let suspend = step(&record, "suspend");
    assert_eq!(suspend["outcome"], "done");
    assert_eq!(suspend["answers"][0]["how"], "terminal");
    assert!(suspend["answers"][0]["user"].is_string());
    assert!(suspend["answers"][0]["host"].is_string());
    let restore = step(&record, "restore");
    assert_eq!(restore["outcome"], "skipped");
    assert_eq!(restore["reason"], "only the thumbnails were lost");
    assert_eq!(
        std::fs::read_to_string(env.path("app/media/a.txt")).unwrap(),
        "damaged\n"
    );
    let flaky = step(&record, "flaky");
    assert_eq!(flaky["outcome"], "succeeded");
    assert_eq!(flaky["answers"][0]["answer"], "retry");
    assert_eq!(step(&record, "resume")["outcome"], "pending");
    assert_eq!(env.trail(), "fixed\n");

    // Resumed: the answered steps are not asked again.
    let mut p = recover(&["--resume"]);
    p.expect("step 1/4 [suspend] already done: not repeated")
        .unwrap();
    p.expect("step 2/4 [restore] already skipped: not repeated")
        .unwrap();
    p.expect("step 3/4 [flaky] already succeeded: not repeated")
        .unwrap();
    p.expect("Restore user access").unwrap();
    p.send_line("done").unwrap();
    p.expect(Eof).unwrap();
    assert_eq!(
        p.get_process().wait().unwrap(),
        expectrl::process::unix::WaitStatus::Exited(p.get_process().pid(), 0)
    );
    let record = only_incident(&env);
    assert_eq!(record["id"], id.as_str());
    assert_eq!(record["progress"], "completed");
    assert_eq!(env.trail(), "fixed\n");
}

#[test]
fn an_older_set_needs_its_own_confirmation_and_prune_keeps_what_an_incident_uses() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("app/media")).unwrap();
    std::fs::write(env.path("app/media/a.txt"), "first\n").unwrap();
    env.plan(
        r#"
version: 1
name: crm
sources:
  media: { directory: { path: "DIR/app/media" } }
storage:
  local: { local: { path: "DIR/backups" } }
retention: { keep_last: 1 }
steps:
  - { id: media, backup: media }
recovery:
  levels:
    1:
      name: Data corruption or accidental deletion
      steps:
        - { id: restore, restore: { source: media } }
"#,
    );
    for text in ["first\n", "second\n", "third\n"] {
        std::fs::write(env.path("app/media/a.txt"), text).unwrap();
        let ran = env.execute(&[]);
        assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    }
    let sets = names(&env.path("backups/crm"));
    // The newest set is damaged: its artifact lost a byte.
    let newest = env.path("backups/crm").join(&sets[2]).join("media.tar.zst");
    let bytes = std::fs::read(&newest).unwrap();
    std::fs::write(&newest, &bytes[..bytes.len() - 1]).unwrap();

    let refused = env
        .planrun([
            "recover",
            "--level",
            "1",
            "plan.yaml",
            "--confirm",
            "restore",
        ])
        .no_terminal();
    assert_eq!(refused.status.code(), Some(2));
    let out = stdout(&refused);
    assert!(
        out.contains(&format!(
            "  !!! a NEWER set {} exists or was recorded, but cannot be restored: this set is OLDER and needs its own confirmation (restore.older-set)\n",
            sets[2]
        )),
        "{out}"
    );
    assert!(
        stderr(&refused).contains("these steps need a person: restore.older-set;"),
        "{}",
        stderr(&refused)
    );

    // Restoring the oldest set on purpose; the incident stays open.
    let ran = env
        .planrun([
            "recover",
            "--level",
            "1",
            "plan.yaml",
            "--set",
            &sets[0],
            "--confirm",
            "restore",
            "--confirm",
            "restore.older-set",
        ])
        .no_terminal();
    assert_eq!(
        ran.status.code(),
        Some(0),
        "{}{}",
        stdout(&ran),
        stderr(&ran)
    );
    assert_eq!(
        std::fs::read_to_string(env.path("app/media/a.txt")).unwrap(),
        "first\n"
    );

    // keep_last: 1 would remove it (once the damaged set, which stops any prune, is gone);
    // the open incident holds it.
    std::fs::remove_dir_all(env.path("backups/crm").join(&sets[2])).unwrap();
    let pruned = env
        .planrun(["prune", "plan.yaml", "--dry-run", "--state-dir"])
        .arg(env.state())
        .run();
    let incident = only_incident(&env);
    assert!(
        pruned.stdout.contains(&format!(
            "{}  complete    keep    held by open incident {}",
            sets[0],
            incident["id"].as_str().unwrap()
        )),
        "{}",
        pruned.stdout
    );
    assert!(
        pruned
            .stdout
            .contains(&format!("{}  complete    keep    media: last\n", sets[1])),
        "{}",
        pruned.stdout
    );
}

#[test]
fn sigterm_during_a_step_stops_it_and_leaves_the_incident_resumable() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: crm
recovery:
  levels:
    4:
      name: Regional disaster
      steps:
        - { id: wait, shell: "echo waiting > DIR/waiting; sleep 30" }
        - { id: after, shell: "echo after >> TRAIL" }
"#,
    );
    let child = env
        .planrun(["recover", "--level", "4", "plan.yaml"])
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    env.wait_for("waiting");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("aborted at step `wait`"),
        "{}",
        stderr(&output)
    );
    let record = only_incident(&env);
    assert_eq!(record["progress"], "aborted");
    assert_eq!(step(&record, "wait")["outcome"], "failed");
    assert_eq!(env.trail(), "");

    // The runbook starts again where it stopped (a failed step is not settled).
    env.plan(
        r#"
version: 1
name: crm
recovery:
  levels:
    4:
      name: Regional disaster
      steps:
        - { id: wait, shell: "true" }
        - { id: tell, notify: { webhook: "http://127.0.0.1:9/nobody-listens" } }
        - { id: after, shell: "echo after >> TRAIL" }
"#,
    );
    let resumed = env
        .planrun(["recover", "--level", "4", "plan.yaml", "--resume"])
        .no_terminal();
    let out = stdout(&resumed);
    // A failed notification is a warning: the runbook goes on, and exits 3.
    assert_eq!(resumed.status.code(), Some(3), "{out}{}", stderr(&resumed));
    assert!(out.contains("!!! THE PLAN CHANGED since incident"), "{out}");
    assert!(out.contains("warning: the notification failed"), "{out}");
    assert_eq!(env.trail(), "after\n");
    let record = only_incident(&env);
    assert_eq!(record["progress"], "completed");
    assert_eq!(step(&record, "tell")["outcome"], "warned");
}

/// The `Ns`/`Nm` window of a manual step's text `data since WINDOW ago may be lost (…)`.
fn window_in(text: &str) -> &str {
    let start = text
        .find("data since ")
        .unwrap_or_else(|| panic!("no window in {text}"))
        + "data since ".len();
    let end = start + text[start..].find(" ago").unwrap();
    &text[start..end]
}

#[test]
fn a_rehearsal_tells_people_the_real_data_loss_window_and_the_incident() {
    let env = media_level_2(
        r#"
        - { id: restore, role: sysadmin, restore: { source: media }, confirm: true }
        - id: inform
          role: sysadmin
          manual: "Tell users that data since {{incident.data_loss_window}} ago may be lost (incident {{incident.id}}, level {{incident.level}})"
"#,
    );

    let rehearsal = env
        .planrun(["recover", "--level", "2", "plan.yaml", "--rehearse"])
        .no_terminal();
    let (out, err) = (stdout(&rehearsal), stderr(&rehearsal));
    assert_eq!(rehearsal.status.code(), Some(0), "{out}{err}");
    let record = only_incident(&env);
    let id = record["id"].as_str().unwrap();
    let what = step(&record, "inform")["what"].as_str().unwrap();
    let told = what.strip_prefix("manual: ").unwrap_or(what).to_owned();
    let window = window_in(&told);
    // The set was taken moments ago: seconds (or a minute on a slow machine), never `unknown`.
    assert!(
        window
            .strip_suffix('s')
            .or_else(|| window.strip_suffix('m'))
            .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n < 120)),
        "{told}"
    );
    assert_eq!(
        told,
        format!("Tell users that data since {window} ago may be lost (incident {id}, level 2)")
    );
    assert!(out.contains(&format!("  >> {told}")), "{out}");
    assert!(
        !out.contains("unknown") && !err.contains("unknown"),
        "{out}{err}"
    );
    let text = report(&env, id);
    assert!(text.contains(&told), "{text}");
    assert!(!text.contains("unknown"), "{text}");
}

#[test]
fn the_nightly_plans_level_3_renders_its_opening_screen_in_a_rehearsal() {
    let server = S3Server::start();
    let env = Env::new();
    let plans = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let nightly = std::fs::read_to_string(plans.join("nightly.yaml")).unwrap();
    // The shared definitions, pointed at this temp dir and the loopback S3 server.
    let common = std::fs::read_to_string(plans.join("common.yaml"))
        .unwrap()
        .replace("app: /srv/crm", "app: DIR/app")
        .replace("backups: /var/backups/crm", "backups: DIR/backups")
        .replace("bucket: crm-backups", &format!("bucket: {BUCKET}"))
        .replace(
            "endpoint: \"https://s3.eu-west-1.amazonaws.com\"",
            &format!(
                "endpoint: \"{}\"\n      path_style: true\n      allow_http: true",
                server.endpoint()
            ),
        );
    assert!(common.contains("allow_http: true"), "{common}");
    env.plan_at("common.yaml", &common);
    env.plan(&nightly);

    let rehearsal = env
        .planrun(["recover", "--level", "3", "plan.yaml", "--rehearse"])
        .env("CRM_DB_PASSWORD", "unused")
        .env("CRM_S3_ACCESS_KEY_ID", support::s3::ACCESS_KEY)
        .env("CRM_S3_SECRET_ACCESS_KEY", support::s3::SECRET_KEY)
        .no_terminal();
    let (out, err) = (stdout(&rehearsal), stderr(&rehearsal));
    // The bucket is empty, so the rehearsal stops after its opening screen: no render error.
    assert_eq!(rehearsal.status.code(), Some(2), "{out}{err}");
    assert!(
        out.contains("REHEARSAL OF RECOVERY LEVEL 3: Data centre or main site disaster\n"),
        "{out}"
    );
    assert!(out.contains("inform"), "{out}");
    assert!(
        err.contains("no set to restore from, so nothing was changed"),
        "{err}"
    );
    assert!(!err.contains("incident."), "{err}");
}

#[test]
fn a_rehearsals_check_step_reads_the_scratch_copy_it_restored_not_the_live_database() {
    let pg = PgServer::start();
    crm(&pg);
    let env = Env::new();
    let levels = r#"
    1:
      name: Data corruption or accidental deletion
      steps:
        - { id: restore, role: dba, restore: { source: db, database: crm }, confirm: true }
        - { id: check, role: dba, check: { sql: "SELECT count(*) FROM customers", source: db, expect: matches_backup } }
    2:
      name: The same check with no restore before it
      steps:
        - { id: check, role: dba, check: { sql: "SELECT count(*) FROM customers", source: db, expect: matches_backup } }
"#;
    env.plan(&pg_plan(&pg, "", levels));
    let ran = env
        .planrun(["execute", "plan.yaml"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    // The set recorded 120 rows; the live database now has 20.
    pg.psql("crm", "DELETE FROM customers WHERE id > 20");

    let rehearsal = env
        .planrun(["recover", "--level", "1", "plan.yaml", "--rehearse"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .no_terminal();
    let (out, err) = (stdout(&rehearsal), stderr(&rehearsal));
    assert_eq!(rehearsal.status.code(), Some(0), "{out}{err}");
    let record = only_incident(&env);
    assert_eq!(step(&record, "restore")["outcome"], "succeeded");
    let check = step(&record, "check");
    assert_eq!(check["outcome"], "succeeded", "{check:#}");
    assert_eq!(count(&pg, "crm"), "20", "the live database is untouched");

    // The same check with nothing restored before it reads the live database, and fails:
    // so the pass above came from the scratch copy.
    std::fs::remove_dir_all(env.state().join("incidents")).unwrap();
    let live = env
        .planrun(["recover", "--level", "2", "plan.yaml", "--rehearse"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .no_terminal();
    let (out, err) = (stdout(&live), stderr(&live));
    assert_ne!(live.status.code(), Some(0), "{out}{err}");
    let record = only_incident(&env);
    let check = step(&record, "check");
    assert_eq!(check["outcome"], "failed", "{check:#}");
    let error = check["error"].as_str().unwrap();
    assert!(error.contains("120") && error.contains("20"), "{error}");
}

/// A rehearsal drops its scratch copies whenever it stops, so resuming one would run its
/// checks against the live targets: an aborted rehearsal is never resumed, by id or by
/// default, and says to start a new one.
#[test]
fn an_aborted_rehearsal_is_never_resumed() {
    let env = media_level_2(
        r#"
        - { id: restore, role: sysadmin, restore: { source: media } }
        - { id: broken, role: sysadmin, shell: "exit 1" }
"#,
    );
    let rehearsal = env
        .planrun([
            "recover",
            "--level",
            "2",
            "plan.yaml",
            "--rehearse",
            "--yes",
        ])
        .no_terminal();
    assert_ne!(rehearsal.status.code(), Some(0), "{}", stderr(&rehearsal));
    let incident = only_incident(&env);
    assert_eq!(incident["rehearsal"], true);
    let id = incident["id"].as_str().unwrap().to_owned();
    let by_id = env
        .planrun(["recover", "--level", "2", "plan.yaml", "--resume", &id])
        .no_terminal();
    assert_eq!(by_id.status.code(), Some(2));
    assert_eq!(
        stderr(&by_id),
        format!(
            "planrun: incident {id} is a rehearsal: its scratch copies were dropped when it stopped, so it is not resumed; start a new one with --rehearse\n"
        )
    );
    let by_default = env
        .planrun(["recover", "--level", "2", "plan.yaml", "--resume"])
        .no_terminal();
    assert_eq!(by_default.status.code(), Some(2), "{}", stderr(&by_default));
    assert!(
        !stderr(&by_default).contains(&id),
        "the rehearsal is not offered: {}",
        stderr(&by_default)
    );
}

/// A rehearsal restores into names planrun makes, never into a plan's drill targets: a
/// target whose `{{run.id}}` hides in a Handlebars comment renders as the live database, and
/// the rehearsal, which drops what it restored into, dropped it. Now the live database keeps
/// its rows and the rehearsal's own scratch database is gone afterwards.
#[test]
fn a_rehearsal_never_drops_a_live_database_a_drill_target_names() {
    let pg = PgServer::start();
    crm(&pg);
    let env = Env::new();
    let plan = format!(
        "{}drill:\n  restore:\n    db: {{ database: \"crm{{{{!-- {{{{run.id}}}} --}}}}\" }}\n",
        pg_plan(&pg, "", LEVEL_1)
    );
    env.plan(&plan);
    let ran = env
        .planrun(["execute", "plan.yaml"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let rehearsal = env
        .planrun(["recover", "--level", "1", "plan.yaml", "--rehearse"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .no_terminal();
    let (out, err) = (stdout(&rehearsal), stderr(&rehearsal));
    assert_eq!(rehearsal.status.code(), Some(0), "{out}{err}");
    assert_eq!(count(&pg, "crm"), "120", "the live database is untouched");
    let databases = pg.psql("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'planrun%' OR datname LIKE 'crm%'");
    assert_eq!(databases.trim(), "crm", "only the live database is left");
}

/// The same for folders: a drill target that is an existing folder (or a link to the live
/// one) is never where a rehearsal restores, so it is never removed afterwards.
#[test]
fn a_rehearsal_never_removes_a_folder_a_drill_target_names() {
    let env = Env::new();
    std::fs::create_dir_all(env.path("app/media")).unwrap();
    std::fs::write(env.path("app/media/a.txt"), "live\n").unwrap();
    std::fs::create_dir_all(env.path("important")).unwrap();
    std::fs::write(env.path("important/keep.txt"), "keep\n").unwrap();
    std::os::unix::fs::symlink(env.path("app"), env.path("linkapp")).unwrap();
    env.plan(
        r#"
version: 1
name: crm
sources:
  media: { directory: { path: "DIR/app/media" } }
  other: { directory: { path: "DIR/app/media" } }
storage:
  local: { local: { path: "DIR/backups" } }
steps:
  - { id: media, backup: media }
  - { id: other, backup: other }
drill:
  restore:
    media: { path: "DIR/important" }
    other: { path: "DIR/linkapp/media" }
roles:
  sysadmin: { title: Systems administrator, contact: "ops@example.com" }
recovery:
  levels:
    2:
      name: Local hardware failure
      steps:
        - { id: restore, role: sysadmin, restore: { source: media } }
        - { id: restore-other, role: sysadmin, restore: { source: other } }
"#,
    );
    let ran = env.execute(&[]);
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let rehearsal = env
        .planrun(["recover", "--level", "2", "plan.yaml", "--rehearse"])
        .no_terminal();
    let (out, err) = (stdout(&rehearsal), stderr(&rehearsal));
    assert_eq!(rehearsal.status.code(), Some(0), "{out}{err}");
    assert!(
        out.contains("restore media into a scratch copy (rehearsal), dropped afterwards\n"),
        "the opening screen names no live target: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("important/keep.txt")).unwrap(),
        "keep\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("app/media/a.txt")).unwrap(),
        "live\n"
    );
    assert!(env.path("linkapp").is_symlink());
}

/// A mistyped `--confirm` confirms nothing while the person believes it did: refused, with
/// the level's step ids, before anything is chosen or runs.
#[test]
fn a_confirmation_of_no_step_is_refused_with_the_steps() {
    let env = Env::new();
    trail_plan(&env);
    let ran = env
        .planrun([
            "recover",
            "--level",
            "2",
            "plan.yaml",
            "--confirm",
            "restor",
        ])
        .no_terminal();
    assert_eq!(ran.status.code(), Some(2));
    assert_eq!(
        stderr(&ran),
        "planrun: --confirm restor: level 2 has no such step; its steps are one, two, restore, three (add `.older-set` to a restore step's id to accept an older set)\n"
    );
    assert_eq!(env.trail(), "", "no step ran");
    assert!(!env.state().join("incidents").exists());
}

/// A restore stopped by its timeout leaves its temporary database behind; the recovery
/// drops it before it ends, instead of leaving a full copy of the database for the next run
/// of the plan. `pg_restore` is made slow by a wrapper in the source's `bin_dir`.
#[test]
fn a_restore_stopped_by_its_timeout_leaves_no_temporary_database() {
    use std::os::unix::fs::PermissionsExt;
    let pg = PgServer::start();
    crm(&pg);
    let env = Env::new();
    let bin = env.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for entry in std::fs::read_dir(BIN_DIR).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() != "pg_restore" {
            std::os::unix::fs::symlink(entry.path(), bin.join(entry.file_name())).unwrap();
        }
    }
    std::fs::write(
        bin.join("pg_restore"),
        format!("#!/bin/sh\nsleep 30\nexec {BIN_DIR}/pg_restore \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("pg_restore"), PermissionsExt::from_mode(0o755)).unwrap();
    let levels = r#"
    1:
      name: Data corruption or accidental deletion
      steps:
        - { id: restore, role: dba, restore: { source: db, database: crm }, confirm: true, timeout: 3s }
"#;
    let plan = pg_plan(&pg, "", levels).replace(
        &format!("bin_dir: {BIN_DIR}"),
        &format!("bin_dir: {}", bin.display()),
    );
    env.plan(&plan);
    let ran = env
        .planrun(["execute", "plan.yaml"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    let recovered = env
        .planrun(["recover", "--level", "1", "plan.yaml", "--yes"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .no_terminal();
    let (out, err) = (stdout(&recovered), stderr(&recovered));
    assert_eq!(recovered.status.code(), Some(1), "{out}{err}");
    let record = only_incident(&env);
    assert_eq!(step(&record, "restore")["outcome"], "failed", "{record:#}");
    assert_eq!(step(&record, "restore")["error"], "timed out after 3s");
    assert_eq!(count(&pg, "crm"), "120", "the live database is untouched");
    let left = pg.psql(
        "postgres",
        "SELECT count(*) FROM pg_database WHERE datname LIKE '%planrun%'",
    );
    assert_eq!(left.trim(), "0", "{out}{err}");
    assert!(
        err.contains("cleaned up after a stopped restore: dropped database crm_planrun_"),
        "{err}"
    );
}

/// A second restore of the same target in one incident (a re-run after `kill -9` landed
/// after the swap does the same) keeps the state it replaces beside the first `_before_`
/// copy, never over it and never failing on it: the pre-incident state stays whole.
#[test]
fn a_second_restore_of_a_target_keeps_its_own_before_copy() {
    let pg = PgServer::start();
    crm(&pg);
    let env = Env::new();
    let levels = r#"
    1:
      name: Data corruption or accidental deletion
      steps:
        - { id: first, role: dba, restore: { source: db, database: crm }, confirm: true }
        - { id: second, role: dba, restore: { source: db, database: crm }, confirm: true }
"#;
    env.plan(&pg_plan(&pg, "", levels));
    let ran = env
        .planrun(["execute", "plan.yaml"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .output();
    assert_eq!(ran.status.code(), Some(0), "{}", stderr(&ran));
    pg.psql("crm", "DELETE FROM customers WHERE id > 7");
    let recovered = env
        .planrun(["recover", "--level", "1", "plan.yaml", "--yes"])
        .env("PLANRUN_TEST_PG_PASSWORD", PASSWORD)
        .no_terminal();
    let (out, err) = (stdout(&recovered), stderr(&recovered));
    assert_eq!(recovered.status.code(), Some(0), "{out}{err}");
    let id = only_incident(&env)["id"].as_str().unwrap().to_owned();
    let before = format!("crm_before_{id}");
    let kept = pg.psql(
        "postgres",
        "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'crm_before_%'",
    );
    assert_eq!(kept.trim(), format!("{before},{before}_2"), "{out}{err}");
    assert_eq!(
        count(&pg, &before),
        "7",
        "the pre-incident state stays whole"
    );
    assert_eq!(count(&pg, &format!("{before}_2")), "120");
    assert_eq!(count(&pg, "crm"), "120");
}
