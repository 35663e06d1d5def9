//! `PlanLock`: one run per plan at a time, through `flock` on `<state>/locks/<plan>.lock`.
//! The kernel drops the lock when the holder exits, even on `kill -9`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Who holds a plan's lock: written into the lock file by the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} since {} (run {})",
            self.pid,
            self.host,
            self.started_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.run_id
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("plan `{plan}` is already running: {holder}")]
    Held { plan: String, holder: Holder },
    #[error("plan `{plan}` is already running (the holder has not written its name into {} yet)", path.display())]
    HeldByUnknown { plan: String, path: PathBuf },
    #[error("cannot lock {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// A held plan lock; dropping it releases the lock.
#[derive(Debug)]
pub struct PlanLock {
    _file: File,
}

impl PlanLock {
    /// Takes the lock without waiting, or says who holds it.
    pub fn acquire(path: &Path, plan: &str, holder: &Holder) -> Result<PlanLock, LockError> {
        let io_error = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(match read_holder(&mut file) {
                    Some(holder) => LockError::Held {
                        plan: plan.to_owned(),
                        holder,
                    },
                    None => LockError::HeldByUnknown {
                        plan: plan.to_owned(),
                        path: path.to_path_buf(),
                    },
                });
            }
            Err(TryLockError::Error(source)) => return Err(io_error(source)),
        }
        let text = serde_json::to_string(holder).unwrap_or_default();
        file.set_len(0).map_err(io_error)?;
        file.rewind().map_err(io_error)?;
        file.write_all(format!("{text}\n").as_bytes())
            .map_err(io_error)?;
        file.sync_data().map_err(io_error)?;
        Ok(PlanLock { _file: file })
    }
}

/// The holder last written into a lock file, whether or not the lock is still held. Readers
/// such as `history` use it without locking, so they can never make a real run exit 4.
pub fn last_holder(path: &Path) -> Option<Holder> {
    let mut file = File::open(path).ok()?;
    read_holder(&mut file)
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquirer_is_told_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.lock");
        let holder = Holder {
            pid: 42,
            host: "db1".into(),
            run_id: "r1".into(),
            started_at: DateTime::parse_from_rfc3339("2026-11-26T02:00:00Z")
                .unwrap()
                .into(),
        };
        let lock = PlanLock::acquire(&path, "p", &holder).unwrap();
        let error = PlanLock::acquire(&path, "p", &holder).unwrap_err();
        assert_eq!(
            error.to_string(),
            "plan `p` is already running: pid 42 on db1 since 2026-11-26T02:00:00Z (run r1)"
        );
        drop(lock);
        // Another test in this process may fork while the lock file is open; until that
        // child execs (the descriptor is close-on-exec) it shares the lock for a moment.
        let again = (0..100).find_map(|_| {
            PlanLock::acquire(&path, "p", &holder).ok().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                None
            })
        });
        assert!(again.is_some(), "the lock was not released");
        assert_eq!(last_holder(&path), Some(holder));
    }
}
