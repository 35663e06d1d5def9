//! Storage: where backup sets live. Exactly one kind key per storage.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Retention;
use crate::duration::Duration;

/// A place that holds backup sets.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Storage {
    /// A local (or mounted) folder.
    Local(LocalStorage),
    /// An S3-compatible bucket: AWS S3, MinIO, Backblaze B2, Wasabi, Cloudflare R2, GCS (interoperability).
    S3(S3Storage),
}

impl Storage {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Storage::Local(_) => "local",
            Storage::S3(_) => "s3",
        }
    }

    pub fn retention(&self) -> Option<&Retention> {
        match self {
            Storage::Local(local) => local.retention.as_ref(),
            Storage::S3(s3) => s3.retention.as_ref(),
        }
    }
}

/// A local folder.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocalStorage {
    /// The folder; sets go to `<path>/<plan>/<set-id>/`.
    pub path: String,
    /// Retention for this storage (overrides the plan's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

/// An S3-compatible bucket.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct S3Storage {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (e.g. `crm/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Region (default `us-east-1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint URL for non-AWS services (e.g. `https://s3.eu-central-003.backblazeb2.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by MinIO and most self-hosted servers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub path_style: bool,
    /// Access key id (a template, e.g. `{{env.AWS_ACCESS_KEY_ID}}`; default: `AWS_ACCESS_KEY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Secret access key, normally `{{secrets.NAME}}` (default: `AWS_SECRET_ACCESS_KEY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<String>,
    /// A PEM file of extra CA certificates to trust (TLS is always verified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// Allow `http://` endpoints (only for servers on loopback or in tests).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_http: bool,
    /// How long the service may make no progress (no byte sent or received, retries
    /// included) before an operation fails; the longest a frozen or unreachable server can
    /// hold a run (default `2m`, from `1s` to `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_timeout: Option<Duration>,
    /// Retention for this storage (overrides the plan's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}
