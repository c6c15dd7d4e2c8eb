//! One HTTP attempt of a call: build the request (cookie, Range, upload body), send it, and
//! describe a failure that came before any answer so the request loop can decide to retry.
//!
//! Uploads go through a client without reqwest's read timeout, because that timer runs
//! from the start of the request and would cut every upload longer than it. A watchdog
//! stands in: the attempt fails when no body bytes were taken for `read_timeout`, or when
//! the answer does not come within `read_timeout` after the last byte.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, COOKIE, RANGE};
use reqwest::{Response, Url};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::client::{error_detail, Call, XnatClient};
use super::error::{Result, XnatError};

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
        let started = Instant::now();
        let progress = Arc::new(AtomicU64::new(0));
        let mark = progress.clone();
        // XNAT needs Content-Length on a raw body; `take` keeps the body to that length even
        // if the file grew since.
        let body = ReaderStream::new(file.take(len)).inspect(move |_| {
            mark.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
        });
        let send = self
            .inner
            .upload_http
            .request(call.method.clone(), url.clone())
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(body))
            .send();
        Ok(watch(send, &progress, started, self.inner.read_timeout).await)
    }
}

/// Run `send`, failing it when `progress` (ms after `started`) stays still for `limit`.
async fn watch(
    send: impl std::future::Future<Output = reqwest::Result<Response>>,
    progress: &AtomicU64,
    started: Instant,
    limit: Duration,
) -> Result<Response, SendError> {
    tokio::pin!(send);
    let tick = (limit / 4).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            result = &mut send => return result.map_err(SendError::from),
            _ = tokio::time::sleep(tick) => {
                let last = Duration::from_millis(progress.load(Ordering::Relaxed));
                let idle = started.elapsed().saturating_sub(last);
                if idle >= limit {
                    return Err(SendError {
                        timeout: true,
                        retryable: true,
                        detail: format!("upload made no progress for {idle:?}"),
                    });
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

    #[tokio::test]
    async fn watchdog_fails_a_stalled_send_and_spares_a_progressing_one() {
        let progress = AtomicU64::new(0);
        let started = Instant::now();
        let stalled = futures::future::pending::<reqwest::Result<Response>>();
        let err = watch(stalled, &progress, started, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(err.timeout && err.retryable, "{}", err.detail);

        // Progress every 20 ms for 200 ms keeps a 50 ms watchdog quiet; the send then
        // fails on its own (an unroutable builder error stands in for the answer).
        let progress = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let p = progress.clone();
        let ticker = tokio::spawn(async move {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                p.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
        });
        let slow = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            reqwest::Client::new().get("not a url").send().await
        };
        let err = watch(slow, &progress, started, Duration::from_millis(50))
            .await
            .unwrap_err();
        assert!(!err.timeout, "{}", err.detail);
        ticker.await.unwrap();
    }
}
