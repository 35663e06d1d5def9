//! Telling the outside world how a run went: the one HTTP POST that `notify` steps and
//! healthchecks pings share ([`post`]), and plan-level healthchecks monitoring ([`Pinger`]):
//! `URL/start` when a run begins, then `URL` on success or `URL/fail` with the end of the log.
//!
//! A report that cannot be sent never changes the run's outcome: it is a warning, shown and
//! recorded in the run record. Its message names the URL's host only: the path, the query
//! and any user info often are the token.
//!
//! Every request is bounded: connecting by [`CONNECT_TIMEOUT`], the answer must start within
//! [`IDLE_TIMEOUT`] and keep coming, and the whole call by [`TOTAL_TIMEOUT`]. TLS
//! certificates are verified (reqwest with rustls and the platform's roots).

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use crate::event::RunStatus;
use crate::exec_plan::ExecPlan;
use crate::redact::Redactor;
use crate::run_record::RunRecord;
use crate::state_dir::StateDir;

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// reqwest's read timeout: until the answer starts, then between its chunks.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// The most of the run log a failure ping carries (healthchecks keeps up to 100 KB).
pub const LOG_TAIL_BYTES: u64 = 10 * 1024;

/// Why a POST did not get a success answer. Each names the host and nothing else of the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostError {
    /// Not an http(s) URL with a host; the URL itself is not repeated.
    BadUrl,
    Connect {
        host: String,
    },
    ConnectTimeout {
        host: String,
    },
    Timeout {
        host: String,
    },
    Status {
        host: String,
        status: String,
    },
    Failed {
        host: String,
    },
}

impl fmt::Display for PostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PostError::BadUrl => f.write_str("the URL is not an http:// or https:// URL"),
            PostError::Connect { host } => write!(f, "cannot connect to {host}"),
            PostError::ConnectTimeout { host } => write!(
                f,
                "cannot connect to {host} within {}",
                crate::duration::Duration(CONNECT_TIMEOUT)
            ),
            PostError::Timeout { host } => write!(
                f,
                "{host} did not answer within {}",
                crate::duration::Duration(IDLE_TIMEOUT)
            ),
            PostError::Status { host, status } => write!(f, "{host} answered {status}"),
            PostError::Failed { host } => write!(f, "the request to {host} failed"),
        }
    }
}

/// An http(s) URL and the host (with its port, when the URL names one) to name it by.
fn parse(url: &str) -> Result<(reqwest::Url, String), PostError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|_| PostError::BadUrl)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(PostError::BadUrl);
    }
    let host = parsed.host_str().ok_or(PostError::BadUrl)?.to_owned();
    let host = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    Ok((parsed, host))
}

/// POSTs `body` to `url`, bounded as the module says; the HTTP status on a 2xx answer.
pub async fn post(url: &str, body: Vec<u8>, content_type: &str) -> Result<u16, PostError> {
    let (url, host) = parse(url)?;
    let client = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(IDLE_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .build()
        .map_err(|_| PostError::Failed { host: host.clone() })?;
    let sent = client
        .post(url)
        .header("content-type", content_type)
        .header("user-agent", concat!("planrun/", env!("CARGO_PKG_VERSION")))
        .body(body)
        .send()
        .await;
    // reqwest's own messages name the whole URL, which may carry a token: keep the kind.
    // Connect first: a connect timeout is both.
    match sent {
        Ok(response) if response.status().is_success() => Ok(response.status().as_u16()),
        Ok(response) => Err(PostError::Status {
            host,
            status: response.status().to_string(),
        }),
        Err(error) if error.is_connect() && error.is_timeout() => {
            Err(PostError::ConnectTimeout { host })
        }
        Err(error) if error.is_connect() => Err(PostError::Connect { host }),
        Err(error) if error.is_timeout() => Err(PostError::Timeout { host }),
        Err(_) => Err(PostError::Failed { host }),
    }
}

/// `URL/start` or `URL/fail`: the suffix joined to the path, before any query.
fn with_suffix(url: &str, suffix: &str) -> Result<String, PostError> {
    let (mut parsed, _) = parse(url)?;
    if suffix.is_empty() {
        return Ok(parsed.to_string());
    }
    let path = format!("{}/{suffix}", parsed.path().trim_end_matches('/'));
    parsed.set_path(&path);
    Ok(parsed.to_string())
}

/// Plan-level healthchecks monitoring for one run (or drill). Both calls block and must be
/// made outside an async runtime; each takes at most [`TOTAL_TIMEOUT`].
///
/// ```ignore
/// let (pinger, warning) = monitor::Pinger::start(&plan);   // pings URL/start
/// // … the run …
/// let tail = monitor::log_tail(&log_path, &plan.redactor);
/// let warning = pinger.finish(status, &tail);              // URL, or URL/fail with the tail
/// ```
#[derive(Debug)]
pub struct Pinger {
    url: Option<String>,
}

impl Pinger {
    /// Pings `URL/start` when the plan has `monitor.healthchecks`. The warning, if any, says
    /// why the ping failed; the run goes on either way.
    pub fn start(plan: &ExecPlan) -> (Pinger, Option<String>) {
        let pinger = Pinger {
            url: plan.monitoring.healthchecks.clone(),
        };
        let warning = pinger.ping("start", "start", Vec::new());
        (pinger, warning)
    }

    /// Pings `URL` when the run succeeded, else `URL/fail` (failed, partial or interrupted)
    /// with `log_tail` as the body (see [`log_tail`]: masked and capped at 10 KiB).
    pub fn finish(&self, status: RunStatus, log_tail: &str) -> Option<String> {
        match status {
            RunStatus::Succeeded => self.ping("", "success", log_tail.as_bytes().to_vec()),
            _ => self.ping("fail", "fail", log_tail.as_bytes().to_vec()),
        }
    }

    fn ping(&self, suffix: &str, what: &str, body: Vec<u8>) -> Option<String> {
        let url = self.url.as_deref()?;
        let sent = with_suffix(url, suffix).and_then(|url| {
            block_on(post(&url, body, PLAIN)).unwrap_or_else(|| {
                Err(PostError::Failed {
                    host: "the healthchecks host".to_owned(),
                })
            })
        });
        sent.err()
            .map(|error| format!("monitor: the healthchecks {what} ping failed: {error}"))
    }
}

const PLAIN: &str = "text/plain; charset=utf-8";

/// After a run has ended and its record is written: the healthchecks finish ping with the
/// end of the log, then the metrics file in `metrics_dir` (else the plan's
/// `metrics.textfile_dir`). Returns the warnings; nothing here changes the run's outcome.
/// Blocking, like [`Pinger`].
pub fn after_run(
    plan: &ExecPlan,
    state: &StateDir,
    pinger: &Pinger,
    status: RunStatus,
    metrics_dir: Option<&Path>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    if pinger.url.is_some() {
        let tail = log_tail(&state.run_log(&plan.run_id), &plan.redactor);
        warnings.extend(pinger.finish(status, &tail));
    }
    if let Some(dir) = metrics_dir.or(plan.monitoring.textfile_dir.as_deref()) {
        warnings.extend(crate::metrics::write_after_run(plan, state, dir));
    }
    warnings
}

/// Runs `work` on a runtime of its own: reports happen before and after the run's runtime.
pub fn block_on<F: Future>(work: F) -> Option<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()?;
    Some(runtime.block_on(work))
}

/// The end of a run log: at most [`LOG_TAIL_BYTES`], from the start of a line, with every
/// secret of the plan masked (the log is masked already; this is the second lock).
pub fn log_tail(path: &Path, redactor: &Redactor) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |m| m.len());
    let from = length.saturating_sub(LOG_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    if from > 0
        && let Some(newline) = bytes.iter().position(|&b| b == b'\n')
    {
        bytes.drain(..=newline);
    }
    redactor.redact_owned(String::from_utf8_lossy(&bytes).into_owned())
}

/// Adds the warnings of reports made outside the run (pings, metrics), which no event
/// carries, to its finished record: `before` ahead of the run's own, `after` behind them.
pub fn record_warnings(
    state: &StateDir,
    run_id: &str,
    before: &[String],
    after: &[String],
) -> Result<(), String> {
    if before.is_empty() && after.is_empty() {
        return Ok(());
    }
    let mut record = RunRecord::load(&state.run_record(run_id)).map_err(|e| e.to_string())?;
    record.warnings.splice(0..0, before.iter().cloned());
    record.warnings.extend(after.iter().cloned());
    record.save(state).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_host_and_never_the_path_or_token() {
        let (_, host) = parse("https://user:pw@hc.example.com/ping/8f2c-secret?x=1").unwrap();
        assert_eq!(host, "hc.example.com");
        let (_, host) = parse("http://127.0.0.1:8080/p/token").unwrap();
        assert_eq!(host, "127.0.0.1:8080");
        assert_eq!(parse("ftp://h/x").unwrap_err(), PostError::BadUrl);
        assert_eq!(parse("not a url token").unwrap_err(), PostError::BadUrl);
        assert_eq!(
            PostError::BadUrl.to_string(),
            "the URL is not an http:// or https:// URL"
        );
    }

    #[test]
    fn suffixes_join_the_path_before_the_query() {
        assert_eq!(
            with_suffix("https://hc.example.com/abc", "start").unwrap(),
            "https://hc.example.com/abc/start"
        );
        assert_eq!(
            with_suffix("https://hc.example.com/abc/?rid=1", "fail").unwrap(),
            "https://hc.example.com/abc/fail?rid=1"
        );
        assert_eq!(
            with_suffix("https://hc.example.com/abc", "").unwrap(),
            "https://hc.example.com/abc"
        );
    }

    #[test]
    fn the_log_tail_starts_at_a_line_and_is_masked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.log");
        let mut text = String::new();
        for i in 0..2000 {
            text.push_str(&format!("line {i} hunter2\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let tail = log_tail(&path, &Redactor::new(&["hunter2"]));
        assert!(tail.len() as u64 <= LOG_TAIL_BYTES, "{}", tail.len());
        assert!(tail.starts_with("line "), "{tail:.40}");
        assert!(tail.ends_with("line 1999 ***\n"));
        assert!(!tail.contains("hunter2"));
        assert_eq!(
            log_tail(&dir.path().join("none"), &Redactor::new::<&str>(&[])),
            ""
        );
    }
}
