//! `meter`: how many bytes this process has written, uploaded, downloaded or re-read so far,
//! for the live progress line at a terminal. The storage layer counts as it hashes; the
//! reporter reads. One relaxed atomic: counting costs nothing beside the hashing.

use std::sync::atomic::{AtomicU64, Ordering};

static BYTES: AtomicU64 = AtomicU64::new(0);

/// Counts `bytes` moved (written to a set, sent, fetched or re-hashed).
pub fn add(bytes: u64) {
    BYTES.fetch_add(bytes, Ordering::Relaxed);
}

/// Every byte counted since the process started.
pub fn total() -> u64 {
    BYTES.load(Ordering::Relaxed)
}
