//! One HTTP attempt of a call: build the request (cookie, Range, upload body), send it, and
//! describe a failure that came before any answer so the request loop can decide to retry.
//!
//! Uploads go through a client without reqwest's read timeout, because that timer runs
//! from the start of the request and would cut every upload longer than it. A watchdog
//! stands in: the attempt fails when no body bytes were taken for `read_timeout`, or when
//! no answer came `read_timeout` plus one second per MiB after the last byte was taken.
//! That extra allowance is for the tail still in socket buffers (which drains unseen) and
//! for XNAT's own work on a big file (catalog update, checksum).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use md5::{Digest, Md5};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE, RANGE};
use reqwest::{Response, Url};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::client::{error_detail, Call, XnatClient};
use super::error::{Result, XnatError};

/// Bytes read from the upload file at a time.
const UPLOAD_CHUNK: usize = 256 << 10;

/// A failure before any answer: connection refused or reset, timeout, TLS, …
pub(crate) struct SendError {
    pub timeout: bool,
    pub retryable: bool,
    pub detail: String,
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> Self {
        SendError {
            timeout: e.is_timeout(),
            retryable: !e.is_redirect() && !e.is_builder(),
            detail: error_detail(&e),
        }
    }
}

impl SendError {
    /// The final error once retries are over.
    pub fn into_error(self, method: &str, url: String, attempts: u32) -> XnatError {
        if self.timeout {
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

/// The `Range` header value for `start..end` (end exclusive; `u64::MAX`, or an end not
/// after the start, asks for the rest of the file).
pub(crate) fn range_header(start: u64, end: u64) -> String {
    if end == u64::MAX || end <= start {
        format!("bytes={start}-")
    } else {
        format!("bytes={start}-{}", end - 1)
    }
}

impl XnatClient {
    /// One attempt. The outer error is local (the upload file cannot be read) and is not
    /// retried; the inner one is the network's.
    pub(crate) async fn attempt(
        &self,
        call: &Call<'_>,
        url: &Url,
        cookie: &str,
    ) -> Result<Result<Response, SendError>> {
        let Some(path) = call.upload else {
            let mut req = self
                .inner
                .http
                .request(call.method.clone(), url.clone())
                .header(COOKIE, cookie);
            if let Some((start, end)) = call.range {
                req = req.header(RANGE, range_header(start, end));
            }
            return Ok(req.send().await.map_err(SendError::from));
        };
        let context = || format!("reading {} to upload it", path.display());
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| XnatError::io(context(), e))?;
        let len = file
            .metadata()
            .await
            .map_err(|e| XnatError::io(context(), e))?
            .len();
        let progress = Arc::new(Progress::new());
        let request = self
            .inner
            .upload_http
            .request(call.method.clone(), url.clone())
            .header(COOKIE, cookie);
        if len == 0 {
            // XNAT refuses an empty raw body (500); an empty file part of a form is stored.
            if let Some(sink) = &call.sent_md5 {
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
            return Ok(watch(send, &progress, len, self.inner.read_timeout).await);
        }
        let mark = progress.clone();
        let hasher = Arc::new(std::sync::Mutex::new(Md5::new()));
        let hashing = hasher.clone();
        // XNAT needs Content-Length on a raw body; `take` keeps the body to that length even
        // if the file grew since.
        let body =
            ReaderStream::with_capacity(file.take(len), UPLOAD_CHUNK).inspect(move |chunk| {
                if let Ok(bytes) = chunk {
                    mark.taken(bytes.len() as u64);
                    hashing.lock().expect("md5 lock").update(bytes);
                }
            });
        let send = request
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body))
            .send();
        let answer = watch(send, &progress, len, self.inner.read_timeout).await;
        if let Some(sink) = &call.sent_md5 {
            let sent = progress.bytes.load(Ordering::Relaxed) == len;
            let digest = std::mem::take(&mut *hasher.lock().expect("md5 lock"));
            *sink.lock().expect("md5 sink lock") = sent.then(|| hex(&digest.finalize()));
        }
        Ok(answer)
    }
}

/// Lower-case hex of a digest.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How far an upload body has got: bytes taken by the connection, and when last.
pub(crate) struct Progress {
    started: Instant,
    last_ms: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    fn new() -> Self {
        Progress {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    fn taken(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
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
    progress: &Progress,
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
                let taken = progress.bytes.load(Ordering::Relaxed);
                if idle >= allowed_idle(limit, len, taken) {
                    let detail = if taken < len {
                        format!("upload stalled at {taken} of {len} bytes for {idle:?}")
                    } else {
                        format!("no answer {idle:?} after sending {len} bytes")
                    };
                    return Err(SendError { timeout: true, retryable: true, detail });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        assert_eq!(range_header(0, 1), "bytes=0-0");
        assert_eq!(range_header(100, 200), "bytes=100-199");
        assert_eq!(range_header(5, u64::MAX), "bytes=5-");
        assert_eq!(range_header(5, 5), "bytes=5-");
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
        let progress = Progress::new();
        let stalled = futures::future::pending::<reqwest::Result<Response>>();
        let err = watch(stalled, &progress, 100, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.timeout && err.retryable, "{}", err.detail);
        assert!(err.detail.contains("stalled at 0 of 100"), "{}", err.detail);

        // Progress every 20 ms for 200 ms keeps a 50 ms watchdog quiet; the send then
        // fails on its own (a builder error stands in for the answer).
        let progress = Arc::new(Progress::new());
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
