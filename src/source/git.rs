//! The git source: `git bundle create --all` (the whole history); restored by a clone.

use std::path::Path;

use tokio::process::Command;

use super::{SourceBackup, SourceError, Stop, child};
use crate::plan::GitSource;
use crate::storage::{ArtifactEntry, ArtifactKind, ArtifactWriter, Facts};

const HINT: Option<&str> = Some("install git");

fn git(repo: &Path) -> Command {
    let mut command = Command::new("git");
    // The repository path is passed with -C, never interpreted by a shell; the environment
    // is pinned so a user's config cannot page or prompt.
    command
        .arg("-C")
        .arg(repo)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_PAGER", "cat");
    command
}

pub fn back_up(
    name: &str,
    source: &GitSource,
    set_dir: &Path,
    stop: &Stop,
) -> Result<SourceBackup, SourceError> {
    let repo = Path::new(&source.repo);
    if !repo.exists() {
        return Err(SourceError::Missing {
            path: repo.to_owned(),
        });
    }
    let head = child::capture(
        {
            let mut c = git(repo);
            c.args(["rev-parse", "--verify", "HEAD"]);
            c
        },
        HINT,
        stop,
    )?
    .trim()
    .to_owned();
    let branch = child::capture(
        {
            let mut c = git(repo);
            c.args(["symbolic-ref", "-q", "--short", "HEAD"]);
            c
        },
        HINT,
        stop,
    )
    .map(|b| b.trim().to_owned())
    .unwrap_or_default();
    let artifact = format!("{name}.bundle");
    let mut writer = ArtifactWriter::create(set_dir, &artifact)?;
    let mut command = git(repo);
    command.args(["bundle", "create", "--quiet", "-", "--all"]);
    child::stream_stdout(command, &mut writer, HINT, stop)?;
    let digest = writer.finish()?;
    let mut facts = Facts::new();
    facts.insert("head".into(), head.into());
    if !branch.is_empty() {
        facts.insert("branch".into(), branch.into());
    }
    Ok(SourceBackup {
        artifacts: vec![ArtifactEntry {
            name: artifact,
            source: name.to_owned(),
            kind: ArtifactKind::GitBundle,
            size: digest.size,
            sha256: digest.sha256,
            facts,
        }],
        warnings: Vec::new(),
    })
}

/// Clones the bundle into `target`, which must not exist or be empty (or `force` to replace
/// it), and checks out the recorded branch; returns the clone's HEAD.
pub fn restore(
    artifact: &Path,
    facts: &Facts,
    target: &Path,
    force: bool,
) -> Result<String, SourceError> {
    if let Ok(mut entries) = std::fs::read_dir(target)
        && entries.next().is_some()
    {
        if !force {
            return Err(SourceError::TargetInUse {
                target: target.display().to_string(),
                why: "exists and is not empty".into(),
            });
        }
        std::fs::remove_dir_all(target).map_err(SourceError::io("remove", target))?;
    }
    let mut clone = Command::new("git");
    clone
        .env("GIT_TERMINAL_PROMPT", "0")
        .arg("clone")
        .arg("--quiet");
    if let Some(branch) = facts.get("branch").and_then(|b| b.as_str()) {
        clone.arg("--branch").arg(branch);
    }
    clone.arg("--").arg(artifact).arg(target);
    child::capture(clone, HINT, &Stop::new())?;
    let mut head = git(target);
    head.args(["rev-parse", "--verify", "HEAD"]);
    Ok(child::capture(head, HINT, &Stop::new())?.trim().to_owned())
}
