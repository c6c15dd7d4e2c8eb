//! The memory tier: an LRU of blocks bounded in bytes (not entries, since the last block of a
//! file is short). Blocks are `Bytes`, so a hit is a reference-count increment and a read is a
//! slice of it: zero copies. The lock is held only for the map operation, never across I/O.
//!
//! The bound is the daemon's budget for block data, not the tier's alone: bytes that downloads
//! hold while they fill their blocks ([`MemoryCache::hold_outside`]) are taken from it, up to
//! half of it, so that many downloads in flight at once (after a stall, say) shrink the tier
//! instead of adding to the process's memory.

use super::key::BlockKey;
use bytes::Bytes;
use lru::LruCache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub struct MemoryCache {
    capacity: u64,
    inner: Mutex<Inner>,
    /// Block bytes held outside the tier by downloads filling their blocks.
    outside: AtomicU64,
}

struct Inner {
    lru: LruCache<BlockKey, Bytes>,
    used: u64,
}

impl MemoryCache {
    /// A cache that holds at most `capacity` bytes of block data.
    pub fn new(capacity: u64) -> Self {
        MemoryCache {
            capacity,
            inner: Mutex::new(Inner {
                lru: LruCache::unbounded(),
                used: 0,
            }),
            outside: AtomicU64::new(0),
        }
    }

    /// `bytes` more (or, negative, fewer) of block data are held outside the tier.
    pub fn hold_outside(&self, bytes: i64) {
        if bytes >= 0 {
            self.outside.fetch_add(bytes as u64, Ordering::Relaxed);
        } else {
            self.outside
                .fetch_sub(bytes.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Block bytes held outside the tier now.
    pub fn outside_bytes(&self) -> u64 {
        self.outside.load(Ordering::Relaxed)
    }

    /// What the tier may hold now: its capacity less what is held outside, down to half.
    fn room(&self) -> u64 {
        let outside = self.outside.load(Ordering::Relaxed);
        self.capacity - outside.min(self.capacity / 2)
    }

    /// The block, marked most recently used.
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.inner.lock().unwrap().lru.get(key).cloned()
    }

    /// The block, without changing its place in the LRU order.
    pub fn peek(&self, key: &BlockKey) -> Option<Bytes> {
        self.inner.lock().unwrap().lru.peek(key).cloned()
    }

    /// Whether the block is here, without changing its place in the LRU order.
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.inner.lock().unwrap().lru.contains(key)
    }

    /// Adds (or refreshes) a block, evicting least recently used blocks until the total fits.
    /// A block larger than the whole cache is not kept.
    pub fn insert(&self, key: BlockKey, data: Bytes) {
        let len = data.len() as u64;
        if len > self.capacity {
            return;
        }
        let room = self.room();
        let mut evicted = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap();
            if let Some(old) = inner.lru.put(key, data) {
                inner.used -= old.len() as u64;
                evicted.push(old);
            }
            inner.used += len;
            while inner.used > room {
                match inner.lru.pop_lru() {
                    Some((_, old)) => {
                        inner.used -= old.len() as u64;
                        evicted.push(old);
                    }
                    None => break,
                }
            }
        }
        // The evicted blocks are freed here, outside the lock.
        drop(evicted);
    }

    pub fn remove(&self, key: &BlockKey) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(old) = inner.lru.pop(key) {
            inner.used -= old.len() as u64;
        }
    }

    /// Bytes of block data held.
    pub fn used_bytes(&self) -> u64 {
        self.inner.lock().unwrap().used
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::cache::key::FileKey;

    fn key(i: u64) -> BlockKey {
        BlockKey::new(FileKey::new("/f", "v"), i)
    }

    fn block(len: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; len])
    }

    #[test]
    fn hit_and_miss() {
        let c = MemoryCache::new(100);
        assert!(c.get(&key(0)).is_none());
        c.insert(key(0), block(10, 7));
        assert_eq!(c.get(&key(0)).unwrap(), block(10, 7));
        assert!(c.contains(&key(0)));
        assert!(!c.contains(&key(1)));
        c.remove(&key(0));
        assert!(c.get(&key(0)).is_none());
        assert_eq!(c.used_bytes(), 0);
    }

    #[test]
    fn evicts_least_recently_used_by_bytes() {
        let c = MemoryCache::new(100);
        c.insert(key(0), block(40, 0));
        c.insert(key(1), block(40, 1));
        // Touch 0, so 1 is now the least recently used.
        c.get(&key(0));
        c.insert(key(2), block(30, 2));
        assert_eq!(c.used_bytes(), 70);
        assert!(c.contains(&key(0)) && !c.contains(&key(1)) && c.contains(&key(2)));
        // One large block pushes out both older ones.
        c.insert(key(3), block(90, 3));
        assert_eq!(c.used_bytes(), 90);
        assert!(!c.contains(&key(0)) && !c.contains(&key(2)));
        // Larger than the cache: not kept, nothing evicted.
        c.insert(key(4), block(101, 4));
        assert!(!c.contains(&key(4)) && c.contains(&key(3)));
    }

    #[test]
    fn bytes_held_outside_shrink_the_tier_down_to_half() {
        let c = MemoryCache::new(100);
        for i in 0..10 {
            c.insert(key(i), block(10, 0));
        }
        assert_eq!(c.used_bytes(), 100);
        c.hold_outside(30);
        c.insert(key(10), block(10, 0));
        assert_eq!(
            c.used_bytes(),
            70,
            "the downloads' 30 bytes came out of the tier"
        );
        c.hold_outside(500);
        c.insert(key(11), block(10, 0));
        assert_eq!(c.used_bytes(), 50, "never below half");
        c.hold_outside(-530);
        for i in 12..20 {
            c.insert(key(i), block(10, 0));
        }
        assert_eq!(c.used_bytes(), 100, "the whole budget once they are done");
    }

    #[test]
    fn replacing_a_block_keeps_the_byte_count_right() {
        let c = MemoryCache::new(100);
        c.insert(key(0), block(40, 0));
        c.insert(key(0), block(10, 0));
        assert_eq!(c.used_bytes(), 10);
    }
}
