//! Helpers for tests that drive the `planrun` binary: its output, its run records, and the
//! markers and processes its steps leave behind.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The step `id` of a run record, or a panic that shows the whole record.
pub fn step<'a>(record: &'a Value, id: &str) -> &'a Value {
    record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {record:#}"))
}

/// `planrun history --json --state-dir STATE`: every run record, newest first.
pub fn history(state: &Path) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_planrun"))
        .args(["history", "--json", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The one run record in `state`; a panic when there is not exactly one.
pub fn only_record(state: &Path) -> Value {
    let records = history(state);
    assert_eq!(records.len(), 1, "{records:#?}");
    records[0].clone()
}

/// Waits until `path` holds a whole line (a step's "I am running now" marker) and returns it.
pub fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.ends_with('\n')
        {
            return text.trim().to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits up to a second for a process to be gone: SIGKILL is delivered asynchronously, so a
/// process can outlive the `kill` call that doomed it by a moment.
pub fn gone(pid: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(1);
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Whether a process exists and is not a zombie waiting for a reaper that may never come
/// (in a container without an init, orphans stay zombies).
fn alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}
