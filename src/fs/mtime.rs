//! A modification time shared between threads: whole seconds since the epoch in an atomic,
//! 0 meaning not known (no XNAT object is dated 1970-01-01 00:00:00). Inodes keep their time
//! in one, file downloads the server's `Last-Modified`, and the cache records the same seconds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch of `t` (0 for a time before it).
pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The time `secs` seconds after the epoch.
pub fn from_epoch_secs(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[derive(Debug, Default)]
pub struct AtomicTime(AtomicU64);

impl AtomicTime {
    pub fn new(t: Option<SystemTime>) -> Self {
        AtomicTime(AtomicU64::new(t.map_or(0, epoch_secs)))
    }

    pub fn get(&self) -> Option<SystemTime> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            s => Some(from_epoch_secs(s)),
        }
    }

    pub fn set(&self, t: SystemTime) {
        self.0.store(epoch_secs(t), Ordering::Relaxed);
    }

    /// Moves the time forward to `t`; whether it was older than `t`.
    pub fn advance_to(&self, t: SystemTime) -> bool {
        let secs = epoch_secs(t);
        self.0.fetch_max(secs, Ordering::Relaxed) < secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_set_and_advanced() {
        let t = AtomicTime::default();
        assert_eq!(t.get(), None);
        let day = from_epoch_secs(86_400);
        t.set(day);
        assert_eq!(t.get(), Some(day));
        assert!(!t.advance_to(from_epoch_secs(10)));
        assert_eq!(t.get(), Some(day));
        assert!(t.advance_to(from_epoch_secs(90_000)));
        assert_eq!(t.get(), Some(from_epoch_secs(90_000)));
    }
}
