//! The memory tier: an LRU of blocks bounded in bytes (not entries, since the last block of a
//! file is short). Blocks are `Bytes`, so a hit is a reference-count increment and a read is a
//! slice of it: zero copies. The lock is held only for the map operation, never across I/O.

use super::key::BlockKey;
use bytes::Bytes;
use lru::LruCache;
use std::sync::Mutex;

pub struct MemoryCache {
    capacity: u64,
    inner: Mutex<Inner>,
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
        }
    }

    /// The block, marked most recently used.
    pub fn get(&self, key: &BlockKey) -> Option<Bytes> {
        self.inner.lock().unwrap().lru.get(key).cloned()
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
        let mut evicted = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap();
            if let Some(old) = inner.lru.put(key, data) {
                inner.used -= old.len() as u64;
                evicted.push(old);
            }
            inner.used += len;
            while inner.used > self.capacity {
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
    fn replacing_a_block_keeps_the_byte_count_right() {
        let c = MemoryCache::new(100);
        c.insert(key(0), block(40, 0));
        c.insert(key(0), block(10, 0));
        assert_eq!(c.used_bytes(), 10);
    }
}
