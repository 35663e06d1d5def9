//! planrun: declarative backup and disaster-recovery plans.

pub mod diagnostic;
pub mod duration;
pub mod exit_code;
pub mod plan;
pub mod yaml;
pub mod exec_plan;
pub mod cli;
pub mod command;
pub mod schema;
pub mod backoff;
pub mod cancel;

pub mod process;
pub mod redact;
pub mod engine;
pub mod event;
pub mod lock;
pub mod run_record;
pub mod state_dir;
pub mod step_kind;
pub mod reporter;
pub mod run_log;
