//! `planrun execute` and `planrun history` driven through the real binary, with real child
//! processes and real signals. Each test writes a small plan into a temp dir; steps append
//! to a `trail` file so the order in which things ran can be checked exactly.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::run::{gone, stderr, stdout, step};
use support::{Env, Test};

fn signal(pid: u32, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
}

const UNDOABLE: &str = r#"
version: 1
name: demo
kill_grace: 300ms
steps:
  - id: a
    shell: echo a >> TRAIL
    rollback:
      - shell: echo undo-a >> TRAIL
  - id: b
    needs: [a]
    shell: echo b >> TRAIL
    rollback:
      - shell: echo undo-b >> TRAIL
  - id: last
    needs: [b]
    LAST
on_failure:
  - shell: echo on-failure >> TRAIL
always:
  - shell: echo always >> TRAIL
"#;

fn undoable(last: &str) -> String {
    UNDOABLE.replace("LAST", last)
}

#[test]
fn a_failure_rolls_back_newest_first_then_on_failure_then_always() {
    let env = Env::new();
    env.plan(&undoable("shell: echo failing; exit 7"));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(env.trail(), "a\nb\nundo-b\nundo-a\non-failure\nalways\n");
    let record = env.record();
    assert_eq!(record["status"], "failed");
    assert_eq!(step(&record, "a")["outcome"], "rolled_back");
    assert_eq!(step(&record, "b")["outcome"], "rolled_back");
    assert_eq!(step(&record, "last")["outcome"], "failed");
    assert_eq!(step(&record, "last")["attempts"][0]["exit_code"], 7);
    let err = stderr(&output);
    assert!(
        err.lines()
            .any(|l| l.starts_with("last ") && l.contains(" failed ")),
        "{err}"
    );
    assert!(
        err.contains("s: exit code 7\n    last | failing\n"),
        "{err}"
    );
    assert!(
        err.contains("rollback: a step failed: undoing 2 completed steps, newest first\n"),
        "{err}"
    );
    assert!(err.contains("planrun: run failed in "), "{err}");
}

#[test]
fn a_success_runs_always_but_no_rollback() {
    let env = Env::new();
    env.plan(&undoable("shell: echo last >> TRAIL"));
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(env.trail(), "a\nb\nlast\nalways\n");
    assert_eq!(env.record()["status"], "succeeded");
}

#[test]
fn a_timeout_rolls_back_and_runs_always() {
    let env = Env::new();
    env.plan(&undoable("run: [sleep, '30']\n    timeout: 200ms"));
    let started = Instant::now();
    let output = env.execute(&[]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(env.trail(), "a\nb\nundo-b\nundo-a\non-failure\nalways\n");
    let record = env.record();
    let last = step(&record, "last");
    assert_eq!(last["outcome"], "timed_out");
    assert_eq!(last["attempts"][0]["signal"], 15);
    assert_eq!(last["attempts"][0]["error"], "timed out after 200ms");
}

fn interrupted_by(signal_to_send: nix::sys::signal::Signal, code: i32) {
    let env = Env::new();
    env.plan(&undoable(
        "shell: echo $$ > DIR/running.tmp && mv DIR/running.tmp DIR/running; sleep 30",
    ));
    std::fs::write(env.path("running.tmp"), "").ok();
    let child = env.spawn(&[]);
    let pid = child.id();
    // `mv` makes the marker appear whole; wait_for wants a trailing newline, which `echo` wrote.
    let step_pid = env.wait_for("running");
    signal(pid, signal_to_send);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
    assert_eq!(env.trail(), "a\nb\nundo-b\nundo-a\non-failure\nalways\n");
    assert!(gone(&step_pid), "the step's shell survived");
    let record = env.record();
    assert_eq!(record["status"], "interrupted");
    assert_eq!(step(&record, "last")["outcome"], "cancelled");
    assert_eq!(record["exit_code"], code);
}

#[test]
fn sigterm_stops_the_step_then_rolls_back_and_runs_always() {
    interrupted_by(nix::sys::signal::Signal::SIGTERM, 143);
}

#[test]
fn sigint_exits_130_after_cleanup() {
    interrupted_by(nix::sys::signal::Signal::SIGINT, 130);
}

#[test]
fn a_child_ignoring_sigterm_is_killed_with_its_grandchild() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: stubborn
kill_grace: 300ms
steps:
  - id: stubborn
    timeout: 200ms
    shell: |
      trap '' TERM
      sleep 30 &
      echo $! > DIR/grandchild
      wait
"#,
    );
    let started = Instant::now();
    let output = env.execute(&[]);
    let took = started.elapsed();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        took >= Duration::from_millis(500),
        "{took:?}: SIGKILL came before the grace period"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let grandchild = env.wait_for("grandchild");
    assert!(gone(&grandchild), "grandchild {grandchild} survived");
    let record = env.record();
    let attempt = &step(&record, "stubborn")["attempts"][0];
    assert_eq!(attempt["signal"], 9);
    assert_eq!(attempt["outcome"], "timed_out");
    assert_eq!(
        attempt["error"],
        "timed out after 200ms; killed after the grace period"
    );
}

#[test]
fn a_grandchild_holding_stdout_does_not_hang_the_run_and_is_named() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: daemonish
steps:
  - id: spawner
    shell: |
      sleep 30 &
      echo $! > DIR/grandchild
      echo spawned
"#,
    );
    let started = Instant::now();
    let output = env.execute(&[]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // Left running by its step, the grandchild is killed and named every time (exit 3).
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let grandchild = env.wait_for("grandchild");
    assert!(
        stderr(&output).contains(&format!(
            "warning: killed pid {} (sleep 30): the step left it running",
            grandchild.trim()
        )),
        "{}",
        stderr(&output)
    );
    assert!(env.log().contains(" spawner stdout: spawned\n"));
    assert!(gone(&grandchild));
}

#[test]
fn a_second_run_is_refused_and_a_killed_holder_frees_the_lock() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: locked
vars:
  wait: "30"
steps:
  - id: hold
    shell: echo $$ > DIR/holding.tmp && mv DIR/holding.tmp DIR/holding; sleep {{vars.wait}}
"#,
    );
    let holder = env.spawn(&[]);
    let holder_pid = holder.id();
    let step_pid = env.wait_for("holding");

    let second = env.execute(&["--var", "wait=0"]);
    assert_eq!(second.status.code(), Some(4), "{}", stderr(&second));
    let message = stderr(&second);
    assert!(
        message.starts_with(&format!(
            "planrun: plan `locked` is already running: pid {holder_pid} on "
        )),
        "{message}"
    );

    assert_eq!(env.records()[0]["status"], "running");

    signal(holder_pid, nix::sys::signal::Signal::SIGKILL);
    let mut holder = holder;
    holder.wait().unwrap();
    // The orphaned step is not the lock's business; stop it so the test leaves nothing behind.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(step_pid.parse().unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .ok();

    let started = Instant::now();
    let third = env.execute(&["--var", "wait=0"]);
    assert_eq!(third.status.code(), Some(0), "{}", stderr(&third));
    assert!(started.elapsed() < Duration::from_secs(3));

    let records = env.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["status"], "succeeded");
    assert_eq!(records[1]["status"], "abandoned");
    let table = env.planrun(["history", "--plan", "locked"]).output();
    let table = stdout(&table);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[1].contains(" succeeded "), "{table}");
    assert!(lines[2].contains(" abandoned "), "{table}");
}

#[test]
fn retries_record_every_attempt_and_the_backoff() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: flaky
steps:
  - id: flaky
    retries: 2
    retry_delay: 100ms
    shell: echo try >> TRAIL; exit 1
"#,
    );
    let output = env.execute(&["--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(env.trail(), "try\ntry\ntry\n");
    let attempts = step(&env.record(), "flaky")["attempts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(attempts.len(), 3);
    let delays: Vec<&Value> = attempts.iter().map(|a| &a["retry_in_ms"]).collect();
    assert_eq!(delays, [&Value::from(100), &Value::from(200), &Value::Null]);
    let start = |i: usize| {
        chrono::DateTime::parse_from_rfc3339(attempts[i]["started_at"].as_str().unwrap()).unwrap()
    };
    assert!(start(2) - start(1) >= chrono::TimeDelta::milliseconds(200));
    assert!(start(1) - start(0) >= chrono::TimeDelta::milliseconds(100));
    let events: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let attempt_events = events
        .iter()
        .filter(|e| e["event"] == "attempt_finished")
        .count();
    assert_eq!(attempt_events, 3);
    assert_eq!(events.last().unwrap()["event"], "run_finished");
    assert!(
        stderr(&output)
            .lines()
            .any(|l| l.starts_with("flaky ") && l.contains(" failed "))
    );
    assert!(stderr(&output).contains("  after 3 attempts: exit code 1\n"));
}

#[test]
fn an_echoed_secret_is_masked_everywhere() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: secretive
secrets:
  tok: { env: PLANRUN_TEST_TOK }
steps:
  - id: leaky
    shell: |
      echo "token is $PLANRUN_TEST_TOK"
      echo "in a url: https://u:s3cr3t%2FP%40ss@host" >&2
      echo "error: bad token $PLANRUN_TEST_TOK" >&2
      exit 1
"#,
    );
    let output = env
        .planrun(["execute"])
        .arg(env.path("plan.yaml"))
        .arg("--json")
        .env("PLANRUN_TEST_TOK", "s3cr3t/P@ss")
        .output();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let log = env.log();
    assert!(log.contains("leaky stdout: token is ***\n"), "{log}");
    assert!(
        log.contains("leaky stderr: in a url: https://u:***@host\n"),
        "{log}"
    );
    let record = std::fs::read_to_string(
        std::fs::read_dir(env.state().join("runs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    for (what, text) in [
        ("log", log),
        ("record", record),
        ("events", stdout(&output)),
        ("stderr", stderr(&output)),
    ] {
        assert!(
            !text.contains("s3cr3t"),
            "the secret is in the {what}: {text}"
        );
    }
}

#[test]
fn missing_and_non_executable_programs_fail_clearly() {
    let env = Env::new();
    let script = env.path("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    env.plan(
        r#"
version: 1
name: broken
steps:
  - id: missing
    run: [no-such-program-planrun]
    on_failure: ignore
  - id: not-executable
    run: [DIR/script.sh]
    on_failure: ignore
"#,
    );
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.lines()
            .any(|l| l.starts_with("missing ") && l.contains(" failed ")),
        "{err}"
    );
    assert!(
        err.contains("s: command `no-such-program-planrun` not found in PATH ("),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "s: {} is not executable (mode 644)\n",
            script.display()
        )),
        "{err}"
    );
    let record = env.record();
    assert_eq!(step(&record, "missing")["outcome"], "failed");
    assert_eq!(step(&record, "not-executable")["outcome"], "failed");
}

#[test]
fn non_utf8_output_is_logged_lossily() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: bytes
steps:
  - id: bytes
    shell: printf 'caf\xe9 \xff\n'
"#,
    );
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        env.log().contains(" bytes stdout: caf\u{fffd} \u{fffd}\n"),
        "{}",
        env.log()
    );
}

#[test]
fn a_hundred_megabytes_of_output_keep_memory_bounded() {
    let env = Env::new();
    // The second step reads planrun's peak memory (its parent's VmHWM) into the log.
    env.plan(
        r#"
version: 1
name: loud
steps:
  - id: loud
    shell: |
      head -c 50000000 /dev/zero | tr '\0' x
      # Not `yes | head`: with pipefail, yes dying of SIGPIPE would fail the step.
      head -c 50000000 < <(yes 'a line of output that is a little longer than most lines people write')
  - id: memory
    needs: [loud]
    shell: grep VmHWM /proc/$PPID/status
"#,
    );
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let log = env.log();
    let peak_kb: u64 = log
        .lines()
        .find_map(|l| l.split_once(" memory stdout: VmHWM:"))
        .map(|(_, v)| v.trim().trim_end_matches(" kB").trim().parse().unwrap())
        .unwrap();
    assert!(peak_kb < 64 * 1024, "planrun peaked at {peak_kb} kB");
    assert!(log.len() > 100_000_000);
}

#[test]
fn only_runs_the_selected_steps() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: picky
steps:
  - { id: a, shell: echo a >> TRAIL }
  - { id: b, shell: echo b >> TRAIL, needs: [a] }
  - { id: c, shell: echo c >> TRAIL, needs: [b] }
"#,
    );
    let output = env.execute(&["--only", "b"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(env.trail(), "b\n");
    let record = env.record();
    assert_eq!(step(&record, "a")["outcome"], "skipped");
    assert_eq!(step(&record, "a")["reason"], "not selected by --only");
    assert_eq!(step(&record, "c")["outcome"], "skipped");

    let output = env.execute(&["--only", "bb"]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "planrun: --only bb: no step `bb` in the plan, did you mean `b`?\n"
    );
}

#[test]
fn vars_override_plan_values() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: vars
vars:
  word: plan
steps:
  - id: say
    run: [sh, -c, 'echo "$0" >> TRAIL', "{{vars.word}}"]
"#,
    );
    assert!(env.execute(&[]).status.success());
    assert!(
        env.execute(&["--var", "word=command-line"])
            .status
            .success()
    );
    assert_eq!(env.trail(), "plan\ncommand-line\n");
}

#[test]
fn dry_run_prints_the_plan_and_runs_nothing_but_checks_the_lock() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: dry
steps:
  - id: hold
    shell: echo $$ > DIR/holding.tmp && mv DIR/holding.tmp DIR/holding; echo ran >> TRAIL; sleep 30
"#,
    );
    let output = env.execute(&["--dry-run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("    hold  shell   echo $$ > "),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        stderr(&output),
        "planrun: dry run: the lock is free; nothing was run\n"
    );
    assert_eq!(env.trail(), "");
    assert!(!env.state().join("runs").read_dir().unwrap().any(|_| true));

    let mut holder = env.spawn(&[]);
    env.wait_for("holding");
    let output = env.execute(&["--dry-run"]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    signal(holder.id(), nix::sys::signal::Signal::SIGTERM);
    assert_eq!(holder.wait().unwrap().code(), Some(143));
}

#[test]
fn warn_and_ignore_policies_set_the_exit_code() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: policies
steps:
  - { id: warned, shell: exit 1, on_failure: warn }
  - { id: after, shell: echo after >> TRAIL }
"#,
    );
    assert_eq!(env.execute(&[]).status.code(), Some(3));
    assert_eq!(env.trail(), "after\n");
    assert_eq!(env.records()[0]["status"], "partial");
    std::fs::write(
        env.path("plan.yaml"),
        std::fs::read_to_string(env.path("plan.yaml"))
            .unwrap()
            .replace("warn", "ignore"),
    )
    .unwrap();
    assert_eq!(env.execute(&[]).status.code(), Some(0));
}

#[test]
fn unavailable_step_kinds_are_refused_before_anything_runs() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: future
steps:
  - { id: first, shell: echo first >> TRAIL }
  - { id: call, manual: "Call the DBA" }
"#,
    );
    let output = env.execute(&[]);
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output),
        "planrun: step `call`: step kind `manual` is not available yet\n"
    );
    assert_eq!(env.trail(), "");
}

#[test]
fn independent_steps_run_at_the_same_time() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: parallel
steps:
  - { id: one, run: [sleep, "0.5"] }
  - { id: two, run: [sleep, "0.5"] }
  - { id: three, run: [sleep, "0.5"] }
"#,
    );
    let started = Instant::now();
    assert!(env.execute(&["--concurrency", "3"]).status.success());
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    assert!(env.execute(&["--concurrency", "1"]).status.success());
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn a_second_signal_kills_everything_at_once() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: impatient
steps:
  - id: slow
    shell: echo $$ > DIR/slow.tmp && mv DIR/slow.tmp DIR/slow; sleep 30
always:
  - shell: echo $$ > DIR/cleanup.tmp && mv DIR/cleanup.tmp DIR/cleanup; sleep 30
"#,
    );
    let child = env.spawn(&[]);
    let pid = child.id();
    env.wait_for("slow");
    signal(pid, nix::sys::signal::Signal::SIGTERM);
    let cleanup = env.wait_for("cleanup");
    let started = Instant::now();
    signal(pid, nix::sys::signal::Signal::SIGINT);
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert!(
        stderr(&output).ends_with("planrun: second signal: killed running steps without cleanup\n")
    );
    assert!(gone(&cleanup), "the always step survived");
    assert_eq!(env.record()["status"], "abandoned");
}

#[test]
fn a_signal_during_rollback_lets_cleanup_finish_and_exits_143() {
    let env = Env::new();
    env.plan(
        r#"
version: 1
name: late
steps:
  - id: a
    shell: echo a >> TRAIL
    rollback:
      - shell: touch DIR/undoing.tmp && echo x > DIR/undoing.tmp && mv DIR/undoing.tmp DIR/undoing; sleep 0.5; echo undo-a >> TRAIL
  - { id: bad, needs: [a], shell: exit 1 }
always:
  - shell: echo always >> TRAIL
"#,
    );
    let child = env.spawn(&[]);
    env.wait_for("undoing");
    signal(child.id(), nix::sys::signal::Signal::SIGTERM);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    assert_eq!(env.trail(), "a\nundo-a\nalways\n");
    assert_eq!(env.record()["status"], "interrupted");
}

#[test]
fn progress_on_stderr_is_one_line_per_step_then_the_outcome() {
    let ran = Test::new()
        .plan(
            r#"
version: 1
name: tidy
steps:
  - { id: first, shell: echo one }
  - { id: second, needs: [first], shell: echo two; exit 4, on_failure: warn }
always:
  - { id: ping, shell: "true" }
"#,
        )
        .args(["execute", "plan.yaml"])
        .status(3)
        .stderr(
            "planrun: plan `tidy`, run RUN: 2 steps, then 1 `always`
first   succeeded    T
second  failed       T: exit code 4
    second | two
ping    succeeded    T  (always)
planrun: run partial in T (exit code 3); log: DIR/state/logs/RUN.log
",
        )
        .run();
    let record = ran.env.record();
    let run_id = record["run_id"].as_str().unwrap();
    assert!(
        ran.stderr.ends_with(&format!("/state/logs/{run_id}.log\n")),
        "{}",
        ran.stderr
    );
}

#[test]
fn hostile_values_never_execute_in_shell_or_run_steps() {
    let env = Env::new();
    let pwned = env.path("pwned");
    let evil = format!(
        "x\"; touch {}; \"'$(touch {})'`touch {}`",
        pwned.display(),
        pwned.display(),
        pwned.display()
    );
    env.plan(
        r#"
version: 1
name: inject
vars:
  label: safe
steps:
  - id: plain
    shell: printf '%s\n' {{vars.label}} >> TRAIL
  - id: double
    shell: printf '%s\n' "{{vars.label}}" >> TRAIL
    needs: [plain]
  - id: single
    shell: printf '%s\n' '{{vars.label}}' >> TRAIL
    needs: [double]
  - id: heredoc
    shell: |
      cat >> TRAIL <<EOF
      {{vars.label}}
      EOF
    needs: [single]
  - id: argv
    run: [bash, -c, "printf '%s\n' \"$1\" >> TRAIL", argv, "{{vars.label}}"]
    needs: [heredoc]
"#,
    );
    // Command-substitution syntax in a value is refused before anything runs (a script
    // could evaluate the text later); nothing runs.
    let output = env.execute(&["--var", &format!("label={evil}")]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the value holds a backtick"),
        "{}",
        stderr(&output)
    );
    assert!(!pwned.exists(), "a templated value was executed as code");
    assert_eq!(env.trail(), "");
    // Quotes, semicolons and newlines are data: every context carries them intact.
    let evil = format!(
        "x\"; touch {}; \"'\n; touch {} #",
        pwned.display(),
        pwned.display()
    );
    let output = env.execute(&["--var", &format!("label={evil}")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!pwned.exists(), "a templated value was executed as code");
    assert_eq!(env.trail(), format!("{evil}\n").repeat(5));
}
