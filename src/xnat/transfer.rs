//! File transfers: HEAD, streaming downloads (ranged when the server honours it), and
//! streamed uploads with Content-Length.
//!
//! Real XNAT ignores `Range` and answers 200 with the whole file, so a download tells its
//! caller whether it got the asked range (206) or the full body (200), and the client keeps
//! what it has seen in [`RangeSupport`]. A download body is not retried mid-stream: the
//! caller knows which bytes it still needs. An upload is re-read from its file for each
//! attempt; XNAT's `200 {"duplicates":[…]}` answer (file kept, not replaced) is an error.

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::pin::Pin;
use std::time::SystemTime;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, LAST_MODIFIED};
use reqwest::Method;

use super::client::{error_detail, Call, RangeSupport, XnatClient};
use super::error::{Result, XnatError};
use super::paths::ApiPath;

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

fn header_u64(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn last_modified(headers: &HeaderMap) -> Option<SystemTime> {
    httpdate::parse_http_date(headers.get(LAST_MODIFIED)?.to_str().ok()?).ok()
}

impl XnatClient {
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
    /// ignores `Range` sends the whole file from offset 0.
    pub async fn download(&self, path: &ApiPath, range: Option<Range<u64>>) -> Result<Download> {
        let mut call = Call::new(Method::GET, path, &[]);
        call.range = range.as_ref().map(|r| (r.start, r.end));
        let sent = self.execute(&call).await?;
        let status = sent.resp.status().as_u16();
        let headers = sent.resp.headers().clone();
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
        let body = sent.resp.bytes_stream().map(move |chunk| {
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
        let sink = std::sync::Arc::new(std::sync::Mutex::new(None));
        call.sent_md5 = Some(sink.clone());
        let sent = self.execute(&call).await?;
        let body = sent.resp.text().await.unwrap_or_default();
        if let Some(paths) = parse_duplicates(&body) {
            let err = XnatError::Duplicate {
                url: sent.url,
                paths,
                ambiguous: sent.attempts > 1,
            };
            tracing::warn!("{err}");
            return Err(err);
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
}

/// What an upload sent and the server took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub size: u64,
    /// Lower-case hex MD5 digest of the bytes sent.
    pub md5: String,
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
}
