//! `Stop`: tells a running backup to give up (a step timeout, SIGINT/SIGTERM).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// A shared "stop now" flag. Backups run on blocking threads, so the executor sets this when
/// its cancel token fires or the step times out; sources check it between files and chunks,
/// and a watchdog kills the process group of any tool they run.
#[derive(Clone, Debug, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}
