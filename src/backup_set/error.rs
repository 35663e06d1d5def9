//! Errors from reading and writing backup sets.

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
    #[error("{}: {message}", path.display())]
    BadManifest { path: PathBuf, message: String },
    #[error("no backup set `{set}` for plan `{plan}` in {location}")]
    NoSuchSet {
        plan: String,
        set: String,
        location: String,
    },
    #[error("no complete backup set for plan `{plan}` in {location}")]
    NoCompleteSet { plan: String, location: String },
    #[error("backup set `{set}` is incomplete (no manifest.json): it is never restored from")]
    Incomplete { set: String },
    #[error(
        "`{name}` is not a valid artifact name (a plain file name without `/`, not starting with `.`)"
    )]
    BadArtifactName { name: String },
    #[error("artifact `{name}` is not in the manifest of set `{set}`")]
    NoSuchArtifact { set: String, name: String },
    #[error("{location}: {detail}")]
    Remote { location: String, detail: String },
    #[error("{location} receives sets only by `copy`, which knows each artifact's sha256 up front")]
    CopyOnly { location: String },
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
