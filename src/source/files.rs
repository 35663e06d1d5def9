//! The files source: listed files, with their modes, in one tar + zstd artifact.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{
    SourceBackup, SourceError, Stop, directory, finish_tar_zstd, safe_extract, tree_archive,
    zstd_encoder,
};
use crate::backup_set::{ArtifactEntry, ArtifactKind, ArtifactWriter, Facts};

/// Archive names: the file names when they are distinct (`.env`, `settings.py`), else the
/// full paths without the leading `/`, so nothing is ever overwritten inside the archive.
fn archive_names(paths: &[PathBuf]) -> Vec<PathBuf> {
    let names: Vec<PathBuf> = paths
        .iter()
        .map(|p| PathBuf::from(p.file_name().unwrap_or_default()))
        .collect();
    let distinct: HashSet<_> = names.iter().collect();
    if distinct.len() == names.len() && names.iter().all(|n| !n.as_os_str().is_empty()) {
        names
    } else {
        paths
            .iter()
            .map(|p| {
                p.components()
                    .filter(|c| matches!(c, std::path::Component::Normal(_)))
                    .collect()
            })
            .collect()
    }
}

pub fn back_up(
    name: &str,
    files: &[String],
    set_dir: &Path,
    stop: &Stop,
) -> Result<SourceBackup, SourceError> {
    let paths: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
    // Every file is checked before the artifact is started, so a missing one names itself.
    let mut opened = Vec::new();
    for path in &paths {
        let file = std::fs::File::open(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => SourceError::Missing { path: path.clone() },
            _ => SourceError::Unreadable {
                path: path.clone(),
                source,
            },
        })?;
        let meta = file.metadata().map_err(SourceError::io("inspect", path))?;
        if !meta.is_file() {
            return Err(SourceError::Unreadable {
                path: path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        opened.push((file, meta));
    }
    let artifact = format!("{name}.tar.zst");
    let writer = ArtifactWriter::create(set_dir, &artifact)?;
    let mut builder = tar::Builder::new(zstd_encoder(writer, 3, &artifact)?);
    let mut listing = Vec::new();
    let mut bytes = 0;
    for ((path, rel), (file, meta)) in paths.iter().zip(archive_names(&paths)).zip(opened) {
        listing.push(serde_json::json!({
            "path": path.display().to_string(),
            "name": rel.display().to_string(),
            "mode": format!("{:04o}", meta.permissions().mode() & 0o7777),
            "size": meta.len(),
        }));
        bytes += meta.len();
        tree_archive::append_file(&mut builder, &rel, path, file, &meta, stop)?;
    }
    let digest = finish_tar_zstd(builder, &set_dir.join(&artifact))?;
    let mut facts = Facts::new();
    facts.insert("files".into(), (paths.len() as u64).into());
    facts.insert("bytes".into(), bytes.into());
    facts.insert("listing".into(), listing.into());
    Ok(SourceBackup {
        artifacts: vec![ArtifactEntry {
            name: artifact,
            source: name.to_owned(),
            kind: ArtifactKind::TarZstd,
            size: digest.size,
            sha256: digest.sha256,
            facts,
        }],
        warnings: Vec::new(),
    })
}

/// Restores the files into the folder `target` (created if missing). Each file lands by
/// rename; an existing file is replaced only with `force`, and all are checked before any is
/// written.
pub fn restore(artifact: &Path, target: &Path, force: bool) -> Result<u64, SourceError> {
    safe_extract::scan(directory::decoder(artifact)?)?;
    std::fs::create_dir_all(target).map_err(SourceError::io("create", target))?;
    let marker = crate::leftovers::claim_staging(target);
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{marker}"))
        .tempdir_in(target)
        .map_err(SourceError::io("create a folder in", target))?;
    safe_extract::extract(directory::decoder(artifact)?, staging.path())?;
    let mut moves = Vec::new();
    collect_files(staging.path(), Path::new(""), &mut moves)?;
    for rel in &moves {
        let destination = target.join(rel);
        if !force && std::fs::symlink_metadata(&destination).is_ok() {
            return Err(SourceError::TargetInUse {
                target: destination.display().to_string(),
                why: "exists".into(),
            });
        }
    }
    for rel in &moves {
        let destination = target.join(rel);
        if let Some(parent) = destination.parent() {
            std::fs::create_dir_all(parent).map_err(SourceError::io("create", parent))?;
        }
        std::fs::rename(staging.path().join(rel), &destination)
            .map_err(SourceError::io("rename into", &destination))?;
    }
    crate::backup_set::sync_dir(target)?;
    Ok(moves.len() as u64)
}

fn collect_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let dir = root.join(rel);
    for entry in std::fs::read_dir(&dir).map_err(SourceError::io("list", &dir))? {
        let entry = entry.map_err(SourceError::io("list", &dir))?;
        let child = rel.join(entry.file_name());
        if entry
            .file_type()
            .map_err(SourceError::io("inspect", &dir))?
            .is_dir()
        {
            collect_files(root, &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}
