//! Errors of the XNAT client, classified once, here: the errno a filesystem answers with
//! ([`XnatError::errno`]), whether trying again later may succeed without anyone changing
//! anything ([`XnatError::retryable`]), and how loud a log line about it should be
//! ([`XnatError::level`]). The client itself logs no failure: whoever gives up on one logs it,
//! once.
//!
//! Messages name the HTTP method, the URL and the status so a log line alone explains a
//! failure. They never contain a password or a session cookie: URLs are built by the client
//! from a base URL without credentials, and only the user name ever appears.

use std::io;
use std::sync::Arc;

/// What went wrong talking to XNAT. Cheap to clone, so one failed download can be handed
/// to every reader waiting on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum XnatError {
    /// The server refused the user name and password. Never retried: XNAT locks accounts
    /// after a few failed logins.
    #[error("XNAT at {server} refused the login of user '{user}' (401): check the user name and password")]
    BadCredentials { server: String, user: String },

    /// The token file cannot be used (missing, readable by others, a link, not a token).
    #[error("{message}")]
    BadToken { message: String },

    /// A request was refused as unauthenticated even after logging in again.
    #[error("{method} {url}: 401 Unauthorized even after logging in again")]
    Unauthorized { method: String, url: String },

    /// The account may not do this.
    #[error("{method} {url}: 403 Forbidden{}", detail(.message))]
    Forbidden {
        method: String,
        url: String,
        message: String,
    },

    /// No such object or file.
    #[error("{method} {url}: 404 Not Found{}", detail(.message))]
    NotFound {
        method: String,
        url: String,
        message: String,
    },

    /// The object exists already (e.g. creating a resource twice).
    #[error("{method} {url}: 409 Conflict{}", detail(.message))]
    Conflict {
        method: String,
        url: String,
        message: String,
    },

    /// An upload without `overwrite=true` met an existing file: XNAT answered 200 with
    /// `{"duplicates":[…]}` and kept the old file. `ambiguous` is true when an earlier attempt
    /// of this same upload failed in a way that may have stored the file after all.
    #[error("PUT {url}: XNAT kept the existing file(s) {paths:?} instead of replacing them{}",
        if *.ambiguous { " (an earlier attempt of this upload may have stored them)" } else { "" })]
    Duplicate {
        url: String,
        paths: Vec<String>,
        ambiguous: bool,
    },

    /// 416: a ranged download started at or past the end of the file; `size` is the file's
    /// size when the answer's `Content-Range: bytes */SIZE` told it.
    #[error("{method} {url}: 416 Range Not Satisfiable{}", .size.map(|s| format!(" (the file has {s} bytes)")).unwrap_or_default())]
    RangeNotSatisfiable {
        method: String,
        url: String,
        size: Option<u64>,
    },

    /// The server did not answer in time.
    #[error("{method} {url}: timed out after {attempts} attempt(s)")]
    Timeout {
        method: String,
        url: String,
        attempts: u32,
    },

    /// The server kept failing (5xx or 429) until the retry budget ran out.
    #[error("{method} {url}: gave up after {attempts} attempt(s), last answer {status}{}", detail(.message))]
    RetriesExhausted {
        method: String,
        url: String,
        attempts: u32,
        status: u16,
        message: String,
    },

    /// An error status that retrying cannot fix (400, 405, 416, 417, …, or a 5xx on a request
    /// that must not be repeated).
    #[error("{method} {url}: {status}{}", detail(.message))]
    Status {
        method: String,
        url: String,
        status: u16,
        message: String,
    },

    /// The server could not be reached or the connection broke.
    #[error("{method} {url}: network error after {attempts} attempt(s): {detail}")]
    Network {
        method: String,
        url: String,
        attempts: u32,
        detail: String,
    },

    /// No connection could be made to the server (refused, no route, a name that does not
    /// resolve, a connect timeout): the server, or the way to it, is down.
    #[error("{method} {url}: cannot reach the server after {attempts} attempt(s): {detail}")]
    Unreachable {
        method: String,
        url: String,
        attempts: u32,
        detail: String,
    },

    /// The mount is offline: the server could not be reached (or `--offline` was given), and
    /// until it answers again nothing is sent to it.
    #[error("XNAT at {server} is offline since {since}{}: only what the mount has kept is served", detail(.reason))]
    Offline {
        server: String,
        /// When it went offline, as a date and time people read.
        since: String,
        reason: String,
    },

    /// The server answered something the client cannot understand (a listing that is not
    /// the ResultSet JSON, a bad Content-Range, …).
    #[error("{url}: unexpected answer from XNAT: {message}")]
    Protocol { url: String, message: String },

    /// A name or path that cannot be put in a URL safely (empty segment, `.` or `..`).
    #[error("cannot address '{path}' on XNAT: {reason}")]
    InvalidPath { path: String, reason: String },

    /// The server URL given to the client cannot be used.
    #[error("invalid XNAT server URL '{url}': {reason}")]
    BadServerUrl { url: String, reason: String },

    /// A local file or setting could not be used.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: Arc<io::Error>,
    },
}

/// `": message"` when the server said something, nothing otherwise.
fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Shorthand used across the client.
pub type Result<T, E = XnatError> = std::result::Result<T, E>;

impl XnatError {
    /// The errno a filesystem should answer with.
    pub fn errno(&self) -> i32 {
        match self {
            XnatError::BadCredentials { .. }
            | XnatError::BadToken { .. }
            | XnatError::Unauthorized { .. }
            | XnatError::Forbidden { .. } => libc::EACCES,
            XnatError::NotFound { .. } => libc::ENOENT,
            XnatError::Conflict { .. } | XnatError::Duplicate { .. } => libc::EEXIST,
            XnatError::Timeout { .. } => libc::ETIMEDOUT,
            XnatError::Unreachable { .. } => libc::EHOSTUNREACH,
            XnatError::Offline { .. } => libc::EHOSTDOWN,
            XnatError::RangeNotSatisfiable { .. } => libc::EINVAL,
            XnatError::InvalidPath { .. } | XnatError::BadServerUrl { .. } => libc::EINVAL,
            XnatError::Status { status, .. } => match status {
                400 | 416 | 417 => libc::EINVAL,
                405 | 501 => libc::ENOTSUP,
                _ => libc::EIO,
            },
            XnatError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            XnatError::RetriesExhausted { .. }
            | XnatError::Network { .. }
            | XnatError::Protocol { .. } => libc::EIO,
        }
    }

    /// True for errors that say the object is not there (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, XnatError::NotFound { .. })
    }

    /// Whether the same request may succeed later without anyone changing anything: the
    /// server unreachable or failing (5xx, timeouts, a broken or unreadable answer, a local
    /// error reading the upload). Refusals (401, 403, 404, 409, other 4xx, a name taken) need
    /// a person.
    pub fn retryable(&self) -> bool {
        match self {
            XnatError::Network { .. }
            | XnatError::Unreachable { .. }
            | XnatError::Offline { .. }
            | XnatError::Timeout { .. }
            | XnatError::RetriesExhausted { .. }
            | XnatError::Protocol { .. }
            | XnatError::Io { .. } => true,
            XnatError::Status { status, .. } => *status >= 500,
            XnatError::BadCredentials { .. }
            | XnatError::BadToken { .. }
            | XnatError::Unauthorized { .. }
            | XnatError::Forbidden { .. }
            | XnatError::NotFound { .. }
            | XnatError::Conflict { .. }
            | XnatError::Duplicate { .. }
            | XnatError::RangeNotSatisfiable { .. }
            | XnatError::InvalidPath { .. }
            | XnatError::BadServerUrl { .. } => false,
        }
    }

    /// How loud the one log line about this failure is: a 404 is routine (lookups of names
    /// that do not exist), refused credentials stop everything, the rest is worth a warning.
    pub fn level(&self) -> tracing::Level {
        match self {
            XnatError::NotFound { .. } => tracing::Level::DEBUG,
            XnatError::BadCredentials { .. } | XnatError::BadToken { .. } => tracing::Level::ERROR,
            _ => tracing::Level::WARN,
        }
    }

    /// Whether this failure says the server is down rather than that one request went wrong:
    /// no connection could be made, or a gateway in front of it kept answering that it cannot
    /// reach it (502 Bad Gateway, 504 Gateway Timeout) until the retries ran out. A 503 is the
    /// server itself answering, busy: not down. The mount goes offline on it.
    pub fn says_server_down(&self) -> bool {
        match self {
            XnatError::Unreachable { .. } | XnatError::Offline { .. } => true,
            XnatError::RetriesExhausted { status, .. } => matches!(status, 502 | 504),
            _ => false,
        }
    }

    /// The error for a final, non-retryable error status.
    pub(crate) fn from_status(method: &str, url: &str, status: u16, message: String) -> Self {
        let (method, url) = (method.to_string(), url.to_string());
        match status {
            401 => XnatError::Unauthorized { method, url },
            403 => XnatError::Forbidden {
                method,
                url,
                message,
            },
            404 => XnatError::NotFound {
                method,
                url,
                message,
            },
            409 => XnatError::Conflict {
                method,
                url,
                message,
            },
            _ => XnatError::Status {
                method,
                url,
                status,
                message,
            },
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        XnatError::Io {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn protocol(url: &str, message: impl Into<String>) -> Self {
        XnatError::Protocol {
            url: url.to_string(),
            message: message.into(),
        }
    }
}

/// The message inside a Restlet "Status page" (`<h3>MESSAGE</h3>`), or the start of a short
/// plain-text body; empty when there is nothing useful to show.
pub(crate) fn server_message(body: &str) -> String {
    let text = match (body.find("<h3>"), body.find("</h3>")) {
        (Some(start), Some(end)) if start + 4 <= end => &body[start + 4..end],
        _ if body.trim_start().starts_with('<') => return String::new(),
        _ => body,
    };
    let mut message: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if message.chars().count() > 200 {
        message = message.chars().take(200).collect::<String>() + "…";
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_errno() {
        let e = |s| XnatError::from_status("GET", "http://x/data/p", s, String::new()).errno();
        assert_eq!(e(401), libc::EACCES);
        assert_eq!(e(403), libc::EACCES);
        assert_eq!(e(404), libc::ENOENT);
        assert_eq!(e(409), libc::EEXIST);
        assert_eq!(e(400), libc::EINVAL);
        assert_eq!(e(500), libc::EIO);
    }

    #[test]
    fn other_variants_map_to_errno() {
        let bad = XnatError::BadCredentials {
            server: "https://x".into(),
            user: "u".into(),
        };
        assert_eq!(bad.errno(), libc::EACCES);
        let t = XnatError::Timeout {
            method: "GET".into(),
            url: "u".into(),
            attempts: 3,
        };
        assert_eq!(t.errno(), libc::ETIMEDOUT);
        let d = XnatError::Duplicate {
            url: "u".into(),
            paths: vec!["a".into()],
            ambiguous: false,
        };
        assert_eq!(d.errno(), libc::EEXIST);
        let io = XnatError::io("reading x", io::Error::from_raw_os_error(libc::ENOSPC));
        assert_eq!(io.errno(), libc::ENOSPC);
    }

    #[test]
    fn classification() {
        let status = |s| XnatError::from_status("GET", "u", s, String::new());
        assert!(!status(404).retryable());
        assert!(!status(403).retryable());
        assert!(status(502).retryable());
        assert_eq!(status(404).level(), tracing::Level::DEBUG);
        assert_eq!(status(500).level(), tracing::Level::WARN);
        let net = XnatError::Network {
            method: "GET".into(),
            url: "u".into(),
            attempts: 1,
            detail: "reset".into(),
        };
        assert!(net.retryable());
        let range = XnatError::RangeNotSatisfiable {
            method: "GET".into(),
            url: "u".into(),
            size: Some(7),
        };
        assert!(!range.retryable());
        assert!(range.to_string().contains("7 bytes"), "{range}");
    }

    #[test]
    fn messages_name_method_url_and_status() {
        let e = XnatError::from_status(
            "PUT",
            "https://xnat.example.org/data/projects/P/subjects/S/experiments/E",
            417,
            "Need PUT Contents".into(),
        );
        assert_eq!(
            e.to_string(),
            "PUT https://xnat.example.org/data/projects/P/subjects/S/experiments/E: 417: Need PUT Contents"
        );
        let bad = XnatError::BadCredentials {
            server: "https://x".into(),
            user: "alice".into(),
        };
        assert!(bad.to_string().contains("'alice'"));
    }

    #[test]
    fn status_page_message_is_extracted() {
        let page = "<html><head><title>Status page</title></head><body><h3>Need PUT   Contents</h3><p>x</p></body></html>";
        assert_eq!(server_message(page), "Need PUT Contents");
        assert_eq!(server_message("<html><body>oops</body></html>"), "");
        assert_eq!(server_message("plain  text\n"), "plain text");
        assert_eq!(server_message(&"y".repeat(500)).chars().count(), 201);
    }
}
