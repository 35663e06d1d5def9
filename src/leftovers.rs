//! Leftovers of killed runs. What a run creates outside its records (its scratch folder, the
//! process groups of its steps and tools, temporary databases, restore staging folders) is
//! claimed in a ledger, `<state>/leftovers/<run-id>.json`, before it exists; the ledger goes
//! when the run ends cleanly. The next run of the plan, holding the plan's lock, removes what
//! a provably dead run claimed: same host, and its pid gone, reused (another start time) or
//! from an earlier boot.
//!
//! The ledger is its own file rather than part of the run record because it must be on disk
//! before the thing it names exists, while the run record is written from the event stream,
//! a moment later; and because `restore`, which makes temporary databases too, has no run
//! record. One planrun process is one run, so the ledger is process-wide: whatever code
//! creates a temporary database or starts a process records it without being handed anything,
//! and forgetting to pass a handle cannot leave something unrecorded.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::event::RunStatus;
use crate::plan::{PostgresSource, Source};
use crate::run_record::{RunRecord, write_atomically};
use crate::state_dir::StateDir;

/// The ledger format version.
const FORMAT: u32 = 1;

/// What one run has claimed.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Claims {
    pub format: u32,
    pub run_id: String,
    pub plan: String,
    /// `execute` or `restore`.
    pub command: String,
    pub host: String,
    pub pid: u32,
    /// The process's start time (clock ticks after boot, field 22 of `/proc/PID/stat`): a
    /// reused pid has another.
    pub pid_start: u64,
    /// `/proc/sys/kernel/random/boot_id`: after a reboot no process of the run is left.
    pub boot_id: String,
    #[serde(default)]
    pub scratch: Option<PathBuf>,
    #[serde(default)]
    pub databases: Vec<DatabaseClaim>,
    #[serde(default)]
    pub staging: Vec<StagingClaim>,
}

/// A process group a step or tool runs in: one line `PGID STARTED_BY` of
/// `<run-id>.groups` beside the ledger. `started_by` is the boot clock in clock ticks (the
/// unit of `/proc/PID/stat`'s start time) taken right after the spawn, so the leader's own
/// start time is at most that. It is taken from the clock rather than read from
/// `/proc/PID/stat`, because reading a process's stat while it execs or exits waits for it:
/// that cost 0.12 ms per step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupClaim {
    pub pgid: i32,
    pub started_by: u64,
}

/// A temporary database, with where it lives (never the password: the next run takes that
/// from the plan's source on the same server).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseClaim {
    pub database: String,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub bin_dir: Option<String>,
}

/// Staging files and folders in `parent` whose names contain `marker` (which holds the run
/// id, so that nothing of another run can match).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingClaim {
    pub parent: PathBuf,
    pub marker: String,
}

struct Ledger {
    path: PathBuf,
    claims: Mutex<Claims>,
    /// `<run-id>.groups`, appended to at every process start: one `write` on an open file
    /// costs microseconds, where rewriting the ledger would cost a file creation and a rename
    /// per step.
    groups: Mutex<std::fs::File>,
}

static LEDGER: OnceLock<Ledger> = OnceLock::new();

/// The current run's ledger, removed by [`Installed::finish`] once everything it claimed is
/// gone.
#[derive(Debug)]
pub struct Installed {
    path: PathBuf,
}

/// Starts this process's ledger for run `run_id` of `plan`, before anything is created. The
/// scratch folder is claimed at once.
pub fn install(
    state: &StateDir,
    run_id: &str,
    plan: &str,
    command: &str,
    scratch: Option<&Path>,
) -> io::Result<Installed> {
    let folder = state.root().join("leftovers");
    std::fs::create_dir_all(&folder)?;
    let path = folder.join(format!("{run_id}.json"));
    let claims = Claims {
        format: FORMAT,
        run_id: run_id.to_owned(),
        plan: plan.to_owned(),
        command: command.to_owned(),
        host: hostname(),
        pid: std::process::id(),
        pid_start: process_start(std::process::id() as i32).unwrap_or_default(),
        boot_id: boot_id(),
        scratch: scratch.map(Path::to_path_buf),
        ..Claims::default()
    };
    let groups = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(groups_path(&path))?;
    // Not fsynced: until a database or staging folder is claimed (which is), the ledger
    // names only the scratch folder in the temp dir, which a reboot's /tmp cleanup removes,
    // and process groups, which a reboot ends. It only has to survive planrun's death, and
    // two fsyncs at every start cost more than the rest of a short run's bookkeeping.
    write_quickly(
        &path,
        &serde_json::to_vec_pretty(&claims).unwrap_or_default(),
    )?;
    let ledger = Ledger {
        path: path.clone(),
        claims: Mutex::new(claims),
        groups: Mutex::new(groups),
    };
    if LEDGER.set(ledger).is_err() {
        return Err(io::Error::other("a run ledger is already installed"));
    }
    Ok(Installed { path })
}

impl Installed {
    /// Drops the temporary databases this run still claims. Call it at the end of the run,
    /// with no step running: a restore stopped by its timeout or by a signal left its
    /// temporary copy, which is this run's leftover now, not the next run's.
    pub fn drop_own_databases(&self, sources: &[(String, Source)]) -> Cleaned {
        let Some(ledger) = LEDGER.get() else {
            return Cleaned::default();
        };
        let claims = ledger
            .claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut cleaned = Cleaned {
            run_id: claims.run_id.clone(),
            ..Cleaned::default()
        };
        for database in &claims.databases {
            let failed = cleaned.failed.len();
            drop_database(database, &claims.run_id, sources, &mut cleaned);
            if cleaned.failed.len() == failed {
                release_database(&database.database);
            }
        }
        cleaned
    }

    /// The run ended and removed what it made: the ledger goes. Anything still claimed (a
    /// temporary database whose drop failed) keeps it, for the next run to finish.
    pub fn finish(self, scratch_removed: bool) {
        let Some(ledger) = LEDGER.get() else { return };
        let claims = ledger.claims.lock().unwrap_or_else(PoisonError::into_inner);
        if scratch_removed && claims.databases.is_empty() {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(groups_path(&self.path));
        }
    }
}

/// Saves the ledger, durably: what it names (databases, folders) survives a reboot.
fn save(ledger: &Ledger, claims: &Claims) {
    let bytes = serde_json::to_vec_pretty(claims).unwrap_or_default();
    if let Err(error) = write_atomically(&ledger.path, &bytes) {
        eprintln!(
            "planrun: warning: cannot update the run ledger {}: {error}",
            ledger.path.display()
        );
    }
}

/// Temp name and rename, without fsync: atomic for readers and for planrun's death, not
/// for the machine's.
fn write_quickly(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temp = path.with_extension("json.tmp");
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, path)
}

/// The run id for naming temporary things, when a ledger is installed.
pub fn run_id() -> Option<String> {
    LEDGER.get().map(|ledger| {
        ledger
            .claims
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .run_id
            .clone()
    })
}

/// `<run-id>.groups` beside the ledger `<run-id>.json`.
fn groups_path(ledger: &Path) -> PathBuf {
    ledger.with_extension("groups")
}

/// Notes a new process group (called right after the spawn). A finished group stays in the
/// file: the next run checks every group's start time before it signals anything, so a
/// finished one is skipped. Not fsynced: a reboot ends
/// every process anyway; what matters is that the line is in the kernel before planrun can
/// be killed, and one `write` is.
pub fn process_started(pgid: i32) {
    let Some(ledger) = LEDGER.get() else { return };
    let start = boot_ticks_now();
    let mut file = ledger.groups.lock().unwrap_or_else(PoisonError::into_inner);
    if let Err(error) = file.write_all(format!("{pgid} {start}\n").as_bytes()) {
        eprintln!(
            "planrun: warning: cannot note process group {pgid} in {}: {error}",
            groups_path(&ledger.path).display()
        );
    }
}

/// The groups a run noted; malformed lines (a write cut short) are skipped.
fn read_groups(ledger: &Path) -> Vec<GroupClaim> {
    let text = std::fs::read_to_string(groups_path(ledger)).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (pgid, start) = line.split_once(' ')?;
            Some(GroupClaim {
                pgid: pgid.parse().ok()?,
                started_by: start.parse().ok()?,
            })
        })
        .collect()
}

/// Claims a temporary database before it is created.
pub fn claim_database(source: &PostgresSource, database: &str) {
    let Some(ledger) = LEDGER.get() else { return };
    let mut claims = ledger.claims.lock().unwrap_or_else(PoisonError::into_inner);
    claims.databases.push(DatabaseClaim {
        database: database.to_owned(),
        host: source.host.clone(),
        port: source.port,
        user: source.user.clone(),
        bin_dir: source.bin_dir.clone(),
    });
    save(ledger, &claims);
}

/// The temporary database is gone (dropped, or renamed to the real name).
pub fn release_database(database: &str) {
    let Some(ledger) = LEDGER.get() else { return };
    let mut claims = ledger.claims.lock().unwrap_or_else(PoisonError::into_inner);
    claims.databases.retain(|claim| claim.database != database);
    save(ledger, &claims);
}

/// The name for a temporary database replacing `database`: it carries the run id, so the
/// next run can prove whose it is. PostgreSQL names are at most 63 bytes; the first 20
/// characters of the real name keep it readable.
pub fn temporary_database(database: &str) -> String {
    let run =
        run_id().unwrap_or_else(|| crate::storage::SetId::new(chrono::Utc::now()).to_string());
    let prefix: String = database.chars().take(20).collect();
    format!("{prefix}_planrun_{}", run.to_lowercase().replace('-', "_"))
}

/// Claims the restore staging files and folders about to be made in `parent`, and returns
/// the marker their names must contain (`planrun-restore-<run id>-`).
pub fn claim_staging(parent: &Path) -> String {
    let run =
        run_id().unwrap_or_else(|| crate::storage::SetId::new(chrono::Utc::now()).to_string());
    let marker = format!("planrun-restore-{run}-");
    if let Some(ledger) = LEDGER.get() {
        let parent = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
        let mut claims = ledger.claims.lock().unwrap_or_else(PoisonError::into_inner);
        let claim = StagingClaim {
            parent,
            marker: marker.clone(),
        };
        if !claims.staging.contains(&claim) {
            claims.staging.push(claim);
            save(ledger, &claims);
        }
    }
    marker
}

/// Cleans up after dead runs of `plan` and reports it on stderr (a command's edge): what
/// was removed, and what could not be, which the next run tries again.
pub fn clean_and_report(
    state: &StateDir,
    plan: &str,
    sources: &[(String, Source)],
    grace: Duration,
) {
    for cleaned in clean_dead_runs(state, plan, sources, grace) {
        let done = if cleaned.done.is_empty() {
            "nothing was left".to_owned()
        } else {
            cleaned.done.join(", ")
        };
        eprintln!(
            "planrun: cleaned up after run {}, which was killed: {done}",
            cleaned.run_id
        );
        for failed in &cleaned.failed {
            eprintln!("planrun: warning: run {}: {failed}", cleaned.run_id);
        }
    }
}

/// What cleaning up after one dead run did.
#[derive(Debug, Default)]
pub struct Cleaned {
    pub run_id: String,
    /// What was removed or stopped, in words.
    pub done: Vec<String>,
    /// What could not be removed; the ledger stays for the next run.
    pub failed: Vec<String>,
}

/// Removes what dead runs of `plan` left behind. Call it holding the plan's lock (so no
/// `execute` of the plan is alive) and before any step starts. `sources` are the plan's, for
/// the connection to drop a temporary database; `grace` is the time between SIGTERM and
/// SIGKILL for a group that is still running. Runs that may be alive are never touched.
pub fn clean_dead_runs(
    state: &StateDir,
    plan: &str,
    sources: &[(String, Source)],
    grace: Duration,
) -> Vec<Cleaned> {
    let Ok(entries) = std::fs::read_dir(state.root().join("leftovers")) else {
        return Vec::new();
    };
    let own = run_id();
    let mut cleaned = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Some(claims) = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Claims>(&bytes).ok())
        else {
            continue;
        };
        if claims.plan != plan || Some(&claims.run_id) == own.as_ref() || !provably_dead(&claims) {
            continue;
        }
        let groups = read_groups(&path);
        let result = clean(&claims, &groups, sources, grace);
        if result.failed.is_empty() {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_file(groups_path(&path));
        }
        mark_abandoned(state, &claims.run_id);
        cleaned.push(result);
    }
    cleaned.sort_by(|a, b| a.run_id.cmp(&b.run_id));
    cleaned
}

/// A run is dead when it ran on this host and its process is gone: no process with its pid,
/// one with another start time (the pid was reused), or a different boot. A run on another
/// host (a shared state directory) cannot be checked here and is left alone.
fn provably_dead(claims: &Claims) -> bool {
    if claims.host != hostname() {
        return false;
    }
    if claims.boot_id != boot_id() {
        return true;
    }
    match i32::try_from(claims.pid).ok().and_then(process_start) {
        Some(start) => start != claims.pid_start,
        None => true,
    }
}

fn clean(
    claims: &Claims,
    groups: &[GroupClaim],
    sources: &[(String, Source)],
    grace: Duration,
) -> Cleaned {
    let mut cleaned = Cleaned {
        run_id: claims.run_id.clone(),
        ..Cleaned::default()
    };
    // Processes first: they may still be writing into the folders below.
    if claims.boot_id == boot_id() {
        for group in groups {
            if stop_group(group, claims.pid_start, grace) {
                cleaned
                    .done
                    .push(format!("stopped process group {}", group.pgid));
            }
        }
    }
    if let Some(scratch) = &claims.scratch {
        remove_owned(scratch, &claims.run_id, &mut cleaned);
    }
    for staging in &claims.staging {
        let Ok(entries) = std::fs::read_dir(&staging.parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(&staging.marker) {
                remove_owned(&entry.path(), &claims.run_id, &mut cleaned);
            }
        }
    }
    for database in &claims.databases {
        drop_database(database, &claims.run_id, sources, &mut cleaned);
    }
    cleaned
}

/// Removes a file or folder whose name carries the run id; anything else is not the run's.
fn remove_owned(path: &Path, run_id: &str, cleaned: &mut Cleaned) {
    let named = path
        .file_name()
        .is_some_and(|name| name.to_string_lossy().contains(run_id));
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !named {
        cleaned.failed.push(format!(
            "{} does not carry the run id; left alone",
            path.display()
        ));
        return;
    }
    let removed = if metadata.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match removed {
        Ok(()) => cleaned.done.push(format!("removed {}", path.display())),
        Err(error) => cleaned
            .failed
            .push(format!("cannot remove {}: {error}", path.display())),
    }
}

fn drop_database(
    claim: &DatabaseClaim,
    run_id: &str,
    sources: &[(String, Source)],
    cleaned: &mut Cleaned,
) {
    let run_part = run_id.to_lowercase().replace('-', "_");
    // A restore's temporary database ends with the run id; a drill's scratch database
    // carries it as the plan templated it (`planrun_drill_{{run.id}}`).
    if !claim.database.ends_with(&format!("_planrun_{run_part}"))
        && !claim.database.contains(run_id)
    {
        cleaned.failed.push(format!(
            "database {} does not carry the run id; left alone",
            claim.database
        ));
        return;
    }
    // The password comes from the plan's source on the same server as that user.
    let password = sources.iter().find_map(|(_, source)| match source {
        Source::Postgres(pg)
            if pg.host == claim.host && pg.port == claim.port && pg.user == claim.user =>
        {
            Some(pg.password.clone())
        }
        _ => None,
    });
    let Some(password) = password else {
        cleaned.failed.push(format!(
            "temporary database {}: no postgres source of the plan connects to its server",
            claim.database
        ));
        return;
    };
    let source = PostgresSource {
        database: "postgres".into(),
        host: claim.host.clone(),
        port: claim.port,
        user: claim.user.clone(),
        password,
        format: None,
        jobs: None,
        count_rows: Vec::new(),
        bin_dir: claim.bin_dir.clone(),
    };
    match crate::source::postgres::drop_database_if_exists(&source, &claim.database) {
        Ok(true) => cleaned
            .done
            .push(format!("dropped database {}", claim.database)),
        Ok(false) => {}
        Err(error) => cleaned.failed.push(format!(
            "cannot drop temporary database {}: {error}",
            claim.database
        )),
    }
}

/// Stops what is left of a dead run's process group: SIGTERM, `grace`, SIGKILL. Signals only
/// a group that is provably the run's: its leader started while the run was alive, after
/// planrun (`run_start`) and before the spawn returned (`started_by`). A pid is not reused
/// while its process exists, so a leader started in that window is the run's child; a reused
/// pid belongs to a process started later. With the leader gone the group is left alone:
/// its id may have been reused by a new group whose members also started after the run, and
/// killing a stranger is worse than leaving an orphan. Returns whether it signalled.
fn stop_group(group: &GroupClaim, run_start: u64, grace: Duration) -> bool {
    let members = group_members(group.pgid);
    if members.is_empty() {
        return false;
    }
    let ours = members
        .iter()
        .find(|(pid, _)| *pid == group.pgid)
        .is_some_and(|(_, start)| (run_start..=group.started_by).contains(start));
    if !ours {
        return false;
    }
    let pgid = Pid::from_raw(group.pgid);
    killpg(pgid, Signal::SIGTERM).ok();
    let kill_at = Instant::now() + grace;
    while Instant::now() < kill_at && !group_members(group.pgid).is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !group_members(group.pgid).is_empty() {
        killpg(pgid, Signal::SIGKILL).ok();
        let give_up = Instant::now() + Duration::from_secs(5);
        while Instant::now() < give_up && !group_members(group.pgid).is_empty() {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    true
}

/// The processes in group `pgid`, with their start times; zombies are left out (they are
/// dead, only not yet reaped).
fn group_members(pgid: i32) -> Vec<(i32, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = read_stat(pid)?;
            (stat.pgrp == pgid && stat.state != 'Z').then_some((pid, stat.start))
        })
        .collect()
}

struct Stat {
    state: char,
    pgrp: i32,
    start: u64,
}

/// Fields of `/proc/PID/stat`, read after the command name (which may hold spaces and
/// parentheses, so it ends at the last `)`).
fn read_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, pgrp field 5, starttime field 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// When process `pid` started (clock ticks after boot), if it exists.
pub fn process_start(pid: i32) -> Option<u64> {
    read_stat(pid).map(|stat| stat.start)
}

/// The boot clock (which, unlike the monotonic clock, counts suspended time, as the kernel's
/// process start times do) in clock ticks. Linux reports start times in USER_HZ, 100 on
/// every architecture planrun builds for.
fn boot_ticks_now() -> u64 {
    const USER_HZ: u64 = 100;
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME) {
        Ok(now) => {
            // Rounded up: the leader's start time, rounded down by the kernel, is never later.
            let nanos = now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64;
            nanos.div_ceil(1_000_000_000 / USER_HZ)
        }
        Err(_) => u64::MAX,
    }
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Marks a dead run's record `abandoned`, so that `history` and `jq` see what happened.
fn mark_abandoned(state: &StateDir, run_id: &str) {
    let path = state.run_record(run_id);
    if let Ok(mut record) = RunRecord::load(&path)
        && record.status == RunStatus::Running
    {
        record.status = RunStatus::Abandoned;
        let _ = record.save(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_whose_leader_is_gone_is_left_alone() {
        // A new group under a reused id looks just like a dead run's orphans: its members
        // started after the run did. It must not be killed.
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let status = std::process::Command::new("setsid")
            .args(["bash", "-c"])
            .arg(format!("sleep 30 & echo $$ > '{}'", pid_file.display()))
            .status()
            .unwrap();
        assert!(status.success());
        let pgid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let claim = GroupClaim {
            pgid,
            started_by: boot_ticks_now(),
        };
        assert!(!group_members(pgid).is_empty(), "the orphan sleep is alive");
        assert!(!stop_group(&claim, 0, Duration::from_millis(10)));
        assert!(!group_members(pgid).is_empty(), "a stranger was killed");
        killpg(Pid::from_raw(pgid), Signal::SIGKILL).ok();
    }

    #[test]
    fn reads_its_own_start_time_and_group() {
        let me = std::process::id() as i32;
        let stat = read_stat(me).unwrap();
        assert_ne!(stat.state, 'Z');
        assert!(stat.start > 0);
        let pgrp = nix::unistd::getpgrp().as_raw();
        assert!(group_members(pgrp).iter().any(|(pid, _)| *pid == me));
    }

    #[test]
    fn the_boot_clock_matches_process_start_times() {
        let before = boot_ticks_now();
        let child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let after = boot_ticks_now();
        let mut child = child;
        let start = process_start(child.id() as i32).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            before <= start + 1 && start <= after,
            "{before} {start} {after}"
        );
    }

    #[test]
    fn a_reused_pid_is_not_the_run() {
        let mut claims = Claims {
            host: hostname(),
            boot_id: boot_id(),
            pid: std::process::id(),
            pid_start: process_start(std::process::id() as i32).unwrap(),
            ..Claims::default()
        };
        assert!(!provably_dead(&claims));
        claims.pid_start += 1;
        assert!(provably_dead(&claims));
        claims.pid_start -= 1;
        claims.boot_id = "another-boot".into();
        assert!(provably_dead(&claims));
        claims.boot_id = boot_id();
        claims.host = "another-host".into();
        assert!(!provably_dead(&claims));
    }
}
