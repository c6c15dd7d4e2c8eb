//! One version of a remote file, as the namespace knows it: where to fetch it, its listed
//! size and the token that changes when its content does.

use crate::fs::cache::FileKey;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileVersion {
    /// The URI the listing gave, which the backend fetches.
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
