//! The files source: listed files, with their modes, in one tar + zstd artifact that keeps
//! each file's path below the files' longest common parent folder (recorded as the `root`
//! fact), so a restore puts them back in the same layout, or at their original paths.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::{
    SourceBackup, SourceError, Stop, directory, finish_tar_zstd, safe_extract, tree_archive,
    zstd_encoder,
};
use crate::storage::{ArtifactEntry, ArtifactKind, ArtifactWriter, Facts};

/// A listed path made absolute (against the working folder) without `.` components. `..` is
/// refused: below a symlink it does not mean the lexical parent, so the recorded layout
/// could name a place the file never was.
fn normalized(path: &str) -> Result<PathBuf, SourceError> {
    let invalid = |why: &str| SourceError::Unreadable {
        path: PathBuf::from(path),
        source: io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()),
    };
    let absolute = std::path::absolute(path).map_err(|_| invalid("it is not a valid path"))?;
    let mut out = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::ParentDir => {
                return Err(invalid("its path contains `..`; list it without"));
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// The longest folder that holds every one of `paths` (`/` at worst).
fn common_parent<'a>(paths: impl IntoIterator<Item = &'a Path>) -> PathBuf {
    let mut common: Option<Vec<Component<'a>>> = None;
    for path in paths {
        let parent: Vec<Component> = path.parent().unwrap_or(path).components().collect();
        common = Some(match common {
            None => parent,
            Some(so_far) => so_far
                .into_iter()
                .zip(parent)
                .take_while(|(a, b)| a == b)
                .map(|(a, _)| a)
                .collect(),
        });
    }
    common
        .map(|parts| parts.into_iter().collect())
        .unwrap_or_else(|| PathBuf::from("/"))
}

pub fn back_up(
    name: &str,
    files: &[String],
    set_dir: &Path,
    stop: &Stop,
) -> Result<SourceBackup, SourceError> {
    // A file listed twice is one file; archiving it twice would make the artifact refuse
    // to restore (an entry that appears twice).
    let mut seen = HashSet::new();
    let mut paths = Vec::new();
    for file in files {
        let path = normalized(file)?;
        if seen.insert(path.clone()) {
            paths.push(path);
        }
    }
    // Every file is checked before the artifact is started, so a missing one names itself.
    let mut opened = Vec::new();
    for path in &paths {
        // Never blocks: a listed fifo would otherwise wait for a writer forever.
        let (file, meta) = match tree_archive::open_regular(path, true) {
            Ok(opened) => opened,
            Err(tree_archive::Opened::Io(source)) => {
                return Err(match source.kind() {
                    io::ErrorKind::NotFound => SourceError::Missing { path: path.clone() },
                    _ => SourceError::Unreadable {
                        path: path.clone(),
                        source,
                    },
                });
            }
            Err(tree_archive::Opened::NotRegular(what)) => {
                return Err(SourceError::Unreadable {
                    path: path.clone(),
                    source: io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("it is {what}; a files source backs up regular files only"),
                    ),
                });
            }
        };
        opened.push((file, meta));
    }
    let root = common_parent(paths.iter().map(PathBuf::as_path));
    let relative: Vec<PathBuf> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(&root)
                .expect("below the common parent")
                .to_owned()
        })
        .collect();
    // The folders between the root and the files go first, with their modes, so a restore
    // into an empty place recreates them as they were.
    let folders: BTreeSet<&Path> = relative
        .iter()
        .flat_map(|rel| rel.ancestors().skip(1))
        .filter(|folder| !folder.as_os_str().is_empty())
        .collect();

    let artifact = format!("{name}.tar.zst");
    let writer = ArtifactWriter::create(set_dir, &artifact)?;
    let mut builder = tar::Builder::new(zstd_encoder(writer, 3, &artifact)?);
    for folder in folders {
        let path = root.join(folder);
        let meta = std::fs::metadata(&path).map_err(SourceError::io("inspect", &path))?;
        tree_archive::append_dir_header(&mut builder, folder, &meta)?;
    }
    let mut listing = Vec::new();
    let mut bytes = 0;
    let mut warnings = Vec::new();
    for ((path, rel), (file, meta)) in paths.iter().zip(&relative).zip(opened) {
        listing.push(serde_json::json!({
            "path": path.display().to_string(),
            "name": rel.display().to_string(),
            "mode": format!("{:04o}", meta.permissions().mode() & 0o7777),
            "size": meta.len(),
        }));
        bytes += meta.len();
        warnings.extend(tree_archive::append_file(
            &mut builder,
            rel,
            path,
            file,
            &meta,
            stop,
        )?);
    }
    let digest = finish_tar_zstd(builder, &set_dir.join(&artifact))?;
    let mut facts = Facts::new();
    facts.insert("files".into(), (paths.len() as u64).into());
    facts.insert("bytes".into(), bytes.into());
    facts.insert("root".into(), root.display().to_string().into());
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
        warnings,
    })
}

/// Where a files restore puts the files.
#[derive(Clone, Copy, Debug)]
pub enum Placement<'a> {
    /// Below this folder, in the layout they had below their common parent.
    Under(&'a Path),
    /// Each back at the path it was backed up from. Only the paths `listed` by the plan's
    /// source are written: the set alone never decides where a file lands.
    Original { listed: &'a [String] },
}

/// What a files restore did.
#[derive(Clone, Debug)]
pub struct FilesRestored {
    pub files: u64,
    /// Where they went, in words.
    pub target: String,
    /// Modes the restore would not give (setuid, setgid, write for others), by path.
    pub warnings: Vec<String>,
}

/// One entry of a files artifact.
struct Item {
    /// Its path in the archive.
    name: PathBuf,
    /// Its path below the restore's base folder.
    rel: PathBuf,
    folder: bool,
}

/// Restores the files of `artifact` (whose manifest facts are `facts`) as `placement` says.
///
/// Everything is checked before anything is written: the archive, every destination (an
/// existing file is replaced only with `force`) and every folder on the way (a link there is
/// refused, never followed). Each file is then written to a temporary name beside its
/// destination, and only when all are written are they renamed into place.
pub fn restore(
    artifact: &Path,
    facts: &Facts,
    placement: Placement<'_>,
    force: bool,
) -> Result<FilesRestored, SourceError> {
    safe_extract::scan(directory::decoder(artifact)?)?;
    let (items, root) = layout(artifact, facts)?;
    let base = match placement {
        Placement::Under(dir) => dir.to_owned(),
        Placement::Original { listed } => {
            let root = root.ok_or_else(|| {
                unrestorable(
                    artifact,
                    "its set does not record where the files came from; restore it with --to DIR",
                )
            })?;
            let listed = listed
                .iter()
                .map(|p| normalized(p))
                .collect::<Result<HashSet<_>, _>>()?;
            for item in items.iter().filter(|i| !i.folder) {
                let original = root.join(&item.rel);
                if !listed.contains(&original) {
                    return Err(unrestorable(
                        artifact,
                        &format!(
                            "it holds {}, which the plan's source does not list; restore it with --to DIR",
                            original.display()
                        ),
                    ));
                }
            }
            root
        }
    };

    let folders = match placement {
        Placement::Under(_) => Folders::NoLinks,
        Placement::Original { .. } => Folders::AsTheSystemHasThem,
    };
    for item in items.iter().filter(|i| !i.folder) {
        let destination = base.join(&item.rel);
        let Some(parent) = open_folder(&base, parent_of(&item.rel), None, folders)? else {
            continue;
        };
        match nix::sys::stat::fstatat(&parent, file_name(&item.rel), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(stat) if stat.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR => {
                return Err(SourceError::io("replace", &destination)(io::Error::other(
                    "it is a folder",
                )));
            }
            Ok(_) if !force => {
                return Err(SourceError::TargetInUse {
                    target: destination.display().to_string(),
                    why: "exists".into(),
                });
            }
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(errno) => {
                return Err(SourceError::io("inspect", &destination)(errno.into()));
            }
        }
    }

    let mut staged = Staged::default();
    let mut warnings = Vec::new();
    write_all(artifact, &items, &base, folders, &mut staged, &mut warnings)?;
    let count = staged.files.len() as u64;
    staged.commit(force)?;
    Ok(FilesRestored {
        warnings,
        files: count,
        target: match placement {
            Placement::Under(_) => base.display().to_string(),
            Placement::Original { .. } => format!("their original paths in {}", base.display()),
        },
    })
}

fn unrestorable(artifact: &Path, why: &str) -> SourceError {
    SourceError::io("restore", artifact)(io::Error::other(why.to_owned()))
}

fn parent_of(rel: &Path) -> &Path {
    rel.parent().unwrap_or(Path::new(""))
}

fn file_name(rel: &Path) -> &std::ffi::OsStr {
    rel.file_name().expect("a checked archive path has a name")
}

/// Reads the archive's entries and decides each one's path below the restore's base, and
/// the folder the files came from, when the set records it.
///
/// Sets written before the layout was kept hold bare file names (or full paths when names
/// clashed) and no `root` fact; their `listing` fact still maps each name to its original
/// path, which gives them the same layout as new sets.
fn layout(artifact: &Path, facts: &Facts) -> Result<(Vec<Item>, Option<PathBuf>), SourceError> {
    let mut items = Vec::new();
    let mut archive = tar::Archive::new(directory::decoder(artifact)?);
    for entry in archive
        .entries()
        .map_err(SourceError::io("read", artifact))?
    {
        let entry = entry.map_err(SourceError::io("read", artifact))?;
        let path = entry.path().map_err(SourceError::io("read", artifact))?;
        let name: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let folder = match entry.header().entry_type() {
            EntryType::Directory => true,
            EntryType::Regular | EntryType::Continuous => false,
            _ => {
                return Err(SourceError::UnsafeEntry {
                    entry: path.display().to_string(),
                    reason: "a files artifact holds only files and folders".into(),
                });
            }
        };
        if name.as_os_str().is_empty() {
            continue;
        }
        items.push(Item {
            rel: name.clone(),
            name,
            folder,
        });
    }
    if let Some(root) = facts.get("root").and_then(|r| r.as_str()) {
        return Ok((items, Some(recorded_path(artifact, root)?)));
    }
    let mut originals = HashMap::new();
    for item in facts
        .get("listing")
        .and_then(|l| l.as_array())
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(path)) = (
            item.get("name").and_then(|n| n.as_str()),
            item.get("path").and_then(|p| p.as_str()),
        ) {
            originals.insert(PathBuf::from(name), recorded_path(artifact, path)?);
        }
    }
    let files: Vec<&mut Item> = items.iter_mut().filter(|i| !i.folder).collect();
    if files.is_empty() || !files.iter().all(|i| originals.contains_key(&i.name)) {
        return Ok((items, None));
    }
    let root = common_parent(files.iter().map(|i| originals[&i.name].as_path()));
    for item in files {
        item.rel = originals[&item.name]
            .strip_prefix(&root)
            .expect("below the common parent")
            .to_owned();
    }
    Ok((items, Some(root)))
}

/// A path from the manifest: it must be absolute and plain, like the ones backups record.
fn recorded_path(artifact: &Path, text: &str) -> Result<PathBuf, SourceError> {
    let path = PathBuf::from(text);
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if plain {
        Ok(path)
    } else {
        Err(unrestorable(
            artifact,
            &format!("its set records the path `{text}`, which is not a plain absolute path"),
        ))
    }
}

/// How folders below the restore's base are opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Folders {
    /// Below a destination the restore was given (`--to DIR`), no link is followed: the
    /// layout comes from the set, and must not lead the files somewhere else.
    NoLinks,
    /// In place, the folders are the system's own, taken as they resolve, as the backup read
    /// them (a release symlink such as `saas_crm -> /opt/crm-42/saas_crm` is the app's
    /// layout). The paths themselves are the plan's, checked before anything is written.
    AsTheSystemHasThem,
}

/// Opens the folder `rel` below `base`, which is taken as it resolves (it is the place the
/// restore was asked for, or the folder the files came from). With `create`, missing
/// folders are made with that mode; without it, a missing folder gives `None`.
fn open_folder(
    base: &Path,
    rel: &Path,
    create: Option<u32>,
    folders: Folders,
) -> Result<Option<OwnedFd>, SourceError> {
    let directory = OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC;
    let below = match folders {
        Folders::NoLinks => directory | OFlag::O_NOFOLLOW,
        Folders::AsTheSystemHasThem => directory,
    };
    let mut fd = match nix::fcntl::open(base, directory, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) if create.is_none() => return Ok(None),
        Err(Errno::ENOENT) => {
            std::fs::create_dir_all(base).map_err(SourceError::io("create", base))?;
            nix::fcntl::open(base, directory, Mode::empty())
                .map_err(|e| SourceError::io("open", base)(e.into()))?
        }
        Err(errno) => return Err(SourceError::io("open", base)(errno.into())),
    };
    let mut path = base.to_owned();
    for part in rel.iter() {
        path.push(part);
        let opened = match nix::fcntl::openat(&fd, part, below, Mode::empty()) {
            Err(Errno::ENOENT) => match create {
                None => return Ok(None),
                Some(mode) => {
                    nix::sys::stat::mkdirat(&fd, part, Mode::from_bits_truncate(mode & 0o777))
                        .map_err(|e| SourceError::io("create", &path)(e.into()))?;
                    nix::fcntl::openat(&fd, part, below, Mode::empty())
                }
            },
            other => other,
        };
        fd = match opened {
            Ok(fd) => fd,
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(SourceError::io("restore into", &path)(io::Error::other(
                    "it is a symlink or not a folder, and a restore never writes through links",
                )));
            }
            Err(errno) => return Err(SourceError::io("open", &path)(errno.into())),
        };
    }
    Ok(Some(fd))
}

/// Files written under temporary names beside their destinations, not yet renamed.
#[derive(Default)]
struct Staged {
    files: Vec<StagedFile>,
}

struct StagedFile {
    folder: OwnedFd,
    temporary: PathBuf,
    name: PathBuf,
    destination: PathBuf,
}

impl Staged {
    /// Renames every file into place (over an existing one only with `force`, and even
    /// then never into a folder), then makes the renames durable.
    fn commit(mut self, force: bool) -> Result<(), SourceError> {
        let flags = if force {
            RenameFlags::empty()
        } else {
            RenameFlags::RENAME_NOREPLACE
        };
        let files = std::mem::take(&mut self.files);
        let mut iter = files.into_iter();
        while let Some(file) = iter.next() {
            let renamed = nix::fcntl::renameat2(
                &file.folder,
                &file.temporary,
                &file.folder,
                &file.name,
                flags,
            );
            if let Err(errno) = renamed {
                self.files = std::iter::once(file).chain(iter).collect();
                let error = match errno {
                    Errno::EEXIST => SourceError::TargetInUse {
                        target: self.files[0].destination.display().to_string(),
                        why: "appeared while it was restored".into(),
                    },
                    other => {
                        SourceError::io("rename into", &self.files[0].destination)(other.into())
                    }
                };
                return Err(error);
            }
            nix::unistd::fsync(file.folder.as_fd())
                .map_err(|e| SourceError::io("sync", &file.destination)(e.into()))?;
        }
        Ok(())
    }
}

impl Drop for Staged {
    /// Whatever was not renamed into place is removed: a failed restore leaves no
    /// temporary files behind.
    fn drop(&mut self) {
        for file in &self.files {
            let _ = nix::unistd::unlinkat(
                &file.folder,
                &file.temporary,
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// Writes every file of the archive beside its destination, creating missing folders.
fn write_all(
    artifact: &Path,
    items: &[Item],
    base: &Path,
    folders: Folders,
    staged: &mut Staged,
    warnings: &mut Vec<String>,
) -> Result<(), SourceError> {
    let as_root = nix::unistd::geteuid().is_root();
    let rel_of: HashMap<&Path, &Path> = items
        .iter()
        .map(|i| (i.name.as_path(), i.rel.as_path()))
        .collect();
    let mut archive = tar::Archive::new(directory::decoder(artifact)?);
    for entry in archive
        .entries()
        .map_err(SourceError::io("read", artifact))?
    {
        let mut entry = entry.map_err(SourceError::io("read", artifact))?;
        let name: PathBuf = entry
            .path()
            .map_err(SourceError::io("read", artifact))?
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        let Some(rel) = rel_of.get(name.as_path()).copied() else {
            continue;
        };
        let header = entry.header();
        let mode =
            safe_extract::safe_mode(header.mode().unwrap_or(0o644), &base.join(rel), warnings);
        let mtime = header.mtime().unwrap_or(0) as i64;
        let owner = (header.uid().ok(), header.gid().ok());
        if header.entry_type() == EntryType::Directory {
            open_folder(base, rel, Some(mode), folders)?;
            continue;
        }
        let folder =
            open_folder(base, parent_of(rel), Some(0o755), folders)?.expect("created when missing");
        let destination = base.join(rel);
        // Cut so the temporary name stays within the 255 bytes a name may have.
        let stem: String = file_name(rel).to_string_lossy().chars().take(64).collect();
        // The run's marker in the name lets the next run remove it if this one is killed.
        let marker = crate::leftovers::claim_staging(&base.join(parent_of(rel)));
        let temporary = PathBuf::from(format!(".{stem}.{marker}{}", staged.files.len()));
        let fd = nix::fcntl::openat(
            &folder,
            &temporary,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| SourceError::io("create a file beside", &destination)(e.into()))?;
        let mut file = File::from(fd);
        staged.files.push(StagedFile {
            folder,
            temporary,
            name: PathBuf::from(file_name(rel)),
            destination: destination.clone(),
        });
        io::copy(&mut entry, &mut file).map_err(SourceError::io("write", &destination))?;
        nix::sys::stat::fchmod(&file, Mode::from_bits_truncate(mode))
            .map_err(|e| SourceError::io("set the mode of", &destination)(e.into()))?;
        if as_root && let (Some(uid), Some(gid)) = owner {
            nix::unistd::fchown(
                &file,
                Some(nix::unistd::Uid::from_raw(uid as u32)),
                Some(nix::unistd::Gid::from_raw(gid as u32)),
            )
            .map_err(|e| SourceError::io("set the owner of", &destination)(e.into()))?;
        }
        let time = TimeSpec::new(mtime, 0);
        nix::sys::stat::futimens(&file, &time, &time)
            .map_err(|e| SourceError::io("set the time of", &destination)(e.into()))?;
        file.sync_all()
            .map_err(SourceError::io("sync", &destination))?;
    }
    Ok(())
}

/// Before an in-place restore replaces the listed files, copies those that exist into a
/// sibling folder of their common folder, `<folder><suffix>`, in the same layout, so a
/// recovery can be undone. Returns that folder, or `None` when no listed file existed.
pub fn keep_previous(listed: &[String], suffix: &str) -> Result<Option<PathBuf>, SourceError> {
    let paths = listed
        .iter()
        .map(|p| normalized(p))
        .collect::<Result<Vec<_>, _>>()?;
    let root = common_parent(paths.iter().map(PathBuf::as_path));
    let mut name = root.file_name().unwrap_or_default().to_owned();
    name.push(suffix);
    let before = root.with_file_name(name);
    let mut kept = false;
    for path in &paths {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let rel = path.strip_prefix(&root).unwrap_or(path);
        let copy = before.join(rel);
        if let Some(parent) = copy.parent() {
            std::fs::create_dir_all(parent).map_err(SourceError::io("create", parent))?;
        }
        std::fs::copy(path, &copy).map_err(SourceError::io("keep a copy of", path))?;
        kept = true;
    }
    Ok(kept.then_some(before))
}
