//! `Stop`: tells a running backup to give up (a step timeout, SIGINT/SIGTERM).

use std::time::Duration;

use crate::cancel::{Cancel, CancelReason};

/// A shared "stop now" token. Backups run on blocking threads, so the executor stops it when
/// its cancel token fires or the step times out; sources check it between files and chunks,
/// and the process supervisor stops the group of any tool they run: SIGTERM, the grace,
/// SIGKILL.
#[derive(Clone, Debug, Default)]
pub struct Stop {
    cancel: Cancel,
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
            cancel: Cancel::new(),
            grace,
        }
    }

    pub fn stop(&self) {
        // The reason is not shown anywhere: a stopped backup reports why its step stopped.
        self.cancel.cancel(CancelReason::Terminate);
    }

    pub fn is_stopped(&self) -> bool {
        self.cancel.is_cancelled()
    }

    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// The token the process supervisor waits on.
    pub(crate) fn cancel(&self) -> &Cancel {
        &self.cancel
    }
}
