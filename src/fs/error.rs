//! Errors of the filesystem core: each carries, from where it is born, the errno the FUSE
//! adapter replies with and how loud its one log line is. Nothing in the core logs a failure
//! it returns; the boundary that gives up on it (the adapter's reply, a background retry)
//! logs it once, at its level.

use std::fmt;

use tracing::Level;

use crate::xnat::XnatError;

/// A failed filesystem operation: an errno, a message for the log, and its log level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsError {
    pub errno: i32,
    pub message: String,
    pub level: Level,
}

impl FsError {
    /// An error the caller brought on itself (a name that is not there, a folder not empty,
    /// a refused operation): routine, logged at debug level.
    pub fn new(errno: i32, message: impl Into<String>) -> Self {
        FsError {
            errno,
            message: message.into(),
            level: Level::DEBUG,
        }
    }

    /// An error someone should look at: logged as a warning.
    pub fn warn(errno: i32, message: impl Into<String>) -> Self {
        FsError {
            level: Level::WARN,
            ..FsError::new(errno, message)
        }
    }

    /// A local I/O failure while doing `what` (the spool disk full, a disk error).
    pub fn io(what: &str, e: std::io::Error) -> Self {
        FsError::warn(
            e.raw_os_error().unwrap_or(libc::EIO),
            format!("{what}: {e}"),
        )
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

    /// The same error with `context` in front of its message.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Log this error once, at its level, as the outcome of `op`.
    pub fn log(&self, op: &str) {
        match self.level {
            Level::ERROR => tracing::error!(op, errno = self.errno, "{}", self.message),
            Level::WARN => tracing::warn!(op, errno = self.errno, "{}", self.message),
            Level::INFO => tracing::info!(op, errno = self.errno, "{}", self.message),
            Level::DEBUG => tracing::debug!(op, errno = self.errno, "{}", self.message),
            Level::TRACE => tracing::trace!(op, errno = self.errno, "{}", self.message),
        }
    }
}

/// A REST failure keeps the client's errno and level; its message names method, URL and
/// status, never credentials.
impl From<XnatError> for FsError {
    fn from(err: XnatError) -> Self {
        FsError {
            errno: err.errno(),
            message: err.to_string(),
            level: err.level(),
        }
    }
}

impl fmt::Display for FsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (errno {})", self.message, self.errno)
    }
}

impl std::error::Error for FsError {}

pub type FsResult<T> = Result<T, FsError>;
