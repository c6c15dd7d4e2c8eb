//! Cache keys. A file version (URI + version token) is hashed once, at open, into a 32-byte
//! `FileKey`; a block is that key plus its index. Hashing keeps the keys small and fixed-size (the
//! memory LRU hashes them on every lookup) and gives the disk tier file names that say nothing
//! about the archive's contents.

use sha2::{Digest, Sha256};
use std::fmt;

/// One version of one remote file: SHA-256 of the URI and the version token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileKey(pub [u8; 32]);

impl FileKey {
    /// Key of `uri` at `version` (e.g. size + MD5 digest, or Last-Modified).
    pub fn new(uri: &str, version: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"xnatfs-file-v1\0");
        h.update((uri.len() as u64).to_le_bytes());
        h.update(uri.as_bytes());
        h.update((version.len() as u64).to_le_bytes());
        h.update(version.as_bytes());
        FileKey(h.finalize().into())
    }

    /// The key as 64 hex digits (a name in the shared cache).
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FileKey({}…)", &hex(&self.0)[..12])
    }
}

/// Block `index` (byte offset `index * block_size`) of a file version.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct BlockKey {
    pub file: FileKey,
    pub index: u64,
}

impl BlockKey {
    pub fn new(file: FileKey, index: u64) -> Self {
        BlockKey { file, index }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Parses lowercase or uppercase hex into exactly `N` bytes.
pub(crate) fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let s = s.as_bytes();
    if s.len() != N * 2 {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; N];
    for (i, pair) in s.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_uri_version_and_index() {
        let a = FileKey::new("/data/a", "v1");
        assert_ne!(a, FileKey::new("/data/a", "v2"));
        assert_ne!(a, FileKey::new("/data/b", "v1"));
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(FileKey::new("ab", "c"), FileKey::new("a", "bc"));
        assert_ne!(BlockKey::new(a, 0), BlockKey::new(a, 1));
    }

    #[test]
    fn hex_round_trip() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex::<4>("0001ABff"), Some(bytes));
        assert_eq!(unhex::<4>("0001abf"), None);
        assert_eq!(unhex::<4>("0001abfg"), None);
    }
}
