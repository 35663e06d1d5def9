//! Shared helpers for the integration tests.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

pub mod postgres;
pub mod run;

use std::path::Path;

use chrono::{DateTime, Utc};
use planrun::backup_set::{LocalStore, Manifest, SetId, SetWriter};
use planrun::plan::Source;
use planrun::source::{SourceBackup, SourceError, Stop};

/// Begins a set of `plan` in the local storage at `storage`, as a run started at `started`.
pub fn begin_set(storage: &Path, plan: &str, started: DateTime<Utc>) -> SetWriter {
    SetWriter::begin(
        "local",
        LocalStore::new(storage),
        plan,
        "digest",
        SetId::new(started),
        started,
    )
    .expect("begin set")
}

/// Backs up one source into a fresh set of `storage` and finalizes it when the backup worked.
pub fn back_up(
    storage: &Path,
    plan: &str,
    name: &str,
    source: &Source,
    scratch: &Path,
) -> (SetWriter, Result<(SourceBackup, Manifest), SourceError>) {
    let writer = begin_set(storage, plan, Utc::now());
    let result = writer
        .back_up(name, source, scratch, &Stop::new())
        .and_then(|backup| Ok((backup, writer.finalize(Utc::now())?)));
    (writer, result)
}

/// Files in a folder (not recursive), sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
