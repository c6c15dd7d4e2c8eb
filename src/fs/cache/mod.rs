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
//!   through a background thread (`writer`) whose queue is bounded in bytes (default 16 MiB):
//!   a block is not dropped; the download that produced it waits while the queue is over
//!   its bound, so a cold read leaves the whole file on disk, at the disk's pace at worst (a
//!   full disk skips blocks, and a disk that writes nothing for 10 s is bypassed).
//!   Reads come back through `loader`: one disk read per block however many readers, with
//!   O_DIRECT where the filesystem allows (`direct`), and a sequential reader gets read-ahead
//!   from disk into memory (default 16 blocks, at most a quarter of the memory tier).
//!
//! - **Buffers** (`buffers`): every full block, downloaded or read back, lives in a buffer that
//!   is recycled once no one refers to it, so the daemon's memory stays near its live blocks.
//!
//! A read checks memory, then disk (a disk hit is promoted to memory); a fetched block goes into
//! memory at once and to disk in the background.

mod buffers;
mod direct;
mod disk;
mod format;
mod key;
mod loader;
mod memory;
mod writer;

pub use buffers::BlockBuffers;
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

use crate::fs::mtime;
use bytes::Bytes;
use loader::DiskLoader;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;
use writer::DiskWriter;

pub const DEFAULT_BLOCK_SIZE: u64 = 1 << 20;
pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
/// Bytes queued for the disk writer before the download that queues more waits: enough to
/// absorb a burst (the disk writes faster than the network brings), small next to the memory
/// tier it mostly shares its blocks with. With many readers the memory tier evicts blocks
/// still queued, so this is also what the queue can add to the daemon's memory.
pub const DEFAULT_WRITE_QUEUE_BYTES: u64 = 16 << 20;
/// Read-ahead from disk for a sequential reader.
pub const DEFAULT_DISK_READAHEAD_BYTES: u64 = 16 << 20;
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
    /// Bytes queued for the writer thread beyond which a download waits for it.
    pub write_queue_bytes: u64,
    /// How far ahead of a sequential reader blocks are loaded from disk (capped at a quarter
    /// of the memory tier; 0: no read-ahead from disk).
    pub readahead_bytes: u64,
}

impl DiskConfig {
    /// The defaults, for a cache under `dir` bounded at `capacity` bytes.
    pub fn new(dir: PathBuf, capacity: u64) -> Self {
        DiskConfig {
            dir,
            capacity,
            write_queue_bytes: DEFAULT_WRITE_QUEUE_BYTES,
            readahead_bytes: DEFAULT_DISK_READAHEAD_BYTES,
        }
    }
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
    /// Blocks read back from disk (by reads and by read-ahead).
    pub disk_hits: u64,
    pub misses: u64,
    pub disk_writes: u64,
    /// Times a download waited for the disk writer to catch up.
    pub disk_write_waits: u64,
    pub disk_write_errors: u64,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub memory_capacity: u64,
    pub disk_capacity: u64,
    /// Block bytes downloads hold while they fill blocks (taken from the memory tier's room).
    pub outside_bytes: u64,
}

pub struct BlockCache {
    block_size: u64,
    /// Where every full block lives, recycled (see `buffers`).
    buffers: Arc<BlockBuffers>,
    memory: Arc<MemoryCache>,
    disk: Option<DiskTier>,
    memory_hits: AtomicU64,
    misses: AtomicU64,
}

struct DiskTier {
    disk: Arc<DiskCache>,
    writer: DiskWriter,
    loader: Arc<DiskLoader>,
}

impl BlockCache {
    /// Opens the tiers; the disk tier's folder is created (0700) and scanned here.
    pub fn new(config: CacheConfig) -> std::io::Result<Self> {
        assert!(config.block_size > 0, "block size must be positive");
        let memory = Arc::new(MemoryCache::new(config.memory_bytes));
        let buffers = BlockBuffers::new(config.block_size, buffers::DEFAULT_KEEP);
        let disk = match config.disk {
            Some(d) => {
                let disk = Arc::new(DiskCache::open_with(
                    d.dir,
                    d.capacity,
                    config.block_size,
                    buffers.clone(),
                )?);
                let writer = DiskWriter::spawn(disk.clone(), d.write_queue_bytes, writer::STALL)?;
                let readahead = d.readahead_bytes.min(config.memory_bytes / 4);
                let window = readahead / config.block_size;
                let loader = DiskLoader::new(disk.clone(), memory.clone(), window);
                Some(DiskTier {
                    disk,
                    writer,
                    loader,
                })
            }
            None => None,
        };
        Ok(BlockCache {
            block_size: config.block_size,
            buffers,
            memory,
            disk,
            memory_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    pub fn block_size(&self) -> u64 {
        self.block_size
    }

    /// `bytes` more (negative: fewer) of block data are held by a download outside the cache:
    /// the memory tier makes room for them (see `memory.rs`).
    pub fn hold_outside(&self, bytes: i64) {
        self.memory.hold_outside(bytes);
    }

    /// The buffers a download fills its blocks in.
    pub fn buffers(&self) -> &Arc<BlockBuffers> {
        &self.buffers
    }

    pub fn memory_capacity(&self) -> u64 {
        self.memory.capacity()
    }

    /// The block from the memory tier only: never waits on I/O. A hit keeps a sequential
    /// reader's read-ahead from disk going.
    pub fn get_memory(&self, key: &BlockKey) -> Option<Bytes> {
        let hit = self.memory.get(key);
        if hit.is_some() {
            self.memory_hits.fetch_add(1, Ordering::Relaxed);
            if let Some(d) = &self.disk {
                d.loader.touch(key);
            }
        }
        hit
    }

    /// The block from memory, else from disk (on a blocking thread; promoted to memory).
    pub async fn get(&self, key: &BlockKey) -> Option<Bytes> {
        if let Some(b) = self.get_memory(key) {
            return Some(b);
        }
        let found = match &self.disk {
            Some(d) => d.loader.get(key).await,
            None => None,
        };
        if found.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Whether the memory tier holds the block (without touching its LRU place).
    pub fn in_memory(&self, key: &BlockKey) -> bool {
        self.memory.contains(key)
    }

    /// Whether either tier holds the block (the disk file may still turn out corrupt).
    pub fn contains(&self, key: &BlockKey) -> bool {
        self.memory.contains(key) || self.disk.as_ref().is_some_and(|d| d.disk.contains(key))
    }

    /// Whether a file version of `size` bytes is cached whole: its size record and every
    /// block (the files may still turn out corrupt).
    pub fn holds_whole(&self, file: FileKey, size: u64) -> bool {
        self.contains(&BlockKey::new(file, SIZE_RECORD))
            && (0..size.div_ceil(self.block_size)).all(|i| self.contains(&BlockKey::new(file, i)))
    }

    /// Adds a block to memory and queues it for disk (unless already there). Never blocks and
    /// never drops the disk write: a producer of many blocks calls `wait_for_disk_room` after.
    pub fn insert(&self, key: BlockKey, data: Bytes) {
        if let Some(d) = &self.disk {
            if !d.disk.contains(&key) {
                d.writer.submit(key, data.clone());
            }
        }
        self.memory.insert(key, data);
    }

    /// Waits while the disk writer's queue is over its bound: a download calls it after each
    /// block it inserted, so it never runs further ahead of the disk than that.
    pub async fn wait_for_disk_room(&self) {
        if let Some(d) = &self.disk {
            d.writer.wait_for_room().await;
        }
    }

    /// Records a file version's real size and the server's `Last-Modified` for it (as a tiny
    /// block at index `SIZE_RECORD`), so a later open knows where the file ends, and a later
    /// mount the file's time, without a request. Never blocks.
    pub fn put_size(&self, file: FileKey, size: u64, modified: Option<SystemTime>) {
        let key = BlockKey::new(file, SIZE_RECORD);
        let mut record = size.to_le_bytes().to_vec();
        if let Some(t) = modified {
            record.extend_from_slice(&mtime::epoch_secs(t).to_le_bytes());
        }
        self.insert(key, Bytes::from(record));
    }

    /// The real size and time recorded by `put_size`, from either tier.
    pub async fn get_size(&self, file: FileKey) -> Option<(u64, Option<SystemTime>)> {
        let data = self.get(&BlockKey::new(file, SIZE_RECORD)).await?;
        let size = u64::from_le_bytes(data.get(..8)?.try_into().ok()?);
        let modified = match data.get(8..16) {
            Some(secs) => Some(mtime::from_epoch_secs(u64::from_le_bytes(
                secs.try_into().ok()?,
            ))),
            None => None,
        };
        Some((size, modified))
    }

    /// The block as the cache holds it, for a check that reads a download again (its MD5):
    /// from memory without changing the LRU order, else from disk through the page cache
    /// (where a block just written still is) without promoting it, after the blocks queued for
    /// disk are written. Blocking.
    pub fn read_back(&self, key: &BlockKey) -> Option<Bytes> {
        if let Some(b) = self.memory.peek(key) {
            return Some(b);
        }
        let d = self.disk.as_ref()?;
        if !d.disk.contains(key) {
            d.writer.flush();
        }
        d.disk.get_buffered(key)
    }

    /// Drops blocks `blocks` of a file version from both tiers. Blocking (unlinks files).
    pub fn remove_blocks(&self, file: FileKey, blocks: std::ops::Range<u64>) {
        for index in blocks {
            let key = BlockKey::new(file, index);
            self.memory.remove(&key);
            if let Some(d) = &self.disk {
                d.disk.remove(&key);
            }
        }
    }

    /// A folder for scratch files next to the disk tier (`None` without one).
    pub fn scratch_dir(&self) -> Option<PathBuf> {
        self.disk.as_ref().map(|d| d.disk.root().join("tmp"))
    }

    /// Waits until the blocks queued for disk so far are written. Blocking.
    pub fn flush(&self) {
        if let Some(d) = &self.disk {
            d.writer.flush();
        }
    }

    pub fn stats(&self) -> CacheStats {
        let w = self.disk.as_ref().map(|d| &d.writer.stats);
        let load = |f: fn(&writer::WriterStats) -> &AtomicU64| {
            w.map_or(0, |s| f(s).load(Ordering::Relaxed))
        };
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self
                .disk
                .as_ref()
                .map_or(0, |d| d.loader.loaded.load(Ordering::Relaxed)),
            misses: self.misses.load(Ordering::Relaxed),
            disk_writes: load(|s| &s.written),
            disk_write_waits: load(|s| &s.waits),
            disk_write_errors: load(|s| &s.failed),
            memory_bytes: self.memory.used_bytes(),
            disk_bytes: self.disk.as_ref().map_or(0, |d| d.disk.used_bytes()),
            memory_capacity: self.memory.capacity(),
            disk_capacity: self.disk.as_ref().map_or(0, |d| d.disk.capacity()),
            outside_bytes: self.memory.outside_bytes(),
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
                write_queue_bytes: 64 * 1024,
                ..DiskConfig::new(dir.to_path_buf(), 1 << 20)
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

    #[tokio::test]
    async fn a_download_faster_than_the_disk_leaves_no_hole() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), 1 << 20);
        cfg.disk.as_mut().unwrap().write_queue_bytes = 1024;
        cfg.disk.as_mut().unwrap().capacity = 4 << 20;
        let cache = BlockCache::new(cfg).unwrap();
        let f = FileKey::new("/a", "v");
        for i in 0..2000 {
            cache.insert(BlockKey::new(f, i), Bytes::from(vec![i as u8; 1024]));
            cache.wait_for_disk_room().await;
        }
        cache.flush();
        let s = cache.stats();
        assert_eq!((s.disk_writes, s.disk_write_errors), (2000, 0));
        let disk = &cache.disk.as_ref().unwrap().disk;
        assert!((0..2000).all(|i| disk.contains(&BlockKey::new(f, i))));
    }

    #[tokio::test]
    async fn a_sequential_reader_gets_read_ahead_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path(), 64 * 1024);
        cfg.disk.as_mut().unwrap().readahead_bytes = 4 * 1024;
        let f = FileKey::new("/a", "v");
        {
            let cache = BlockCache::new(cfg.clone()).unwrap();
            for i in 0..20 {
                cache.insert(BlockKey::new(f, i), Bytes::from(vec![i as u8; 1024]));
            }
        }
        // A remount: everything is on disk, nothing in memory.
        let cache = BlockCache::new(cfg).unwrap();
        let loader = &cache.disk.as_ref().unwrap().loader;
        assert_eq!(cache.get(&BlockKey::new(f, 0)).await.unwrap()[0], 0);
        assert_eq!(
            cache.stats().disk_hits,
            1,
            "a first read loads only its block"
        );
        assert_eq!(cache.get(&BlockKey::new(f, 1)).await.unwrap()[0], 1);
        // In order: blocks 2..=5 are now loading (or loaded).
        for i in 2..6 {
            let hit = cache.get(&BlockKey::new(f, i)).await.unwrap();
            assert_eq!(hit[0], i as u8);
        }
        while loader.in_flight() > 0 {
            tokio::task::yield_now().await;
        }
        let s = cache.stats();
        assert!(s.disk_hits >= 6, "{s:?}");
        assert!(
            cache.in_memory(&BlockKey::new(f, 7)),
            "read-ahead keeps going"
        );
        assert!(
            !cache.in_memory(&BlockKey::new(f, 12)),
            "but only a window ahead"
        );
        // A jump is not in order: it loads its block only.
        let before = cache.stats().disk_hits;
        assert_eq!(cache.get(&BlockKey::new(f, 15)).await.unwrap()[0], 15);
        while loader.in_flight() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(cache.stats().disk_hits, before + 1);
        assert!(!cache.in_memory(&BlockKey::new(f, 16)));
    }

    #[tokio::test]
    async fn concurrent_reads_of_a_block_share_one_disk_read() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 64 * 1024);
        let f = FileKey::new("/a", "v");
        {
            let cache = BlockCache::new(cfg.clone()).unwrap();
            cache.insert(BlockKey::new(f, 3), Bytes::from(vec![3u8; 1024]));
        }
        let cache = Arc::new(BlockCache::new(cfg).unwrap());
        // Each read yields while the disk read runs; the next one joins it (or, if it already
        // finished, finds the block in memory).
        let reads: Vec<_> = (0..8)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get(&BlockKey::new(f, 3)).await })
            })
            .collect();
        for r in reads {
            assert_eq!(r.await.unwrap().unwrap(), vec![3u8; 1024]);
        }
        assert_eq!(cache.stats().disk_hits, 1);
    }

    #[tokio::test]
    async fn a_corrupt_block_met_by_read_ahead_is_dropped_and_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), 64 * 1024);
        let f = FileKey::new("/a", "v");
        {
            let cache = BlockCache::new(cfg.clone()).unwrap();
            for i in 0..4 {
                cache.insert(BlockKey::new(f, i), Bytes::from(vec![i as u8; 1024]));
            }
        }
        let bad = BlockKey::new(f, 2);
        let (path, at) = {
            let buffers = BlockBuffers::new(1024, 2);
            let d = DiskCache::open_with(dir.path(), 1 << 20, 1024, buffers).unwrap();
            d.slot_of(&bad)
        };
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at as usize + 100] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let cache = BlockCache::new(cfg).unwrap();
        cache.get(&BlockKey::new(f, 0)).await.unwrap();
        cache.get(&BlockKey::new(f, 1)).await.unwrap();
        // Block 2 is read ahead, fails its check, and is gone: a miss the network will fill.
        assert!(cache.get(&bad).await.is_none());
        assert!(!cache.contains(&bad));
        let opened = std::fs::File::open(&path).unwrap();
        let mut header = [0u8; 8];
        std::os::unix::fs::FileExt::read_exact_at(&opened, &mut header, at).unwrap();
        assert_eq!(header, [0u8; 8], "its slot was punched out");
        assert_eq!(cache.get(&BlockKey::new(f, 3)).await.unwrap()[0], 3);
    }
}
