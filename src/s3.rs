//! S3-compatible object storage: a verified, bounded-memory client over `object_store`.
//!
//! [`S3Bucket`] is configured from a rendered [`S3Storage`] (credentials from the plan or the
//! environment, a custom CA, TLS always verified) and speaks in keys relative to the storage's
//! prefix. Uploads store the artifact's sha256 as object metadata, go multipart with parallel
//! parts above one part size, hash while they send, and are checked with a HEAD afterwards:
//! a multipart ETag is not a checksum, so the metadata and the size are what is compared.
//!
//! Nothing waits forever: every request fails once no byte moved for the idle timeout (see
//! [`watched_http`]), and every operation, retries included, fails once the service made no
//! progress for the storage's `stall_timeout`. Errors that retrying cannot fix (an untrusted
//! certificate, an unknown host, refused credentials, a missing bucket) fail at once, and
//! every error names the operation that failed.

mod watched_http;

#[cfg(test)]
mod bucket_tests;
#[cfg(test)]
mod fault_tests;
#[cfg(test)]
pub(crate) mod test_client;
#[cfg(test)]
pub(crate) mod test_server;

use std::error::Error as StdError;
#[cfg(test)]
use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::client::{HttpError, HttpRequestBody};
use object_store::multipart::MultipartStore;
use object_store::path::Path as ObjectPath;
use object_store::signer::{Method, SignedUrlOptions, Signer};
use object_store::{
    Attribute, AttributeValue, Attributes, BackoffConfig, GetOptions, MultipartUpload, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, RetryConfig,
};
use sha2::{Digest, Sha256};
#[cfg(test)]
use tokio::io::AsyncWriteExt;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use watched_http::{Fault, Progress, WatchedConnector, WatchedHttp};

use crate::plan::S3Storage;

/// How many listing pages (retries included) one listing may take beyond one per key it
/// received: an honest page holds up to 1,000 keys, so only a service that answers page after
/// page with nothing new comes near it.
pub const LISTING_IDLE_PAGES: u64 = 100;

/// The longest one listing may take, however steadily the service answers: a bucket of a
/// million objects lists in a few minutes.
pub const LISTING_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The object metadata key (`x-amz-meta-sha256`) holding an object's sha256 as lowercase hex.
pub const SHA256_METADATA: &str = "sha256";

/// How uploads, timeouts and retries behave. The defaults bound memory to about
/// `part_size * (parallel_parts + 1)` (56 MiB) per upload, and the time a frozen or
/// unreachable service can hold an operation to `stall_timeout` (2 minutes).
#[derive(Clone, Debug)]
pub struct Tuning {
    /// Bytes per multipart part; objects up to this size go up in one PUT. S3 needs >= 5 MiB.
    pub part_size: usize,
    /// Parts in flight at once.
    pub parallel_parts: usize,
    /// Retries of one request on timeouts, connection errors and 5xx responses.
    pub max_retries: usize,
    /// No retry starts after this long since the request was first sent.
    pub retry_timeout: Duration,
    /// Limit for one request (one part, one listing page), however it progresses.
    pub request_timeout: Duration,
    /// Limit for opening a connection, TLS handshake included.
    pub connect_timeout: Duration,
    /// One request fails (and may be retried) once no byte moved either way for this long.
    pub idle_timeout: Duration,
    /// An operation fails once the service made no progress for this long, retries included:
    /// the longest a frozen service can hold an operation, an aborted upload's cleanup
    /// included.
    pub stall_timeout: Duration,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            part_size: 8 * 1024 * 1024,
            parallel_parts: 6,
            max_retries: 8,
            retry_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(120),
        }
    }
}

impl Tuning {
    /// These settings with `stall` as the stall timeout, and the per-request limits shortened
    /// to fit inside it: a quarter each for connecting and for one idle request, half for
    /// starting retries, so that a request's own error (which names the cause) normally
    /// arrives before the stall timeout cuts the operation off.
    pub fn with_stall_timeout(self, stall: Duration) -> Tuning {
        let quarter = (stall / 4).max(Duration::from_secs(1));
        Tuning {
            connect_timeout: self.connect_timeout.min(quarter),
            idle_timeout: self.idle_timeout.min(quarter),
            retry_timeout: self.retry_timeout.min(stall / 2),
            stall_timeout: stall,
            ..self
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error(
        "endpoint {endpoint} is plain http: set `allow_http: true` only for a server on loopback or in tests"
    )]
    PlainHttp { endpoint: String },
    #[error("endpoint `{endpoint}` is not a URL such as https://s3.example.com")]
    BadEndpoint { endpoint: String },
    #[error(
        "no credentials for bucket {bucket}: set access_key_id and secret_access_key in the storage, \
         or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment"
    )]
    NoCredentials { bucket: String },
    #[error("cannot read ca_file {}: {source}", path.display())]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("ca_file {}: no PEM certificate could be read ({detail})", path.display())]
    CaPem { path: PathBuf, detail: String },
    #[error("cannot configure the S3 client for bucket {bucket}: {detail}")]
    Config { bucket: String, detail: String },
    #[error("`{key}` is not a valid object key: {detail}")]
    BadKey { key: String, detail: String },
    #[error("s3://{bucket}/{key}: not found")]
    NotFound { bucket: String, key: String },
    #[error("s3://{bucket}/{key}: {detail}")]
    Request {
        bucket: String,
        key: String,
        detail: String,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    Local {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} has sha256 {actual}, but {expected} was expected: nothing was stored")]
    SourceMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("s3://{bucket}/{key} does not match after upload: {detail}")]
    NotStored {
        bucket: String,
        key: String,
        detail: String,
    },
}

/// The settings an [`S3Bucket`] is built from, resolved from the plan and the environment.
/// Separate from the client so that resolution is a pure, testable step.
#[derive(Clone)]
pub struct S3Settings {
    pub bucket: String,
    /// Key prefix without leading or trailing `/` (may be empty).
    pub prefix: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub path_style: bool,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub allow_http: bool,
    /// The storage's `stall_timeout`, which overrides the [`Tuning`]'s when set.
    pub stall_timeout: Option<Duration>,
}

// Hand-written so that a stray `{:?}` can never print a secret.
impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("path_style", &self.path_style)
            .field("access_key_id", &"***")
            .field("secret_access_key", &"***")
            .field("ca_file", &self.ca_file)
            .field("allow_http", &self.allow_http)
            .field("stall_timeout", &self.stall_timeout)
            .finish()
    }
}

impl S3Settings {
    /// Resolves a rendered storage: values the plan gives win, then `AWS_*` variables from `env`.
    pub fn resolve(
        storage: &S3Storage,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<S3Settings, S3Error> {
        let given = |value: &Option<String>, var: &str| {
            value
                .clone()
                .filter(|v| !v.is_empty())
                .or_else(|| env(var).filter(|v| !v.is_empty()))
        };
        let endpoint =
            given(&storage.endpoint, "AWS_ENDPOINT_URL_S3").or_else(|| env("AWS_ENDPOINT_URL"));
        if let Some(endpoint) = &endpoint {
            let lower = endpoint.to_ascii_lowercase();
            if lower.starts_with("http://") {
                if !storage.allow_http {
                    return Err(S3Error::PlainHttp {
                        endpoint: endpoint.clone(),
                    });
                }
            } else if !lower.starts_with("https://") {
                return Err(S3Error::BadEndpoint {
                    endpoint: endpoint.clone(),
                });
            }
        }
        let stall_timeout = storage.stall_timeout.map(|d| d.as_std());
        if stall_timeout.is_some_and(|d| d < Duration::from_secs(1)) {
            return Err(S3Error::Config {
                bucket: storage.bucket.clone(),
                detail: "stall_timeout must be at least 1s".into(),
            });
        }
        let (Some(access_key_id), Some(secret_access_key)) = (
            given(&storage.access_key_id, "AWS_ACCESS_KEY_ID"),
            given(&storage.secret_access_key, "AWS_SECRET_ACCESS_KEY"),
        ) else {
            return Err(S3Error::NoCredentials {
                bucket: storage.bucket.clone(),
            });
        };
        Ok(S3Settings {
            bucket: storage.bucket.clone(),
            prefix: storage
                .prefix
                .as_deref()
                .unwrap_or("")
                .trim_matches('/')
                .to_owned(),
            region: given(&storage.region, "AWS_REGION")
                .or_else(|| env("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".to_owned()),
            endpoint,
            path_style: storage.path_style,
            access_key_id,
            secret_access_key,
            session_token: given(&storage.session_token, "AWS_SESSION_TOKEN"),
            ca_file: storage.ca_file.as_ref().map(PathBuf::from),
            allow_http: storage.allow_http,
            stall_timeout,
        })
    }
}

/// What an upload stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    pub sha256: String,
    /// Whether it went up in parts.
    pub multipart: bool,
}

/// An object in a listing, with its key relative to the storage prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// When the object was last written, as the server reports it.
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// What a HEAD says about an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectHead {
    pub size: u64,
    /// The `sha256` metadata, if the object has it (objects planrun did not upload may not).
    pub sha256: Option<String>,
}

/// Size and sha256 of an object's stored bytes, read in full.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectDigest {
    pub size: u64,
    pub sha256: String,
}

/// One bucket (and prefix) of an S3-compatible service.
#[derive(Clone, Debug)]
pub struct S3Bucket {
    store: Arc<AmazonS3>,
    /// For the requests object_store does not make (listing multipart uploads), sent to
    /// URLs it signs, through the same watched transport.
    http: WatchedHttp,
    /// When the service last moved a byte, for every request of this bucket.
    progress: Arc<Progress>,
    bucket: String,
    prefix: String,
    tuning: Tuning,
}

impl S3Bucket {
    pub fn connect(settings: &S3Settings, tuning: Tuning) -> Result<S3Bucket, S3Error> {
        let tuning = match settings.stall_timeout {
            Some(stall) => tuning.with_stall_timeout(stall),
            None => tuning,
        };
        let config_error = |detail: String| S3Error::Config {
            bucket: settings.bucket.clone(),
            detail,
        };
        // One client for everything, built here rather than by object_store, so that its
        // requests go through the progress watchdog.
        let mut http = reqwest::Client::builder()
            .https_only(!settings.allow_http)
            .http1_only()
            .timeout(tuning.request_timeout)
            .connect_timeout(tuning.connect_timeout);
        if let Some(path) = &settings.ca_file {
            let pem = std::fs::read(path).map_err(|source| S3Error::CaFile {
                path: path.clone(),
                source,
            })?;
            let certificates =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| S3Error::CaPem {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
            if certificates.is_empty() {
                return Err(S3Error::CaPem {
                    path: path.clone(),
                    detail: "the file holds no certificate".into(),
                });
            }
            // Added to the system roots, never instead of verification.
            for certificate in certificates {
                http = http.add_root_certificate(certificate);
            }
        }
        let client = http.build().map_err(|e| config_error(e.to_string()))?;
        let progress = Progress::new();
        let connector = WatchedConnector {
            client,
            idle: tuning.idle_timeout,
            progress: progress.clone(),
        };
        let http = connector.service();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_access_key_id(&settings.access_key_id)
            .with_secret_access_key(&settings.secret_access_key)
            .with_allow_http(settings.allow_http)
            .with_http_connector(connector)
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(200),
                    max_backoff: Duration::from_secs(10),
                    base: 2.0,
                },
                max_retries: tuning.max_retries,
                retry_timeout: tuning.retry_timeout,
            });
        if let Some(token) = &settings.session_token {
            builder = builder.with_token(token);
        }
        match &settings.endpoint {
            Some(endpoint) if settings.path_style => {
                builder = builder
                    .with_endpoint(endpoint.trim_end_matches('/'))
                    .with_virtual_hosted_style_request(false);
            }
            // object_store expects a virtual-hosted endpoint to name the bucket already.
            Some(endpoint) => {
                let (scheme, host) =
                    endpoint
                        .split_once("://")
                        .ok_or_else(|| S3Error::BadEndpoint {
                            endpoint: endpoint.clone(),
                        })?;
                let endpoint = format!(
                    "{scheme}://{}.{}",
                    settings.bucket,
                    host.trim_end_matches('/')
                );
                builder = builder
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(true);
            }
            None => builder = builder.with_virtual_hosted_style_request(!settings.path_style),
        }
        let store = builder.build().map_err(|e| config_error(e.to_string()))?;
        Ok(S3Bucket {
            store: Arc::new(store),
            http,
            progress,
            bucket: settings.bucket.clone(),
            prefix: settings.prefix.clone(),
            tuning,
        })
    }

    /// `s3://bucket/prefix/key`, for messages.
    pub fn url_of(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, self.full_key(key))
    }

    fn full_key(&self, key: &str) -> String {
        let key = key.trim_start_matches('/');
        if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    fn path(&self, key: &str) -> Result<ObjectPath, S3Error> {
        let full = self.full_key(key);
        ObjectPath::parse(&full).map_err(|e| S3Error::BadKey {
            key: full,
            detail: e.to_string(),
        })
    }

    /// The key relative to the prefix, for a path the store returned.
    fn relative(&self, path: &ObjectPath) -> String {
        let full = path.as_ref();
        if self.prefix.is_empty() {
            full.to_owned()
        } else {
            full.strip_prefix(&self.prefix)
                .map(|k| k.trim_start_matches('/'))
                .unwrap_or(full)
                .to_owned()
        }
    }

    /// The error of `operation` on `key`, in words that name the cause.
    fn request_error(&self, operation: &str, key: &str, error: object_store::Error) -> S3Error {
        let detail = describe(&error, &self.bucket);
        match error {
            object_store::Error::NotFound { .. } if !detail.contains("NoSuchBucket") => {
                S3Error::NotFound {
                    bucket: self.bucket.clone(),
                    key: self.full_key(key),
                }
            }
            _ => self.failed(operation, key, detail),
        }
    }

    fn failed(&self, operation: &str, key: &str, detail: String) -> S3Error {
        S3Error::Request {
            bucket: self.bucket.clone(),
            key: self.full_key(key),
            detail: format!("{operation}: {detail}"),
        }
    }

    /// Runs one operation under the stall timeout (see [`Watch::run`]).
    async fn watched<T>(
        &self,
        operation: &str,
        key: &str,
        work: impl Future<Output = Result<T, S3Error>>,
    ) -> Result<T, S3Error> {
        self.watch(key)
            .run(operation, self.tuning.stall_timeout, work)
            .await
    }

    fn watch(&self, key: &str) -> Watch {
        Watch {
            progress: self.progress.clone(),
            stall: self.tuning.stall_timeout,
            bucket: self.bucket.clone(),
            key: self.full_key(key),
        }
    }

    /// Uploads a local file as `key`, then checks the stored object (see [`Self::upload`]).
    #[cfg(test)]
    pub async fn upload_file(
        &self,
        local: &Path,
        key: &str,
        expected_sha256: &str,
    ) -> Result<Uploaded, S3Error> {
        let file = tokio::fs::File::open(local)
            .await
            .map_err(|source| S3Error::Local {
                action: "open",
                path: local.to_owned(),
                source,
            })?;
        self.upload(file, key, expected_sha256, &local.display().to_string())
            .await
    }

    /// Streams `reader` to `key` with `expected_sha256` as its metadata.
    ///
    /// The metadata has to travel with the first request, so the hash is known up front (from
    /// the manifest); the bytes are hashed again as they go, and if they differ nothing becomes
    /// visible: a multipart upload is aborted, a single PUT is never sent. Afterwards a HEAD
    /// checks size and metadata. `what` names the source in errors.
    pub async fn upload(
        &self,
        mut reader: impl AsyncRead + Unpin + Send,
        key: &str,
        expected_sha256: &str,
        what: &str,
    ) -> Result<Uploaded, S3Error> {
        let path = self.path(key)?;
        let read_error = |source| S3Error::Local {
            action: "read",
            path: PathBuf::from(what),
            source,
        };
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::Metadata(SHA256_METADATA.into()),
            AttributeValue::from(expected_sha256.to_ascii_lowercase()),
        );
        let mut hasher = Sha256::new();
        let first = read_chunk(&mut reader, self.tuning.part_size)
            .await
            .map_err(read_error)?;
        hasher.update(&first);
        crate::meter::add(first.len() as u64);
        let mut size = first.len() as u64;

        let multipart = first.len() == self.tuning.part_size;
        if !multipart {
            let actual = crate::storage::hex(&hasher.finalize());
            check_source(what, expected_sha256, &actual)?;
            let options = PutOptions {
                attributes,
                ..PutOptions::default()
            };
            self.watched("uploading", key, async {
                self.store
                    .put_opts(&path, PutPayload::from_bytes(first), options)
                    .await
                    .map_err(|e| self.request_error("uploading", key, e))
            })
            .await?;
        } else {
            let options = PutMultipartOptions {
                attributes,
                ..PutMultipartOptions::default()
            };
            let mut upload = self
                .watched("starting a multipart upload", key, async {
                    self.store
                        .put_multipart_opts(&path, options)
                        .await
                        .map_err(|e| self.request_error("starting a multipart upload", key, e))
                })
                .await?;
            // The abort after a failure gets an eighth of the stall timeout, taken from it, so
            // that failing and cleaning up together stay within the stall timeout. A part's
            // own error (idle, then retried until half the stall timeout) comes before that.
            let abort_time = self.tuning.idle_timeout.min(self.tuning.stall_timeout / 8);
            let stall = self.tuning.stall_timeout - abort_time;
            let sent =
                self.watch(key)
                    .run("uploading in parts", stall, async {
                        self.send_parts(
                            &mut *upload,
                            first,
                            &mut reader,
                            &mut hasher,
                            &mut size,
                            key,
                        )
                        .await
                        .map_err(|error| match error {
                            PartsError::Local(source) => read_error(source),
                            PartsError::Remote(error) => error,
                        })?;
                        check_source(
                            what,
                            expected_sha256,
                            &crate::storage::hex(&hasher.clone().finalize()),
                        )?;
                        upload.complete().await.map_err(|e| {
                            self.request_error("completing the multipart upload", key, e)
                        })
                    })
                    .await;
            if let Err(error) = sent {
                // The error that matters is the first one; the abort's outcome comes second.
                // Parts an abort could not free are removed by a later copy (`abort_abandoned`).
                let outcome = match tokio::time::timeout(abort_time, upload.abort()).await {
                    Ok(Ok(())) => "the multipart upload was aborted".to_owned(),
                    Ok(Err(abort)) => format!(
                        "aborting the multipart upload failed too: {}",
                        describe(&abort, &self.bucket)
                    ),
                    Err(_) => format!(
                        "aborting the multipart upload got no answer in {}",
                        crate::duration::Duration(abort_time)
                    ),
                };
                return Err(with_outcome(error, &outcome));
            }
        }

        let sha256 = expected_sha256.to_ascii_lowercase();
        let head = self
            .head_as("checking the upload", key)
            .await
            .map_err(|error| match error {
                S3Error::NotFound { bucket, key } => S3Error::NotStored {
                    bucket,
                    key,
                    detail: "the object is missing after the upload".into(),
                },
                other => other,
            })?;
        let not_stored = |detail: String| S3Error::NotStored {
            bucket: self.bucket.clone(),
            key: self.full_key(key),
            detail,
        };
        if head.size != size {
            return Err(not_stored(format!(
                "{} bytes stored, {size} sent",
                head.size
            )));
        }
        if head.sha256.as_deref() != Some(sha256.as_str()) {
            return Err(not_stored(format!(
                "metadata sha256 is {}, expected {sha256}",
                head.sha256.as_deref().unwrap_or("missing")
            )));
        }
        Ok(Uploaded {
            size,
            sha256,
            multipart,
        })
    }

    /// Sends `first` and the rest of `reader` as parts, `parallel_parts` at a time, hashing
    /// and counting what it reads. A failed part stops the upload and is the error reported.
    async fn send_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        first: Bytes,
        reader: &mut (impl AsyncRead + Unpin + Send),
        hasher: &mut Sha256,
        size: &mut u64,
        key: &str,
    ) -> Result<(), PartsError> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut chunk = first;
        let mut number = 1usize;
        loop {
            let part = upload.put_part(PutPayload::from_bytes(chunk));
            tasks.spawn(async move { (number, part.await) });
            // Back-pressure: no more than `parallel_parts` parts in memory and in flight.
            while tasks.len() >= self.tuning.parallel_parts.max(1) {
                self.part_done(tasks.join_next().await, key)?;
            }
            chunk = read_chunk(reader, self.tuning.part_size)
                .await
                .map_err(PartsError::Local)?;
            if chunk.is_empty() {
                break;
            }
            hasher.update(&chunk);
            crate::meter::add(chunk.len() as u64);
            *size += chunk.len() as u64;
            number += 1;
        }
        while let Some(joined) = tasks.join_next().await {
            self.part_done(Some(joined), key)?;
        }
        Ok(())
    }

    fn part_done(
        &self,
        joined: Option<Result<(usize, object_store::Result<()>), tokio::task::JoinError>>,
        key: &str,
    ) -> Result<(), PartsError> {
        match joined {
            None | Some(Ok((_, Ok(())))) => Ok(()),
            Some(Ok((number, Err(error)))) => Err(PartsError::Remote(self.request_error(
                &format!("uploading part {number}"),
                key,
                error,
            ))),
            Some(Err(error)) => Err(PartsError::Remote(self.failed(
                "uploading a part",
                key,
                error.to_string(),
            ))),
        }
    }

    /// Uploads small bytes (a manifest, a verify record) in one PUT, with their sha256.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<Uploaded, S3Error> {
        let sha256 = crate::storage::hex(&Sha256::digest(&bytes));
        self.upload(bytes.as_slice(), key, &sha256, key).await
    }

    /// Size and `sha256` metadata of an object.
    pub async fn head(&self, key: &str) -> Result<ObjectHead, S3Error> {
        self.head_as("reading the object's metadata", key).await
    }

    async fn head_as(&self, operation: &str, key: &str) -> Result<ObjectHead, S3Error> {
        let path = self.path(key)?;
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = self
            .watched(operation, key, async {
                self.store
                    .get_opts(&path, options)
                    .await
                    .map_err(|e| self.request_error(operation, key, e))
            })
            .await?;
        let sha256 = result
            .attributes
            .get(&Attribute::Metadata(SHA256_METADATA.into()))
            .map(|v| v.as_ref().to_owned());
        Ok(ObjectHead {
            size: result.meta.size,
            sha256,
        })
    }

    /// The whole object in memory: for manifests and other small objects only.
    pub async fn get_bytes(&self, key: &str) -> Result<Bytes, S3Error> {
        let path = self.path(key)?;
        self.watched("reading", key, async {
            let result = self
                .store
                .get(&path)
                .await
                .map_err(|e| self.request_error("reading", key, e))?;
            result
                .bytes()
                .await
                .map_err(|e| self.request_error("reading", key, e))
        })
        .await
    }

    /// The object's bytes as a stream of chunks, read from the service (never a cache).
    pub async fn stream(
        &self,
        key: &str,
    ) -> Result<impl futures::Stream<Item = Result<Bytes, S3Error>> + Send + 'static + use<>, S3Error>
    {
        let path = self.path(key)?;
        let result = self
            .watched("reading", key, async {
                self.store
                    .get(&path)
                    .await
                    .map_err(|e| self.request_error("reading", key, e))
            })
            .await?;
        // Each chunk is awaited under the stall timeout, like any other operation.
        let watch = self.watch(key);
        let chunks = result.into_stream();
        Ok(futures::stream::unfold(
            Some((chunks, watch)),
            |state| async move {
                let (mut chunks, watch) = state?;
                let next = watch
                    .run("reading", watch.stall, async {
                        chunks
                            .next()
                            .await
                            .transpose()
                            .map_err(|e| S3Error::Request {
                                bucket: watch.bucket.clone(),
                                key: watch.key.clone(),
                                detail: format!("reading: {}", describe(&e, &watch.bucket)),
                            })
                    })
                    .await;
                match next {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some((chunks, watch)))),
                    Ok(None) => None,
                    Err(error) => Some((Err(error), None)),
                }
            },
        ))
    }

    /// The object as an `AsyncRead`, for code that reads artifacts the same way from any storage.
    pub async fn reader(
        &self,
        key: &str,
    ) -> Result<impl AsyncRead + Send + Unpin + 'static + use<>, S3Error> {
        let stream = self
            .stream(key)
            .await?
            .map(|chunk| chunk.map_err(std::io::Error::other));
        Ok(tokio_util_stream_reader(Box::pin(stream)))
    }

    /// Reads the whole stored object and hashes it: what verify does for an off-site set.
    #[cfg(test)]
    pub async fn digest(&self, key: &str) -> Result<ObjectDigest, S3Error> {
        let mut stream = Box::pin(self.stream(key).await?);
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(ObjectDigest {
            size,
            sha256: crate::storage::hex(&hasher.finalize()),
        })
    }

    /// Downloads `key` to `dest`: temp name beside it, fsync, rename, fsync the folder. Returns
    /// what was written, hashed on the way.
    #[cfg(test)]
    pub async fn download(&self, key: &str, dest: &Path) -> Result<ObjectDigest, S3Error> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let file_name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp = dir.join(format!(".{file_name}.planrun-partial"));
        fn local(
            action: &'static str,
            path: &Path,
        ) -> impl FnOnce(std::io::Error) -> S3Error + use<> {
            let path = path.to_owned();
            move |source| S3Error::Local {
                action,
                path,
                source,
            }
        }
        let result: Result<ObjectDigest, S3Error> = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&temp)
                .await
                .map_err(local("create", &temp))?;
            let mut stream = Box::pin(self.stream(key).await?);
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                hasher.update(&chunk);
                crate::meter::add(chunk.len() as u64);
                size += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(local("write", &temp))?;
            }
            file.sync_all().await.map_err(local("sync", &temp))?;
            Ok(ObjectDigest {
                size,
                sha256: crate::storage::hex(&hasher.finalize()),
            })
        }
        .await;
        match result {
            Ok(digest) => {
                tokio::fs::rename(&temp, dest)
                    .await
                    .map_err(local("rename into place", dest))?;
                if let Ok(handle) = tokio::fs::File::open(dir).await {
                    handle.sync_all().await.map_err(local("sync", dir))?;
                }
                Ok(digest)
            }
            Err(error) => {
                tokio::fs::remove_file(&temp).await.ok();
                Err(error)
            }
        }
    }

    /// Every object under `prefix` (relative), recursively, in key order.
    ///
    /// A listing is paged, and the service decides when it ends, so a broken or hostile one
    /// could keep it going forever with a new continuation token each time. Three bounds
    /// hold whatever it answers: no key may come twice (a key that comes again means the
    /// pages repeat), pages without a new key are limited to
    /// [`LISTING_IDLE_PAGES`], and the whole listing to [`LISTING_DEADLINE`].
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, S3Error> {
        let path = self.list_path(prefix)?;
        let mut objects: Vec<ObjectInfo> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let pages_before = self.progress.list_pages();
        let started = Instant::now();
        let endless = |detail: String| {
            self.failed(
                "listing",
                prefix,
                format!("the service at {} {detail}", self.progress.host()),
            )
        };
        self.watched("listing", prefix, async {
            let mut listing = self.store.list(path.as_ref());
            loop {
                // `next` is cancel-safe: the pause only lets the bounds below be checked
                // while object_store asks for page after empty page.
                let item = tokio::select! {
                    item = listing.next() => item,
                    () = tokio::time::sleep(Duration::from_millis(100)) => {
                        self.check_listing(&objects, pages_before, started, &endless)?;
                        continue;
                    }
                };
                let Some(meta) = item else { break };
                let meta = meta.map_err(|e| self.request_error("listing", prefix, e))?;
                let key = self.relative(&meta.location);
                if !seen.insert(key.clone()) {
                    return Err(endless(format!(
                        "repeats itself: the listing gave `{key}` twice, so its pages would \
                         never end"
                    )));
                }
                objects.push(ObjectInfo {
                    key,
                    size: meta.size,
                    last_modified: meta.last_modified,
                });
                self.check_listing(&objects, pages_before, started, &endless)?;
            }
            Ok(())
        })
        .await?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// The bounds of a listing in progress (see [`Self::list`]).
    fn check_listing(
        &self,
        objects: &[ObjectInfo],
        pages_before: u64,
        started: Instant,
        endless: &impl Fn(String) -> S3Error,
    ) -> Result<(), S3Error> {
        let pages = self.progress.list_pages().saturating_sub(pages_before);
        if pages > objects.len() as u64 + LISTING_IDLE_PAGES {
            return Err(endless(format!(
                "sent {pages} listing pages holding {} keys and still says there are more; \
                 a listing that does not end is refused",
                objects.len()
            )));
        }
        if started.elapsed() > LISTING_DEADLINE {
            return Err(endless(format!(
                "has not finished a listing in {}; a listing that does not end is refused",
                crate::duration::Duration(LISTING_DEADLINE)
            )));
        }
        Ok(())
    }

    /// The "folders" directly under `prefix` (relative keys without a trailing `/`) and the
    /// objects directly in it: one delimiter listing, so 10,000 sets are a few requests.
    #[cfg(test)]
    pub async fn list_folder(
        &self,
        prefix: &str,
    ) -> Result<(Vec<String>, Vec<ObjectInfo>), S3Error> {
        let path = self.list_path(prefix)?;
        let result = self
            .watched("listing", prefix, async {
                self.store
                    .list_with_delimiter(path.as_ref())
                    .await
                    .map_err(|e| self.request_error("listing", prefix, e))
            })
            .await?;
        let folders = result
            .common_prefixes
            .iter()
            .map(|p| self.relative(p))
            .collect();
        let objects = result
            .objects
            .iter()
            .map(|meta| ObjectInfo {
                key: self.relative(&meta.location),
                size: meta.size,
                last_modified: meta.last_modified,
            })
            .collect();
        Ok((folders, objects))
    }

    fn list_path(&self, prefix: &str) -> Result<Option<ObjectPath>, S3Error> {
        let full = self.full_key(prefix.trim_end_matches('/'));
        if full.is_empty() {
            return Ok(None);
        }
        ObjectPath::parse(&full)
            .map(Some)
            .map_err(|e| S3Error::BadKey {
                key: full,
                detail: e.to_string(),
            })
    }

    /// Deletes one object. Deleting a missing object is not an error (S3 semantics).
    pub async fn delete(&self, key: &str) -> Result<(), S3Error> {
        let path = self.path(key)?;
        self.watched("deleting", key, async {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(self.request_error("deleting", key, e)),
            }
        })
        .await
    }
}

/// The stall timeout of operations on one key: a handle that streams can carry.
#[derive(Clone, Debug)]
struct Watch {
    progress: Arc<Progress>,
    stall: Duration,
    bucket: String,
    /// The full key, for messages.
    key: String,
}

impl Watch {
    /// Runs `work`, failing it once the service made no progress for `stall`. A request of
    /// ours that fails on its own (idle, refused, retried out) reports its cause first; this
    /// bound holds whatever the retries add up to.
    async fn run<T>(
        &self,
        operation: &str,
        stall: Duration,
        work: impl Future<Output = Result<T, S3Error>>,
    ) -> Result<T, S3Error> {
        let started = Instant::now();
        tokio::pin!(work);
        let result = loop {
            let deadline = self.progress.baseline(started) + stall;
            tokio::select! {
                result = &mut work => break result,
                () = tokio::time::sleep_until(deadline) => {
                    if self.progress.baseline(started) + stall <= Instant::now() {
                        break Err(S3Error::Request {
                            bucket: self.bucket.clone(),
                            key: self.key.clone(),
                            detail: format!(
                                "{operation}: the service made no progress for {} (stall_timeout)",
                                crate::duration::Duration(stall)
                            ),
                        });
                    }
                }
            }
        };
        if matches!(result, Err(S3Error::Request { .. })) && !self.progress.answered_since(started)
        {
            self.progress.mark_stalled();
        }
        result
    }
}

/// What went wrong in words a person can act on: our own transport fault if there is one,
/// then the S3 error codes that retrying cannot fix, then object_store's own text.
fn describe(error: &(dyn StdError + 'static), bucket: &str) -> String {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(fault) = current.downcast_ref::<Fault>() {
            return fault.to_string();
        }
        cause = current.source();
    }
    let text = error.to_string();
    match xml_tag(&text, "Code") {
        Some("SignatureDoesNotMatch") => "the service refused the request signature \
             (HTTP 403 SignatureDoesNotMatch): check `secret_access_key`"
            .to_owned(),
        Some("InvalidAccessKeyId") => "the service does not know the access key \
             (HTTP 403 InvalidAccessKeyId): check `access_key_id`"
            .to_owned(),
        Some("AccessDenied") => "access denied (HTTP 403 AccessDenied): the credentials \
             may not use this bucket or key"
            .to_owned(),
        Some("NoSuchBucket") => format!("bucket {bucket} does not exist (HTTP 404 NoSuchBucket)"),
        _ => {
            // "error sending request" alone hides the cause, which is the innermost error.
            let mut deepest: &(dyn StdError + 'static) = error;
            while let Some(cause) = deepest.source() {
                deepest = cause;
            }
            let cause = deepest.to_string();
            if text.contains(&cause) {
                text
            } else {
                format!("{text} ({cause})")
            }
        }
    }
}

/// A multipart upload the service still holds parts of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingUpload {
    /// Relative to the storage prefix.
    pub key: String,
    pub upload_id: String,
    pub initiated: Option<DateTime<Utc>>,
}

impl S3Bucket {
    /// Multipart uploads started under `prefix` and neither completed nor aborted.
    pub async fn pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, S3Error> {
        self.watched(
            "listing multipart uploads",
            prefix,
            self.pending_upload_pages(prefix),
        )
        .await
    }

    async fn pending_upload_pages(&self, prefix: &str) -> Result<Vec<PendingUpload>, S3Error> {
        let full_prefix = self.full_key(prefix);
        let request_error =
            |detail: String| self.failed("listing multipart uploads", prefix, detail);
        let mut uploads = Vec::new();
        let mut marker: Option<(String, String)> = None;
        // A bound on pages, so a service that always says "truncated" cannot loop forever.
        for _ in 0..1000 {
            let mut query = vec![
                ("uploads".to_owned(), String::new()),
                ("prefix".to_owned(), full_prefix.clone()),
            ];
            if let Some((key, upload)) = &marker {
                query.push(("key-marker".to_owned(), key.clone()));
                query.push(("upload-id-marker".to_owned(), upload.clone()));
            }
            let options = SignedUrlOptions::new().with_query(query);
            let url = self
                .store
                .signed_url_opts(
                    Method::GET,
                    &ObjectPath::from(""),
                    Duration::from_secs(300),
                    &options,
                )
                .await
                .map_err(|e| request_error(describe(&e, &self.bucket)))?;
            let request = http::Request::get(url.as_str())
                .body(HttpRequestBody::empty())
                .map_err(|e| request_error(e.to_string()))?;
            let response = self
                .http
                .send(request)
                .await
                .map_err(|e| request_error(describe(&e, &self.bucket)))?;
            let status = response.status();
            let body = response
                .into_body()
                .bytes()
                .await
                .map_err(|e: HttpError| request_error(describe(&e, &self.bucket)))?;
            let body = String::from_utf8_lossy(&body);
            if !status.is_success() {
                let code = xml_tag(&body, "Code").unwrap_or("no error code");
                return Err(request_error(format!("HTTP {status} ({code})")));
            }
            let page = parse_uploads(&body);
            for (key, upload_id, initiated) in page.uploads {
                uploads.push(PendingUpload {
                    key: self.relative(&ObjectPath::from(key.as_str())),
                    upload_id,
                    initiated,
                });
            }
            match page.next {
                Some(next) => marker = Some(next),
                None => break,
            }
        }
        Ok(uploads)
    }

    /// Aborts one multipart upload, freeing its parts.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<(), S3Error> {
        let path = self.path(key)?;
        let operation = "aborting a multipart upload";
        self.watched(operation, key, async {
            self.store
                .abort_multipart(&path, &upload_id.to_owned())
                .await
                .map_err(|e| self.request_error(operation, key, e))
        })
        .await
    }

    /// Aborts uploads under `prefix` started before `cutoff`: parts left by a run that was
    /// killed, which cost storage and are never completed. Returns the keys aborted.
    pub async fn abort_abandoned(
        &self,
        prefix: &str,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<String>, S3Error> {
        let mut aborted = Vec::new();
        for upload in self.pending_uploads(prefix).await? {
            if upload.initiated.is_some_and(|t| t < cutoff) {
                self.abort_upload(&upload.key, &upload.upload_id).await?;
                aborted.push(upload.key);
            }
        }
        Ok(aborted)
    }
}

/// Why sending parts stopped: reading the source, or the service.
enum PartsError {
    Local(std::io::Error),
    Remote(S3Error),
}

/// `error` with what happened next (an abort's outcome) added to its message.
fn with_outcome(error: S3Error, outcome: &str) -> S3Error {
    match error {
        S3Error::Request {
            bucket,
            key,
            detail,
        } => S3Error::Request {
            bucket,
            key,
            detail: format!("{detail}; {outcome}"),
        },
        other => other,
    }
}

/// One page of a ListMultipartUploads answer.
#[derive(Debug, PartialEq, Eq)]
struct UploadsPage {
    uploads: Vec<(String, String, Option<DateTime<Utc>>)>,
    /// Markers for the next page when the answer is truncated.
    next: Option<(String, String)>,
}

fn parse_uploads(xml: &str) -> UploadsPage {
    let mut uploads = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<Upload>") {
        let block_end = rest[start..]
            .find("</Upload>")
            .map_or(rest.len(), |e| start + e);
        let block = &rest[start..block_end];
        if let (Some(key), Some(id)) = (xml_tag(block, "Key"), xml_tag(block, "UploadId")) {
            let initiated = xml_tag(block, "Initiated")
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            uploads.push((xml_unescape(key), xml_unescape(id), initiated));
        }
        rest = &rest[block_end..];
    }
    let truncated = xml_tag(xml, "IsTruncated") == Some("true");
    let next = match (
        xml_tag(xml, "NextKeyMarker"),
        xml_tag(xml, "NextUploadIdMarker"),
    ) {
        (Some(key), Some(id)) if truncated => Some((xml_unescape(key), xml_unescape(id))),
        _ => None,
    };
    UploadsPage { uploads, next }
}

/// The text of the first `<name>…</name>` in `xml`.
fn xml_tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

fn xml_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Fills a buffer of up to `size` bytes; shorter only at the end of the input.
async fn read_chunk(reader: &mut (impl AsyncRead + Unpin), size: usize) -> std::io::Result<Bytes> {
    let mut buffer = BytesMut::with_capacity(size);
    while buffer.len() < size {
        // `read_buf` never reads past the capacity, so a chunk is exactly one part.
        if reader.read_buf(&mut buffer).await? == 0 {
            break;
        }
    }
    Ok(buffer.freeze())
}

fn check_source(what: &str, expected: &str, actual: &str) -> Result<(), S3Error> {
    if expected.eq_ignore_ascii_case(actual) {
        Ok(())
    } else {
        Err(S3Error::SourceMismatch {
            what: what.to_owned(),
            expected: expected.to_owned(),
            actual: actual.to_owned(),
        })
    }
}

/// An `AsyncRead` over a stream of byte chunks.
fn tokio_util_stream_reader(
    stream: impl futures::Stream<Item = std::io::Result<Bytes>> + Send + Unpin + 'static,
) -> impl AsyncRead + Send + Unpin + 'static {
    StreamReader {
        stream,
        current: Bytes::new(),
    }
}

struct StreamReader<S> {
    stream: S,
    current: Bytes,
}

impl<S> AsyncRead for StreamReader<S>
where
    S: futures::Stream<Item = std::io::Result<Bytes>> + Unpin,
{
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while self.current.is_empty() {
            match futures::ready!(self.stream.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(error)) => return Poll::Ready(Err(error)),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = buf.remaining().min(self.current.len());
        buf.put_slice(&self.current.split_to(n));
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> S3Storage {
        S3Storage {
            bucket: "crm-backups".into(),
            prefix: Some("/crm/".into()),
            region: None,
            endpoint: Some("https://s3.example.com".into()),
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            ca_file: None,
            allow_http: false,
            stall_timeout: None,
            retention: None,
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn credentials_come_from_the_plan_before_the_environment() {
        let mut s = storage();
        s.access_key_id = Some("PLANKEY".into());
        s.secret_access_key = Some("plan-secret".into());
        let settings = S3Settings::resolve(
            &s,
            env(&[
                ("AWS_ACCESS_KEY_ID", "ENVKEY"),
                ("AWS_SECRET_ACCESS_KEY", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(settings.access_key_id, "PLANKEY");
        assert_eq!(settings.prefix, "crm");
        assert_eq!(settings.region, "us-east-1");
        assert!(!format!("{settings:?}").contains("plan-secret"));
    }

    #[test]
    fn credentials_fall_back_to_the_environment() {
        let settings = S3Settings::resolve(
            &storage(),
            env(&[
                ("AWS_ACCESS_KEY_ID", "ENVKEY"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_REGION", "eu-west-1"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (settings.access_key_id.as_str(), settings.region.as_str()),
            ("ENVKEY", "eu-west-1")
        );
    }

    #[test]
    fn missing_credentials_are_named() {
        let error = S3Settings::resolve(&storage(), env(&[])).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("no credentials for bucket crm-backups"),
            "{error}"
        );
    }

    #[test]
    fn plain_http_needs_allow_http() {
        let mut s = storage();
        s.endpoint = Some("http://127.0.0.1:9000".into());
        let vars = [("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")];
        assert!(matches!(
            S3Settings::resolve(&s, env(&vars)),
            Err(S3Error::PlainHttp { .. })
        ));
        s.allow_http = true;
        assert!(S3Settings::resolve(&s, env(&vars)).is_ok());
    }

    #[test]
    fn a_bad_ca_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "not a certificate").unwrap();
        let mut s = storage();
        s.ca_file = Some(pem.display().to_string());
        let settings = S3Settings::resolve(
            &s,
            env(&[("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")]),
        )
        .unwrap();
        let error = S3Bucket::connect(&settings, Tuning::default()).unwrap_err();
        assert!(matches!(error, S3Error::CaPem { .. }), "{error}");
    }

    #[test]
    fn multipart_upload_listings_are_read_with_their_markers() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>crm-backups</Bucket><NextKeyMarker>crm/crm/b&amp;c</NextKeyMarker>
  <NextUploadIdMarker>id-2</NextUploadIdMarker><IsTruncated>true</IsTruncated>
  <Upload><Key>crm/crm/20250214T020000Z-3f9a/db.dump.zst</Key><UploadId>id-1</UploadId>
    <Initiated>2025-02-14T02:00:05.000Z</Initiated></Upload>
  <Upload><Key>crm/crm/b&amp;c</Key><UploadId>id-2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let page = parse_uploads(xml);
        assert_eq!(page.uploads.len(), 2);
        assert_eq!(
            page.uploads[0].0,
            "crm/crm/20250214T020000Z-3f9a/db.dump.zst"
        );
        assert_eq!(
            page.uploads[0].2.unwrap().to_rfc3339(),
            "2025-02-14T02:00:05+00:00"
        );
        assert_eq!(
            page.uploads[1],
            ("crm/crm/b&c".to_owned(), "id-2".to_owned(), None)
        );
        assert_eq!(
            page.next,
            Some(("crm/crm/b&c".to_owned(), "id-2".to_owned()))
        );
        let last = xml.replace(
            "<IsTruncated>true</IsTruncated>",
            "<IsTruncated>false</IsTruncated>",
        );
        assert_eq!(parse_uploads(&last).next, None);
    }

    #[test]
    fn keys_live_under_the_prefix() {
        let settings = S3Settings::resolve(
            &storage(),
            env(&[("AWS_ACCESS_KEY_ID", "k"), ("AWS_SECRET_ACCESS_KEY", "s")]),
        )
        .unwrap();
        let bucket = S3Bucket::connect(&settings, Tuning::default()).unwrap();
        assert_eq!(
            bucket.url_of("crm/20250214T020000Z-ab12/manifest.json"),
            "s3://crm-backups/crm/crm/20250214T020000Z-ab12/manifest.json"
        );
        assert_eq!(bucket.relative(&bucket.path("a/b").unwrap()), "a/b");
        assert!(matches!(bucket.path("a//b"), Err(S3Error::BadKey { .. })));
    }
}
