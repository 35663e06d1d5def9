//! Extracting tar archives without ever writing outside the destination.
//!
//! An archive is checked completely before anything is written ([`scan`]); extraction
//! ([`extract`]) then repeats every check and only writes into a fresh, empty folder, with
//! files created exclusively and without following links. Refused: `..` anywhere in a path,
//! absolute paths, any entry beneath (or in place of) a symlink, file or folder the archive
//! made, hard links, device nodes and fifos. Modes keep only the permission bits, and never
//! setuid, setgid or write for others ([`safe_mode`]): a tampered set could otherwise plant a
//! setuid binary or a folder anyone can write to, so those bits are dropped and each drop is
//! reported, naming the path.
//!
//! A symlink is data: it is recreated exactly as recorded, wherever it points (an absolute
//! target, one that climbs out of the folder, a loop), because a tree that holds such a link
//! must restore as it was backed up. What keeps a link from leading a write elsewhere is the
//! order, not an analysis of where links lead (which would have to be right about every
//! chain): every file and folder is written first, into a fresh folder that holds no link
//! yet, and the links are made last, after which nothing is written or resolved through
//! them (folder modes and times are set through descriptors opened with `O_NOFOLLOW`).

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, UtimensatFlags, utimensat};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::{SourceError, TreeFacts};

/// What kind of entry passed the checks.
enum Checked {
    /// The archive's own root (`.`): its mode applies to the destination folder.
    Root,
    Dir(PathBuf),
    File(PathBuf),
    Symlink(PathBuf, PathBuf),
}

#[derive(Default)]
struct Checker {
    /// Every link and file the archive made: nothing may lie beneath one.
    non_dirs: HashSet<PathBuf>,
    /// Every folder the archive made or implied (as the parent of an entry): a link may not
    /// take a folder's place, since entries already written beneath it would then appear to
    /// be beneath the link.
    dirs: HashSet<PathBuf>,
}

fn refuse(entry: &Path, reason: impl Into<String>) -> SourceError {
    SourceError::UnsafeEntry {
        entry: entry.display().to_string(),
        reason: reason.into(),
    }
}

impl Checker {
    fn check(
        &mut self,
        path: &Path,
        kind: EntryType,
        link: Option<&Path>,
    ) -> Result<Checked, SourceError> {
        let mut parts: Vec<OsString> = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_owned()),
                Component::CurDir => {}
                Component::ParentDir => return Err(refuse(path, "its path contains `..`")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refuse(path, "its path is absolute"));
                }
            }
        }
        let rel: PathBuf = parts.iter().collect();
        for depth in 1..parts.len() {
            let prefix: PathBuf = parts[..depth].iter().collect();
            if self.non_dirs.contains(&prefix) {
                return Err(refuse(
                    path,
                    "it lies beneath a symlink or file of the archive",
                ));
            }
        }
        if self.non_dirs.contains(&rel) {
            return Err(refuse(path, "it appears twice"));
        }
        if parts.is_empty() {
            return if kind == EntryType::Directory {
                Ok(Checked::Root)
            } else {
                Err(refuse(path, "its path is empty"))
            };
        }
        let parents = || {
            (1..parts.len())
                .map(|depth| parts[..depth].iter().collect::<PathBuf>())
                .collect::<Vec<_>>()
        };
        match kind {
            EntryType::Directory => {
                self.dirs.extend(parents());
                self.dirs.insert(rel.clone());
                Ok(Checked::Dir(rel))
            }
            EntryType::Regular | EntryType::Continuous => {
                if self.dirs.contains(&rel) {
                    return Err(refuse(path, "it is a file where the archive has a folder"));
                }
                self.dirs.extend(parents());
                self.non_dirs.insert(rel.clone());
                Ok(Checked::File(rel))
            }
            EntryType::Symlink => {
                let target = link
                    .filter(|t| !t.as_os_str().is_empty())
                    .ok_or_else(|| refuse(path, "it is a symlink without a target"))?;
                if self.dirs.contains(&rel) {
                    return Err(refuse(
                        path,
                        "it is a symlink where the archive has a folder",
                    ));
                }
                self.dirs.extend(parents());
                self.non_dirs.insert(rel.clone());
                Ok(Checked::Symlink(rel, target.to_owned()))
            }
            EntryType::Link => Err(refuse(path, "it is a hard link")),
            EntryType::Char | EntryType::Block => Err(refuse(path, "it is a device node")),
            EntryType::Fifo => Err(refuse(path, "it is a fifo")),
            _ => Err(refuse(path, "its entry type is not supported")),
        }
    }
}

fn entry_parts<R: Read>(
    entry: &tar::Entry<'_, R>,
) -> Result<(PathBuf, EntryType, Option<PathBuf>), SourceError> {
    let bad = |error: io::Error| SourceError::Io {
        action: "read archive entry",
        path: PathBuf::new(),
        source: error,
    };
    let path = entry.path().map_err(bad)?.into_owned();
    let link = entry.link_name().map_err(bad)?.map(|l| l.into_owned());
    Ok((path, entry.header().entry_type(), link))
}

fn read_error(source: io::Error) -> SourceError {
    SourceError::Io {
        action: "read",
        path: PathBuf::from("archive"),
        source,
    }
}

/// Checks every entry of an archive; writes nothing.
pub fn scan(reader: impl Read) -> Result<u64, SourceError> {
    scan_with(reader, true)
}

/// Checks every entry as [`scan`] does, and also refuses symlinks: for archives that never
/// hold one (a pg_dump directory), read afterwards by a tool that would follow a link
/// wherever a tampered set points it.
pub fn scan_without_links(reader: impl Read) -> Result<u64, SourceError> {
    scan_with(reader, false)
}

fn scan_with(reader: impl Read, links: bool) -> Result<u64, SourceError> {
    let mut archive = tar::Archive::new(reader);
    let mut checker = Checker::default();
    let mut entries = 0;
    for entry in archive.entries().map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let (path, kind, link) = entry_parts(&entry)?;
        if let Checked::Symlink(..) = checker.check(&path, kind, link.as_deref())?
            && !links
        {
            return Err(refuse(
                &path,
                "it is a symlink, which this kind of artifact never holds",
            ));
        }
        entries += 1;
    }
    Ok(entries)
}

/// The mode a restore gives a file or folder the archive records with `mode`: the permission
/// bits only, without setuid, setgid, sticky or write for others. A dropped setuid, setgid or
/// other-write bit adds a warning naming `path`; the sticky bit means nothing without
/// other-write and goes silently.
pub fn safe_mode(mode: u32, path: &Path, warnings: &mut Vec<String>) -> u32 {
    let safe = mode & 0o775;
    let dropped: Vec<&str> = [
        (0o4000, "setuid"),
        (0o2000, "setgid"),
        (0o0002, "write for others"),
    ]
    .iter()
    .filter(|(bit, _)| mode & bit != 0)
    .map(|(_, name)| *name)
    .collect();
    if !dropped.is_empty() {
        warnings.push(format!(
            "{}: the set records mode {:04o} ({}); restored as {safe:04o}, since a restore never makes setuid, setgid or world-writable files or folders",
            path.display(),
            mode & 0o7777,
            dropped.join(", ")
        ));
    }
    safe
}

/// Extracts into `dest`, which must be a fresh, empty folder this process created. Nothing is
/// ever written beneath a link, so the links' final check can come last; on an error the
/// caller removes `dest` whole. Warnings name paths below `shown`, where the caller will put
/// the folder (a staging folder is renamed into place).
pub fn extract(reader: impl Read, dest: &Path, shown: &Path) -> Result<TreeFacts, SourceError> {
    let mut archive = tar::Archive::new(reader);
    let mut checker = Checker::default();
    let mut facts = TreeFacts::default();
    let as_root = nix::unistd::geteuid().is_root();
    let mut folders: Vec<(PathBuf, u32, i64)> = Vec::new();
    // Links are made after every file and folder, so nothing is ever written through one.
    let mut links: Vec<(PathBuf, PathBuf, i64, Owner)> = Vec::new();
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let (path, kind, link) = entry_parts(&entry)?;
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().unwrap_or(0) as i64;
        let owner = (header.uid().ok(), header.gid().ok());
        let checked = checker.check(&path, kind, link.as_deref())?;
        let target = match checked {
            Checked::Root => {
                let mode = safe_mode(mode, shown, &mut facts.warnings);
                folders.push((PathBuf::new(), mode, mtime));
                continue;
            }
            Checked::Dir(rel) => {
                let mode = safe_mode(mode, &shown.join(&rel), &mut facts.warnings);
                let full = dest.join(&rel);
                make_dir(&full)?;
                folders.push((rel, mode, mtime));
                facts.directories += 1;
                full
            }
            Checked::File(rel) => {
                let mode = safe_mode(mode, &shown.join(&rel), &mut facts.warnings);
                let full = dest.join(&rel);
                make_parent(dest, &rel)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&full)
                    .map_err(SourceError::io("create", &full))?;
                let bytes =
                    io::copy(&mut entry, &mut file).map_err(SourceError::io("write", &full))?;
                file.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(SourceError::io("set the mode of", &full))?;
                facts.files += 1;
                facts.bytes += bytes;
                let time = TimeSpec::new(mtime, 0);
                nix::sys::stat::futimens(&file, &time, &time)
                    .map_err(|e| SourceError::io("set the time of", &full)(e.into()))?;
                full
            }
            Checked::Symlink(rel, link_target) => {
                make_parent(dest, &rel)?;
                links.push((rel, link_target, mtime, owner));
                continue;
            }
        };
        if as_root && let (Some(uid), Some(gid)) = owner {
            std::os::unix::fs::lchown(&target, Some(uid as u32), Some(gid as u32))
                .map_err(SourceError::io("set the owner of", &target))?;
        }
    }
    for (rel, link_target, mtime, owner) in links {
        let full = dest.join(&rel);
        let parent = open_below(dest, parent_of(&rel))?;
        let name = rel.file_name().expect("a checked link has a name");
        nix::unistd::symlinkat(link_target.as_path(), &parent, name)
            .map_err(|e| SourceError::io("create symlink", &full)(e.into()))?;
        facts.symlinks += 1;
        let time = TimeSpec::new(mtime, 0);
        utimensat(&parent, name, &time, &time, UtimensatFlags::NoFollowSymlink)
            .map_err(|e| SourceError::io("set the time of", &full)(e.into()))?;
        if as_root && let (Some(uid), Some(gid)) = owner {
            nix::unistd::fchownat(
                &parent,
                name,
                Some(nix::unistd::Uid::from_raw(uid as u32)),
                Some(nix::unistd::Gid::from_raw(gid as u32)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| SourceError::io("set the owner of", &full)(e.into()))?;
        }
    }
    // Folder modes and times come last (deepest first): a read-only folder must still
    // receive its contents, and writing contents (links included) changes a folder's mtime.
    for (rel, mode, mtime) in folders.iter().rev() {
        let full = dest.join(rel);
        let folder = open_below(dest, rel)?;
        nix::sys::stat::fchmod(&folder, Mode::from_bits_truncate(*mode))
            .map_err(|e| SourceError::io("set the mode of", &full)(e.into()))?;
        let time = TimeSpec::new(*mtime, 0);
        nix::sys::stat::futimens(&folder, &time, &time)
            .map_err(|e| SourceError::io("set the time of", &full)(e.into()))?;
    }
    Ok(facts)
}

/// An entry's owner as the archive records it.
type Owner = (Option<u64>, Option<u64>);

fn parent_of(rel: &Path) -> &Path {
    rel.parent().unwrap_or(Path::new(""))
}

/// Opens the folder `rel` below `dest` one component at a time, never following a link: once
/// the archive's links exist, no path below `dest` is resolved through one.
fn open_below(dest: &Path, rel: &Path) -> Result<OwnedFd, SourceError> {
    let flags = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    let mut fd = nix::fcntl::open(dest, flags, Mode::empty())
        .map_err(|e| SourceError::io("open", dest)(e.into()))?;
    let mut path = dest.to_owned();
    for part in rel.iter() {
        path.push(part);
        fd = nix::fcntl::openat(&fd, part, flags, Mode::empty())
            .map_err(|e| SourceError::io("open", &path)(e.into()))?;
    }
    Ok(fd)
}

fn make_dir(path: &Path) -> Result<(), SourceError> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(path).map_err(SourceError::io("inspect", path))?;
            if meta.is_dir() {
                Ok(())
            } else {
                Err(SourceError::NotADirectory {
                    path: path.to_owned(),
                })
            }
        }
        Err(error) => Err(SourceError::io("create", path)(error)),
    }
}

/// Archives from other tools may omit folder entries; the checks already guarantee no parent
/// is a link, so creating the missing ones stays inside `dest`.
fn make_parent(dest: &Path, rel: &Path) -> Result<(), SourceError> {
    let mut path = dest.to_owned();
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            path.push(part);
            make_dir(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar stream of one symlink `name -> target`, then a file.
    fn tar_with_link(name: &str, target: &str) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, name, target)
            .expect("link entry");
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, "toc.dat", &b"abc"[..])
            .expect("file entry");
        builder.into_inner().expect("tar")
    }

    #[test]
    fn links_are_data_in_a_tree_but_refused_where_an_artifact_never_holds_one() {
        let tar = tar_with_link("3001.dat", "/etc/shadow");
        assert_eq!(scan(&tar[..]).expect("a tree may hold any link"), 2);
        let error = scan_without_links(&tar[..]).expect_err("a dump holds no link");
        assert_eq!(
            error.to_string(),
            "refusing archive entry `3001.dat`: it is a symlink, which this kind of artifact never holds; nothing was written"
        );
    }
}
