//! The state directory: where run records, run logs and lock files live.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// A state directory that exists, with its `runs/`, `logs/` and `locks/` folders.
#[derive(Clone, Debug)]
pub struct StateDir {
    root: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("no state directory: set --state-dir, XDG_STATE_HOME or HOME")]
    Unknown,
    #[error("cannot create state directory {}: {source}", path.display())]
    Create { path: PathBuf, source: io::Error },
}

impl StateDir {
    /// `--state-dir` if given; else `/var/lib/planrun` for root, `$XDG_STATE_HOME/planrun`,
    /// or `$HOME/.local/state/planrun`.
    pub fn locate(flag: Option<&Path>) -> Result<PathBuf, StateDirError> {
        if let Some(dir) = flag {
            return Ok(dir.to_path_buf());
        }
        if nix::unistd::geteuid().is_root() {
            return Ok(PathBuf::from("/var/lib/planrun"));
        }
        let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        if let Some(xdg) = non_empty("XDG_STATE_HOME") {
            return Ok(PathBuf::from(xdg).join("planrun"));
        }
        non_empty("HOME")
            .map(|home| PathBuf::from(home).join(".local/state/planrun"))
            .ok_or(StateDirError::Unknown)
    }

    /// Opens (creating with mode 0700: records and logs may name hosts and paths) the
    /// directory at `root`.
    pub fn create(root: PathBuf) -> Result<StateDir, StateDirError> {
        for sub in ["", "runs", "logs", "locks"] {
            let path = root.join(sub);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|source| StateDirError::Create { path, source })?;
        }
        Ok(StateDir { root })
    }

    /// The directory without creating anything, for readers such as `history`.
    pub fn existing(root: PathBuf) -> StateDir {
        StateDir { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn runs(&self) -> PathBuf {
        self.root.join("runs")
    }

    pub fn run_record(&self, run_id: &str) -> PathBuf {
        self.runs().join(format!("{run_id}.json"))
    }

    pub fn run_log(&self, run_id: &str) -> PathBuf {
        self.root.join("logs").join(format!("{run_id}.log"))
    }

    pub fn lock(&self, plan: &str) -> PathBuf {
        self.root.join("locks").join(format!("{plan}.lock"))
    }
}
