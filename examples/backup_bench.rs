//! Benchmark driver for bench/backup.sh: a directory backup into a set, and an artifact write
//! with and without hashing. Prints one line of numbers per run; the script takes medians.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use chrono::Utc;
use planrun::plan::{DirectorySource, PostgresSource, Source};
use planrun::source::Stop;
use planrun::source::directory::write_archive;
use planrun::storage::{ArtifactWriter, LocalStore, SetId, SetWriter};

fn directory(path: &str) -> DirectorySource {
    DirectorySource {
        path: path.into(),
        exclude: vec![],
        on_unreadable: None,
        level: None,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["dir", source, store] => {
            let now = Utc::now();
            let start = Instant::now();
            let writer = SetWriter::begin(
                "local",
                LocalStore::new(store),
                "bench",
                "-",
                SetId::new(now),
                now,
            )
            .expect("begin set");
            let source = Source::Directory(directory(source));
            let backup = writer
                .back_up("media", &source, Path::new(store), &Stop::new())
                .expect("backup");
            writer.finalize(Utc::now()).expect("finalize");
            let artifact = &backup.artifacts[0];
            println!(
                "dir seconds {:.3} input_bytes {} artifact_bytes {}",
                start.elapsed().as_secs_f64(),
                artifact.facts["bytes"],
                artifact.size
            );
        }
        ["pg", database, store] => {
            // A PostgreSQL backup through pg_dump (connection from the PG* environment): the
            // throughput of a tool's stdout streamed into a zstd artifact.
            let now = Utc::now();
            let start = Instant::now();
            let writer = SetWriter::begin(
                "local",
                LocalStore::new(store),
                "bench",
                "-",
                SetId::new(now),
                now,
            )
            .expect("begin set");
            let source = Source::Postgres(PostgresSource {
                database: database.to_string(),
                host: None,
                port: None,
                user: None,
                password: None,
                format: None,
                jobs: None,
                count_rows: vec![],
                bin_dir: std::env::var("PG_BIN_DIR").ok(),
            });
            let backup = writer
                .back_up("db", &source, Path::new(store), &Stop::new())
                .expect("backup");
            writer.finalize(Utc::now()).expect("finalize");
            println!(
                "pg seconds {:.3} artifact_bytes {}",
                start.elapsed().as_secs_f64(),
                backup.artifacts[0].size
            );
        }
        [mode @ ("archive-hash" | "archive-nohash"), source, dir] => {
            // The directory source's own producer (walk, tar, zstd) into a hashed or an
            // unhashed writer: the difference is what hashing adds to the artifact's write.
            let name = format!("bench-{}.tar.zst", std::process::id());
            let start = Instant::now();
            let writer = if *mode == "archive-nohash" {
                ArtifactWriter::create_unhashed(Path::new(dir), &name)
            } else {
                ArtifactWriter::create(Path::new(dir), &name)
            }
            .expect("create");
            let (digest, _) =
                write_archive(&directory(source), writer, &name, &Stop::new()).expect("archive");
            println!(
                "{mode} seconds {:.4} bytes {}",
                start.elapsed().as_secs_f64(),
                digest.size
            );
            std::fs::remove_file(Path::new(dir).join(name)).expect("remove");
        }
        [mode @ ("hash" | "nohash"), input, dir] => {
            let data = std::fs::read(input).expect("read input");
            let name = format!("copy-{}", std::process::id());
            let start = Instant::now();
            let mut writer = if *mode == "nohash" {
                ArtifactWriter::create_unhashed(Path::new(dir), &name)
            } else {
                ArtifactWriter::create(Path::new(dir), &name)
            }
            .expect("create");
            for chunk in data.chunks(1 << 20) {
                writer.write_all(chunk).expect("write");
            }
            writer.finish().expect("finish");
            println!(
                "{mode} seconds {:.4} bytes {}",
                start.elapsed().as_secs_f64(),
                data.len()
            );
            std::fs::remove_file(Path::new(dir).join(name)).expect("remove");
        }
        _ => {
            eprintln!(
                "usage: backup_bench dir SOURCE STORE | pg DATABASE STORE | archive-hash|archive-nohash SOURCE DIR | hash|nohash FILE DIR"
            );
            std::process::exit(2);
        }
    }
}
