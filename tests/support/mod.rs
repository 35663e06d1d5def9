//! The one harness for the integration tests. `test.rs` holds the builder that runs the real
//! binary in a temp dir (`Test`, `Env`); `run.rs` reads what a run left behind; `s3.rs` and
//! `postgres.rs` start the real servers the tests talk to. No test calls planrun's library:
//! they build sets by running `planrun execute` (or forge them with [`write_set`]).

#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses a different part of the helpers"
)]

pub mod postgres;
pub mod run;
/// The S3 server lives beside the S3 client, whose unit tests use it too.
#[path = "../../src/s3/test_server.rs"]
pub mod s3;
pub mod test;

pub use test::{Env, Ran, Test};

use std::path::Path;

/// Files in a folder (not recursive), sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes a set as a format-1 planrun wrote it before partial sets existed: each artifact
/// `(name, source, bytes)`, then `manifest.json`. Returns the set folder.
pub fn write_set(
    storage: &Path,
    plan: &str,
    id: &str,
    artifacts: &[(&str, &str, &[u8])],
) -> std::path::PathBuf {
    use sha2::Digest;
    let dir = storage.join(plan).join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let mut entries = Vec::new();
    for (name, source, bytes) in artifacts {
        std::fs::write(dir.join(name), bytes).unwrap();
        let sha256: String = sha2::Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        entries.push(serde_json::json!({
            "name": name, "source": source, "kind": "tar_zstd",
            "size": bytes.len(), "sha256": sha256, "facts": {}
        }));
    }
    let manifest = serde_json::json!({
        "format": 1, "planrun_version": "0.1.0", "set_id": id,
        "plan": { "name": plan, "digest": "00" }, "host": "test",
        "started_at": "2025-02-14T02:00:00Z", "finished_at": "2025-02-14T02:01:00Z",
        "artifacts": entries,
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dir
}
