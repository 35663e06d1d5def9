//! Extracting tar archives without ever writing outside the destination.
//!
//! An archive is checked completely before anything is written ([`scan`]); extraction
//! ([`extract`]) then repeats every check and only writes into a fresh, empty folder, with
//! files created exclusively and without following links. Refused: `..` anywhere in a path,
//! absolute paths, symlinks whose target is absolute or climbs out of the destination, any
//! entry beneath a symlink the archive made, hard links, device nodes and fifos. Modes keep
//! only the permission bits, and never setuid, setgid or write for others ([`safe_mode`]):
//! a tampered set could otherwise plant a setuid binary or a folder anyone can write to, so
//! those bits are dropped and each drop is reported, naming the path.
//!
//! A link target that looks harmless on its own can still escape through other links
//! (`l1 -> .` then `l2 -> l1/..`), and a later link can turn an earlier one into an escape
//! (`a -> b/..` then `b -> .`). So once every entry is known, each link is resolved the way
//! the kernel would, through the links of the archive itself (never the live filesystem,
//! which the archive does not control), and the archive is refused if any link leads outside
//! the destination or never resolves (a loop).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::{DirBuilder, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::sys::stat::{UtimensatFlags, utimensat};
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
    /// Every link the archive made: its path and its target.
    symlinks: HashMap<PathBuf, PathBuf>,
    /// The same links in archive order, so the first bad one is the one named.
    link_order: Vec<PathBuf>,
    non_dirs: HashSet<PathBuf>,
}

/// How many links one resolution may pass through before it counts as a loop: Linux gives
/// up with ELOOP after 40, so a deeper chain could never be followed anyway.
const MAX_LINKS: usize = 40;

fn refuse(entry: &Path, reason: impl Into<String>) -> SourceError {
    SourceError::UnsafeEntry {
        entry: entry.display().to_string(),
        reason: reason.into(),
    }
}

/// Why a link's resolution failed.
enum Unresolved {
    Escapes,
    Loops,
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
            if self.symlinks.contains_key(&prefix) || self.non_dirs.contains(&prefix) {
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
        match kind {
            EntryType::Directory => Ok(Checked::Dir(rel)),
            EntryType::Regular | EntryType::Continuous => {
                self.non_dirs.insert(rel.clone());
                Ok(Checked::File(rel))
            }
            EntryType::Symlink => {
                let target =
                    link.ok_or_else(|| refuse(path, "it is a symlink without a target"))?;
                let mut depth = parts.len() - 1;
                for component in target.components() {
                    match component {
                        Component::Normal(_) => depth += 1,
                        Component::CurDir => {}
                        Component::ParentDir if depth > 0 => depth -= 1,
                        Component::ParentDir => {
                            return Err(refuse(path, "it is a symlink escaping the destination"));
                        }
                        Component::RootDir | Component::Prefix(_) => {
                            return Err(refuse(path, "it is a symlink to an absolute path"));
                        }
                    }
                }
                self.symlinks.insert(rel.clone(), target.to_owned());
                self.link_order.push(rel.clone());
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

impl Checker {
    /// Resolves every link through the links the archive made, once all entries are known
    /// (a later link can change where an earlier one leads).
    fn finish(&self) -> Result<(), SourceError> {
        for link in &self.link_order {
            let mut through = Vec::new();
            let mut budget = MAX_LINKS;
            match self.resolve_link(link, &mut budget, &mut through) {
                Ok(_) => {}
                Err(Unresolved::Escapes) => {
                    through.retain(|l| l != link);
                    let via = if through.is_empty() {
                        String::new()
                    } else {
                        let names: Vec<String> = through
                            .iter()
                            .map(|l| format!("`{}`", l.display()))
                            .collect();
                        let noun = if names.len() == 1 { "link" } else { "links" };
                        format!(" through the archive's {noun} {}", names.join(", "))
                    };
                    return Err(refuse(
                        link,
                        format!("it is a symlink that resolves outside the destination{via}"),
                    ));
                }
                Err(Unresolved::Loops) => {
                    return Err(refuse(
                        link,
                        format!(
                            "it is a symlink that never resolves (a loop, or more than {MAX_LINKS} links deep)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Where `link` leads, as components below the destination.
    fn resolve_link(
        &self,
        link: &Path,
        budget: &mut usize,
        through: &mut Vec<PathBuf>,
    ) -> Result<Vec<OsString>, Unresolved> {
        if *budget == 0 {
            return Err(Unresolved::Loops);
        }
        *budget -= 1;
        if !through.iter().any(|l| l == link) {
            through.push(link.to_owned());
        }
        let start = link
            .parent()
            .map(|p| p.iter().map(ToOwned::to_owned).collect())
            .unwrap_or_default();
        self.walk(start, &self.symlinks[link], budget, through)
    }

    /// Follows `path` from the folder `at` as the kernel would: each component that is one
    /// of the archive's links is replaced by where that link leads. A component the archive
    /// does not hold is taken as a plain folder, which is what it would be if created later.
    fn walk(
        &self,
        mut at: Vec<OsString>,
        path: &Path,
        budget: &mut usize,
        through: &mut Vec<PathBuf>,
    ) -> Result<Vec<OsString>, Unresolved> {
        for component in path.components() {
            match component {
                Component::Normal(part) => {
                    at.push(part.to_owned());
                    let here: PathBuf = at.iter().collect();
                    if self.symlinks.contains_key(&here) {
                        at = self.resolve_link(&here, budget, through)?;
                    }
                }
                Component::CurDir => {}
                Component::ParentDir => {
                    if at.pop().is_none() {
                        return Err(Unresolved::Escapes);
                    }
                }
                // Absolute targets were refused entry by entry.
                Component::RootDir | Component::Prefix(_) => return Err(Unresolved::Escapes),
            }
        }
        Ok(at)
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
    let mut archive = tar::Archive::new(reader);
    let mut checker = Checker::default();
    let mut entries = 0;
    for entry in archive.entries().map_err(read_error)? {
        let entry = entry.map_err(read_error)?;
        let (path, kind, link) = entry_parts(&entry)?;
        checker.check(&path, kind, link.as_deref())?;
        entries += 1;
    }
    checker.finish()?;
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
    // Folder modes and times are applied last (deepest first): a read-only folder must still
    // receive its contents, and writing contents changes a folder's mtime.
    let mut folders: Vec<(PathBuf, u32, i64)> = Vec::new();
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let (path, kind, link) = entry_parts(&entry)?;
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().unwrap_or(0) as i64;
        let owner = (header.uid().ok(), header.gid().ok());
        let checked = checker.check(&path, kind, link.as_deref())?;
        // A link's own mode means nothing on Linux.
        let mode = match &checked {
            Checked::Root => safe_mode(mode, shown, &mut facts.warnings),
            Checked::Dir(rel) | Checked::File(rel) => {
                safe_mode(mode, &shown.join(rel), &mut facts.warnings)
            }
            Checked::Symlink(..) => 0o777,
        };
        let target = match checked {
            Checked::Root => {
                folders.push((dest.to_owned(), mode, mtime));
                continue;
            }
            Checked::Dir(rel) => {
                let full = dest.join(&rel);
                make_dir(&full)?;
                folders.push((full.clone(), mode, mtime));
                facts.directories += 1;
                full
            }
            Checked::File(rel) => {
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
                set_mtime(&full, mtime)?;
                full
            }
            Checked::Symlink(rel, link_target) => {
                let full = dest.join(&rel);
                make_parent(dest, &rel)?;
                std::os::unix::fs::symlink(&link_target, &full)
                    .map_err(SourceError::io("create symlink", &full))?;
                facts.symlinks += 1;
                set_mtime(&full, mtime)?;
                full
            }
        };
        if as_root && let (Some(uid), Some(gid)) = owner {
            std::os::unix::fs::lchown(&target, Some(uid as u32), Some(gid as u32))
                .map_err(SourceError::io("set the owner of", &target))?;
        }
    }
    checker.finish()?;
    for (folder, mode, mtime) in folders.iter().rev() {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(*mode))
            .map_err(SourceError::io("set the mode of", folder))?;
        set_mtime(folder, *mtime)?;
    }
    Ok(facts)
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

fn set_mtime(path: &Path, mtime: i64) -> Result<(), SourceError> {
    let time = TimeSpec::new(mtime, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|errno| SourceError::io("set the time of", path)(io::Error::from(errno)))
}
