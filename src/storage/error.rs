//! Errors from reading and writing backup sets, whatever the storage kind.

use std::path::PathBuf;

/// Something went wrong with a backup set or its storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An object or file that is not there; a typed answer, so callers never have to guess
    /// it from an error's text or kind.
    #[error("{location}: no such object")]
    NotFound { location: String },
    #[error("no backup set `{set}` for plan `{plan}` in {location}")]
    NoSuchSet {
        plan: String,
        set: String,
        location: String,
    },
    #[error("no complete backup set for plan `{plan}` in {location}")]
    NoCompleteSet { plan: String, location: String },
    #[error("no complete backup set with `{source_name}` for plan `{plan}` in {location}")]
    NoSetWithSource {
        plan: String,
        source_name: String,
        location: String,
    },
    #[error("backup set `{set}` is incomplete (no manifest.json): it is never restored from")]
    Incomplete { set: String },
    #[error("backup set `{set}` is damaged: {reason}")]
    Damaged { set: String, reason: String },
    #[error(
        "`{name}` is not a valid artifact name (a plain file name without `/`, not starting with `.`)"
    )]
    BadArtifactName { name: String },
    #[error("{name} has sha256 {actual}, the manifest says {expected}: refused")]
    HashMismatch {
        name: String,
        expected: String,
        actual: String,
    },
    /// A remote storage failed; `location` is `None` when `detail` already names the object.
    #[error("{}{detail}", location.as_deref().map(|l| format!("{l}: ")).unwrap_or_default())]
    Remote {
        location: Option<String>,
        detail: String,
    },
    #[error(
        "{location} already holds set {set} with a different manifest: refusing to overwrite it"
    )]
    Conflict { location: String, set: String },
}

impl StoreError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io {
            action,
            path,
            source,
        }
    }
}
