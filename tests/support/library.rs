//! The harness parts that still call planrun's library directly: writing sets with
//! `SetWriter`, plan types for sources and storages, and an S3 client with test tuning.
//!
//! Only the test files that have not yet been moved onto the binary declare this module
//! (`#[path = "support/library.rs"] mod library;`), so `grep -l 'mod library' tests/` lists
//! exactly what must change before the library's modules can become `pub(crate)`.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the helpers"
)]

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use planrun::plan::{PostgresSource, S3Storage, Source};
use planrun::s3::{S3Bucket, S3Settings, Tuning};
use planrun::source::{SourceBackup, SourceError, Stop};
use planrun::storage::{LocalStore, Manifest, SetId, SetWriter};

use crate::support::postgres::{BIN_DIR, PgServer};
use crate::support::s3::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};

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

/// Small parts so multipart paths run on test-sized data; short retries so a dead server fails fast.
pub fn tuning() -> Tuning {
    Tuning {
        part_size: 5 * 1024 * 1024,
        parallel_parts: 3,
        max_retries: 2,
        retry_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(10),
        stall_timeout: Duration::from_secs(20),
    }
}

/// The library's view of the test S3 server: a plan's storage section and a bucket client.
pub trait S3Client {
    /// The storage section a plan would carry for this server.
    fn storage(&self, prefix: &str) -> S3Storage;
    /// A bucket client for `prefix` on this server, with the test [`tuning`].
    fn bucket(&self, prefix: &str) -> S3Bucket;
}

impl S3Client for S3Server {
    fn storage(&self, prefix: &str) -> S3Storage {
        S3Storage {
            bucket: BUCKET.into(),
            prefix: Some(prefix.into()),
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint()),
            path_style: true,
            access_key_id: Some(ACCESS_KEY.into()),
            secret_access_key: Some(SECRET_KEY.into()),
            session_token: None,
            ca_file: None,
            allow_http: true,
            stall_timeout: None,
            retention: None,
        }
    }

    fn bucket(&self, prefix: &str) -> S3Bucket {
        let settings = S3Settings::resolve(&self.storage(prefix), |_| None).unwrap();
        S3Bucket::connect(&settings, tuning()).unwrap()
    }
}

/// The library's view of the test PostgreSQL server: source sections for its databases.
pub trait PgSources {
    /// A source reaching `database` over the unix socket (trusted, no password).
    fn source(&self, database: &str) -> PostgresSource;
    /// A source reaching `database` over TCP, where the password is checked.
    fn tcp_source(&self, database: &str, password: &str) -> PostgresSource;
}

impl PgSources for PgServer {
    fn source(&self, database: &str) -> PostgresSource {
        PostgresSource {
            database: database.to_owned(),
            host: Some(self.socket_dir().display().to_string()),
            port: Some(self.port),
            user: Some("postgres".into()),
            password: None,
            format: None,
            jobs: None,
            count_rows: Vec::new(),
            bin_dir: Some(BIN_DIR.into()),
        }
    }

    fn tcp_source(&self, database: &str, password: &str) -> PostgresSource {
        PostgresSource {
            host: Some("127.0.0.1".into()),
            password: Some(password.to_owned()),
            ..self.source(database)
        }
    }
}
