//! The client side of the S3 unit tests: a plan's storage section and a bucket client for the
//! test server in [`super::test_server`], with tuning sized for test data.

use std::time::Duration;

use super::test_server::{ACCESS_KEY, BUCKET, S3Server, SECRET_KEY};
use super::{S3Bucket, S3Settings, Tuning};
use crate::plan::S3Storage;

/// Small parts so multipart paths run on test-sized data; short retries so a dead server fails fast.
pub(crate) fn tuning() -> Tuning {
    Tuning {
        part_size: 5 * 1024 * 1024,
        parallel_parts: 3,
        max_retries: 2,
        retry_timeout: Duration::from_secs(3),
        request_timeout: Duration::from_secs(20),
        connect_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(10),
        stall_timeout: Duration::from_secs(20),
    }
}

/// The storage section a plan would carry for a server at `endpoint`, under `prefix`.
pub(crate) fn storage_at(endpoint: &str, prefix: &str) -> S3Storage {
    S3Storage {
        bucket: BUCKET.into(),
        prefix: Some(prefix.into()),
        region: Some("us-east-1".into()),
        endpoint: Some(endpoint.into()),
        path_style: true,
        access_key_id: Some(ACCESS_KEY.into()),
        secret_access_key: Some(SECRET_KEY.into()),
        session_token: None,
        ca_file: None,
        allow_http: endpoint.starts_with("http://"),
        stall_timeout: None,
        retention: None,
    }
}

/// A bucket client for `storage` with the test [`tuning`].
pub(crate) fn connect(storage: &S3Storage) -> S3Bucket {
    let settings = S3Settings::resolve(storage, |_| None).unwrap();
    S3Bucket::connect(&settings, tuning()).unwrap()
}

impl S3Server {
    /// The storage section a plan would carry for this server.
    pub(crate) fn storage(&self, prefix: &str) -> S3Storage {
        storage_at(&self.endpoint(), prefix)
    }

    /// A bucket client for `prefix` on this server, with the test [`tuning`].
    pub(crate) fn bucket(&self, prefix: &str) -> S3Bucket {
        connect(&self.storage(prefix))
    }
}
