//! The process exit codes planrun documents; scripts and cron wrappers depend on them.

/// Everything succeeded (warnings allowed).
pub const SUCCESS: i32 = 0;
/// A step failed (or verify found damage).
pub const FAILURE: i32 = 1;
/// The plan is invalid, or the command line is wrong.
pub const INVALID: i32 = 2;
/// The run finished, but a step with `on_failure: warn` failed.
pub const PARTIAL: i32 = 3;
/// Another run of the same plan holds the lock.
pub const LOCKED: i32 = 4;
/// Interrupted by SIGINT.
pub const INTERRUPTED: i32 = 130;
/// Stopped by SIGTERM.
pub const TERMINATED: i32 = 143;
