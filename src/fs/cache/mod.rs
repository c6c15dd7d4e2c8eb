//! The block cache: file bytes in fixed-size blocks, keyed by (file URI, version, block index),
//! in two tiers.
//!
//! - **Block size 1 MiB** (configurable for tests). It is the largest FUSE READ (`max_pages` 256),
//!   so a kernel request never needs more than two blocks and an aligned one exactly one; a
//!   128 KiB page-cache READ is a zero-copy slice of one block. It is small enough that a random
//!   read over-fetches at most 1 MiB, and large enough that per-block costs (a hash-map entry, a
//!   file, a 64-byte header, two CRC32s) are noise next to the data. mountpoint-s3 chose the same.
//! - **Memory tier** (`memory`): an LRU bounded in bytes, default 64 MiB, holding `Bytes`.
//! - **Disk tier** (`disk`): persistent across mounts, bounded in bytes (`--cache-size`), LRU,
//!   private (0700/0600), each block checksummed so a torn or corrupt file is a miss. Writes go
//!   through a background thread with a bounded queue (`writer`, default 16 blocks, which
//!   absorbs bursts; a download faster than the disk leaves holes) and are dropped, never
//!   waited for, when it is full.
//!
//! A read checks memory, then disk (a disk hit is promoted to memory); a fetched block goes into
//! memory at once and to disk in the background.

mod disk;
mod format;
mod key;
mod memory;
mod writer;

pub use disk::DiskCache;
pub use key::{BlockKey, FileKey};
pub use memory::MemoryCache;

/// Writes an MD5 digest as 32 hex digits.
pub fn hex_digest(d: &[u8; 16]) -> String {
    key::hex(d)
}

/// Parses a 32-hex-digit MD5 digest.
pub fn unhex_digest(s: &str) -> Option<[u8; 16]> {
    key::unhex::<16>(s)
}

use bytes::Bytes;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use writer::DiskWriter;

pub const DEFAULT_BLOCK_SIZE: u64 = 1 << 20;
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
pub const DEFAULT_WRITE_QUEUE_BLOCKS: usize = 16;
/// The block index under which a file version's real size is kept (no file has 2^64 blocks).
pub const SIZE_RECORD: u64 = u64::MAX;

#[derive(Clone, Debug)]
pub struct CacheConfig {
    pub block_size: u64,
    /// Bound of the memory tier, in bytes of block data.
    pub memory_bytes: u64,
    /// The disk tier; `None` keeps blocks in memory only.
    pub disk: Option<DiskConfig>,
}

#[derive(Clone, Debug)]
pub struct DiskConfig {
    pub dir: PathBuf,
    /// Bound of the disk tier in bytes (`--cache-size`), headers included.
    pub capacity: u64,
    /// Blocks waiting for the writer thread before further ones are dropped.
    pub write_queue_blocks: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            block_size: DEFAULT_BLOCK_SIZE,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            disk: None,
        }
    }
}

/// Counters, for tests, benchmarks and a future stats file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub memory_hits: u64,
    pub disk_hits: u64,
    pub misses: u64,
    pub disk_writes: u64,
    pub disk_writes_dropped: u64,
    pub disk_write_errors: u64,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
}

pub struct BlockCache {
    block_size: u64,
    memory: MemoryCache,
    disk: Option<Arc<DiskCache>>,
    writer: Option<DiskWriter>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
}

impl BlockCache {
    /// Opens the tiers; the disk tier's folder is created (0700) and scanned here.
    pub fn new(config: CacheConfig) -> std::io::Result<Self> {
        assert!(config.block_size > 0, "block size must be positive");
        let (disk, writer) = match config.disk {
            Some(d) => {
                let disk = Arc::new(DiskCache::open(d.dir, d.capacity)?);
                let writer = DiskWriter::spawn(disk.clone(), d.write_queue_blocks)?;
                (Some(disk), Some(writer))
            }
            None => (None, None),
        };
        Ok(BlockCache {
            block_size: config.block_size,
            memory: MemoryCache::new(config.memory_bytes),
            disk,
            writer,
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    pub fn memory_capacity(&self) -> u64 {
        self.memory.capacity()
    }

    /// The block from the memory tier only: never waits on I/O.
    pub fn get_memory(&self, key: &BlockKey) -> Option<Bytes> {
        let hit = self.memory.get(key);
        if hit.is_some() {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// The block from memory, else from disk (on a blocking thread; promoted to memory).
    pub async fn get(&self, key: &BlockKey) -> Option<Bytes> {
        if let Some(b) = self.get_memory(key) {
            return Some(b);
        }
        let found = match &self.disk {
            Some(disk) if disk.contains(key) => {
                let disk = disk.clone();
                let key = *key;
                tokio::task::spawn_blocking(move || disk.get(&key))
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        match &found {
            Some(b) => {
                self.disk_hits.fetch_add(1, Ordering::Relaxed);
                self.memory.insert(*key, b.clone());
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
            }
        }
        found
    }

    /// Whether the memory tier holds the block (without touching its LRU place).
    pub fn in_memory(&self, key: &BlockKey) -> bool {
        self.memory.contains(key)
    }

    /// Whether either tier holds the block (the disk file may still turn out corrupt).
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.memory.contains(key) || self.disk.as_ref().is_some_and(|d| d.contains(key))
    }

    /// Adds a block to memory and queues it for disk (unless already there). Never blocks.
    pub fn insert(&self, key: BlockKey, data: Bytes) {
        if let (Some(disk), Some(writer)) = (&self.disk, &self.writer) {
            if !disk.contains(&key) {
                writer.submit(key, data.clone());
            }
        }
        self.memory.insert(key, data);
    }

    /// Records a file version's real size (as a tiny block at index `SIZE_RECORD`), so a later
    /// open knows where the file ends without a request. Never blocks.
    pub fn put_size(&self, file: FileKey, size: u64) {
        let key = BlockKey::new(file, SIZE_RECORD);
        self.insert(key, Bytes::copy_from_slice(&size.to_le_bytes()));
    }

    /// The real size recorded by `put_size`, from either tier.
    pub async fn get_size(&self, file: FileKey) -> Option<u64> {
        let data = self.get(&BlockKey::new(file, SIZE_RECORD)).await?;
        Some(u64::from_le_bytes(data.as_ref().try_into().ok()?))
    }

    /// Drops blocks `blocks` of a file version from both tiers. Blocking (unlinks files).
    pub fn remove_blocks(&self, file: FileKey, blocks: std::ops::Range<u64>) {
        for index in blocks {
            let key = BlockKey::new(file, index);
            self.memory.remove(&key);
            if let Some(disk) = &self.disk {
                disk.remove(&key);
            }
        }
    }

    /// Waits until the blocks queued for disk so far are written. Blocking.
    pub fn flush(&self) {
        if let Some(w) = &self.writer {
            w.flush();
        }
    }

    pub fn stats(&self) -> CacheStats {
        let w = self.writer.as_ref().map(|w| &w.stats);
        let load = |f: fn(&writer::WriterStats) -> &AtomicU64| {
            w.map_or(0, |s| f(s).load(Ordering::Relaxed))
        };
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            disk_writes: load(|s| &s.written),
            disk_writes_dropped: load(|s| &s.dropped),
            disk_write_errors: load(|s| &s.failed),
            memory_bytes: self.memory.used_bytes(),
            disk_bytes: self.disk.as_ref().map_or(0, |d| d.used_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, memory: u64) -> CacheConfig {
        CacheConfig {
            block_size: 1024,
            memory_bytes: memory,
            disk: Some(DiskConfig {
                dir: dir.to_path_buf(),
                capacity: 1 << 20,
                write_queue_blocks: 64,
            }),
        }
    }

    #[tokio::test]
    async fn memory_then_disk_then_promotion() {
        let dir = tempfile::tempdir().unwrap();
        let cache = BlockCache::new(config(dir.path(), 2048)).unwrap();
        let f = FileKey::new("/a", "v");
        for i in 0..4 {
            cache.insert(BlockKey::new(f, i), Bytes::from(vec![i as u8; 1024]));
        }
        cache.flush();
        // Memory holds the last two; the first two come back from disk and are promoted.
        assert!(cache.get_memory(&BlockKey::new(f, 0)).is_none());
        assert_eq!(cache.get(&BlockKey::new(f, 0)).await.unwrap()[0], 0);
        assert!(cache.get_memory(&BlockKey::new(f, 0)).is_some());
        let s = cache.stats();
        assert_eq!((s.disk_writes, s.disk_hits), (4, 1));
        assert!(s.memory_bytes <= 2048);
        assert!(cache.get(&BlockKey::new(f, 9)).await.is_none());
        cache.remove_blocks(f, 0..4);
        assert!(!cache.contains(&BlockKey::new(f, 1)));
        assert_eq!(cache.stats().disk_bytes, 0);
    }

    #[tokio::test]
    async fn persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let f = FileKey::new("/a", "v");
        {
            let cache = BlockCache::new(config(dir.path(), 4096)).unwrap();
            cache.insert(BlockKey::new(f, 0), Bytes::from_static(b"kept"));
        } // drop finishes the queued write
        let cache = BlockCache::new(config(dir.path(), 4096)).unwrap();
        assert_eq!(cache.get(&BlockKey::new(f, 0)).await.unwrap(), "kept");
        let other = FileKey::new("/a", "v2");
        assert!(cache.get(&BlockKey::new(other, 0)).await.is_none());
    }

    #[test]
    fn a_full_queue_drops_writes_instead_of_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), 1 << 20);
        cfg.disk.as_mut().unwrap().write_queue_blocks = 1;
        let cache = BlockCache::new(cfg).unwrap();
        let f = FileKey::new("/a", "v");
        let start = std::time::Instant::now();
        for i in 0..2000 {
            cache.insert(BlockKey::new(f, i), Bytes::from(vec![0u8; 1024]));
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        cache.flush();
        let s = cache.stats();
        assert_eq!(s.disk_writes + s.disk_writes_dropped, 2000);
    }
}
