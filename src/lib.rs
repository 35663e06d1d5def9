//! planrun: declarative backup and disaster-recovery plans.

pub mod advice;
pub mod analyzer;
pub mod cli;
pub mod command;
pub mod copy;
pub mod diagnostic;
pub mod duration;
pub mod exec_plan;
pub mod exit_code;
pub mod graph;
pub mod loader;
pub mod pipeline;
pub mod plan;
pub mod plan_view;
pub mod prune;
pub mod retention;
pub mod s3;
pub mod s3_store;
pub mod schema;
pub mod shell_script;
pub mod template;
pub mod yaml;
