//! The directory source: a tree as tar + zstd, streamed; restored by a checked extraction.

use std::io::BufReader;
use std::path::Path;

use super::{
    SourceBackup, SourceError, Stop, TreeFacts, finish_tar_zstd, open_verified, safe_extract,
    tree_archive, zstd_encoder,
};
use crate::plan::DirectorySource;
use crate::storage::{ArtifactDigest, ArtifactEntry, ArtifactKind, ArtifactWriter, Facts};

pub fn back_up(
    name: &str,
    source: &DirectorySource,
    set_dir: &Path,
    stop: &Stop,
) -> Result<SourceBackup, SourceError> {
    let artifact = format!("{name}.tar.zst");
    let writer = ArtifactWriter::create(set_dir, &artifact)?;
    let (digest, facts) = write_archive(source, writer, &artifact, stop)?;
    let warnings = facts.warnings.clone();
    Ok(SourceBackup {
        artifacts: vec![ArtifactEntry {
            name: artifact,
            source: name.to_owned(),
            kind: ArtifactKind::TarZstd,
            size: digest.size,
            sha256: digest.sha256,
            facts: tree_facts(&facts),
        }],
        warnings,
    })
}

/// Streams the tree of `source` as tar + zstd into `writer` and finishes it. Public for the
/// benchmark, which compares hashed and unhashed writers on the same producer.
pub fn write_archive(
    source: &DirectorySource,
    writer: ArtifactWriter,
    artifact: &str,
    stop: &Stop,
) -> Result<(ArtifactDigest, TreeFacts), SourceError> {
    let root = Path::new(&source.path);
    let exclude = tree_archive::exclude_set(&source.exclude)?;
    let encoder = zstd_encoder(writer, source.level.unwrap_or(3), artifact)?;
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    let facts = tree_archive::append_tree(
        &mut builder,
        root,
        &exclude,
        source.on_unreadable.unwrap_or_default(),
        stop,
    )?;
    let digest = finish_tar_zstd(builder, Path::new(artifact))?;
    Ok((digest, facts))
}

pub fn tree_facts(facts: &TreeFacts) -> Facts {
    let mut out = Facts::new();
    out.insert("files".into(), facts.files.into());
    out.insert("bytes".into(), facts.bytes.into());
    out.insert("symlinks".into(), facts.symlinks.into());
    out.insert("directories".into(), facts.directories.into());
    out
}

/// Restores a tar + zstd artifact as the folder `target`.
///
/// The archive is checked first, then extracted into a fresh folder beside `target`, which is
/// renamed into place: a refused or failed restore leaves `target` as it was. An existing,
/// non-empty `target` is replaced only with `force`. With `keep_previous` (a suffix), the
/// replaced folder is kept beside it as `<name><suffix>` instead of removed; its path is
/// returned.
pub fn restore(
    artifact: &Path,
    target: &Path,
    force: bool,
    keep_previous: Option<&str>,
) -> Result<(TreeFacts, Option<std::path::PathBuf>), SourceError> {
    let exists = match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => true,
        Ok(_) => {
            return Err(SourceError::NotADirectory {
                path: target.to_owned(),
            });
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
        Err(error) => return Err(SourceError::io("inspect", target)(error)),
    };
    let non_empty = exists
        && std::fs::read_dir(target)
            .map_err(SourceError::io("list", target))?
            .next()
            .is_some();
    if non_empty && !force {
        return Err(SourceError::TargetInUse {
            target: target.display().to_string(),
            why: "exists and is not empty".into(),
        });
    }
    safe_extract::scan(decoder(artifact)?)?;
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(SourceError::io("create", parent))?;
    let staging = sibling(target, "restore")?;
    let result = safe_extract::extract(decoder(artifact)?, &staging, target);
    let facts = match result {
        Ok(facts) => facts,
        Err(error) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(error);
        }
    };
    let mut kept = None;
    if exists && let Some(suffix) = keep_previous {
        // Never over something already there: the earlier state must stay whole, so a
        // second restore of the target in one incident keeps its own beside it (`_2`, …).
        let named = |n: u32| {
            let mut name = target.file_name().unwrap_or_default().to_owned();
            name.push(suffix);
            if n > 1 {
                name.push(format!("_{n}"));
            }
            target.with_file_name(name)
        };
        let mut n = 1;
        while std::fs::symlink_metadata(named(n)).is_ok() {
            n += 1;
        }
        let before = named(n);
        std::fs::rename(target, &before).map_err(SourceError::io("move aside", target))?;
        if let Err(error) = std::fs::rename(&staging, target) {
            let _ = std::fs::rename(&before, target);
            let _ = std::fs::remove_dir_all(&staging);
            return Err(SourceError::io("rename into", target)(error));
        }
        kept = Some(before);
    } else if exists {
        let old = sibling(target, "old")?;
        std::fs::remove_dir(&old).map_err(SourceError::io("remove", &old))?;
        std::fs::rename(target, &old).map_err(SourceError::io("move aside", target))?;
        if let Err(error) = std::fs::rename(&staging, target) {
            let _ = std::fs::rename(&old, target);
            let _ = std::fs::remove_dir_all(&staging);
            return Err(SourceError::io("rename into", target)(error));
        }
        std::fs::remove_dir_all(&old).map_err(SourceError::io("remove", &old))?;
    } else {
        std::fs::rename(&staging, target).map_err(SourceError::io("rename into", target))?;
    }
    crate::storage::sync_dir(parent)?;
    Ok((facts, kept))
}

/// A fresh folder next to `target` (same filesystem, so renames are atomic).
fn sibling(target: &Path, purpose: &str) -> Result<std::path::PathBuf, SourceError> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "target".into());
    let parent = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // A restore staging folder's name carries the run id and is claimed in the run's ledger
    // first, so that the next run can remove it if planrun is killed. The `old` folder holds
    // the target's previous content during the swap and is never removed by anyone else.
    let prefix = match purpose {
        "restore" => format!(".{name}.{}", crate::leftovers::claim_staging(parent)),
        _ => format!(".{name}.planrun-{purpose}-"),
    };
    let dir = tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(parent)
        .map_err(SourceError::io("create a folder in", parent))?;
    Ok(dir.keep())
}

pub(crate) fn decoder(artifact: &Path) -> Result<impl std::io::Read, SourceError> {
    let file = open_verified(artifact)?;
    zstd::Decoder::with_buffer(BufReader::with_capacity(1 << 20, file))
        .map_err(SourceError::io("decompress", artifact))
}
