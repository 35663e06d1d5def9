//! planrun: declarative backup and disaster-recovery plans.
//!
//! The library is the binary's body, not an API: every module is `pub(crate)`, so the
//! compiler reports code nothing uses, and tests, examples and benchmarks drive the `planrun`
//! binary. The one public item is [`main`], which src/main.rs calls.

pub(crate) mod advice;
pub(crate) mod analyzer;
pub(crate) mod backoff;
pub(crate) mod cancel;
pub(crate) mod cli;
pub(crate) mod command;
pub(crate) mod diagnostic;
pub(crate) mod drill;
pub(crate) mod duration;
pub(crate) mod engine;
pub(crate) mod event;
pub(crate) mod exec_plan;
pub(crate) mod exit_code;
pub(crate) mod graph;
pub(crate) mod host;
pub(crate) mod leftovers;
pub(crate) mod loader;
pub(crate) mod lock;
pub(crate) mod meter;
pub(crate) mod metrics;
pub(crate) mod monitor;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub(crate) mod plan_discovery;
pub(crate) mod plan_view;
pub(crate) mod process;
pub(crate) mod recover;
pub(crate) mod recovery_health;
pub(crate) mod redact;
pub(crate) mod reporter;
pub(crate) mod retention;
pub(crate) mod run_log;
pub(crate) mod run_outcome;
pub(crate) mod run_record;
pub(crate) mod runbook;
pub(crate) mod s3;
pub(crate) mod schedule;
pub(crate) mod schema;
pub(crate) mod secret;
pub(crate) mod shell_script;
pub(crate) mod source;
pub(crate) mod state_dir;
pub(crate) mod step_kind;
pub(crate) mod storage;
pub(crate) mod template;
pub(crate) mod trusted_file;
pub(crate) mod yaml;

/// Parses the command line, runs the command and returns the process exit code.
pub use command::main;
