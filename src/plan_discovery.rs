//! Finding the plan when a command is not given one (`planrun runbook --level 2`,
//! `planrun recover --level 2` during an incident): one order of places, the first that holds
//! a file wins, and the caller says which file it used.

use std::path::{Path, PathBuf};

use crate::command::CommandError;

/// The environment variable that names the plan file. `PLANRUN_PLAN` already names the plan
/// in every step's environment, so this one says it is a file.
pub const PLAN_FILE_VAR: &str = "PLANRUN_PLAN_FILE";

/// The plan of the machine, where an operator installs it.
pub const SYSTEM_PLAN: &str = "/etc/planrun/planrun.yaml";

/// The plan file to read, and how it was found (for "using the plan … (…)").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    pub how: String,
}

/// Why no plan could be used.
#[derive(Debug, thiserror::Error)]
pub enum NotFound {
    /// The variable is set but names nothing: an operator chose that file, so another one
    /// found further down the list would be a surprise during an incident.
    #[error(
        "${PLAN_FILE_VAR} names {}, which does not exist: correct it, or unset it to look in the usual places",
        .0.display()
    )]
    VariableNamesNothing(PathBuf),
    #[error(
        "no plan named and none found; looked in:\n{}\nname the plan file on the command line, or set ${PLAN_FILE_VAR}",
        .0.iter().map(|place| format!("  {place}")).collect::<Vec<_>>().join("\n")
    )]
    Nowhere(Vec<String>),
}

/// The plan to use: `plan` when one is named; else `$PLANRUN_PLAN_FILE`; else
/// `/etc/planrun/planrun.yaml`; else `planrun.yaml` in the current folder, then
/// `plans/planrun.yaml`. When none exists the error lists every place looked (exit 2).
pub fn locate(plan: Option<&Path>) -> Result<Located, CommandError> {
    locate_in(
        plan,
        std::env::var_os(PLAN_FILE_VAR).filter(|v| !v.is_empty()),
        Path::new(SYSTEM_PLAN),
        &std::env::current_dir().unwrap_or_default(),
    )
    .map_err(CommandError::from)
}

fn locate_in(
    plan: Option<&Path>,
    variable: Option<std::ffi::OsString>,
    system: &Path,
    cwd: &Path,
) -> Result<Located, NotFound> {
    if let Some(plan) = plan {
        return Ok(Located {
            path: plan.to_owned(),
            how: "named on the command line".into(),
        });
    }
    let mut looked = Vec::new();
    match variable {
        Some(value) => {
            let path = PathBuf::from(value);
            if !is_there(&path) {
                return Err(NotFound::VariableNamesNothing(path));
            }
            return Ok(Located {
                path,
                how: format!("from ${PLAN_FILE_VAR}"),
            });
        }
        None => looked.push(format!("${PLAN_FILE_VAR} (not set)")),
    }
    let candidates = [
        (system.to_owned(), "the system plan".to_owned()),
        (
            PathBuf::from("planrun.yaml"),
            "found in the current folder".to_owned(),
        ),
        (
            PathBuf::from("plans/planrun.yaml"),
            "found in plans/ of the current folder".to_owned(),
        ),
    ];
    for (path, how) in candidates {
        if is_there(&cwd.join(&path)) {
            return Ok(Located { path, how });
        }
        looked.push(cwd.join(&path).display().to_string());
    }
    Err(NotFound::Nowhere(looked))
}

/// Something is at `path`, even a dangling link or a file this account may not read: the
/// loader then refuses it and says why, rather than another plan being used silently.
fn is_there(path: &Path) -> bool {
    match path.symlink_metadata() {
        Ok(_) => true,
        Err(error) => error.kind() != std::io::ErrorKind::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_place_in_its_turn() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        let system = cwd.join("etc-planrun.yaml");
        let look = |variable: Option<&str>| {
            locate_in(None, variable.map(Into::into), &system, cwd).map(|l| (l.path, l.how))
        };
        let error = look(None).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "no plan named and none found; looked in:\n  $PLANRUN_PLAN_FILE (not set)\n  {0}/etc-planrun.yaml\n  {0}/planrun.yaml\n  {0}/plans/planrun.yaml\nname the plan file on the command line, or set $PLANRUN_PLAN_FILE",
                cwd.display()
            )
        );
        std::fs::create_dir(cwd.join("plans")).unwrap();
        std::fs::write(cwd.join("plans/planrun.yaml"), "").unwrap();
        assert_eq!(
            look(None).unwrap(),
            (
                PathBuf::from("plans/planrun.yaml"),
                "found in plans/ of the current folder".into()
            )
        );
        std::fs::write(cwd.join("planrun.yaml"), "").unwrap();
        assert_eq!(look(None).unwrap().0, PathBuf::from("planrun.yaml"));
        std::os::unix::fs::symlink("/nonexistent", &system).unwrap();
        assert_eq!(
            look(None).unwrap(),
            (system.clone(), "the system plan".into())
        );
        assert_eq!(
            look(Some("/elsewhere/p.yaml")).unwrap_err().to_string(),
            "$PLANRUN_PLAN_FILE names /elsewhere/p.yaml, which does not exist: correct it, or unset it to look in the usual places"
        );
        let named = cwd.join("planrun.yaml");
        assert_eq!(
            look(Some(named.to_str().unwrap())).unwrap(),
            (named.clone(), "from $PLANRUN_PLAN_FILE".into())
        );
        assert_eq!(
            locate_in(Some(Path::new("x.yaml")), Some(named.into()), &system, cwd)
                .unwrap()
                .how,
            "named on the command line"
        );
    }
}
