//! File transfers: what a download and an upload look like, and how an upload is sent.
//!
//! Real XNAT ignores `Range` and answers 200 with the whole file, so a download tells its
//! caller whether it got the asked range (206) or the full body (200). A download body is not
//! retried mid-stream: the caller knows which bytes it still needs. An upload is re-read from
//! its file for each attempt; XNAT's `200 {"duplicates":[…]}` answer (file kept, not
//! replaced) is an error.
//!
//! Uploads go through a client without reqwest's read timeout, because that timer runs
//! from the start of the request and would cut every upload longer than it. A watchdog
//! stands in: the attempt fails when no body bytes were taken for `read_timeout`, or when
//! no answer came `read_timeout` plus one second per MiB after the last byte was taken.
//! That extra allowance is for the tail still in socket buffers (which drains unseen) and
//! for XNAT's own work on a big file (catalog update, checksum).

use std::fmt;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::error::{Result, XnatError};
use super::http::error_detail;

/// Bytes read from the upload file at a time.
const UPLOAD_CHUNK: usize = 256 << 10;

/// A download body: chunks of bytes or the error that cut it short.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// What a HEAD says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHead {
    pub size: Option<u64>,
    pub last_modified: Option<SystemTime>,
    /// `Accept-Ranges: bytes` was sent. A hint only: real XNAT sends nothing.
    pub accepts_ranges: bool,
}

/// A download under way.
pub struct Download {
    /// True when the server honoured the range (206); false when it sent the whole file.
    pub partial: bool,
    /// Where in the file the body starts (0 for a full body).
    pub offset: u64,
    /// Bytes in this body, when the server said.
    pub length: Option<u64>,
    /// The file's full size, when known (Content-Length of a 200, Content-Range of a 206).
    pub total_size: Option<u64>,
    pub last_modified: Option<SystemTime>,
    pub body: BodyStream,
}

impl fmt::Debug for Download {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Download")
            .field("partial", &self.partial)
            .field("offset", &self.offset)
            .field("length", &self.length)
            .field("total_size", &self.total_size)
            .field("last_modified", &self.last_modified)
            .finish_non_exhaustive()
    }
}

impl Download {
    /// Read the whole body into memory (for small files and tests).
    pub async fn bytes(mut self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.length.unwrap_or(0).min(64 << 20) as usize);
        while let Some(chunk) = self.body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }
}

/// `Content-Range: bytes <first>-<last>/<total or *>` → (first, last, total).
pub(crate) fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.trim().split_once('-')?;
    let (first, last): (u64, u64) = (first.trim().parse().ok()?, last.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (first <= last && total.is_none_or(|t| last < t)).then_some((first, last, total))
}

/// The paths listed in XNAT's `{"duplicates":[…]}` upload answer, if that is the answer.
pub(crate) fn parse_duplicates(body: &str) -> Option<Vec<String>> {
    let trimmed = body.trim_start();
    if !trimmed.starts_with('{') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(trimmed).ok()?;
    let list = value.get("duplicates")?.as_array()?;
    let paths: Vec<String> = list
        .iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
        .collect();
    (!paths.is_empty()).then_some(paths)
}

/// What an upload sent and the server took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// Lower-case hex MD5 digest of the bytes sent.
    pub md5: String,
}

/// A failure before any answer: connection refused or reset, timeout, TLS, …
pub(crate) struct SendError {
    pub timeout: bool,
    /// No connection was made: the server is down or cannot be reached.
    pub connect: bool,
    pub retryable: bool,
    pub detail: String,
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> Self {
        SendError {
            timeout: e.is_timeout(),
            connect: e.is_connect(),
            retryable: !e.is_redirect() && !e.is_builder(),
            detail: error_detail(&e),
        }
    }
}

impl SendError {
    /// The final error once retries are over.
    pub(crate) fn into_error(self, method: &str, url: String, attempts: u32) -> XnatError {
        if self.connect {
            XnatError::Unreachable {
                method: method.to_string(),
                url,
                attempts,
                detail: self.detail,
            }
        } else if self.timeout {
            XnatError::Timeout {
                method: method.to_string(),
                url,
                attempts,
            }
        } else {
            XnatError::Network {
                method: method.to_string(),
                url,
                attempts,
                detail: self.detail,
            }
        }
    }
}

/// The MD5 state of an upload body's first `len` bytes, computed beforehand (as the file was
/// written): the upload hashes only the rest as it sends it.
#[derive(Clone)]
pub struct HashedPrefix {
    pub md5: Md5,
    pub len: u64,
}

/// Send an upload request with the file at `path` as its body, re-opened for this attempt:
/// raw with Content-Length, or as a one-part multipart form when it is empty (XNAT refuses an
/// empty raw body). The MD5 digest of the bytes sent is left in `sent_md5` when all of them
/// were taken: from `prefix` (the hash of the file's first bytes, computed beforehand) and the
/// bytes after it, hashed as they go. The attempt's progress goes to `progress` (for `xnatfs
/// status`) when given, and an attempt that stops taking bytes for `read_timeout` is cut. The
/// outer error is local (the file cannot be read) and is not retried; the inner one is the
/// network's.
pub(crate) async fn send_upload(
    request: RequestBuilder,
    path: &Path,
    read_timeout: Duration,
    sent_md5: Option<&Arc<Mutex<Option<String>>>>,
    prefix: Option<HashedPrefix>,
    progress: Option<&Arc<UploadProgress>>,
) -> Result<Result<Response, SendError>> {
    let context = || format!("reading {} to upload it", path.display());
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| XnatError::io(context(), e))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| XnatError::io(context(), e))?
        .len();
    let progress = progress
        .cloned()
        .unwrap_or_else(|| Arc::new(UploadProgress::new(path)));
    progress.attempt(len);
    if len == 0 {
        if let Some(sink) = sent_md5 {
            *sink.lock().expect("md5 sink lock") = Some(hex(&Md5::digest(b"")));
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let part = reqwest::multipart::Part::bytes(Vec::new())
            .file_name(name)
            .mime_str("application/octet-stream")
            .expect("a valid MIME type");
        let form = reqwest::multipart::Form::new().part("file", part);
        let send = request.multipart(form).send();
        return Ok(watch(send, &progress, len, read_timeout).await);
    }
    let mark = progress.clone();
    let (start, md5) = match prefix {
        Some(p) if p.len <= len => (p.len, p.md5),
        _ => (0, Md5::new()),
    };
    let hasher = Arc::new(Mutex::new(md5));
    let hashing = hasher.clone();
    let mut at = 0u64;
    // XNAT needs Content-Length on a raw body; `take` keeps the body to that length even
    // if the file grew since.
    let body = ReaderStream::with_capacity(file.take(len), UPLOAD_CHUNK).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            mark.taken(bytes.len() as u64);
            let n = bytes.len() as u64;
            let hashed = start.saturating_sub(at).min(n) as usize;
            if hashed < bytes.len() {
                hashing.lock().expect("md5 lock").update(&bytes[hashed..]);
            }
            at += n;
        }
    });
    let send = request
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let answer = watch(send, &progress, len, read_timeout).await;
    if let Some(sink) = sent_md5 {
        let sent = progress.sent() == len;
        let digest = std::mem::take(&mut *hasher.lock().expect("md5 lock"));
        *sink.lock().expect("md5 sink lock") = sent.then(|| hex(&digest.finalize()));
    }
    Ok(answer)
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far an upload's current attempt is: bytes taken by the connection, of how many, since
/// when, and when the last ones were taken. The watchdog reads it (an attempt that stops taking
/// bytes is cut), and so does `xnatfs status`.
#[derive(Debug)]
pub struct UploadProgress {
    pub source: std::path::PathBuf,
    /// The clock every time below is read against, in milliseconds.
    created: Instant,
    sent: AtomicU64,
    size: AtomicU64,
    started_ms: AtomicU64,
    last_ms: AtomicU64,
}

impl UploadProgress {
    pub(crate) fn new(source: &Path) -> Self {
        UploadProgress {
            source: source.to_path_buf(),
            created: Instant::now(),
            sent: AtomicU64::new(0),
            size: AtomicU64::new(0),
            started_ms: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    fn ms(&self) -> u64 {
        self.created.elapsed().as_millis() as u64
    }

    /// A new attempt of `len` bytes starts now.
    fn attempt(&self, len: u64) {
        let now = self.ms();
        self.sent.store(0, Ordering::Relaxed);
        self.size.store(len, Ordering::Relaxed);
        self.started_ms.store(now, Ordering::Relaxed);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// The connection took `n` more bytes.
    fn taken(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        self.last_ms.store(self.ms(), Ordering::Relaxed);
    }

    /// How long since bytes were last taken (or the attempt started).
    fn idle(&self) -> Duration {
        Duration::from_millis(
            self.ms()
                .saturating_sub(self.last_ms.load(Ordering::Relaxed)),
        )
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Bytes sent in this attempt, of how many, and for how long it has run.
    pub fn now(&self) -> (u64, u64, Duration) {
        let started = self.started_ms.load(Ordering::Relaxed);
        (
            self.sent(),
            self.size.load(Ordering::Relaxed),
            Duration::from_millis(self.ms().saturating_sub(started)),
        )
    }
}

/// How long an upload may go without visible progress: `limit` while the body is being
/// taken, plus a second per MiB once all of it was.
pub(crate) fn allowed_idle(limit: Duration, len: u64, taken: u64) -> Duration {
    if taken < len {
        limit
    } else {
        limit + Duration::from_secs(len.div_ceil(1 << 20))
    }
}

/// Run `send`, failing it when `progress` stays still for longer than [`allowed_idle`].
async fn watch(
    send: impl std::future::Future<Output = reqwest::Result<Response>>,
    progress: &UploadProgress,
    len: u64,
    limit: Duration,
) -> Result<Response, SendError> {
    tokio::pin!(send);
    let tick = (limit / 4).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            result = &mut send => return result.map_err(SendError::from),
            _ = tokio::time::sleep(tick) => {
                let idle = progress.idle();
                let taken = progress.sent();
                if idle >= allowed_idle(limit, len, taken) {
                    let detail = if taken < len {
                        format!("upload stalled at {taken} of {len} bytes for {idle:?}")
                    } else {
                        format!("no answer {idle:?} after sending {len} bytes")
                    };
                    return Err(SendError { timeout: true, connect: false, retryable: true, detail });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-0/10"), Some((0, 0, Some(10))));
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, 199, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("bytes 9-5/10"), None);
        assert_eq!(parse_content_range("bytes 0-10/10"), None);
        assert_eq!(parse_content_range("bytes */10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range(""), None);
    }

    #[test]
    fn duplicates_answer() {
        assert_eq!(
            parse_duplicates(r#"{"duplicates":["sub/a.nii.gz"]}"#),
            Some(vec!["sub/a.nii.gz".to_string()])
        );
        assert_eq!(parse_duplicates(""), None);
        assert_eq!(parse_duplicates(r#"{"duplicates":[]}"#), None);
        assert_eq!(parse_duplicates("<html>ok</html>"), None);
        assert_eq!(parse_duplicates(r#"{"other":1}"#), None);
        assert_eq!(parse_duplicates("{broken"), None);
    }

    #[test]
    fn idle_allowance_grows_with_size_once_sent() {
        let limit = Duration::from_secs(120);
        assert_eq!(allowed_idle(limit, 10 << 20, 5 << 20), limit);
        assert_eq!(
            allowed_idle(limit, 10 << 20, 10 << 20),
            limit + Duration::from_secs(10)
        );
        assert_eq!(allowed_idle(limit, 1, 1), limit + Duration::from_secs(1));
    }

    #[tokio::test]
    async fn watchdog_fails_a_stalled_send_and_spares_a_progressing_one() {
        let progress = UploadProgress::new(Path::new("stalled"));
        progress.attempt(100);
        let stalled = futures::future::pending::<reqwest::Result<Response>>();
        let err = watch(stalled, &progress, 100, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.timeout && err.retryable, "{}", err.detail);
        assert!(err.detail.contains("stalled at 0 of 100"), "{}", err.detail);

        // Progress every 20 ms for 200 ms keeps a 50 ms watchdog quiet; the send then
        // fails on its own (a builder error stands in for the answer).
        let progress = Arc::new(UploadProgress::new(Path::new("slow")));
        progress.attempt(1 << 30);
        let p = progress.clone();
        let ticker = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                p.taken(1);
            }
        });
        let slow = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            reqwest::Client::new().get("not a url").send().await
        };
        let err = watch(slow, &progress, 1 << 30, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(!err.timeout, "{}", err.detail);
        ticker.await.unwrap();
    }
}
