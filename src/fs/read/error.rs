//! The errors a read returns, each with the errno the FUSE adapter replies with.

use super::fetcher::FetchError;

#[derive(Clone, Debug, thiserror::Error)]
pub enum ReadError {
    /// The download failed (after the client's retries and the engine's one resume).
    #[error("GET {uri}: {source}")]
    Fetch {
        uri: String,
        #[source]
        source: FetchError,
    },
    /// The bytes of a whole-file download do not hash to the catalog's MD5 digest.
    #[error("{uri}: downloaded bytes do not match the catalog's MD5 digest")]
    DigestMismatch { uri: String },
}

impl ReadError {
    pub fn errno(&self) -> i32 {
        match self {
            ReadError::Fetch { source, .. } => source.kind.errno(),
            ReadError::DigestMismatch { .. } => libc::EIO,
        }
    }
}
