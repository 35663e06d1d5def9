//! A real S3-compatible server (s3s-fs, which enforces SigV4) on loopback, and the data and
//! faults the S3 tests feed it.
//!
//! One file serves two kinds of tests: the unit tests of the S3 client and storage declare it
//! as `crate::s3::test_server`, and the integration tests that drive the binary include it as
//! `support::s3` (by `#[path]`). So it names only outside crates, never `crate::`; the
//! client-side helpers that need planrun's types are in `s3/test_client.rs`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;

pub const ACCESS_KEY: &str = "planrun-test";
pub const SECRET_KEY: &str = "planrun-test-secret-key";
pub const BUCKET: &str = "offsite";

/// An s3s-fs server on 127.0.0.1, running on its own runtime so that both async tests and
/// tests that drive the `planrun` binary can use it, and so that `stop` can cut it off
/// mid-request the way a crash or a network loss would.
pub struct S3Server {
    pub addr: SocketAddr,
    root: tempfile::TempDir,
    runtime: Option<tokio::runtime::Runtime>,
}

impl S3Server {
    /// Starts a server with one empty bucket, [`BUCKET`].
    pub fn start() -> S3Server {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let mut server = S3Server {
            addr: "127.0.0.1:0".parse().unwrap(),
            root,
            runtime: None,
        };
        server.serve();
        server
    }

    fn serve(&mut self) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let root = self.root.path().to_owned();
        let addr = self.addr;
        // `enter`, not `block_on`: the caller may itself be an async test.
        let listener = {
            let _context = runtime.enter();
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            // The restarted server takes the same port while old connections sit in TIME_WAIT.
            socket.set_reuseaddr(true).unwrap();
            socket.bind(addr).unwrap();
            socket.listen(64).unwrap()
        };
        self.addr = listener.local_addr().unwrap();
        runtime.spawn(async move {
            let fs = s3s_fs::FileSystem::new(root).unwrap();
            let mut builder = S3ServiceBuilder::new(fs);
            builder.set_auth(SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            let service = builder.build();
            let http = ConnBuilder::new(TokioExecutor::new());
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let connection = http
                    .serve_connection(TokioIo::new(socket), service.clone())
                    .into_owned();
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
        });
        self.runtime = Some(runtime);
    }

    /// Kills the server and every open connection at once.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Starts it again on the same port with the same files.
    pub fn restart(&mut self) {
        self.stop();
        self.serve();
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where the server keeps the bucket's objects (a key `a/b` is the file `a/b`).
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(BUCKET)
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// An awscli command pointed at this server.
    pub fn aws(&self) -> std::process::Command {
        let mut command = std::process::Command::new("aws");
        command
            .args(["--endpoint-url", &self.endpoint(), "--region", "us-east-1"])
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        command
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server that accepts connections and never answers: a frozen process looks like this,
/// since the kernel still completes the handshakes.
pub struct Frozen {
    pub addr: SocketAddr,
}

impl Frozen {
    pub fn start() -> Frozen {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for socket in listener.incoming() {
                held.push(socket);
            }
        });
        Frozen { addr }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Deterministic bytes that do not compress and do not repeat at part boundaries.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The lowercase hex sha256 of `bytes`, as manifests and S3 object metadata carry it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A reader over `data` that stops the server once `after` bytes have gone by, as a crash
/// would.
pub struct StopsServer {
    data: Vec<u8>,
    read: usize,
    after: usize,
    server: Arc<Mutex<S3Server>>,
}

impl StopsServer {
    pub fn new(data: Vec<u8>, after: usize, server: Arc<Mutex<S3Server>>) -> StopsServer {
        StopsServer {
            data,
            read: 0,
            after,
            server,
        }
    }
}

impl tokio::io::AsyncRead for StopsServer {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        if self.read >= self.after {
            self.server.lock().unwrap().stop();
        }
        let n = buf
            .remaining()
            .min(self.data.len() - self.read)
            .min(1024 * 1024);
        let start = self.read;
        buf.put_slice(&self.data[start..start + n]);
        self.read += n;
        std::task::Poll::Ready(Ok(()))
    }
}
