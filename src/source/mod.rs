//! Built-in sources: each backs up into artifacts with facts, and restores from them.
//!
//! The functions here take rendered source configs (templates already expanded), write through
//! [`crate::storage::ArtifactWriter`] and report through return values; nothing prints.

mod child;
pub mod directory;
mod error;
pub mod files;
pub mod git;
pub mod postgres;
mod safe_extract;
pub mod sqlite;
mod stop;
mod tree_archive;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use error::SourceError;
pub use stop::Stop;
pub use tree_archive::TreeFacts;

use crate::plan::Source;
use crate::storage::{ArtifactDigest, ArtifactEntry, ArtifactKind, ArtifactWriter, Facts};

/// What backing up one source produced.
#[derive(Clone, Debug, Default)]
pub struct SourceBackup {
    pub artifacts: Vec<ArtifactEntry>,
    /// Problems that did not fail the step; the run reports them and exits 3.
    pub warnings: Vec<String>,
}

/// Backs up `source` into the set folder `set_dir`. `scratch` holds temporary copies (the
/// SQLite snapshot, pg_dump's directory output, the passfile).
pub fn back_up(
    name: &str,
    source: &Source,
    set_dir: &Path,
    scratch: &Path,
    stop: &Stop,
) -> Result<SourceBackup, SourceError> {
    match source {
        Source::Postgres(pg) => postgres::back_up(name, pg, set_dir, scratch, stop),
        Source::Sqlite(db) => sqlite::back_up(name, db, set_dir, scratch, stop),
        Source::Directory(dir) => directory::back_up(name, dir, set_dir, stop),
        Source::Files(files) => files::back_up(name, files, set_dir, stop),
        Source::Git(git) => git::back_up(name, git, set_dir, stop),
    }
}

/// Where a restore writes.
#[derive(Clone, Debug, Default)]
pub struct RestoreTarget {
    /// For postgres: the database (default: the source's).
    pub database: Option<String>,
    /// For the other sources: the path (default: the source's own path; for files, each
    /// file's own original path).
    pub path: Option<PathBuf>,
    /// Replace a target that exists and holds data.
    pub force: bool,
    /// Keep what is replaced instead of removing it, under its name plus this suffix
    /// (`_before_<incident>`): a database rename, or a sibling folder. `recover` sets it.
    pub keep_previous: Option<String>,
}

/// What a restore did, in words and facts that checks can compare with the backup's.
#[derive(Clone, Debug, Default)]
pub struct RestoreOutcome {
    /// Where the data went (`database crm`, `/srv/crm/media`).
    pub target: String,
    pub facts: Facts,
    /// What the restore changed from the set to stay safe (a setuid or world-writable mode
    /// it dropped), by path: the restore succeeded, with a warning.
    pub warnings: Vec<String>,
    /// Where the replaced state was kept (`database crm_before_…`, a folder), if it was.
    pub kept: Option<String>,
}

/// Restores one source from its (already verified) artifact, a local file.
pub fn restore(
    source: &Source,
    entry: &ArtifactEntry,
    artifact: &Path,
    target: &RestoreTarget,
    scratch: &Path,
) -> Result<RestoreOutcome, SourceError> {
    let path_or = |default: &str| {
        target
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(default))
    };
    let wrong = || SourceError::WrongKind {
        what: format!("artifact {} ({:?})", entry.name, entry.kind),
        kind: source.kind_name(),
    };
    match source {
        Source::Postgres(pg) => {
            if !matches!(
                entry.kind,
                ArtifactKind::PgDumpCustomZstd
                    | ArtifactKind::PgDumpDirectoryTarZstd
                    | ArtifactKind::PgDumpPlainZstd
            ) {
                return Err(wrong());
            }
            let database = target
                .database
                .clone()
                .unwrap_or_else(|| pg.database.clone());
            let globals = entry.facts.get("globals").and_then(|g| g.as_str());
            let restored = postgres::restore(
                entry.kind,
                artifact,
                pg,
                &database,
                target.force,
                target.keep_previous.as_deref(),
                globals,
                scratch,
            )?;
            let tables: Vec<String> = entry
                .facts
                .get("row_counts")
                .and_then(|c| c.as_object())
                .map(|c| c.keys().cloned().collect())
                .unwrap_or_default();
            let mut facts = Facts::new();
            facts.insert(
                "row_counts".into(),
                postgres::count_rows(pg, &database, &tables)?,
            );
            if !restored.roles_created.is_empty() {
                facts.insert("roles_created".into(), restored.roles_created.into());
            }
            Ok(RestoreOutcome {
                target: format!("database {database}"),
                facts,
                warnings: Vec::new(),
                kept: restored.kept.map(|name| format!("database {name}")),
            })
        }
        Source::Sqlite(db) => {
            if entry.kind != ArtifactKind::SqliteZstd {
                return Err(wrong());
            }
            let path = path_or(&db.path);
            let counts = sqlite::restore(artifact, &path, target.force)?;
            let mut facts = Facts::new();
            facts.insert(
                "row_counts".into(),
                serde_json::Value::Object(counts.into_iter().collect()),
            );
            Ok(RestoreOutcome {
                target: path.display().to_string(),
                facts,
                warnings: Vec::new(),
                kept: None,
            })
        }
        Source::Directory(dir) => {
            if entry.kind != ArtifactKind::TarZstd {
                return Err(wrong());
            }
            let path = path_or(&dir.path);
            let (tree, kept) = directory::restore(
                artifact,
                &path,
                target.force,
                target.keep_previous.as_deref(),
            )?;
            Ok(RestoreOutcome {
                target: path.display().to_string(),
                facts: directory::tree_facts(&tree),
                warnings: tree.warnings,
                kept: kept.map(|k| k.display().to_string()),
            })
        }
        Source::Files(files) => {
            if entry.kind != ArtifactKind::TarZstd {
                return Err(wrong());
            }
            let placement = match &target.path {
                Some(dir) => files::Placement::Under(dir),
                None => files::Placement::Original { listed: files },
            };
            let kept = match (&target.keep_previous, &target.path) {
                (Some(suffix), None) => files::keep_previous(files, suffix)?,
                _ => None,
            };
            let restored = files::restore(artifact, &entry.facts, placement, target.force)?;
            let mut facts = Facts::new();
            facts.insert("files".into(), restored.files.into());
            Ok(RestoreOutcome {
                target: restored.target,
                facts,
                warnings: restored.warnings,
                kept: kept.map(|k| k.display().to_string()),
            })
        }
        Source::Git(git) => {
            if entry.kind != ArtifactKind::GitBundle {
                return Err(wrong());
            }
            let path = path_or(&git.repo);
            let head = git::restore(artifact, &entry.facts, &path, target.force)?;
            let mut facts = Facts::new();
            facts.insert("head".into(), head.into());
            Ok(RestoreOutcome {
                target: path.display().to_string(),
                facts,
                warnings: Vec::new(),
                kept: None,
            })
        }
    }
}

/// zstd with one worker per core: the compressor runs beside the reader, so a backup is
/// bounded by the disk, not one core.
const ZSTD_JOB_SIZE: u32 = 2 << 20;

pub(crate) fn zstd_encoder(
    writer: ArtifactWriter,
    level: i32,
    artifact: &str,
) -> Result<zstd::Encoder<'static, ArtifactWriter>, SourceError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let mut encoder =
        zstd::Encoder::new(writer, level).map_err(SourceError::io("compress", artifact))?;
    encoder
        .multithread(threads)
        .map_err(SourceError::io("compress", artifact))?;
    // zstd's default job is 4 windows per worker; 2 MiB jobs keep each worker's buffers
    // small so a backup stays within its memory budget at any size, for a negligible ratio
    // cost at the levels used here.
    encoder
        .set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
        .map_err(SourceError::io("compress", artifact))?;
    Ok(encoder)
}

/// Ends a zstd stream into its artifact: the last frame, then the writer's own finish
/// (fsync, rename) that yields the digest. `path` names the artifact in errors.
pub(crate) fn finish_zstd(
    encoder: zstd::Encoder<'static, ArtifactWriter>,
    path: &Path,
) -> Result<ArtifactDigest, SourceError> {
    let mut writer = encoder.finish().map_err(SourceError::io("write", path))?;
    writer.flush().map_err(SourceError::io("write", path))?;
    Ok(writer.finish()?)
}

/// [`finish_zstd`] for a tar stream over zstd, after the tar's end blocks.
pub(crate) fn finish_tar_zstd(
    builder: tar::Builder<zstd::Encoder<'static, ArtifactWriter>>,
    path: &Path,
) -> Result<ArtifactDigest, SourceError> {
    let encoder = builder
        .into_inner()
        .map_err(SourceError::io("write", path))?;
    finish_zstd(encoder, path)
}

pub(crate) fn open_verified(artifact: &Path) -> Result<std::fs::File, SourceError> {
    std::fs::File::open(artifact).map_err(SourceError::io("open", artifact))
}
