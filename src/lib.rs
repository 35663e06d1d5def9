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
pub mod retention;
pub mod s3;
pub mod s3_store;
pub mod copy;
