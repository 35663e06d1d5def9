//! Writing a directory tree as a tar stream: sorted, symlinks kept as links, excludes applied.

use std::fs::{File, Metadata};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use tar::{EntryType, Header, HeaderMode};

use super::{SourceError, Stop};
use crate::plan::OnUnreadable;

/// What went into an archive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeFacts {
    /// Regular files archived.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    pub symlinks: u64,
    pub directories: u64,
    /// Files skipped because they could not be read (only with `on_unreadable: warn`).
    pub warnings: Vec<String>,
}

/// Builds the exclude matcher from the plan's globs.
pub fn exclude_set(patterns: &[String]) -> Result<GlobSet, SourceError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|error| SourceError::Io {
            action: "use exclude pattern",
            path: pattern.into(),
            source: io::Error::new(io::ErrorKind::InvalidInput, error.to_string()),
        })?;
        builder.add(glob);
    }
    builder.build().map_err(|error| SourceError::Io {
        action: "use exclude patterns",
        path: PathBuf::new(),
        source: io::Error::new(io::ErrorKind::InvalidInput, error.to_string()),
    })
}

/// Archives `root` (the folder itself as `.`, then its contents) into `builder`.
pub fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    exclude: &GlobSet,
    on_unreadable: OnUnreadable,
    stop: &Stop,
) -> Result<TreeFacts, SourceError> {
    let meta = std::fs::metadata(root).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound {
            SourceError::Missing {
                path: root.to_owned(),
            }
        } else {
            SourceError::Unreadable {
                path: root.to_owned(),
                source,
            }
        }
    })?;
    if !meta.is_dir() {
        return Err(SourceError::NotADirectory {
            path: root.to_owned(),
        });
    }
    let mut facts = TreeFacts::default();
    append_dir_header(builder, Path::new("."), &meta)?;
    walk(
        builder,
        root,
        Path::new(""),
        exclude,
        on_unreadable,
        &mut facts,
        stop,
    )?;
    Ok(facts)
}

fn walk<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    relative: &Path,
    exclude: &GlobSet,
    on_unreadable: OnUnreadable,
    facts: &mut TreeFacts,
    stop: &Stop,
) -> Result<(), SourceError> {
    let dir = root.join(relative);
    let listing = match std::fs::read_dir(&dir) {
        Ok(listing) => listing,
        Err(source) => return unreadable(&dir, source, on_unreadable, facts),
    };
    let mut names = Vec::new();
    for entry in listing {
        match entry {
            Ok(entry) => names.push(entry.file_name()),
            Err(source) => return unreadable(&dir, source, on_unreadable, facts),
        }
    }
    // Sorted so that two backups of the same tree give the same archive.
    names.sort();
    for name in names {
        if stop.is_stopped() {
            return Err(SourceError::Stopped);
        }
        let rel = relative.join(&name);
        if exclude.is_match(&rel) {
            continue;
        }
        let path = root.join(&rel);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Deleted while we walked: the tree is live, that is not an error.
            Err(source) if source.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => {
                unreadable(&path, source, on_unreadable, facts)?;
                continue;
            }
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(SourceError::io("read link", &path))?;
            let mut header = header_for(&meta);
            header.set_entry_type(EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, &rel, &target)
                .map_err(SourceError::io("archive", &path))?;
            facts.symlinks += 1;
        } else if kind.is_dir() {
            append_dir_header(builder, &rel, &meta)?;
            facts.directories += 1;
            walk(builder, root, &rel, exclude, on_unreadable, facts, stop)?;
        } else if kind.is_file() {
            // Opened without following a link and without blocking: the entry may have been
            // replaced by a link or a fifo since it was listed.
            let (file, meta) = match open_regular(&path, false) {
                Ok(opened) => opened,
                Err(Opened::Io(source)) if source.kind() == io::ErrorKind::NotFound => continue,
                Err(Opened::Io(source)) => {
                    unreadable(&path, source, on_unreadable, facts)?;
                    continue;
                }
                Err(Opened::NotRegular(what)) => {
                    facts.warnings.push(format!(
                        "skipped {}: it is {what}, not a file, folder or symlink",
                        path.display()
                    ));
                    continue;
                }
            };
            if let Some(warning) = append_file(builder, &rel, &path, file, &meta, stop)? {
                facts.warnings.push(warning);
            }
            facts.files += 1;
            facts.bytes += meta.len();
        } else {
            facts.warnings.push(format!(
                "skipped {}: not a file, folder or symlink",
                path.display()
            ));
        }
    }
    Ok(())
}

fn unreadable(
    path: &Path,
    source: io::Error,
    on_unreadable: OnUnreadable,
    facts: &mut TreeFacts,
) -> Result<(), SourceError> {
    match on_unreadable {
        OnUnreadable::Fail => Err(SourceError::Unreadable {
            path: path.to_owned(),
            source,
        }),
        OnUnreadable::Warn => {
            facts
                .warnings
                .push(format!("skipped {}: {source}", path.display()));
            Ok(())
        }
    }
}

fn header_for(meta: &Metadata) -> Header {
    let mut header = Header::new_gnu();
    header.set_metadata_in_mode(meta, HeaderMode::Complete);
    header
}

pub(crate) fn append_dir_header<W: Write>(
    builder: &mut tar::Builder<W>,
    rel: &Path,
    meta: &Metadata,
) -> Result<(), SourceError> {
    let mut header = header_for(meta);
    header.set_entry_type(EntryType::Directory);
    header.set_size(0);
    builder
        .append_data(&mut header, rel, io::empty())
        .map_err(SourceError::io("archive", rel))
}

/// Why a source file could not be opened for reading.
pub(crate) enum Opened {
    Io(io::Error),
    /// It is not a regular file: what it is, with its article (`a fifo`).
    NotRegular(&'static str),
}

/// Opens `path` for reading as a regular file, with `O_NONBLOCK` so that a fifo (which would
/// wait for a writer forever) or a device cannot hold the run, and without following a final
/// link unless `follow`. The metadata is the opened file's own, so it describes what is read.
pub(crate) fn open_regular(path: &Path, follow: bool) -> Result<(File, Metadata), Opened> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let mut flags = nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC;
    if !follow {
        flags |= nix::libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(Opened::Io)?;
    let meta = file.metadata().map_err(Opened::Io)?;
    let kind = meta.file_type();
    if kind.is_file() {
        Ok((file, meta))
    } else if kind.is_fifo() {
        Err(Opened::NotRegular("a fifo"))
    } else if kind.is_socket() {
        Err(Opened::NotRegular("a socket"))
    } else if kind.is_char_device() || kind.is_block_device() {
        Err(Opened::NotRegular("a device"))
    } else if kind.is_dir() {
        Err(Opened::NotRegular("a folder"))
    } else {
        Err(Opened::NotRegular("not a regular file"))
    }
}

/// Appends a regular file, opened as [`open_regular`] does, with the size in `meta` (its
/// `fstat` before reading). The header promises that size. A file that shrinks while it is
/// read cannot be stored truthfully (it would be padded with zeros into a file that never
/// existed), so the source fails, naming it. A file that grows, or whose modification time
/// moves, is stored as the bytes it had when it was opened, and the answer is a warning
/// naming it, as GNU tar and borg do: failing the whole source would make a folder holding
/// one live log fail every night.
pub fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    rel: &Path,
    path: &Path,
    mut file: File,
    meta: &Metadata,
    stop: &Stop,
) -> Result<Option<String>, SourceError> {
    let mut header = header_for(meta);
    let size = meta.len();
    let mut data = ReadError {
        inner: Exact {
            file: &mut file,
            size,
            read: 0,
        },
        error: None,
        stop,
    };
    let result = builder.append_data(&mut header, rel, &mut data);
    if stop.is_stopped() {
        return Err(SourceError::Stopped);
    }
    if let Some(source) = data.error.take() {
        return Err(SourceError::Unreadable {
            path: path.to_owned(),
            source,
        });
    }
    result.map_err(SourceError::io("archive", path))?;
    let mut more = [0u8; 1];
    let grew = loop {
        match file.read(&mut more) {
            Ok(n) => break n > 0,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(SourceError::Unreadable {
                    path: path.to_owned(),
                    source,
                });
            }
        }
    };
    if grew {
        return Ok(Some(format!(
            "{} grew while it was read: stored as the {size} bytes it had when the backup \
             opened it",
            path.display()
        )));
    }
    let after = file.metadata().map_err(SourceError::io("inspect", path))?;
    use std::os::unix::fs::MetadataExt;
    if after.len() != size
        || after.mtime() != meta.mtime()
        || after.mtime_nsec() != meta.mtime_nsec()
    {
        return Ok(Some(format!(
            "{} changed while it was read (its size went from {size} to {} bytes or its \
             modification time moved): the stored copy may mix old and new content",
            path.display(),
            after.len()
        )));
    }
    Ok(None)
}

/// The file's bytes, exactly `size` of them: running out early is an error, never zeros.
struct Exact<'a> {
    file: &'a mut File,
    size: u64,
    read: u64,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.size - self.read;
        if left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "it shrank while it was read: it had {} bytes when the backup opened it, \
                     and only {} could be read; nothing of it is stored padded with zeros, \
                     back it up again once nothing writes to it",
                    self.size, self.read
                ),
            ));
        }
        self.read += n as u64;
        Ok(n)
    }
}

/// Remembers a read error so it is reported as the source file's fault, not the archive's,
/// and gives up mid-file when the backup is stopped (files can be many gigabytes).
struct ReadError<'a, R> {
    inner: R,
    error: Option<io::Error>,
    stop: &'a Stop,
}

impl<R: Read> Read for ReadError<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stop.is_stopped() {
            // Not `Interrupted`: `io::copy` (inside tar) retries that kind forever.
            return Err(io::Error::other("the backup was stopped"));
        }
        self.inner.read(buf).inspect_err(|error| {
            self.error = Some(io::Error::new(error.kind(), error.to_string()));
        })
    }
}
