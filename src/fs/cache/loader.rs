//! Reading blocks back from the disk tier into the memory tier, ahead of the reader.
//!
//! - **One read per block.** Concurrent reads of a block not in memory (the kernel sends a
//!   1 MiB block as several READs at once) share one disk read: loads in flight are kept by
//!   key, and a read of a block already loading awaits that load.
//! - **Read-ahead from disk.** A reader that moves through a file block by block (its block
//!   is the one it read last, or just after, allowing for the kernel's reordering) keeps
//!   `window` blocks ahead of it loading from disk into memory, on blocking threads, so its
//!   next reads are memory hits and the disk works while the kernel copies replies. The
//!   window stops at the first block the disk does not hold (a hole is the network's job), so
//!   at most `window` loads run per reader. Read-ahead starts on a reader's second read, so a
//!   random read costs one block of disk, never a window.
//! - Every block is verified (`format::validate`) on the loading thread, beside the reader.

use super::disk::DiskCache;
use super::key::{BlockKey, FileKey};
use super::memory::MemoryCache;
use super::SIZE_RECORD;
use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared};
use lru::LruCache;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A disk read in flight; every clone resolves to the same block (or `None`: absent or corrupt).
type Load = Shared<BoxFuture<'static, Option<Bytes>>>;

/// Files whose sequential position is remembered.
const MAX_STREAMS: usize = 64;

pub struct DiskLoader {
    disk: Arc<DiskCache>,
    memory: Arc<MemoryCache>,
    /// Blocks to keep loading ahead of a sequential reader.
    window: u64,
    loads: Mutex<HashMap<BlockKey, Load>>,
    streams: Mutex<LruCache<FileKey, Stream>>,
    /// Blocks read back from disk (by reads and by read-ahead).
    pub loaded: AtomicU64,
}

/// Where a reader of one file stands.
#[derive(Clone, Copy)]
struct Stream {
    /// The block read last.
    last: u64,
    /// The first block read-ahead has not yet asked of the disk.
    next: u64,
}

impl DiskLoader {
    pub fn new(disk: Arc<DiskCache>, memory: Arc<MemoryCache>, window: u64) -> Arc<Self> {
        Arc::new(DiskLoader {
            disk,
            memory,
            window,
            loads: Mutex::new(HashMap::new()),
            streams: Mutex::new(LruCache::new(NonZeroUsize::new(MAX_STREAMS).unwrap())),
            loaded: AtomicU64::new(0),
        })
    }

    /// The block from disk (promoted to memory), joining a load already in flight, and
    /// read-ahead beside it.
    pub async fn get(self: &Arc<Self>, key: &BlockKey) -> Option<Bytes> {
        let joined = self.loads.lock().unwrap().get(key).cloned();
        let load = match joined {
            Some(load) => Some(load),
            None if self.disk.contains(key) => self.start(*key),
            None => None,
        };
        self.touch(key);
        load?.await
    }

    /// Notes that a reader reads block `key`, and keeps read-ahead going if it reads in order.
    pub fn touch(self: &Arc<Self>, key: &BlockKey) {
        // The size record is not part of the file's bytes.
        if self.window == 0 || key.index == SIZE_RECORD {
            return;
        }
        let b = key.index;
        let range = {
            let mut streams = self.streams.lock().unwrap();
            let Some(s) = streams.get_mut(&key.file) else {
                streams.put(
                    key.file,
                    Stream {
                        last: b,
                        next: b + 1,
                    },
                );
                return;
            };
            let in_order = b + 1 >= s.last && b <= s.last + 2;
            s.last = b;
            if !in_order {
                s.next = b + 1;
                return;
            }
            let from = s.next.max(b + 1);
            let to = b + 1 + self.window;
            if from >= to {
                return;
            }
            s.next = to;
            from..to
        };
        for index in range {
            let ahead = BlockKey::new(key.file, index);
            if self.memory.contains(&ahead) || self.loads.lock().unwrap().contains_key(&ahead) {
                continue;
            }
            if !self.disk.contains(&ahead) || self.start(ahead).is_none() {
                // A hole (or the end of the file): read-ahead resumes there next time.
                let mut streams = self.streams.lock().unwrap();
                if let Some(s) = streams.get_mut(&key.file) {
                    s.next = s.next.min(index);
                }
                return;
            }
        }
    }

    /// Starts loading a block on a blocking thread; `None` outside a tokio runtime.
    fn start(self: &Arc<Self>, key: BlockKey) -> Option<Load> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let mut loads = self.loads.lock().unwrap();
        if let Some(load) = loads.get(&key) {
            return Some(load.clone());
        }
        let me = self.clone();
        let task = runtime.spawn_blocking(move || {
            let data = me.disk.get(&key);
            if let Some(d) = &data {
                me.loaded.fetch_add(1, Ordering::Relaxed);
                me.memory.insert(key, d.clone());
            }
            // Removed only after the memory insert, so a reader finds the block in one or
            // the other (a reader in between reads the disk again: correct, just slower).
            me.loads.lock().unwrap().remove(&key);
            data
        });
        let load = task.map(|r| r.ok().flatten()).boxed().shared();
        loads.insert(key, load.clone());
        Some(load)
    }

    /// Loads in flight.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.loads.lock().unwrap().len()
    }
}
