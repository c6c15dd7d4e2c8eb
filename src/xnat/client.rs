//! The HTTP client: one connection pool, one XNAT session, and the request loop that every
//! call goes through (session cookie, re-login once on 401, retries with backoff).
//!
//! `XnatClient` is a cheap handle (an `Arc` inside) that can be cloned into every task. Its
//! methods speak HTTP on [`ApiPath`]s: listings, text, creates, deletes, downloads and
//! uploads. The archive's operations in domain terms are the [`Backend`](super::Backend) it
//! implements (`backend.rs`). Setup lives in `setup.rs`, login and cookies in `session.rs`,
//! the transfer types and the upload watchdog in `transfer.rs`, the retry loop in `retry.rs`.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use reqwest::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, COOKIE, RANGE};
use reqwest::{Method, Response, StatusCode, Url};

use super::error::{Result, XnatError};
use super::http::{
    error_detail, error_message, header_u64, last_modified, range_header, retry_after,
};
use super::listing::{parse_rows, Listing, Row};
use super::paths::ApiPath;
use super::reach::{probe_wait, Reach};
use super::retry::{self, Failure, RetryPolicy, Verdict};
use super::session::Session;
use super::setup::{build_http, normalise_base, ClientConfig, OfflineStart};
use super::token::Login;
use super::transfer::{
    parse_content_range, parse_duplicates, send_upload, Download, FileHead, HashedPrefix,
    SendError, UploadProgress, Uploaded,
};

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

/// What a create (`PUT`) answered: 201 for a new object, 200 for an existing one; the body
/// is the object's accession ID for subjects and experiments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    pub status: StatusCode,
    pub body: String,
}

/// A handle on one logged-in XNAT session. Clone it freely.
#[derive(Clone)]
pub struct XnatClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// The same, without a read timeout (it would count the whole upload); uploads are
    /// watched for progress instead (`transfer.rs`).
    upload_http: reqwest::Client,
    read_timeout: Duration,
    listing_deadline: Duration,
    listing_max_bytes: u64,
    /// Base URL without a trailing slash.
    base: String,
    retry: RetryPolicy,
    session: Session,
    range: AtomicU8,
    /// The circuit breaker: whether the server may be asked.
    reach: Reach,
    /// Requests sent (each retry counted) and calls that failed, since the start.
    requests: AtomicU64,
    failures: AtomicU64,
    /// Leave to send: every request takes a permit (see `cluster::budget`).
    budget: Arc<crate::cluster::RequestBudget>,
    /// The uploads running now.
    uploads: Mutex<Vec<Arc<UploadProgress>>>,
}

/// What a client has seen of its server, for `xnatfs status`.
#[derive(Debug, Clone, Default)]
pub struct Health {
    /// The server's base URL.
    pub server: String,
    /// Requests sent, retries included.
    pub requests: u64,
    /// Calls that failed in the end (after their retries), 404s included.
    pub failures: u64,
    /// Since when the server has been offline, and why.
    pub offline_since: Option<(std::time::SystemTime, String)>,
    /// How many times the server went away since the start.
    pub outages: u64,
    /// The uploads running now.
    pub uploads: Vec<Arc<UploadProgress>>,
    /// The request budget's figures.
    pub connections: crate::cluster::BudgetStats,
}

impl fmt::Debug for XnatClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XnatClient")
            .field("server", &self.inner.base)
            .field("user", &self.inner.session.user())
            .finish()
    }
}

/// What to send: built by the public calls, run by [`XnatClient::execute`].
struct Call<'a> {
    method: Method,
    path: &'a ApiPath,
    query: Vec<(String, String)>,
    /// `Range: bytes=start-end` (end exclusive; `u64::MAX` for "to the end").
    range: Option<(u64, u64)>,
    /// A file to send as the body, re-opened for each attempt.
    upload: Option<&'a Path>,
    /// Where the MD5 digest (32 hex) of the upload body sent by the last attempt is left.
    sent_md5: Option<Arc<Mutex<Option<String>>>>,
    /// The MD5 of the upload body's first bytes, computed beforehand.
    prefix: Option<HashedPrefix>,
    /// Where the upload's progress shows.
    progress: Option<Arc<UploadProgress>>,
}

impl<'a> Call<'a> {
    fn new(method: Method, path: &'a ApiPath, params: &[(&str, &str)]) -> Self {
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
            prefix: None,
            progress: None,
        }
    }
}

/// A successful answer and how many attempts it took.
struct Sent {
    resp: Response,
    url: String,
    attempts: u32,
    /// Held until the answer's body is read (a download's, with its body stream).
    permit: crate::cluster::Permit,
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
        let login = match &config.token_file {
            Some(path) => Login::TokenFile {
                path: path.clone(),
                user: config.user.clone(),
            },
            None => Login::Password {
                user: config.user.clone(),
                password: config.password.clone(),
            },
        };
        let session = Session::new(
            http.clone(),
            &base,
            login,
            config.retry.clone(),
            config.proactive_relogin,
        )?;
        let client = XnatClient {
            inner: Arc::new(Inner {
                reach: Reach::new(&base, config.offline == OfflineStart::Always),
                http,
                upload_http,
                read_timeout: config.read_timeout,
                listing_deadline: config.listing_deadline,
                listing_max_bytes: config.listing_max_bytes,
                base,
                retry: config.retry.clone(),
                session,
                range: AtomicU8::new(0),
                requests: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                uploads: Mutex::new(Vec::new()),
                budget: config.budget.clone(),
            }),
        };
        client.start_heartbeat();
        if config.offline == OfflineStart::Always {
            return Ok(client);
        }
        match client
            .inner
            .session
            .first_login(&config.connect_retry)
            .await
        {
            Ok(()) => Ok(client),
            Err(e) if config.offline == OfflineStart::Allow && e.says_server_down() => {
                // The login waits for the server to answer; what was kept is served meanwhile.
                client.went_down(&e);
                Ok(client)
            }
            Err(e) => Err(e),
        }
    }

    /// What this client has seen of its server.
    pub fn health(&self) -> Health {
        Health {
            server: self.inner.base.clone(),
            requests: self.inner.requests.load(Ordering::Relaxed),
            failures: self.inner.failures.load(Ordering::Relaxed),
            offline_since: self.inner.reach.offline_since(),
            outages: self.inner.reach.outages(),
            uploads: self.inner.uploads.lock().expect("uploads lock").clone(),
            connections: self.inner.budget.stats(),
        }
    }

    /// Keep the session alive while the mount is idle: a `GET /data/JSESSION` once it has gone
    /// unused for the heartbeat interval, so a long job never meets an expired session (nor
    /// a re-login per mount after every pause, which would pile sessions up on the server).
    fn start_heartbeat(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            let mut tick = Duration::from_secs(10);
            loop {
                tokio::time::sleep(tick).await;
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                let client = XnatClient { inner };
                let session = &client.inner.session;
                let (Some(every), Some(idle)) = (session.heartbeat_every(), session.idle_for())
                else {
                    continue;
                };
                tick = (every / 4).clamp(Duration::from_secs(1), Duration::from_secs(10));
                if idle < every || client.inner.reach.check().is_err() {
                    continue;
                }
                tracing::debug!(idle = ?idle, "session heartbeat");
                if let Err(e) = client.get_text(&super::paths::jsession(), &[]).await {
                    tracing::info!("session heartbeat: {e}");
                }
            }
        });
    }

    /// The server looks down: open the breaker and, if this opened it, probe in the
    /// background until it answers.
    fn went_down(&self, error: &XnatError) {
        if matches!(error, XnatError::Offline { .. }) || !self.inner.reach.open(&error.to_string())
        {
            return;
        }
        if !self.inner.reach.start_probe() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.reach.probe_ended();
            return;
        };
        let inner = Arc::downgrade(&self.inner);
        runtime.spawn(async move {
            for n in 0.. {
                tokio::time::sleep(probe_wait(n)).await;
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                if probe(&inner).await {
                    inner.reach.close();
                    inner.reach.probe_ended();
                    return;
                }
            }
        });
    }

    /// Count a call's outcome, and open the breaker on one that says the server is down.
    fn note<T>(&self, result: &Result<T>) {
        match result {
            Ok(_) => {}
            Err(e) => {
                self.inner.failures.fetch_add(1, Ordering::Relaxed);
                if e.says_server_down() {
                    self.went_down(e);
                }
            }
        }
    }

    /// The server's base URL (no trailing slash).
    pub fn server(&self) -> &str {
        &self.inner.base
    }

    /// The user this client logged in as.
    pub fn user(&self) -> &str {
        self.inner.session.user()
    }

    /// What ranged downloads have shown so far.
    pub fn range_support(&self) -> RangeSupport {
        match self.inner.range.load(Ordering::Relaxed) {
            1 => RangeSupport::Yes,
            2 => RangeSupport::No,
            _ => RangeSupport::Unknown,
        }
    }

    fn note_range_support(&self, support: RangeSupport) {
        let v = match support {
            RangeSupport::Unknown => 0,
            RangeSupport::Yes => 1,
            RangeSupport::No => 2,
        };
        self.inner.range.store(v, Ordering::Relaxed);
    }

    /// The full URL of a path plus query parameters.
    fn url(&self, path: &ApiPath, query: &[(String, String)]) -> Result<Url> {
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
    ///
    /// While the mount is offline (see `reach.rs`) it fails at once with
    /// [`XnatError::Offline`], and a call whose failure says the server is down takes it
    /// offline.
    async fn execute(&self, call: &Call<'_>) -> Result<Sent> {
        self.inner.reach.check()?;
        let url = self.url(call.path, &call.query)?;
        let what = format!("{} {url}", call.method);
        let relogged = AtomicBool::new(false);
        let (url, relogged) = (&url, &relogged);
        let result = retry::run(&self.inner.retry, &what, |attempts| async move {
            // Another call found the server down meanwhile: no more attempts.
            self.inner.reach.check().map_err(Failure::Final)?;
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            self.attempt(call, url, attempts, relogged).await
        })
        .await;
        self.note(&result);
        result
    }

    /// One attempt of a call; a 401 inside it (the session expired) logs in again and
    /// replays it, once per call.
    async fn attempt(
        &self,
        call: &Call<'_>,
        url: &Url,
        attempts: u32,
        relogged: &AtomicBool,
    ) -> Result<Sent, Failure> {
        let method = call.method.as_str();
        let url_text = url.to_string();
        loop {
            let (cookie, generation) = self.inner.session.cookie().await.map_err(Failure::Final)?;
            tracing::debug!(%method, url = %url_text, attempts, "request");
            let permit = self.inner.budget.acquire().await;
            let resp = match self
                .send(call, url, &cookie)
                .await
                .map_err(Failure::Final)?
            {
                Ok(resp) => resp,
                Err(e) if e.retryable => {
                    return Err(Failure::Transient {
                        reason: e.detail.clone(),
                        error: e.into_error(method, url_text, attempts),
                        after: None,
                    })
                }
                Err(e) => return Err(Failure::Final(e.into_error(method, url_text, attempts))),
            };
            let status = resp.status().as_u16();
            match retry::verdict(status) {
                Verdict::Success => {
                    self.inner.session.touch(generation);
                    return Ok(Sent {
                        resp,
                        url: url_text,
                        attempts,
                        permit,
                    });
                }
                Verdict::Relogin if !relogged.swap(true, Ordering::Relaxed) => {
                    tracing::info!(%method, url = %url_text, "401: session expired, logging in again");
                    self.inner
                        .session
                        .relogin(generation)
                        .await
                        .map_err(Failure::Final)?;
                }
                Verdict::Relogin | Verdict::Fail => {
                    if status == 416 {
                        let size = resp
                            .headers()
                            .get(CONTENT_RANGE)
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.trim().strip_prefix("bytes */"))
                            .and_then(|n| n.trim().parse().ok());
                        return Err(Failure::Final(XnatError::RangeNotSatisfiable {
                            method: method.to_string(),
                            url: url_text,
                            size,
                        }));
                    }
                    let message = error_message(resp).await;
                    return Err(Failure::Final(XnatError::from_status(
                        method, &url_text, status, message,
                    )));
                }
                Verdict::Retry => {
                    let after = retry_after(resp.headers());
                    let message = error_message(resp).await;
                    return Err(Failure::Transient {
                        reason: format!("server error {status}"),
                        error: XnatError::RetriesExhausted {
                            method: method.to_string(),
                            url: url_text,
                            attempts,
                            status,
                            message,
                        },
                        after,
                    });
                }
            }
        }
    }

    /// Send the request of a call once. The outer error is local (the upload file cannot be
    /// read) and is not retried; the inner one is the network's.
    async fn send(
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
        let request = self
            .inner
            .upload_http
            .request(call.method.clone(), url.clone())
            .header(COOKIE, cookie);
        send_upload(
            request,
            path,
            self.inner.read_timeout,
            call.sent_md5.as_ref(),
            call.prefix.clone(),
            call.progress.as_ref(),
        )
        .await
    }

    async fn body_text(&self, sent: Sent) -> Result<String> {
        let url = sent.url;
        sent.resp.text().await.map_err(|e| XnatError::Network {
            method: "GET".into(),
            url,
            attempts: 1,
            detail: format!("answer cut short: {}", error_detail(&e)),
        })
    }

    /// GET a listing (`format=json` added) and parse its ResultSet.
    pub async fn get_listing(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<Listing> {
        let (rows, total_records, title) = self.get_rows(path, params, |row| row).await?;
        Ok(Listing {
            rows,
            total_records,
            title,
        })
    }

    /// GET a listing and turn each row into a `T` as it is parsed (off the async threads).
    ///
    /// The whole of it, retries included, has `listing_deadline`; a body over
    /// `listing_max_bytes` is an error.
    async fn get_rows<T: Send + 'static>(
        &self,
        path: &ApiPath,
        params: &[(&str, &str)],
        convert: impl FnMut(Row) -> T + Send + 'static,
    ) -> Result<(Vec<T>, Option<u64>, Option<String>)> {
        let mut call = Call::new(Method::GET, path, params);
        call.query.push(("format".into(), "json".into()));
        let deadline = self.inner.listing_deadline;
        let fetch = async {
            let sent = self.execute(&call).await?;
            let url = sent.url.clone();
            let body = self.capped_body(sent).await?;
            Ok::<_, XnatError>((body, url))
        };
        match tokio::time::timeout(deadline, fetch).await {
            Ok(Ok((body, url))) => {
                let label = url.clone();
                tokio::task::spawn_blocking(move || parse_rows(&body, &url, convert))
                    .await
                    .unwrap_or_else(|e| {
                        Err(XnatError::protocol(
                            &label,
                            format!("parsing the listing stopped: {e}"),
                        ))
                    })
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(XnatError::Timeout {
                method: "GET".into(),
                url: self
                    .url(path, &call.query)
                    .map(|u| u.to_string())
                    .unwrap_or_default(),
                attempts: 1,
            }),
        }
    }

    /// A listing's body, read up to `listing_max_bytes`.
    async fn capped_body(&self, sent: Sent) -> Result<Vec<u8>> {
        let Sent { resp, url, .. } = sent;
        let cap = self.inner.listing_max_bytes;
        if resp.content_length().is_some_and(|n| n > cap) {
            return Err(XnatError::protocol(
                &url,
                format!(
                    "listing of {} bytes is over the limit of {cap}",
                    resp.content_length().unwrap_or(0)
                ),
            ));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| XnatError::Network {
                method: "GET".into(),
                url: url.clone(),
                attempts: 1,
                detail: format!("listing cut short: {}", error_detail(&e)),
            })?;
            if body.len() as u64 + chunk.len() as u64 > cap {
                return Err(XnatError::protocol(
                    &url,
                    format!("listing over the limit of {cap} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// GET a listing and read each row as a `T`.
    pub(crate) async fn rows<T: for<'r> From<&'r Row> + Send + 'static>(
        &self,
        path: &ApiPath,
        params: &[(&str, &str)],
    ) -> Result<Vec<T>> {
        let (rows, _, _) = self.get_rows(path, params, |row| T::from(&row)).await?;
        Ok(rows)
    }

    /// GET a path as text.
    pub async fn get_text(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<String> {
        let sent = self.execute(&Call::new(Method::GET, path, params)).await?;
        self.body_text(sent).await
    }

    /// PUT without a body: create a subject, experiment, scan or resource. 409 (exists)
    /// comes back as [`XnatError::Conflict`].
    pub async fn put(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<Created> {
        let sent = self.execute(&Call::new(Method::PUT, path, params)).await?;
        let status = sent.resp.status();
        let body = self.body_text(sent).await?;
        Ok(Created {
            status,
            body: body.trim().to_string(),
        })
    }

    /// DELETE an object or file (`params` e.g. `removeFiles=true`).
    pub async fn delete(&self, path: &ApiPath, params: &[(&str, &str)]) -> Result<()> {
        self.execute(&Call::new(Method::DELETE, path, params))
            .await
            .map(drop)
    }

    /// Size, modification time and range hint of a file.
    pub async fn head(&self, path: &ApiPath) -> Result<FileHead> {
        let sent = self.execute(&Call::new(Method::HEAD, path, &[])).await?;
        let h = sent.resp.headers();
        Ok(FileHead {
            size: header_u64(h, CONTENT_LENGTH),
            last_modified: last_modified(h),
            accepts_ranges: h
                .get(ACCEPT_RANGES)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().contains("bytes")),
        })
    }

    /// Start downloading a file, or a byte range of it (end exclusive; `u64::MAX` as the
    /// end means "to the end of the file"). Check [`Download::partial`]: a server that
    /// ignores `Range` sends the whole file from offset 0. A range that starts past the end
    /// is [`XnatError::RangeNotSatisfiable`].
    pub async fn download(&self, path: &ApiPath, range: Option<Range<u64>>) -> Result<Download> {
        self.download_with(path, &[], range).await
    }

    /// [`XnatClient::download`] with query parameters (`format=zip`).
    pub async fn download_with(
        &self,
        path: &ApiPath,
        params: &[(&str, &str)],
        range: Option<Range<u64>>,
    ) -> Result<Download> {
        let mut call = Call::new(Method::GET, path, params);
        call.range = range.as_ref().map(|r| (r.start, r.end));
        let sent = self.execute(&call).await?;
        let status = sent.resp.status().as_u16();
        let headers = sent.resp.headers().clone();
        if is_html(&headers) && !names_html(path.raw()) {
            // A login page (an expired SSO session) or a proxy's error page, sent with 200:
            // never a file's content.
            return Err(XnatError::protocol(
                &sent.url,
                "the server answered with an HTML page where a file was expected (a login or \
                 proxy error page?)",
            ));
        }
        let length = header_u64(&headers, CONTENT_LENGTH);
        let (partial, offset, total_size) = if status == 206 {
            let value = headers
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let (first, _last, total) = parse_content_range(value).ok_or_else(|| {
                XnatError::protocol(&sent.url, format!("206 with a bad Content-Range {value:?}"))
            })?;
            (true, first, total)
        } else {
            (false, 0, length)
        };
        if range.is_some() {
            let seen = if partial {
                RangeSupport::Yes
            } else {
                RangeSupport::No
            };
            if self.range_support() != seen {
                tracing::info!(server = %self.server(), "ranged download answered {status}: range support {seen:?}");
            }
            self.note_range_support(seen);
        }
        let url = sent.url.clone();
        // The request's permit lives as long as its body.
        let permit = sent.permit;
        let body = sent.resp.bytes_stream().map(move |chunk| {
            let _held = &permit;
            chunk.map_err(|e| {
                if e.is_timeout() {
                    XnatError::Timeout {
                        method: "GET".into(),
                        url: url.clone(),
                        attempts: 1,
                    }
                } else {
                    XnatError::Network {
                        method: "GET".into(),
                        url: url.clone(),
                        attempts: 1,
                        detail: format!("download cut short: {}", error_detail(&e)),
                    }
                }
            })
        });
        Ok(Download {
            partial,
            offset,
            length,
            total_size,
            last_modified: last_modified(&headers),
            body: Box::pin(body),
        })
    }

    /// Find out whether the server honours `Range`, with a one-byte request for a file
    /// (`bytes=0-0`); the answer is also kept for [`XnatClient::range_support`].
    pub async fn probe_range(&self, path: &ApiPath) -> Result<RangeSupport> {
        let download = self.download(path, Some(0..1)).await?;
        drop(download);
        Ok(self.range_support())
    }

    /// Upload a local file to `path` (`…/resources/R/files/<relpath>`), streamed with
    /// `Content-Length` (an empty file goes as a multipart form, since XNAT refuses an empty
    /// raw body). With `overwrite` an existing file is replaced (XNAT keeps the old one in its
    /// history); without it an existing file makes this fail with [`XnatError::Duplicate`].
    /// `params` go on the query (`format`, `content`, `tags`, …). Returns the size and MD5
    /// digest of the bytes the server accepted.
    pub async fn upload(
        &self,
        path: &ApiPath,
        source: &Path,
        overwrite: bool,
        params: &[(&str, &str)],
    ) -> Result<Uploaded> {
        self.upload_known(path, source, overwrite, params, None)
            .await
    }

    /// [`upload`](Self::upload) of a file whose first bytes' MD5 the caller computed already:
    /// only the rest is hashed as it is sent.
    pub async fn upload_known(
        &self,
        path: &ApiPath,
        source: &Path,
        overwrite: bool,
        params: &[(&str, &str)],
        prefix: Option<HashedPrefix>,
    ) -> Result<Uploaded> {
        let len = tokio::fs::metadata(source)
            .await
            .map_err(|e| XnatError::io(format!("reading {} to upload it", source.display()), e))?
            .len();
        let mut call = Call::new(Method::PUT, path, params);
        if len > 0 {
            call.query.insert(0, ("inbody".into(), "true".into()));
        }
        if overwrite {
            call.query.insert(0, ("overwrite".into(), "true".into()));
        }
        call.upload = Some(source);
        let sink = Arc::new(Mutex::new(None));
        call.sent_md5 = Some(sink.clone());
        call.prefix = prefix;
        let progress = Arc::new(UploadProgress::new(source));
        call.progress = Some(progress.clone());
        let sent = {
            let _shown = Running::add(&self.inner.uploads, progress);
            self.execute(&call).await?
        };
        let body = sent.resp.text().await.unwrap_or_default();
        if let Some(paths) = parse_duplicates(&body) {
            return Err(XnatError::Duplicate {
                url: sent.url,
                paths,
                ambiguous: sent.attempts > 1,
            });
        }
        let md5 = sink.lock().expect("md5 sink lock").take().ok_or_else(|| {
            XnatError::protocol(
                &sent.url,
                "the server answered before the whole body was sent",
            )
        })?;
        tracing::debug!(url = %sent.url, bytes = len, "uploaded");
        Ok(Uploaded { size: len, md5 })
    }

    /// End the session (`DELETE /data/JSESSION`). A later request would log in again.
    pub async fn logout(&self) -> Result<()> {
        self.inner.session.logout().await
    }
}

/// An answer whose `Content-Type` says HTML.
fn is_html(headers: &reqwest::header::HeaderMap) -> bool {
    headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim_start().to_ascii_lowercase();
            v.starts_with("text/html") || v.starts_with("application/xhtml")
        })
}

/// A file whose own name says it is HTML (XNAT serves those as `text/html`).
fn names_html(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".html") || lower.ends_with(".htm") || lower.ends_with(".xhtml")
}

/// One probe of a server that was down: does it answer at all? `GET /data/version` needs no
/// session; any answer but a gateway's 502-504 (or another 5xx) means it is back.
async fn probe(inner: &Inner) -> bool {
    let url = format!("{}/data/version", inner.base);
    let sent = tokio::time::timeout(PROBE_TIMEOUT, inner.http.get(&url).send()).await;
    match sent {
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            tracing::debug!(url, status, "probe of an offline server");
            status < 500
        }
        Ok(Err(e)) => {
            tracing::debug!(url, error = %error_detail(&e), "probe of an offline server");
            false
        }
        Err(_) => false,
    }
}

/// How long a probe waits for its answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// An upload in the client's list while it runs (also when its future is dropped).
struct Running<'a> {
    list: &'a Mutex<Vec<Arc<UploadProgress>>>,
    progress: Arc<UploadProgress>,
}

impl<'a> Running<'a> {
    fn add(list: &'a Mutex<Vec<Arc<UploadProgress>>>, progress: Arc<UploadProgress>) -> Self {
        list.lock().expect("uploads lock").push(progress.clone());
        Running { list, progress }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.list
            .lock()
            .expect("uploads lock")
            .retain(|p| !Arc::ptr_eq(p, &self.progress));
    }
}
