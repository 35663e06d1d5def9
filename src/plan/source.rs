//! Sources: what a `backup` step reads. Exactly one kind key per source.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A source to back up.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A PostgreSQL database, dumped with `pg_dump`.
    Postgres(PostgresSource),
    /// A SQLite database file, copied online with SQLite's backup API.
    Sqlite(SqliteSource),
    /// A directory tree, archived as tar + zstd.
    Directory(DirectorySource),
    /// Individual files (such as `.env` and `settings.py`), kept with their modes.
    Files(Vec<String>),
    /// A Git repository, as a bundle of its full history.
    Git(GitSource),
}

impl Source {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Source::Postgres(_) => "postgres",
            Source::Sqlite(_) => "sqlite",
            Source::Directory(_) => "directory",
            Source::Files(_) => "files",
            Source::Git(_) => "git",
        }
    }
}

/// Connection and dump options for a PostgreSQL source.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    /// The database to dump.
    pub database: String,
    /// Host name or unix socket directory (default: libpq's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port (default 5432).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// User name (default: libpq's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The password, normally `{{secrets.NAME}}`. Passed to pg_dump in a 0600 passfile,
    /// never on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Dump format (default `custom`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<PgFormat>,
    /// Parallel jobs for the `directory` format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub jobs: Option<u32>,
    /// Tables whose row counts are recorded at backup time and checked by drills.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub count_rows: Vec<String>,
    /// Directory holding pg_dump, pg_restore and psql (default: found on PATH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_dir: Option<String>,
}

/// How pg_dump writes the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PgFormat {
    /// `pg_dump -Fc`: one compressed file, restored with pg_restore.
    #[default]
    Custom,
    /// `pg_dump -Fd -j N`: parallel dump, stored as a tar + zstd archive.
    Directory,
    /// Plain SQL compressed with zstd.
    Plain,
}

/// A SQLite database file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqliteSource {
    /// Path of the database file.
    pub path: String,
    /// Tables whose row counts are recorded (default: every table).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_rows: Option<Vec<String>>,
}

/// A directory tree.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DirectorySource {
    /// The directory to archive.
    pub path: String,
    /// Glob patterns, relative to `path`, of entries to leave out (e.g. `cache/**`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// What an unreadable file does (default `fail`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_unreadable: Option<OnUnreadable>,
    /// zstd level, 1–19 (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 19))]
    pub level: Option<i32>,
}

/// What an unreadable file in a directory source does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreadable {
    /// The backup step fails.
    #[default]
    Fail,
    /// The file is skipped and named; the run exits 3 (partial).
    Warn,
}

/// A Git repository.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitSource {
    /// Path of the repository (a work tree or a bare repository).
    pub repo: String,
}
