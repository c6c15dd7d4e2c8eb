//! The HTTP client: one connection pool, one XNAT session, and the request loop that every
//! call goes through (session cookie, re-login once on 401, retries with backoff).
//!
//! `XnatClient` is a cheap handle (an `Arc` inside) that can be cloned into every task.
//! Setup lives in `setup.rs`; one attempt (request building, upload watchdog) in
//! `attempt.rs`; login, session state and cookies in `session.rs`; downloads and uploads in
//! `transfer.rs`; the calls the filesystem makes in `api.rs`.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Method, Response, Url};

use super::error::{server_message, Result, XnatError};
use super::paths::ApiPath;
use super::retry::{self, RetryPolicy, Verdict};
use super::session::SessionCell;
use super::setup::{build_http, normalise_base, ClientConfig};

/// Whether the server honours `Range` on file downloads, as seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSupport {
    /// No ranged request answered yet.
    Unknown,
    /// A ranged request was answered with 206.
    Yes,
    /// A ranged request was answered with the whole file (200).
    No,
}

/// A handle on one logged-in XNAT session. Clone it freely.
#[derive(Clone)]
pub struct XnatClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// The same, without a read timeout (it would count the whole upload); uploads are
    /// watched for progress instead (`attempt.rs`).
    pub(crate) upload_http: reqwest::Client,
    pub(crate) read_timeout: Duration,
    /// Base URL without a trailing slash.
    pub(crate) base: String,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) retry: RetryPolicy,
    pub(crate) proactive_relogin: bool,
    pub(crate) session: SessionCell,
    range: AtomicU8,
}

impl fmt::Debug for XnatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XnatClient")
            .field("server", &self.inner.base)
            .field("user", &self.inner.user)
            .finish()
    }
}

/// What to send: built by the public calls, run by [`XnatClient::execute`].
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: &'a ApiPath,
    pub query: Vec<(String, String)>,
    /// `Range: bytes=start-end` (end exclusive; `u64::MAX` for "to the end").
    pub range: Option<(u64, u64)>,
    /// A file to send as the body, re-opened for each attempt: raw with Content-Length, or as
    /// a one-part multipart form when it is empty (XNAT refuses an empty raw body).
    pub upload: Option<&'a Path>,
    /// Where the MD5 digest (32 hex) of the upload body sent by the last attempt is left.
    pub sent_md5: Option<Arc<std::sync::Mutex<Option<String>>>>,
}

impl<'a> Call<'a> {
    pub fn new(method: Method, path: &'a ApiPath, params: &[(&str, &str)]) -> Self {
        Call {
            method,
            path,
            query: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            range: None,
            upload: None,
            sent_md5: None,
        }
    }
}

/// A successful answer and how many attempts it took.
pub(crate) struct Sent {
    pub resp: Response,
    pub url: String,
    pub attempts: u32,
}

/// The chain of causes of an error, without the top line (which repeats the URL).
pub(crate) fn error_detail(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    }
}

/// Read at most 64 KiB of an error answer and pull out XNAT's message.
pub(crate) async fn error_message(mut resp: Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 * 1024 {
            break;
        }
    }
    server_message(&String::from_utf8_lossy(&body))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry::parse_retry_after)
}

impl XnatClient {
    /// Build the HTTP client and log in once (`POST /data/JSESSION` with Basic auth).
    ///
    /// A wrong password fails with [`XnatError::BadCredentials`] after exactly one attempt;
    /// an unreachable server with [`XnatError::Network`] after `connect_retry`.
    pub async fn connect(config: ClientConfig) -> Result<Self> {
        let base = normalise_base(&config.server)?;
        let http = build_http(&config, true)?;
        let upload_http = build_http(&config, false)?;
        let client = XnatClient {
            inner: Arc::new(Inner {
                http,
                upload_http,
                read_timeout: config.read_timeout,
                base,
                user: config.user.clone(),
                password: config.password.clone(),
                retry: config.retry.clone(),
                proactive_relogin: config.proactive_relogin,
                session: SessionCell::new(),
                range: AtomicU8::new(0),
            }),
        };
        client.first_login(&config.connect_retry).await?;
        Ok(client)
    }

    /// The server's base URL (no trailing slash).
    pub fn server(&self) -> &str {
        &self.inner.base
    }

    /// The user this client logged in as.
    pub fn user(&self) -> &str {
        &self.inner.user
    }

    /// What ranged downloads have shown so far.
    pub fn range_support(&self) -> RangeSupport {
        match self.inner.range.load(Ordering::Relaxed) {
            1 => RangeSupport::Yes,
            2 => RangeSupport::No,
            _ => RangeSupport::Unknown,
        }
    }

    pub(crate) fn note_range_support(&self, support: RangeSupport) {
        let v = match support {
            RangeSupport::Unknown => 0,
            RangeSupport::Yes => 1,
            RangeSupport::No => 2,
        };
        self.inner.range.store(v, Ordering::Relaxed);
    }

    /// The full URL of a path plus query parameters.
    pub(crate) fn url(&self, path: &ApiPath, query: &[(String, String)]) -> Result<Url> {
        path.check()?;
        let mut url = Url::parse(&format!("{}{}", self.inner.base, path)).map_err(|e| {
            XnatError::InvalidPath {
                path: path.to_string(),
                reason: e.to_string(),
            }
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Send a call: session cookie, one re-login on 401, retries on 5xx/429 and connection
    /// errors within the retry policy. Only successful (1xx-3xx) answers come back.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Sent> {
        let url = self.url(call.path, &call.query)?;
        let url_text = url.to_string();
        let method = call.method.as_str();
        let policy = &self.inner.retry;
        let started = Instant::now();
        let mut retries = 0u32;
        let mut relogged = false;
        loop {
            let (cookie, generation) = self.session_cookie().await?;
            let attempts = retries + 1;
            tracing::debug!(%method, url = %url_text, attempts, "request");
            let failure = match self.attempt(call, &url, &cookie).await? {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match retry::verdict(status) {
                        Verdict::Success => {
                            self.touch_session(generation);
                            return Ok(Sent {
                                resp,
                                url: url_text,
                                attempts,
                            });
                        }
                        Verdict::Relogin if !relogged => {
                            tracing::info!(%method, url = %url_text, "401: session expired, logging in again");
                            relogged = true;
                            self.relogin(generation).await?;
                            continue;
                        }
                        Verdict::Relogin | Verdict::Fail => {
                            let message = error_message(resp).await;
                            let err = XnatError::from_status(method, &url_text, status, message);
                            if status == 404 {
                                // Lookups of names that do not exist are routine.
                                tracing::debug!("{err}");
                            } else {
                                tracing::warn!("{err}");
                            }
                            return Err(err);
                        }
                        Verdict::Retry => {
                            let after = retry_after(resp.headers());
                            let message = error_message(resp).await;
                            let delay =
                                policy.delay(retries, started.elapsed(), rand::random(), after);
                            match delay {
                                Some(d) => {
                                    tracing::warn!(%method, url = %url_text, status, attempts, "server error, retrying in {d:?}");
                                    tokio::time::sleep(d).await;
                                    retries += 1;
                                    continue;
                                }
                                None => XnatError::RetriesExhausted {
                                    method: method.to_string(),
                                    url: url_text,
                                    attempts,
                                    status,
                                    message,
                                },
                            }
                        }
                    }
                }
                Err(e) => {
                    let delay = e
                        .retryable
                        .then(|| policy.delay(retries, started.elapsed(), rand::random(), None))
                        .flatten();
                    if let Some(d) = delay {
                        tracing::warn!(%method, url = %url_text, attempts, error = %e.detail, "request failed, retrying in {d:?}");
                        tokio::time::sleep(d).await;
                        retries += 1;
                        continue;
                    }
                    e.into_error(method, url_text, attempts)
                }
            };
            tracing::warn!("{failure}");
            return Err(failure);
        }
    }
}
