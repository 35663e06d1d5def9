//! The storage layer: backup sets in a local folder, an S3 bucket or any other [`Backend`].
//!
//! Every command and step kind goes through here for: the set id ([`SetId`]), the manifest
//! and its strict reading ([`Manifest`]), one listing and one status ([`Store::list_sets`],
//! [`SetSummary::from_stored`]), the three meanings of "newest"
//! ([`newest_restorable_with`], [`newest_restorable_with_all`], [`newest_with_manifest`]),
//! one delete ([`Store::delete_set`], manifest first), verify, restore, copy, prune, and the
//! rule for which storage backups go to and restores read from ([`choice`]).
//!
//! A new kind of storage is one [`Backend`] implementation plus its arm in [`Store::open`].

mod artifact_writer;
mod backend;
pub mod choice;
mod copy;
mod error;
mod local_store;
mod manifest;
#[cfg(test)]
mod memory_store;
pub mod prune;
mod restore_from_set;
mod s3_store;
mod set_id;
mod set_status;
mod set_writer;
mod step_api;
mod store;
mod verify;
mod verify_record;

pub use artifact_writer::{
    ArtifactDigest, ArtifactWriter, check_artifact_name, sync_dir, write_atomically,
};
pub use backend::ArtifactReader;
pub use copy::copy_between;
pub use error::StoreError;
pub use local_store::{LocalStore, SetDir};
pub use manifest::{
    ArtifactEntry, ArtifactKind, Facts, MANIFEST, MANIFEST_FORMAT, Manifest, PlanRef, VERIFY,
};
pub use restore_from_set::restore_source;
pub use set_id::SetId;
pub use set_status::{
    SetStatus, SetSummary, newest_restorable_with, newest_restorable_with_all, newest_with_manifest,
};
pub use set_writer::SetWriter;
pub use step_api::{restore_step, verify_step};
pub use store::{OpenStoreError, Store};
pub use verify::{check_artifact, verify_set};
pub use verify_record::{ArtifactProblem, Problem, VerifyRecord};

/// Lowercase hex of a digest: the one spelling of a sha256 in manifests, records and S3.
pub use artifact_writer::hex;
// What only the storage tests name through `super::`.
#[cfg(test)]
pub use copy::{ArtifactSource, CopyError, CopyReport, copy_set};
#[cfg(test)]
pub use s3_store::S3Store;
#[cfg(test)]
pub use step_api::StepError;

#[cfg(test)]
mod s3_tests;
#[cfg(test)]
mod step_api_tests;
#[cfg(test)]
mod tests;
