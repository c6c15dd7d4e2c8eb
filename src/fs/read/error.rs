//! The errors a read returns, each with the errno the FUSE adapter replies with and the level
//! of its one log line.

use crate::fs::error::FsError;
use crate::xnat::XnatError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadError {
    /// The download failed (after the client's retries and the engine's one resume).
    #[error(transparent)]
    Backend(#[from] XnatError),
    /// The server's answer does not fit what was asked (a body from another offset, a gap).
    #[error("GET {uri}: {message}")]
    Body { uri: String, message: String },
    /// The read waited for its bytes longer than the read deadline.
    #[error("{uri}: no bytes within the read deadline of {secs} s")]
    Deadline { uri: String, secs: u64 },
    /// The bytes of a whole-file download do not hash to the catalog's MD5 digest.
    #[error("{uri}: downloaded bytes do not match the catalog's MD5 digest")]
    DigestMismatch { uri: String },
}

impl ReadError {
    pub fn errno(&self) -> i32 {
        match self {
            ReadError::Backend(e) => e.errno(),
            ReadError::Body { .. } | ReadError::DigestMismatch { .. } => libc::EIO,
            ReadError::Deadline { .. } => libc::ETIMEDOUT,
        }
    }
}

impl From<ReadError> for FsError {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::Backend(e) => FsError::from(e),
            other => FsError::warn(other.errno(), other.to_string()),
        }
    }
}
