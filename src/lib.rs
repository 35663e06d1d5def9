//! planrun: declarative backup and disaster-recovery plans.

pub mod backup_set;
pub mod cli;
pub mod command;
pub mod diagnostic;
pub mod duration;
pub mod exec_plan;
pub mod exit_code;
pub mod plan;
pub mod schema;
pub mod source;
pub mod yaml;
