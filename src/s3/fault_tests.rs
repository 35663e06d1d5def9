//! Remote calls that cannot hang and errors that name their cause, through real servers on
//! loopback: a server that accepts and never answers, s3s-fs behind a proxy that freezes
//! mid-transfer (what SIGSTOP does to a server), a TLS server with a self-signed certificate,
//! an unknown host, a missing bucket and refused credentials.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::test_client::{storage_at as storage_with_prefix, tuning};
use super::test_server::{BUCKET, Frozen, S3Server, noise, sha256_hex};
use super::{S3Bucket, S3Error, S3Settings};

/// A TCP proxy in front of a server that stops passing bytes, both ways, once `up` bytes went
/// towards the server or `down` bytes came back: the connections stay open and nothing moves.
struct FreezingProxy {
    addr: SocketAddr,
}

impl FreezingProxy {
    fn start(upstream: SocketAddr, up: u64, down: u64) -> FreezingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (sent, received) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let frozen = Arc::new(AtomicBool::new(false));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let client = client.unwrap();
                let server = TcpStream::connect(upstream).unwrap();
                let pipe =
                    |mut from: TcpStream, mut to: TcpStream, count: &Arc<AtomicU64>, limit| {
                        let (count, frozen) = (count.clone(), frozen.clone());
                        std::thread::spawn(move || {
                            let mut buffer = [0u8; 16 * 1024];
                            loop {
                                if frozen.load(Ordering::SeqCst) {
                                    std::thread::sleep(Duration::from_secs(3600));
                                }
                                let Ok(n) = from.read(&mut buffer) else {
                                    return;
                                };
                                if n == 0 {
                                    return;
                                }
                                if count.fetch_add(n as u64, Ordering::SeqCst) + n as u64 > limit {
                                    frozen.store(true, Ordering::SeqCst);
                                    continue;
                                }
                                if to.write_all(&buffer[..n]).is_err() {
                                    return;
                                }
                            }
                        });
                    };
                pipe(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    &sent,
                    up,
                );
                pipe(server, client, &received, down);
            }
        });
        FreezingProxy { addr }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A bucket client for `endpoint` with the test tuning and the storage's `stall_timeout`.
fn bucket_at(endpoint: &str, bucket: &str, stall: Option<&str>) -> S3Bucket {
    let mut storage = storage_at(endpoint);
    storage.bucket = bucket.into();
    storage.stall_timeout = stall.map(|s| s.parse().unwrap());
    let settings = S3Settings::resolve(&storage, |_| None).unwrap();
    S3Bucket::connect(&settings, tuning()).unwrap()
}

/// The storage section for a server that is not an [`S3Server`].
fn storage_at(endpoint: &str) -> crate::plan::S3Storage {
    storage_with_prefix(endpoint, "crm/")
}

/// Stores `data` at `key` under the `crm/` prefix of the test bucket, straight to the server.
async fn store(server: &S3Server, key: &str, data: &[u8]) {
    let name = key.rsplit('/').next().unwrap_or(key);
    server
        .bucket("crm/")
        .upload(data, key, &sha256_hex(data), name)
        .await
        .unwrap();
}

fn request_detail(error: S3Error) -> String {
    match error {
        S3Error::Request { .. } => error.to_string(),
        other => panic!("expected a request error, got {other:?}: {other}"),
    }
}

#[tokio::test]
async fn a_server_that_never_answers_fails_each_kind_of_call_within_the_stall_timeout() {
    let frozen = Frozen::start();
    let bucket = bucket_at(&frozen.endpoint(), BUCKET, Some("3s"));
    let started = Instant::now();
    let error = request_detail(bucket.head("set/db.dump").await.unwrap_err());
    let first = started.elapsed();
    assert!(
        error.starts_with(
            "s3://offsite/crm/set/db.dump: reading the object's metadata: the service "
        ),
        "{error}"
    );
    assert!(
        first >= Duration::from_millis(900) && first < Duration::from_secs(4),
        "{first:?}"
    );
    // The service made no progress since: the next calls do not wait all over again.
    let error = request_detail(
        bucket
            .put_bytes("set/manifest.json", b"{}".to_vec())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        error,
        "s3://offsite/crm/set/manifest.json: uploading: the service made no progress for 3s (stall_timeout)"
    );
    let error = request_detail(bucket.list("set").await.unwrap_err());
    assert_eq!(
        error,
        "s3://offsite/crm/set: listing: the service made no progress for 3s (stall_timeout)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_frozen_mid_upload_fails_the_part_upload_and_says_so() {
    let server = S3Server::start();
    let proxy = FreezingProxy::start(server.addr, 7 * 1024 * 1024, u64::MAX);
    let bucket = bucket_at(&proxy.endpoint(), BUCKET, Some("8s"));
    let data = noise(16 * 1024 * 1024, 9);
    let started = Instant::now();
    let error = request_detail(
        bucket
            .upload(
                data.as_slice(),
                "set/db.dump",
                &sha256_hex(&data),
                "db.dump",
            )
            .await
            .unwrap_err(),
    );
    let elapsed = started.elapsed();
    // Idle for 2s (a quarter of 8s), retried until 4s (half of it), then the abort gets 1s.
    assert!(
        error.starts_with("s3://offsite/crm/set/db.dump: uploading part "),
        "{error}"
    );
    assert!(
        error
            .contains(": the service sent and took nothing for 2s; aborting the multipart upload "),
        "{error}"
    );
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");
    assert!(
        !server.bucket_dir().join("crm/set/db.dump").exists(),
        "nothing is stored"
    );
}

#[tokio::test]
async fn a_streamed_download_from_a_server_that_freezes_fails_within_the_stall_timeout() {
    let server = S3Server::start();
    store(&server, "set/media.tar", &noise(12 * 1024 * 1024, 4)).await;
    // The answer stops after 3 MiB of its 12.
    let proxy = FreezingProxy::start(server.addr, u64::MAX, 3 * 1024 * 1024);
    let bucket = bucket_at(&proxy.endpoint(), BUCKET, Some("3s"));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let error = bucket
        .download("set/media.tar", &dir.path().join("media.tar"))
        .await
        .unwrap_err();
    let error = request_detail(error);
    assert!(
        error.starts_with("s3://offsite/crm/set/media.tar: reading: the service "),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// A TCP proxy that passes the first `fast` bytes of each answer at full speed, then one
/// byte every 200 ms: a body that trickles, never idle long enough to trip the idle timeout.
struct TricklingProxy {
    addr: SocketAddr,
}

impl TricklingProxy {
    fn start(upstream: SocketAddr, fast: usize) -> TricklingProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let client = client.unwrap();
                let server = TcpStream::connect(upstream).unwrap();
                let (mut up_from, mut up_to) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_from, &mut up_to);
                });
                let (mut down_from, mut down_to) = (server, client);
                std::thread::spawn(move || {
                    let mut passed = 0usize;
                    let mut buffer = [0u8; 16 * 1024];
                    loop {
                        let Ok(n) = down_from.read(&mut buffer) else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        for &byte in &buffer[..n] {
                            if passed >= fast {
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            if down_to.write_all(&[byte]).is_err() {
                                return;
                            }
                            passed += 1;
                        }
                    }
                });
            }
        });
        TricklingProxy { addr }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

#[tokio::test]
async fn a_body_that_trickles_fails_below_the_minimum_rate_naming_the_host_only() {
    let server = S3Server::start();
    store(&server, "set/db.dump", &noise(256 * 1024, 5)).await;
    let proxy = TricklingProxy::start(server.addr, 16 * 1024);
    // A 3 s stall timeout makes the idle timeout, and so the rate's window, 1 s.
    let bucket = bucket_at(&proxy.endpoint(), BUCKET, Some("3s"));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let error = bucket
        .download("set/db.dump", &dir.path().join("db.dump"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    let error = request_detail(error);
    let host = proxy.addr.to_string();
    assert!(
        error.starts_with(&format!(
            "s3://offsite/crm/set/db.dump: reading: the service at {host} sent "
        )),
        "{error}"
    );
    assert!(
        error.contains("of waiting, below the minimum of 1024 bytes/s"),
        "{error}"
    );
    for credential in [
        super::test_server::ACCESS_KEY,
        super::test_server::SECRET_KEY,
    ] {
        assert!(!error.contains(credential), "{error}");
    }
    // A second or so of waiting for the window, never the minutes the trickle would take.
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

/// `openssl s_server` with a fresh self-signed certificate for 127.0.0.1.
struct TlsServer {
    child: std::process::Child,
    port: u16,
    /// The CA that signed the server's certificate.
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            dir.path().join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for args in [
            &[
                "req",
                "-x509",
                "-days",
                "1",
                "-subj",
                "/CN=planrun test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ][..],
            &[
                "req",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ][..],
        ] {
            let made = std::process::Command::new("openssl")
                .args(&args[..1])
                .args(ec)
                .args(&args[1..])
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(
                made.status.success(),
                "{}",
                String::from_utf8_lossy(&made.stderr)
            );
        }
        let made = std::process::Command::new("openssl")
            .args([
                "x509", "-req", "-days", "1", "-in", "leaf.csr", "-CA", "ca.pem",
            ])
            .args([
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-extfile",
                "leaf.ext",
                "-out",
                "cert.pem",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsServer {
            child,
            port,
            ca,
            _dir: dir,
        }
    }

    fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

#[tokio::test]
async fn an_untrusted_certificate_fails_at_once_and_says_so_and_ca_file_trusts_it() {
    let tls = TlsServer::start();
    let bucket = bucket_at(&tls.endpoint(), BUCKET, None);
    let started = Instant::now();
    let error = request_detail(bucket.head("set/manifest.json").await.unwrap_err());
    assert_eq!(
        error,
        "s3://offsite/crm/set/manifest.json: reading the object's metadata: the server's TLS \
         certificate is not trusted (invalid peer certificate: UnknownIssuer): set `ca_file` to \
         the CA that signed it"
    );
    // No retries: the test tuning would spend 3s on them.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // With the certificate as `ca_file`, TLS succeeds and the (non-S3) server's answer is what
    // fails.
    let mut storage = storage_at(&tls.endpoint());
    storage.ca_file = Some(tls.ca.display().to_string());
    let settings = S3Settings::resolve(&storage, |_| None).unwrap();
    let trusted = S3Bucket::connect(&settings, tuning()).unwrap();
    let error = trusted.get_bytes("set/manifest.json").await;
    if let Err(error) = error {
        assert!(!error.to_string().contains("certificate"), "{error}");
    }
}

#[tokio::test]
async fn an_unknown_host_fails_at_once_and_says_so() {
    let bucket = bucket_at("https://planrun-no-such-host.invalid", BUCKET, None);
    let started = Instant::now();
    let error = request_detail(bucket.list("set").await.unwrap_err());
    assert!(
        error.starts_with(
            "s3://offsite/crm/set: listing: cannot resolve the endpoint's host name ("
        ),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_missing_bucket_and_a_wrong_secret_fail_at_once_and_say_so() {
    let server = S3Server::start();
    let missing = bucket_at(&server.endpoint(), "no-such-bucket", None);
    let started = Instant::now();
    // s3s-fs answers a GET in a missing bucket with NoSuchKey (AWS says NoSuchBucket), so a
    // listing is what shows the bucket missing here.
    let error = request_detail(missing.list("set").await.unwrap_err());
    assert_eq!(
        error,
        "s3://no-such-bucket/crm/set: listing: bucket no-such-bucket does not exist \
         (HTTP 404 NoSuchBucket)"
    );

    let mut storage = server.storage("crm/");
    storage.secret_access_key = Some("wrong".into());
    let settings = S3Settings::resolve(&storage, |_| None).unwrap();
    let wrong = S3Bucket::connect(&settings, tuning()).unwrap();
    let error = request_detail(wrong.put_bytes("set/x", b"x".to_vec()).await.unwrap_err());
    assert_eq!(
        error,
        "s3://offsite/crm/set/x: uploading: the service refused the request signature \
         (HTTP 403 SignatureDoesNotMatch): check `secret_access_key`"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
