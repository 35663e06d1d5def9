//! Nothing is left behind by a killed run: the real binary is killed with SIGKILL mid-run,
//! and the next run of the plan must stop the dead run's process groups before its own steps
//! start, remove its scratch folder, restore staging and temporary databases, and mark its
//! record abandoned, while never touching what a live run owns.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::run::{gone, stderr, wait_for};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// Writes `plan.yaml`; `DIR` in the text becomes the test's folder.
    fn plan(&self, yaml: &str) -> PathBuf {
        let path = self.path("plan.yaml");
        let text = yaml.replace("DIR", &self.dir.path().display().to_string());
        std::fs::write(&path, text).unwrap();
        path
    }

    fn planrun(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_planrun"));
        command.args(args).arg("--state-dir").arg(self.state());
        command
    }

    fn execute(&self) -> Output {
        let plan = self.path("plan.yaml");
        self.planrun(&["execute", plan.to_str().unwrap()])
            .output()
            .unwrap()
    }

    fn spawn_execute(&self) -> Child {
        let plan = self.path("plan.yaml");
        self.planrun(&["execute", plan.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// The run record of `run_id` as written on disk (not as `history` interprets it).
    fn record(&self, run_id: &str) -> Value {
        let path = self.state().join("runs").join(format!("{run_id}.json"));
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn ledger(&self, run_id: &str) -> PathBuf {
        self.state()
            .join("leftovers")
            .join(format!("{run_id}.json"))
    }
}

/// Kills planrun itself with SIGKILL: nothing of its own cleanup runs.
fn kill_9(mut child: Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

/// Whether a process exists and is not a zombie.
fn alive(pid: &str) -> bool {
    !gone_now(pid)
}

fn gone_now(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => true,
    }
}

/// The run id from a scratch path `/tmp/planrun-<run id>`.
fn run_id_of(scratch: &str) -> String {
    Path::new(scratch)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .strip_prefix("planrun-")
        .unwrap()
        .to_owned()
}

/// A plan whose steps leave processes running: a `run` step (its own group, the sleep is the
/// leader) and a shell step with a grandchild, both writing their pids, and a file in the
/// run's scratch folder.
const STUCK: &str = r#"
version: 1
name: stuck
kill_grace: 300ms
sources:
  config: { files: [DIR/plan.yaml] }
storage:
  local: { local: { path: DIR/backups } }
steps:
  - id: sleeper
    run: [sleep, "300"]
  - id: parent
    shell: |
      echo hello > "{{run.scratch}}/work"
      sleep 300 &
      echo $! > DIR/grandchild.tmp && mv DIR/grandchild.tmp DIR/grandchild
      echo $$ > DIR/parent.tmp && mv DIR/parent.tmp DIR/parent
      echo "{{run.scratch}}" > DIR/scratch.tmp && mv DIR/scratch.tmp DIR/scratch
      wait
"#;

/// The second run's only step writes down, as it starts, which of the old processes it can
/// still see: the cleanup must have happened before any step started.
const CHECK: &str = r#"
version: 1
name: stuck
kill_grace: 300ms
steps:
  - id: look
    shell: |
      for pid in $(cat DIR/pids); do
        if [ -e /proc/$pid ] && ! grep -q ') Z' /proc/$pid/stat; then echo "alive $pid"; fi
      done > DIR/seen
      echo checked >> DIR/seen
"#;

#[test]
fn the_next_run_stops_a_killed_runs_processes_first_and_removes_its_scratch() {
    let env = Env::new();
    env.plan(STUCK);
    let first = env.spawn_execute();
    let grandchild = wait_for(&env.path("grandchild"));
    let parent = wait_for(&env.path("parent"));
    let scratch = wait_for(&env.path("scratch"));
    let run_id = run_id_of(&scratch);
    let sleeper = find_sleeper(first.id());
    kill_9(first);

    // SIGKILL gives planrun no chance: its steps live on, and its scratch folder stays.
    std::thread::sleep(Duration::from_millis(200));
    for pid in [&grandchild, &parent, &sleeper] {
        assert!(alive(pid), "process {pid} died with planrun");
    }
    assert!(Path::new(&scratch).join("work").exists());
    assert_eq!(env.record(&run_id)["status"], "running");

    std::fs::write(
        env.path("pids"),
        format!("{grandchild} {parent} {sleeper}\n"),
    )
    .unwrap();
    env.plan(CHECK);
    let second = env.execute();
    assert_eq!(second.status.code(), Some(0), "{}", stderr(&second));
    assert_eq!(
        std::fs::read_to_string(env.path("seen")).unwrap(),
        "checked\n",
        "old processes were still running when the new step started"
    );
    for pid in [&grandchild, &parent, &sleeper] {
        assert!(gone(pid), "process {pid} of the dead run is still alive");
    }
    assert!(!Path::new(&scratch).exists(), "{scratch} is still there");
    let message = stderr(&second);
    let cleaned = message
        .lines()
        .find(|line| {
            line.starts_with(&format!(
                "planrun: cleaned up after run {run_id}, which was killed: "
            ))
        })
        .unwrap_or_else(|| panic!("{message}"));
    assert!(cleaned.contains("stopped process group "), "{cleaned}");
    assert!(
        cleaned.ends_with(&format!("removed {scratch}")),
        "{cleaned}"
    );
    assert_eq!(env.record(&run_id)["status"], "abandoned");
    assert!(!env.ledger(&run_id).exists());

    // Once cleaned, a third run finds nothing to do and says nothing about it.
    let third = env.execute();
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert!(!stderr(&third).contains("cleaned up"), "{}", stderr(&third));
    // The runs that ended cleanly left no ledger.
    assert_eq!(
        std::fs::read_dir(env.state().join("leftovers"))
            .unwrap()
            .count(),
        0
    );
}

/// The pid of the `sleep 300` whose parent is `planrun` (the `run` step's own process).
fn find_sleeper(planrun: u32) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let rest = stat.rsplit(')').next()?.to_owned();
                    rest.split_whitespace().nth(1).map(str::to_owned)
                });
            if cmdline.ends_with(b"sleep\x00300\x00") && parent == Some(planrun.to_string()) {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the run step's sleep never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_live_runs_leftovers_are_never_touched() {
    let env = Env::new();
    env.plan(STUCK);
    let live = env.spawn_execute();
    let grandchild = wait_for(&env.path("grandchild"));
    let scratch = wait_for(&env.path("scratch"));
    let run_id = run_id_of(&scratch);

    // A second execute is refused (the lock), and a restore of the same plan, which does not
    // need the lock, runs its own way; neither touches the live run.
    let second = env.execute();
    assert_eq!(second.status.code(), Some(4), "{}", stderr(&second));
    let plan = env.path("plan.yaml");
    let restored = env.path("restored");
    let restore = env
        .planrun(&[
            "restore",
            plan.to_str().unwrap(),
            "--source",
            "config",
            "--to",
            restored.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(restore.status.code(), Some(1), "{}", stderr(&restore));
    assert!(alive(&grandchild));
    assert!(Path::new(&scratch).exists());
    assert!(env.ledger(&run_id).exists());

    // A ledger that looks dead in every way but one: its pid is alive with the recorded
    // start time (this test process stands in for a live restore).
    let other = "20260101T000000Z-000beef";
    let staging_parent = env.path("target-parent");
    std::fs::create_dir(&staging_parent).unwrap();
    let staging = staging_parent.join(format!(".planrun-restore-{other}-abc"));
    std::fs::create_dir(&staging).unwrap();
    let other_scratch = env.path(&format!("planrun-{other}"));
    std::fs::create_dir(&other_scratch).unwrap();
    let me = std::process::id();
    std::fs::write(
        env.ledger(other),
        ledger_json(other, me, start_time(me), &other_scratch, &staging_parent),
    )
    .unwrap();

    // Now the live run dies and the next run cleans it, but not the living one.
    kill_9(live);
    env.plan(CHECK);
    std::fs::write(env.path("pids"), format!("{grandchild}\n")).unwrap();
    let next = env.execute();
    assert_eq!(next.status.code(), Some(0), "{}", stderr(&next));
    assert!(gone(&grandchild));
    assert!(!Path::new(&scratch).exists());
    assert!(staging.exists(), "a live run's staging folder was removed");
    assert!(other_scratch.exists(), "a live run's scratch was removed");
    assert!(env.ledger(other).exists());
    assert!(!stderr(&next).contains(other), "{}", stderr(&next));
    assert_eq!(env.record(&run_id)["status"], "abandoned");

    // The same ledger with a start time that is not this process's: the pid was reused, so
    // the run is dead, and what carries its id goes.
    std::fs::write(
        env.ledger(other),
        ledger_json(
            other,
            me,
            start_time(me) + 1,
            &other_scratch,
            &staging_parent,
        ),
    )
    .unwrap();
    let unrelated = staging_parent.join(".planrun-restore-20250101T000000Z-0001234-abc");
    std::fs::create_dir(&unrelated).unwrap();
    let again = env.execute();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(!staging.exists());
    assert!(!other_scratch.exists());
    assert!(unrelated.exists(), "another run's folder was removed");
    assert!(!env.ledger(other).exists());
}

/// The start time of a process in clock ticks after boot (field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap()
}

fn ledger_json(run_id: &str, pid: u32, start: u64, scratch: &Path, staging: &Path) -> String {
    serde_json::json!({
        "format": 1,
        "run_id": run_id,
        "plan": "stuck",
        "command": "restore",
        "host": nix::unistd::gethostname().unwrap().to_string_lossy(),
        "pid": pid,
        "pid_start": start,
        "boot_id": std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap().trim(),
        "scratch": scratch,
        "databases": [],
        "staging": [{ "parent": staging, "marker": format!("planrun-restore-{run_id}-") }],
    })
    .to_string()
}

#[test]
fn a_restore_killed_mid_way_leaves_a_temporary_database_the_next_run_drops() {
    use support::postgres::{BIN_DIR, PgServer};

    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE crm");
    pg.psql(
        "crm",
        "CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);
         INSERT INTO notes (body) SELECT repeat(md5(g::text), 4) FROM generate_series(1, 300000) g;",
    );
    let env = Env::new();
    let plan = env.plan(&format!(
        r#"
version: 1
name: pgkill
sources:
  db: {{ postgres: {{ database: crm, host: "{socket}", port: {port}, user: postgres, bin_dir: {BIN_DIR} }} }}
storage:
  local: {{ local: {{ path: DIR/backups }} }}
steps:
  - {{ id: db, backup: db }}
"#,
        socket = pg.socket_dir().display(),
        port = pg.port
    ));
    let backup = env.execute();
    assert_eq!(backup.status.code(), Some(0), "{}", stderr(&backup));

    let restore = |extra: &[&str]| {
        let mut args = vec!["restore", plan.to_str().unwrap(), "--source", "db"];
        args.extend(extra);
        env.planrun(&args)
    };
    let temporary =
        "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'crm_planrun_%'";
    let killed = restore(&["--to", "crm", "--force"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let name = loop {
        let names = pg.psql("postgres", temporary);
        if !names.is_empty() {
            break names;
        }
        assert!(
            Instant::now() < deadline,
            "the restore never made its database"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    kill_9(killed);
    let ledgers: Vec<PathBuf> = std::fs::read_dir(env.state().join("leftovers"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(ledgers.len(), 1, "{ledgers:?}");
    let run_id = ledgers[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    // The temporary database carries the run id, so its owner is provable.
    assert_eq!(
        name,
        format!("crm_planrun_{}", run_id.to_lowercase().replace('-', "_"))
    );
    assert_eq!(pg.psql("postgres", temporary), name, "it outlived the kill");

    // The next restore, finding the lock free, drops it before doing its own work.
    let again = restore(&["--to", "crm", "--force"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let message = stderr(&again);
    assert!(
        message.contains(&format!(
            "planrun: cleaned up after run {run_id}, which was killed: "
        )) && message.contains(&format!("dropped database {name}")),
        "{message}"
    );
    assert_eq!(pg.psql("postgres", temporary), "");
    assert_eq!(pg.psql("crm", "SELECT count(*) FROM notes"), "300000");
    assert!(!Path::new(&format!("/tmp/planrun-{run_id}")).exists());
    assert_eq!(
        std::fs::read_dir(env.state().join("leftovers"))
            .unwrap()
            .count(),
        0
    );
}
