//! Backup sets: ids, the hashing artifact writer, manifests, verify records, and the storage
//! API ([`Store`]) that lists, reads, verifies and deletes them.

mod artifact_writer;
mod error;
mod local_store;
mod manifest;
mod restore_from_set;
mod s3_sets;
mod set_id;
mod set_status;
mod set_writer;
mod step_api;
mod store;
mod verify;
mod verify_record;

pub use artifact_writer::{
    ArtifactDigest, ArtifactWriter, check_artifact_name, hex, sync_dir, write_atomically,
};
pub use error::StoreError;
pub use local_store::{LocalStore, MANIFEST, SetDir, VERIFY};
pub use manifest::{ArtifactEntry, ArtifactKind, Facts, MANIFEST_FORMAT, Manifest, PlanRef};
pub use restore_from_set::restore_source;
pub use set_id::SetId;
pub use set_status::{SetStatus, SetSummary};
pub use set_writer::{SetWriter, TargetError};
pub use step_api::{StepError, restore_step, verify_step};
pub use store::{ArtifactReader, OpenStoreError, Store};
pub use verify::{check_artifact, verify_set};
pub use verify_record::{ArtifactProblem, Problem, VerifyRecord};
