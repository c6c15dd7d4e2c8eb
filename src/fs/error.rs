//! Errors of the filesystem core, each carrying the errno the FUSE adapter replies with.

use std::fmt;

/// A failed filesystem operation: an errno and a message for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsError {
    pub errno: i32,
    pub message: String,
}

impl FsError {
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        FsError {
            errno,
            message: message.into(),
        }
    }

    pub fn not_found() -> Self {
        FsError::new(libc::ENOENT, "no such entry")
    }

    pub fn not_dir() -> Self {
        FsError::new(libc::ENOTDIR, "not a directory")
    }

    pub fn is_dir() -> Self {
        FsError::new(libc::EISDIR, "is a directory")
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl std::error::Error for FsError {}

pub type FsResult<T> = Result<T, FsError>;
