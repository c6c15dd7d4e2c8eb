//! Small pieces of HTTP every part of the client uses: reading an error answer, describing a
//! transport error, and the headers of transfers (`Range`, `Retry-After`, `Last-Modified`).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, LAST_MODIFIED, RETRY_AFTER};
use reqwest::Response;

use super::error::server_message;
use super::retry;

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
    let detail = if parts.is_empty() {
        e.to_string()
    } else {
        parts.join(": ")
    };
    // What rustls says when an https:// URL reaches a server that speaks plain HTTP.
    let plain_http = e.url().is_some_and(|u| u.scheme() == "https")
        && (detail.contains("InvalidContentType") || detail.contains("invalid content type"));
    if plain_http {
        format!("{detail} (the server answered in plain HTTP, not TLS: is the URL http://…?)")
    } else {
        detail
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

/// The server's `Retry-After`, in its seconds form.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(retry::parse_retry_after)
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

pub(crate) fn header_u64(headers: &HeaderMap, name: HeaderName) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

pub(crate) fn last_modified(headers: &HeaderMap) -> Option<SystemTime> {
    httpdate::parse_http_date(headers.get(LAST_MODIFIED)?.to_str().ok()?).ok()
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
}
