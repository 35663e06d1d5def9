//! Which storage: the one rule for where a run's backups are written and where a restore,
//! verify or copy reads from when the command or step names none. Every command and step
//! kind asks these functions; nothing else decides.

use super::{LocalStore, OpenStoreError, Store};
use crate::exec_plan::ExecPlan;
use crate::plan::Storage;

/// Why no storage could be chosen.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    #[error("unknown storage `{name}`{hint}")]
    Unknown { name: String, hint: String },
    #[error("the plan has no storage")]
    NoStorage,
    #[error(
        "the plan has no local storage to write backup sets to; add one under `storage:` \
         (with several local storages, name the one for backups `local`)"
    )]
    NoBackupStorage,
    #[error(
        "the plan has several storages and none is where backups are written: name one \
         (it has: {known})"
    )]
    Ambiguous { known: String },
    #[error(transparent)]
    Open(#[from] OpenStoreError),
}

/// The rule for the storage backups are written to: the local storage named `local`, else
/// the only local storage, else none (a plan with backup steps is then invalid). The analyzer
/// applies it to the plan, and the rendered plan carries its answer.
pub fn backup_storage_name<'a>(
    storage: impl Iterator<Item = (&'a str, &'a Storage)>,
) -> Option<&'a str> {
    let locals: Vec<&str> = storage
        .filter(|(_, s)| matches!(s, Storage::Local(_)))
        .map(|(name, _)| name)
        .collect();
    match locals.as_slice() {
        _ if locals.contains(&"local") => Some("local"),
        [only] => Some(only),
        _ => None,
    }
}

/// The storage backups are written to, by the plan's rule (decided once, at analysis, into
/// [`ExecPlan::backup_storage`]: the local storage named `local`, else the only local one).
pub fn backup_storage(plan: &ExecPlan) -> Result<(&str, LocalStore), ChoiceError> {
    let name = plan
        .backup_storage
        .as_deref()
        .ok_or(ChoiceError::NoBackupStorage)?;
    match plan.storage.iter().find(|(n, _)| n == name) {
        Some((name, Storage::Local(local))) => Ok((name.as_str(), LocalStore::new(&local.path))),
        _ => Err(ChoiceError::NoBackupStorage),
    }
}

/// The storage to read sets from: the one `named`, else the backup storage, else the plan's
/// only storage. `planrun restore`, `verify` and the `restore:`, `verify:` and `copy:` steps
/// all read through this, so they never disagree on where `latest` is.
pub fn read_storage<'a>(
    plan: &'a ExecPlan,
    named: Option<&str>,
) -> Result<(&'a str, &'a Storage), ChoiceError> {
    let find = |name: &str| {
        plan.storage
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, s)| (n.as_str(), s))
    };
    if let Some(name) = named {
        return find(name).ok_or_else(|| ChoiceError::Unknown {
            name: name.to_owned(),
            hint: hint(plan, name),
        });
    }
    if let Some(found) = plan.backup_storage.as_deref().and_then(find) {
        return Ok(found);
    }
    match plan.storage.as_slice() {
        [] => Err(ChoiceError::NoStorage),
        [(name, storage)] => Ok((name.as_str(), storage)),
        all => Err(ChoiceError::Ambiguous {
            known: all
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// [`read_storage`], opened.
pub fn open_read_storage(
    plan: &ExecPlan,
    named: Option<&str>,
) -> Result<(String, Store), ChoiceError> {
    let (name, storage) = read_storage(plan, named)?;
    Ok((name.to_owned(), Store::open(name, storage)?))
}

fn hint(plan: &ExecPlan, name: &str) -> String {
    let known: Vec<&str> = plan.storage.iter().map(|(n, _)| n.as_str()).collect();
    crate::diagnostic::did_you_mean(name, known.iter().copied())
        .map(|c| format!(", did you mean `{c}`?"))
        .unwrap_or_else(|| format!(" (the plan has: {})", known.join(", ")))
}
