//! Measurements for bench/backup.sh that need the artifact writer itself: the same bytes
//! written with and without sha256. They are `#[ignore]` tests so that nothing outside the
//! crate needs the writer public; the script runs them from a release build with
//! `PLANRUN_BENCH_INPUT` (a directory or a file) and `PLANRUN_BENCH_DIR` (where to write),
//! and reads the one `MODE seconds S bytes N` line each prints.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::plan::DirectorySource;
use crate::source::Stop;
use crate::source::directory::write_archive;
use crate::storage::ArtifactWriter;

/// The input and output folders the script passes; `None` when run without them.
fn bench_paths() -> Option<(PathBuf, PathBuf)> {
    let input = std::env::var_os("PLANRUN_BENCH_INPUT")?;
    let dir = std::env::var_os("PLANRUN_BENCH_DIR")?;
    Some((input.into(), dir.into()))
}

fn writer(dir: &Path, name: &str, hash: bool) -> ArtifactWriter {
    if hash {
        ArtifactWriter::create(dir, name)
    } else {
        ArtifactWriter::create_unhashed(dir, name)
    }
    .expect("create")
}

/// The directory source's own producer (walk, tar, zstd) into a hashed or unhashed writer:
/// the difference is what hashing adds to an artifact's write.
fn archive(mode: &str, hash: bool) {
    let Some((source, dir)) = bench_paths() else {
        return;
    };
    let name = format!("bench-{}.tar.zst", std::process::id());
    let source = DirectorySource {
        path: source.display().to_string(),
        exclude: vec![],
        on_unreadable: None,
        level: None,
    };
    let start = Instant::now();
    let (digest, _) =
        write_archive(&source, writer(&dir, &name, hash), &name, &Stop::new()).expect("archive");
    println!(
        "{mode} seconds {:.4} bytes {}",
        start.elapsed().as_secs_f64(),
        digest.size
    );
    std::fs::remove_file(dir.join(name)).expect("remove");
}

/// A raw write of a file's bytes from memory, where hashing is the only work.
fn raw(mode: &str, hash: bool) {
    let Some((input, dir)) = bench_paths() else {
        return;
    };
    let data = std::fs::read(input).expect("read input");
    let name = format!("copy-{}", std::process::id());
    let start = Instant::now();
    let mut writer = writer(&dir, &name, hash);
    for chunk in data.chunks(1 << 20) {
        writer.write_all(chunk).expect("write");
    }
    writer.finish().expect("finish");
    println!(
        "{mode} seconds {:.4} bytes {}",
        start.elapsed().as_secs_f64(),
        data.len()
    );
    std::fs::remove_file(dir.join(name)).expect("remove");
}

#[test]
#[ignore = "a benchmark: bench/backup.sh runs it"]
fn bench_archive_hash() {
    archive("archive-hash", true);
}

#[test]
#[ignore = "a benchmark: bench/backup.sh runs it"]
fn bench_archive_nohash() {
    archive("archive-nohash", false);
}

#[test]
#[ignore = "a benchmark: bench/backup.sh runs it"]
fn bench_hash() {
    raw("hash", true);
}

#[test]
#[ignore = "a benchmark: bench/backup.sh runs it"]
fn bench_nohash() {
    raw("nohash", false);
}
