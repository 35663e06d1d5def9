//! `Stop`: tells a running backup to give up (a step timeout, SIGINT/SIGTERM).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A shared "stop now" flag. Backups run on blocking threads, so the executor sets this when
/// its cancel token fires or the step times out; sources check it between files and chunks,
/// and a watchdog stops the process group of any tool they run: SIGTERM, the grace, SIGKILL.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    flag: Arc<AtomicBool>,
    grace: Duration,
}

impl Stop {
    /// A stop that kills tools at once (no grace period).
    pub fn new() -> Stop {
        Stop::default()
    }

    /// A stop that gives tools `grace` between SIGTERM and SIGKILL (the plan's `kill_grace`),
    /// so pg_dump can close its connection the way a step's own process can.
    pub fn with_grace(grace: Duration) -> Stop {
        Stop {
            flag: Arc::default(),
            grace,
        }
    }

    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }
}
