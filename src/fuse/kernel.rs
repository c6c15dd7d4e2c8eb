//! What the kernel caches that the mount must correct without being asked: a file's size (its
//! attributes) when a download shows the listing was wrong, and an entry that left the tree.
//!
//! The kernel serves `stat` from its attribute cache and stops page-cache reads at the size it
//! holds; a listing that gave too small a size would otherwise cut every read of the file short
//! for the attribute TTL. With the attributes invalid, the next read (FUSE_AUTO_INVAL_DATA) or
//! `stat` asks `getattr` again and gets the real size, and a changed size drops the file's
//! cached pages. A file found larger is invalidated at once, before the read that found out is
//! answered; one found smaller only once no read of it is in flight, because the kernel shrinks
//! its size on that short read only if the attributes did not change meanwhile, and otherwise
//! zero-fills up to the listed size. (Concurrent short reads can leave the kernel holding a size
//! between the real and the listed one, with zeros past the real end; once its attributes are
//! invalid it asks again, and drops those pages.)

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::sync::{Mutex, OnceLock};

use fuser::INodeNo;
use tokio::runtime::Handle;

use crate::fs::inode::Ino;
use crate::fs::ops::Resize;
use crate::fs::write::Gone;

/// Reads in flight per inode, and the inodes found smaller than shown not yet told about.
#[derive(Default)]
struct Shrunk {
    in_flight: HashMap<Ino, usize>,
    pending: HashSet<Ino>,
}

pub struct KernelCache {
    /// Set once the FUSE session exists.
    notifier: OnceLock<fuser::Notifier>,
    runtime: Handle,
    shrunk: Mutex<Shrunk>,
}

impl KernelCache {
    pub fn new(runtime: Handle) -> KernelCache {
        KernelCache {
            notifier: OnceLock::new(),
            runtime,
            shrunk: Mutex::new(Shrunk::default()),
        }
    }

    /// The session's notifier; only the first call counts.
    pub fn set_notifier(&self, notifier: fuser::Notifier) {
        let _ = self.notifier.set(notifier);
    }

    /// A read of `ino` is about to be served.
    pub fn read_started(&self, ino: Ino) {
        *self
            .shrunk
            .lock()
            .expect("shrunk lock")
            .in_flight
            .entry(ino)
            .or_default() += 1;
    }

    /// The answer to a read of `ino` has gone to the kernel: when no other read of the file
    /// is in flight any more, a shrink found meanwhile is told.
    pub fn read_answered(&self, ino: Ino) {
        let tell = {
            let mut shrunk = self.shrunk.lock().expect("shrunk lock");
            let left = match shrunk.in_flight.get_mut(&ino) {
                Some(n) => {
                    *n -= 1;
                    *n
                }
                None => 0,
            };
            if left == 0 {
                shrunk.in_flight.remove(&ino);
            }
            left == 0 && shrunk.pending.remove(&ino)
        };
        if tell {
            self.invalidate_attributes(ino);
        }
    }

    /// A file's size differs from what the kernel was shown.
    pub fn resized(&self, resize: Resize) {
        if !resize.grew {
            let mut shrunk = self.shrunk.lock().expect("shrunk lock");
            if shrunk.in_flight.contains_key(&resize.ino) {
                shrunk.pending.insert(resize.ino);
                return;
            }
        }
        self.invalidate_attributes(resize.ino);
    }

    /// Entries left the tree: the kernel must stop finding them. Told from a task, never from
    /// inside the request that caused it.
    pub fn gone(&self, gone: Gone) {
        let Some(notifier) = self.notifier.get().cloned() else {
            return;
        };
        self.runtime.spawn(async move {
            for name in gone.names {
                if let Err(e) = notifier.inval_entry(INodeNo(gone.dir), OsStr::new(&name)) {
                    tracing::debug!(dir = gone.dir, name, "invalidating an entry: {e}");
                }
            }
        });
    }

    fn invalidate_attributes(&self, ino: Ino) {
        let Some(notifier) = self.notifier.get() else {
            return;
        };
        // Offset -1: attributes only, no page is touched (the read in flight holds page locks).
        if let Err(e) = notifier.inval_inode(INodeNo(ino), -1, 0) {
            tracing::debug!(ino, "invalidating attributes: {e}");
        }
    }
}
