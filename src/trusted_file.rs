//! Reading the files that decide what planrun does (plans, included files, secret files):
//! refused when another account could have changed them, and never read past a size limit.
//!
//! A plan says which commands run, so whoever can write a plan, or replace it through its
//! folder, can run commands as the account that runs planrun, which is root for most nightly
//! backups. The rules are OpenSSH's for `~/.ssh/config` and private keys, and they apply to
//! every account, not only root: running as `alice`, a plan another account can change runs
//! that account's commands as `alice`. A file and every folder above it must be owned by root
//! or by the account running planrun, and must not be writable by group or others (a folder
//! with the sticky bit, like `/tmp`, is fine: only an entry's owner may rename it). A secret
//! file must also not be readable by group or others. Every symbolic link followed on the way,
//! on any component of the path, counts as part of the file: its owner can point it elsewhere,
//! so it must be owned by root or the running account too.
//!
//! Reading never waits forever: a pipe with no writer reads as empty (so the usual "empty
//! file" error follows), and a writer that stalls is given [`READ_DEADLINE`] in all.

use std::fmt::Write as _;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// The most planrun reads from a plan or an included file. Plans are a few kilobytes; the
/// limit is applied while reading, so `/dev/zero` or a huge file costs 4 MiB, not all memory.
pub const PLAN_LIMIT: u64 = 4 * 1024 * 1024;

/// The most planrun reads from a secret file: keys and passwords are far smaller.
pub const SECRET_LIMIT: u64 = 64 * 1024;

/// The longest planrun waits for a plan, included file or secret to be read in full. Files
/// are read in microseconds; only a pipe whose writer stalls gets near it, and cron must not
/// hang on one.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);

/// What a file is to planrun; it decides the limit and whether reading by others matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRole {
    Plan,
    Include,
    Secret,
}

impl FileRole {
    fn noun(self) -> &'static str {
        match self {
            FileRole::Plan => "plan",
            FileRole::Include => "included file",
            FileRole::Secret => "secret file",
        }
    }

    pub fn limit(self) -> u64 {
        match self {
            FileRole::Plan | FileRole::Include => PLAN_LIMIT,
            FileRole::Secret => SECRET_LIMIT,
        }
    }
}

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Another account could change the file (or read a secret): `fix` is the command that
    /// makes it safe.
    #[error("{message}")]
    Untrusted { message: String, fix: String },
    /// A device or socket: nothing an account writes a plan or secret into.
    #[error("refusing the {} {path}: it is a {kind}, not a file", role.noun())]
    NotAFile {
        path: String,
        kind: &'static str,
        role: FileRole,
    },
    /// A pipe whose writer kept it open without finishing within [`READ_DEADLINE`].
    #[error("gave up reading the {} {path} after {}s: whatever writes it sent no end of file", role.noun(), after.as_secs())]
    TimedOut {
        path: String,
        after: Duration,
        role: FileRole,
    },
    #[error("{path} is larger than {}, the limit for a {}", size_name(*limit), role.noun())]
    TooLarge {
        path: String,
        limit: u64,
        role: FileRole,
    },
}

fn size_name(bytes: u64) -> String {
    if bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// Checks `path` and the folders above it, then reads at most the role's limit, within
/// [`READ_DEADLINE`].
pub fn read(path: &Path, role: FileRole) -> Result<Vec<u8>, ReadError> {
    read_within(path, role, READ_DEADLINE)
}

fn read_within(path: &Path, role: FileRole, deadline: Duration) -> Result<Vec<u8>, ReadError> {
    check(path, role)?;
    let started = Instant::now();
    // Non-blocking, so opening a FIFO that has no writer returns at once instead of waiting
    // for one; a read then sees end of file (no writer), and the caller's "empty" error
    // follows. The descriptor stays non-blocking and each wait is a `poll` bounded by what
    // is left of the deadline, so a writer that opens the pipe and stalls cannot hang the
    // run either. For a regular file the flag changes nothing.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let limit = role.limit();
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let timed_out = || ReadError::TimedOut {
        path: path.display().to_string(),
        after: deadline,
        role,
    };
    // One byte past the limit tells "exactly at the limit" from "larger".
    while bytes.len() as u64 <= limit {
        let want = chunk
            .len()
            .min(usize::try_from(limit + 1 - bytes.len() as u64).unwrap_or(usize::MAX));
        match (&file).read(&mut chunk[..want]) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(timed_out());
                }
                let timeout =
                    nix::poll::PollTimeout::try_from(left).unwrap_or(nix::poll::PollTimeout::MAX);
                let mut fds = [nix::poll::PollFd::new(
                    file.as_fd(),
                    nix::poll::PollFlags::POLLIN,
                )];
                match nix::poll::poll(&mut fds, timeout) {
                    Ok(0) => return Err(timed_out()),
                    Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                    Err(errno) => return Err(std::io::Error::from(errno).into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            path: path.display().to_string(),
            limit,
            role,
        });
    }
    Ok(bytes)
}

/// Refuses `path` if another account could change it, replace it through a folder, or (for a
/// secret) read it. I/O errors (a missing file) are returned as they are.
pub fn check(path: &Path, role: FileRole) -> Result<(), ReadError> {
    let euid = nix::unistd::geteuid().as_raw();
    let metadata = std::fs::metadata(path)?;
    // A pipe is allowed (`planrun validate <(generate-plan)`); a device never holds a plan.
    let file_type = metadata.file_type();
    let device = if file_type.is_char_device() {
        Some("character device")
    } else if file_type.is_block_device() {
        Some("block device")
    } else if file_type.is_socket() {
        Some("socket")
    } else {
        None
    };
    if let Some(kind) = device {
        return Err(ReadError::NotAFile {
            path: path.display().to_string(),
            kind,
            role,
        });
    }
    let walk = walk(path)?;
    let mut problems = judge_file(path, metadata.uid(), metadata.mode(), role, euid);
    for link in &walk.links {
        problems.extend(judge_link(link, euid));
    }
    for folder in walk.folders() {
        // A folder that cannot be read is not a reason to refuse; opening the file will say
        // what is wrong if it matters.
        if let Ok(metadata) = std::fs::metadata(&folder) {
            problems.extend(judge_folder(&folder, metadata.uid(), metadata.mode(), euid));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let mut message = format!("refusing the {} {}: ", role.noun(), path.display());
    message.push_str(
        &problems
            .iter()
            .map(|p| p.what.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    );
    let mut fix = format!(
        "run `{}`",
        problems
            .iter()
            .map(|p| p.fix.as_str())
            .collect::<Vec<_>>()
            .join(" && ")
    );
    let runner = account_name(euid);
    if problems.iter().any(|p| p.what.contains("symbolic link")) {
        write!(fix, ", or name the real path {}", walk.real.display()).ok();
    }
    match role {
        FileRole::Secret => fix.push_str(
            "; a secret file must be readable and writable only by its owner, as ssh requires of a private key",
        ),
        FileRole::Plan | FileRole::Include => {
            write!(
                fix,
                "; anyone who can change a plan can make planrun run their commands as {runner}"
            )
            .ok();
        }
    }
    Err(ReadError::Untrusted { message, fix })
}

/// One thing wrong with a file or folder, and the command that fixes it.
#[derive(Debug, PartialEq, Eq)]
struct Problem {
    what: String,
    fix: String,
}

fn judge_file(path: &Path, uid: u32, mode: u32, role: FileRole, euid: u32) -> Vec<Problem> {
    let shown = quote(path);
    let mut problems = Vec::new();
    if uid != 0 && uid != euid {
        problems.push(Problem {
            what: format!(
                "it is owned by {}, not by {}",
                describe_account(uid),
                trusted_owners(euid)
            ),
            fix: format!("chown {} {shown}", account_name(euid)),
        });
    }
    let (mask, fix) = match role {
        FileRole::Secret => (0o066, format!("chmod go-rw {shown}")),
        FileRole::Plan | FileRole::Include => (0o022, format!("chmod go-w {shown}")),
    };
    if mode & mask != 0 {
        let mut parts = Vec::new();
        if let Some(readers) = whom(mode & mask & 0o044) {
            parts.push(format!("readable by {readers}"));
        }
        if let Some(writers) = whom(mode & mask & 0o022) {
            parts.push(format!("writable by {writers}"));
        }
        problems.push(Problem {
            what: format!("it is {} (mode {:04o})", parts.join(", "), mode & 0o7777),
            fix,
        });
    }
    problems
}

fn judge_folder(folder: &Path, uid: u32, mode: u32, euid: u32) -> Vec<Problem> {
    let shown = quote(folder);
    let mut problems = Vec::new();
    if uid != 0 && uid != euid {
        problems.push(Problem {
            what: format!(
                "its folder {} is owned by {}, not by {}",
                folder.display(),
                describe_account(uid),
                trusted_owners(euid)
            ),
            fix: format!("chown {} {shown}", account_name(euid)),
        });
    }
    let sticky = mode & 0o1000 != 0;
    if let Some(writers) = whom(mode & 0o022).filter(|_| !sticky) {
        problems.push(Problem {
            what: format!(
                "its folder {} is writable by {writers} (mode {:04o})",
                folder.display(),
                mode & 0o7777
            ),
            fix: format!("chmod go-w {shown}"),
        });
    }
    problems
}

/// A symbolic link met while resolving a path: where it is (its folder already resolved),
/// who owns it and what it points at.
#[derive(Debug)]
struct Link {
    at: PathBuf,
    uid: u32,
    target: PathBuf,
}

/// A path resolved one component at a time, as the kernel does, remembering every symbolic
/// link on the way (on any component, not only the last).
#[derive(Debug)]
struct Walk {
    links: Vec<Link>,
    /// Where the path leads, with no links left in it.
    real: PathBuf,
}

impl Walk {
    /// Every folder whose owner could replace the file or a link on the way to it: those
    /// above its real location and those holding each link.
    fn folders(&self) -> Vec<PathBuf> {
        let starts = self
            .links
            .iter()
            .filter_map(|l| l.at.parent())
            .chain(self.real.parent());
        let mut folders: Vec<PathBuf> = Vec::new();
        for start in starts {
            for folder in start.ancestors() {
                if !folders.iter().any(|f| f == folder) {
                    folders.push(folder.to_path_buf());
                }
            }
        }
        folders
    }
}

/// The kernel's limit on links followed in one lookup (`ELOOP` beyond it).
const MAX_LINKS: usize = 40;

/// Resolves `path` (relative to the working folder) component by component with `lstat`.
fn walk(path: &Path) -> Result<Walk, std::io::Error> {
    let mut pending: Vec<PathBuf> = Vec::new();
    if path.is_relative() {
        pending.push(std::env::current_dir()?);
    }
    pending.push(path.to_path_buf());
    // Components still to resolve, next one last.
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    fn push(todo: &mut Vec<std::ffi::OsString>, p: &Path) {
        let parts: Vec<std::ffi::OsString> = p
            .components()
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        todo.extend(parts.into_iter().rev());
    }
    for p in pending.iter().rev() {
        push(&mut todo, p);
    }
    let mut real = PathBuf::from("/");
    let mut links = Vec::new();
    while let Some(part) = todo.pop() {
        match Path::new(&part).components().next() {
            Some(Component::RootDir) => real = PathBuf::from("/"),
            Some(Component::CurDir) | None => {}
            Some(Component::ParentDir) => {
                // `real` holds no links, so its parent is the folder above.
                real.pop();
            }
            Some(Component::Normal(name)) => {
                let next = real.join(name);
                let metadata = std::fs::symlink_metadata(&next)?;
                if !metadata.file_type().is_symlink() {
                    real = next;
                    continue;
                }
                if links.len() >= MAX_LINKS {
                    return Err(std::io::Error::from_raw_os_error(nix::libc::ELOOP));
                }
                let target = std::fs::read_link(&next)?;
                links.push(Link {
                    at: next.clone(),
                    uid: metadata.uid(),
                    target: target.clone(),
                });
                // A link under /proc (`/dev/fd/63` from `<(generate-plan)` leads to
                // `/proc/self/fd/63` → `pipe:[…]`) names an open file, not a path; the kernel
                // follows it to that file, so the walk ends there.
                if next.starts_with("/proc") {
                    real = next;
                    continue;
                }
                push(&mut todo, &target);
            }
            Some(Component::Prefix(_)) => {}
        }
    }
    Ok(Walk { links, real })
}

/// A link owned by another account can be pointed at any file that account chooses.
fn judge_link(link: &Link, euid: u32) -> Option<Problem> {
    if link.uid == 0 || link.uid == euid {
        return None;
    }
    Some(Problem {
        what: format!(
            "the symbolic link {} on the way to it is owned by {}, not by {}: that account can point it at any file",
            link.at.display(),
            describe_account(link.uid),
            trusted_owners(euid)
        ),
        fix: format!("ln -sfn {} {}", quote(&link.target), quote(&link.at)),
    })
}

/// `group`, `others` or `group and others` for the write (or read) bits in `bits`.
fn whom(bits: u32) -> Option<&'static str> {
    match (bits & 0o070 != 0, bits & 0o007 != 0) {
        (true, true) => Some("group and others"),
        (true, false) => Some("group"),
        (false, true) => Some("others"),
        (false, false) => None,
    }
}

fn trusted_owners(euid: u32) -> String {
    if euid == 0 {
        "root".into()
    } else {
        format!("root or `{}`", account_name(euid))
    }
}

/// The account's name, for a `chown` command; the number when it has no name.
fn account_name(uid: u32) -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|user| user.name)
        .unwrap_or_else(|| uid.to_string())
}

fn describe_account(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("`{}` (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

/// A path as it can be pasted into a shell.
fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    shlex::try_quote(&text)
        .map(|q| q.into_owned())
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whats(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.what.as_str()).collect()
    }

    #[test]
    fn a_private_plan_owned_by_root_or_the_runner_passes() {
        let path = Path::new("/etc/planrun/nightly.yaml");
        assert!(judge_file(path, 0, 0o100644, FileRole::Plan, 0).is_empty());
        assert!(judge_file(path, 1000, 0o100644, FileRole::Plan, 1000).is_empty());
        assert!(judge_file(path, 0, 0o100600, FileRole::Secret, 0).is_empty());
        assert!(judge_file(path, 0, 0o100400, FileRole::Secret, 1000).is_empty());
    }

    #[test]
    fn writable_by_group_or_others_is_refused_with_chmod() {
        let path = Path::new("/srv/plans/my plan.yaml");
        let problems = judge_file(path, 0, 0o100664, FileRole::Plan, 0);
        assert_eq!(whats(&problems), ["it is writable by group (mode 0664)"]);
        assert_eq!(problems[0].fix, "chmod go-w '/srv/plans/my plan.yaml'");
        let problems = judge_file(path, 0, 0o100646, FileRole::Include, 0);
        assert_eq!(whats(&problems), ["it is writable by others (mode 0646)"]);
    }

    #[test]
    fn a_secret_readable_by_others_is_refused() {
        let path = Path::new("/etc/s3.secret");
        let problems = judge_file(path, 0, 0o100644, FileRole::Secret, 0);
        assert_eq!(
            whats(&problems),
            ["it is readable by group and others (mode 0644)"]
        );
        assert_eq!(problems[0].fix, "chmod go-rw /etc/s3.secret");
        let problems = judge_file(path, 0, 0o100664, FileRole::Secret, 0);
        assert_eq!(
            whats(&problems),
            ["it is readable by group and others, writable by group (mode 0664)"]
        );
        // Reading a plan is harmless; only a secret is private.
        assert!(judge_file(path, 0, 0o100644, FileRole::Plan, 0).is_empty());
    }

    #[test]
    fn another_accounts_file_is_refused_with_chown() {
        let path = Path::new("/etc/plan.yaml");
        let problems = judge_file(path, 4242, 0o100644, FileRole::Plan, 0);
        assert_eq!(whats(&problems), ["it is owned by uid 4242, not by root"]);
        assert_eq!(problems[0].fix, "chown root /etc/plan.yaml");
        assert!(!judge_file(path, 4242, 0o100644, FileRole::Plan, 4343).is_empty());
    }

    #[test]
    fn folders_must_not_be_writable_unless_sticky() {
        let folder = Path::new("/srv/plans");
        let problems = judge_folder(folder, 0, 0o40775, 0);
        assert_eq!(
            whats(&problems),
            ["its folder /srv/plans is writable by group (mode 0775)"]
        );
        assert_eq!(problems[0].fix, "chmod go-w /srv/plans");
        assert!(judge_folder(Path::new("/tmp"), 0, 0o41777, 0).is_empty());
        assert!(judge_folder(folder, 0, 0o40755, 0).is_empty());
        assert_eq!(judge_folder(folder, 4242, 0o40755, 0).len(), 1);
    }

    #[test]
    fn folders_above_a_relative_name_are_absolute() {
        let folders = walk(Path::new("Cargo.toml")).unwrap().folders();
        assert!(folders.iter().all(|f| f.is_absolute()), "{folders:?}");
        assert_eq!(folders.last().map(PathBuf::as_path), Some(Path::new("/")));
    }

    #[test]
    fn reads_stop_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.secret");
        std::fs::write(&path, vec![b'x'; SECRET_LIMIT as usize + 1]).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        assert!(matches!(
            read(&path, FileRole::Secret),
            Err(ReadError::TooLarge { .. })
        ));
        std::fs::write(&path, vec![b'x'; SECRET_LIMIT as usize]).unwrap();
        assert_eq!(
            read(&path, FileRole::Secret).unwrap().len(),
            SECRET_LIMIT as usize
        );
    }
}
