//! What the read engine needs from the network, and nothing more: GET a URI, maybe with a
//! Range. The fs core adapts the XNAT REST client to this trait; tests use an in-memory fake.

use crate::fs::cache::FileKey;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use std::ops::Range;

/// What a file's bytes are fetched through. The real implementation wraps the XNAT REST client.
pub trait Fetcher: Send + Sync + 'static {
    /// GET `uri`, optionally with `Range: bytes=start-(end-1)`. The server may ignore the range
    /// (real XNAT does): then `partial == false`, `offset == 0` and the body is the whole file.
    /// The engine asks for `end == u64::MAX` to mean "to the end of the file" (`bytes=start-`).
    fn fetch(
        &self,
        uri: &str,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'static, Result<FetchBody, FetchError>>;
}

pub struct FetchBody {
    /// True for a 206 answer: the body starts at `offset`.
    pub partial: bool,
    /// Offset of the body's first byte in the file (0 unless `partial`).
    pub offset: u64,
    /// The whole file's size, when the response tells it (Content-Length of a 200,
    /// the total of a 206's Content-Range).
    pub total_size: Option<u64>,
    pub body: BoxStream<'static, Result<Bytes, FetchError>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// 404.
    NotFound,
    /// 401/403 after the client's re-login.
    PermissionDenied,
    /// A timeout, after the client's retries.
    TimedOut,
    /// Anything else once the client's retries are exhausted, or a body that broke.
    Io,
    /// 416: the range starts at or past the end of the file, whose size the answer's
    /// `Content-Range: bytes */SIZE` may tell.
    RangeNotSatisfiable { size: Option<u64> },
}

impl FetchErrorKind {
    pub fn errno(self) -> i32 {
        match self {
            FetchErrorKind::NotFound => libc::ENOENT,
            FetchErrorKind::PermissionDenied => libc::EACCES,
            FetchErrorKind::TimedOut => libc::ETIMEDOUT,
            FetchErrorKind::Io | FetchErrorKind::RangeNotSatisfiable { .. } => libc::EIO,
        }
    }
}

#[derive(Clone, Debug, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub message: String,
}

impl FetchError {
    pub fn new(kind: FetchErrorKind, message: impl Into<String>) -> Self {
        FetchError {
            kind,
            message: message.into(),
        }
    }
}

/// One version of a remote file, as the namespace knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileVersion {
    pub uri: String,
    /// Size from the listing; the first download corrects it.
    pub size: u64,
    /// A token that changes when the content does: size + MD5 digest, or Last-Modified.
    pub version: String,
    /// The catalog's MD5 digest, 32 hex digits.
    pub digest: Option<String>,
}

impl FileVersion {
    pub fn key(&self) -> FileKey {
        FileKey::new(&self.uri, &self.version)
    }

    /// The digest as bytes; `None` when absent or not 32 hex digits.
    pub fn md5(&self) -> Option<[u8; 16]> {
        crate::fs::cache::unhex_digest(self.digest.as_deref()?)
    }
}
