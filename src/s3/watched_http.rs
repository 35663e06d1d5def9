//! The HTTP transport under `object_store`: every request is watched for progress, and
//! failures that retrying cannot fix are marked so they fail at once.
//!
//! reqwest's own timeouts do not fit a backup tool: a total request timeout kills a slow but
//! healthy part upload, and its read timeout does not see a request body stuck in a full
//! socket. So progress is measured where bytes move. The request body is handed to hyper in
//! small frames, and hyper pulls the next frame only once the socket took the previous ones;
//! the response body is watched frame by frame. A request fails with a timeout (which
//! `object_store` may retry) once nothing moved for the idle timeout, and every movement is
//! also recorded on the bucket's [`Progress`] clock, which bounds whole operations.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpResponseBody, HttpService,
};
use tokio::time::{Instant, Sleep};

/// The largest frame handed to hyper at once, so that a stalled socket shows up as a body
/// that is no longer read, a few hundred KiB after the stall rather than a whole part later.
const FRAME: usize = 64 * 1024;

/// When bytes last moved, as milliseconds since `base`, shared between threads: bytes sent
/// (taken by the socket) and bytes answered (received from the service) apart. A socket takes
/// a few MiB from a frozen peer before it fills, so only an answer proves the service alive.
///
/// Also whether an operation has failed with no answer since: the next operation's stall
/// timeout then counts from the last answer rather than afresh, so a frozen service costs one
/// stall timeout per run, not one per operation.
#[derive(Debug)]
pub(crate) struct Progress {
    base: Instant,
    sent_ms: AtomicU64,
    answered_ms: AtomicU64,
    stalled: AtomicBool,
    /// Listing pages asked for (ListObjectsV2 requests, retries included), so that a listing
    /// can tell a service that never ends it (see `S3Bucket::list`).
    list_pages: AtomicU64,
    /// The host and port of the last request, to name the service in a listing's error.
    host: std::sync::Mutex<String>,
}

impl Progress {
    pub(crate) fn new() -> Arc<Progress> {
        Arc::new(Progress {
            base: Instant::now(),
            sent_ms: AtomicU64::new(0),
            answered_ms: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            list_pages: AtomicU64::new(0),
            host: std::sync::Mutex::new(String::new()),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: &AtomicU64) -> Instant {
        self.base + Duration::from_millis(ms.load(Ordering::Relaxed))
    }

    pub(crate) fn touch_sent(&self) {
        self.sent_ms.fetch_max(self.now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn touch_answered(&self) {
        self.answered_ms.fetch_max(self.now_ms(), Ordering::Relaxed);
        if self.stalled.load(Ordering::Relaxed) {
            self.stalled.store(false, Ordering::Relaxed);
        }
    }

    /// The last movement either way, or `since` if that is later.
    pub(crate) fn last(&self, since: Instant) -> Instant {
        self.at(&self.sent_ms)
            .max(self.at(&self.answered_ms))
            .max(since)
    }

    /// Where the stall timeout of an operation started at `started` counts from.
    pub(crate) fn baseline(&self, started: Instant) -> Instant {
        if self.stalled.load(Ordering::Relaxed) {
            self.at(&self.answered_ms)
        } else {
            self.last(started)
        }
    }

    pub(crate) fn answered_since(&self, started: Instant) -> bool {
        self.at(&self.answered_ms) >= started
    }

    /// Listing pages asked for so far.
    pub(crate) fn list_pages(&self) -> u64 {
        self.list_pages.load(Ordering::Relaxed)
    }

    /// The host (and port) of the service, as the last request named it.
    pub(crate) fn host(&self) -> String {
        self.host
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| "the endpoint".into())
    }

    /// Records that an operation failed with no answer from the service.
    pub(crate) fn mark_stalled(&self) {
        self.stalled.store(true, Ordering::Relaxed);
    }
}

/// Why a request failed, in words a person can act on. Found again in the error chain that
/// `object_store` builds around it, so the message reaches the user unchanged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    #[error(
        "the server's TLS certificate is not trusted ({detail}): set `ca_file` to the CA that signed it"
    )]
    Certificate { detail: String },
    #[error("cannot resolve the endpoint's host name ({detail})")]
    Dns { detail: String },
    #[error("the service sent and took nothing for {}", crate::duration::Duration(*idle))]
    Idle { idle: Duration },
    #[error(
        "the service at {host} sent {bytes} bytes in {} of waiting, below the minimum of {} bytes/s; a connection this slow would hold the run for hours",
        crate::duration::Duration(*waited),
        MIN_BYTES_PER_SECOND
    )]
    Slow {
        host: String,
        bytes: u64,
        waited: Duration,
    },
}

/// The slowest a response body may arrive, measured over the idle timeout's worth of
/// waiting (30 s by default): 1 KiB/s. A trickle of a byte a second never trips the idle
/// timeout, and a reply of a few MiB at that rate would take weeks.
pub(crate) const MIN_BYTES_PER_SECOND: u64 = 1024;

/// The [`HttpConnector`] that `object_store` asks for a client: always the watched one.
#[derive(Debug)]
pub(crate) struct WatchedConnector {
    pub(crate) client: reqwest::Client,
    pub(crate) idle: Duration,
    pub(crate) progress: Arc<Progress>,
}

impl WatchedConnector {
    pub(crate) fn service(&self) -> WatchedHttp {
        WatchedHttp {
            client: self.client.clone(),
            idle: self.idle,
            progress: self.progress.clone(),
        }
    }
}

impl HttpConnector for WatchedConnector {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.service()))
    }
}

/// reqwest with a progress watchdog on each request and its response body.
#[derive(Clone, Debug)]
pub(crate) struct WatchedHttp {
    client: reqwest::Client,
    idle: Duration,
    progress: Arc<Progress>,
}

// Written out rather than through `#[async_trait]`, which is only a macro for this shape.
impl HttpService for WatchedHttp {
    fn call<'life0, 'async_trait>(
        &'life0 self,
        request: HttpRequest,
    ) -> Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.send(request))
    }
}

impl WatchedHttp {
    pub(crate) async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let url = reqwest::Url::parse(&parts.uri.to_string())
            .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
        // Only the host and port name the service in an error: never the path or userinfo.
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => "the endpoint".to_owned(),
        };
        if url.query_pairs().any(|(k, v)| k == "list-type" && v == "2") {
            self.progress.list_pages.fetch_add(1, Ordering::Relaxed);
        }
        if let Ok(mut last) = self.progress.host.lock() {
            last.clone_from(&host);
        }
        let clock = Progress::new();
        let mut outgoing = reqwest::Request::new(parts.method, url);
        *outgoing.headers_mut() = parts.headers;
        *outgoing.body_mut() = Some(reqwest::Body::wrap(Sent {
            inner: body,
            current: Bytes::new(),
            clock: clock.clone(),
            progress: self.progress.clone(),
        }));
        let started = Instant::now();
        let response = self.client.execute(outgoing);
        tokio::pin!(response);
        let response = loop {
            let deadline = clock.last(started) + self.idle;
            tokio::select! {
                response = &mut response => break response.map_err(classify)?,
                () = tokio::time::sleep_until(deadline) => {
                    if clock.last(started) + self.idle <= Instant::now() {
                        return Err(idle(self.idle));
                    }
                }
            }
        };
        self.progress.touch_answered();
        let response: http::Response<reqwest::Body> = response.into();
        let (parts, body) = response.into_parts();
        Ok(HttpResponse::from_parts(
            parts,
            HttpResponseBody::new(Received {
                inner: body,
                idle: self.idle,
                timer: Box::pin(tokio::time::sleep(self.idle)),
                waiting: false,
                progress: self.progress.clone(),
                host,
                wait_started: Instant::now(),
                waited: Duration::ZERO,
                bytes: 0,
            }),
        ))
    }
}

fn idle(idle: Duration) -> HttpError {
    HttpError::new(HttpErrorKind::Timeout, Fault::Idle { idle })
}

/// Sorts a transport error the way `object_store` would, except that an untrusted certificate
/// and an unknown host fail at once: retrying cannot change either, it only hides the cause.
fn classify(error: reqwest::Error) -> HttpError {
    let chain = chain_text(&error);
    if chain.contains("certificate") {
        let detail = innermost(&error);
        return HttpError::new(HttpErrorKind::Unknown, Fault::Certificate { detail });
    }
    if chain.contains("dns error") {
        let detail = innermost(&error);
        return HttpError::new(HttpErrorKind::Unknown, Fault::Dns { detail });
    }
    let mut kind = if error.is_timeout() {
        HttpErrorKind::Timeout
    } else if error.is_connect() {
        HttpErrorKind::Connect
    } else if error.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Unknown
    };
    let mut source = error.source();
    while let (HttpErrorKind::Unknown, Some(cause)) = (kind, source) {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            kind = match io.kind() {
                std::io::ErrorKind::TimedOut => HttpErrorKind::Timeout,
                std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof => HttpErrorKind::Interrupted,
                _ => kind,
            };
        }
        source = cause.source();
    }
    // hyper's "connection closed before message completed" and the like: the request may
    // have reached the service, so only idempotent requests are retried.
    if kind == HttpErrorKind::Unknown && (error.is_request() || error.is_body()) {
        kind = HttpErrorKind::Interrupted;
    }
    HttpError::new(kind, error.without_url())
}

fn chain_text(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The deepest cause, which names the real problem ("invalid peer certificate: UnknownIssuer").
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let mut deepest: &(dyn StdError + 'static) = error;
    while let Some(cause) = deepest.source() {
        deepest = cause;
    }
    deepest.to_string()
}

/// A request body that hyper pulls in small frames, each pull counted as progress.
struct Sent {
    inner: HttpRequestBody,
    current: Bytes,
    clock: Arc<Progress>,
    progress: Arc<Progress>,
}

impl Body for Sent {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        while self.current.is_empty() {
            match std::task::ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                None => return Poll::Ready(None),
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.current = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
            }
        }
        let n = self.current.len().min(FRAME);
        let data = self.current.split_to(n);
        self.clock.touch_sent();
        self.progress.touch_sent();
        Poll::Ready(Some(Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.current.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // Exact, so that hyper sends a Content-Length: S3 refuses chunked uploads.
        let rest = self.inner.size_hint();
        let held = self.current.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower() + held);
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper + held);
        }
        hint
    }
}

/// A response body that fails once no frame arrived for the idle timeout while it was being
/// waited for, or once the frames that did arrive came slower than [`MIN_BYTES_PER_SECOND`]
/// over an idle timeout's worth of waiting. The wait starts at the first poll that finds
/// nothing, so a reader that is slow to ask (a busy disk) is never blamed on the service.
struct Received {
    inner: reqwest::Body,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    waiting: bool,
    progress: Arc<Progress>,
    /// The service, as errors name it.
    host: String,
    /// When the current wait began.
    wait_started: Instant,
    /// Time spent waiting for frames, and the bytes they brought, since the last check.
    waited: Duration,
    bytes: u64,
}

impl Received {
    /// Counts a frame that ended a wait; an error once a full window of waiting brought less
    /// than the minimum rate.
    fn arrived(&mut self, len: usize) -> Option<HttpError> {
        if self.waiting {
            self.waited += self.wait_started.elapsed();
        }
        self.bytes += len as u64;
        if self.waited < self.idle {
            return None;
        }
        let wanted = MIN_BYTES_PER_SECOND as f64 * self.waited.as_secs_f64();
        let slow = (self.bytes as f64) < wanted;
        let error = slow.then(|| {
            HttpError::new(
                HttpErrorKind::Unknown,
                Fault::Slow {
                    host: self.host.clone(),
                    bytes: self.bytes,
                    waited: Duration::from_secs(self.waited.as_secs()),
                },
            )
        });
        self.waited = Duration::ZERO;
        self.bytes = 0;
        error
    }
}

impl Body for Received {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                let slow = self.arrived(len);
                self.waiting = false;
                self.progress.touch_answered();
                match slow {
                    Some(error) => Poll::Ready(Some(Err(error))),
                    None => Poll::Ready(Some(Ok(frame))),
                }
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(classify(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                if !self.waiting {
                    self.waiting = true;
                    self.wait_started = Instant::now();
                    let deadline = Instant::now() + self.idle;
                    self.timer.as_mut().reset(deadline);
                }
                match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(idle(self.idle)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
