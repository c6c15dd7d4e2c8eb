//! The disk tier's background writer: one thread fed through a queue bounded in bytes, so a
//! block's trip to disk never stalls a reader.
//!
//! No block is ever dropped for want of room. A block is queued at once (it is already in the
//! memory tier and handed to readers); the download that produced it then waits
//! (`wait_for_room`) while the queue holds more than its bound. A download faster than the disk
//! is so paced to the disk instead of leaving holes that a later read would fetch again, and
//! the queue's memory stays bounded (the bound plus one block per download in flight).
//! A failed write (a full disk: ENOSPC) is logged (the first time, then every 1,000th) and the
//! block skipped: caching is best effort, reading is not. For the same reason a disk that
//! makes no progress at all (a hung network cache folder) is not waited for forever: after
//! `stall` (10 s) the writer is bypassed, blocks are not queued, and nothing waits, until the
//! queue is back under its bound.

use super::disk::DiskCache;
use super::key::BlockKey;
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::watch;

/// How long a download waits for a writer that finishes nothing before it is bypassed.
pub const STALL: Duration = Duration::from_secs(10);

enum Job {
    Put(BlockKey, Bytes),
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
pub struct WriterStats {
    pub written: AtomicU64,
    pub failed: AtomicU64,
    /// Times a download found the queue over its bound and waited.
    pub waits: AtomicU64,
    /// Blocks not queued while the writer was bypassed.
    pub skipped: AtomicU64,
}

pub struct DiskWriter {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Bytes queued and not yet written (or failed).
    backlog: Arc<watch::Sender<u64>>,
    bound: u64,
    stall: Duration,
    /// Set when a wait for room outlasted `stall`; cleared once the queue is under its bound.
    bypassed: Arc<AtomicBool>,
    pub stats: Arc<WriterStats>,
}

impl DiskWriter {
    /// Starts the writer; downloads wait while more than `bound_bytes` are queued, up to
    /// `stall` for one block.
    pub fn spawn(disk: Arc<DiskCache>, bound_bytes: u64, stall: Duration) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let stats = Arc::new(WriterStats::default());
        let backlog = Arc::new(watch::channel(0u64).0);
        let bypassed = Arc::new(AtomicBool::new(false));
        let (thread_stats, thread_backlog) = (stats.clone(), backlog.clone());
        let thread_bypassed = bypassed.clone();
        let thread = std::thread::Builder::new()
            .name("xnatfs-cache-writer".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Put(key, data) => {
                            write_one(&disk, &thread_stats, &key, &data);
                            let len = data.len() as u64;
                            thread_backlog.send_modify(|b| *b -= len);
                            if *thread_backlog.borrow() <= bound_bytes
                                && thread_bypassed.swap(false, Ordering::AcqRel)
                            {
                                tracing::info!("the cache disk caught up; caching blocks again");
                            }
                        }
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(DiskWriter {
            tx: Some(tx),
            thread: Some(thread),
            backlog,
            bound: bound_bytes,
            stall,
            bypassed,
            stats,
        })
    }

    /// Queues a block for writing; never blocks, and drops it only while the writer is
    /// bypassed.
    pub fn submit(&self, key: BlockKey, data: Bytes) {
        if self.bypassed.load(Ordering::Acquire) {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let len = data.len() as u64;
        self.backlog.send_modify(|b| *b += len);
        let tx = self.tx.as_ref().expect("writer is running");
        if tx.send(Job::Put(key, data)).is_err() {
            // The thread is gone (it panicked): nothing will be written.
            self.backlog.send_modify(|b| *b -= len);
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits while the queue holds more than its bound: what a download calls after handing
    /// over a block, so it runs no further ahead of the disk than that.
    pub async fn wait_for_room(&self) {
        let bound = self.bound;
        let mut backlog = self.backlog.subscribe();
        if *backlog.borrow_and_update() <= bound || self.bypassed.load(Ordering::Acquire) {
            return;
        }
        self.stats.waits.fetch_add(1, Ordering::Relaxed);
        let done = || {
            self.stats.written.load(Ordering::Relaxed) + self.stats.failed.load(Ordering::Relaxed)
        };
        let done_before = done();
        let room = backlog.wait_for(|b| *b <= bound);
        // A slow disk that finishes blocks is waited for; only one that finished none is not.
        if tokio::time::timeout(self.stall, room).await.is_err()
            && done() == done_before
            && !self.bypassed.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(
                seconds = self.stall.as_secs(),
                "the cache disk wrote nothing for a while; blocks are not cached until it catches up"
            );
        }
    }

    /// Bytes queued and not yet written.
    #[cfg(test)]
    pub fn backlog(&self) -> u64 {
        *self.backlog.borrow()
    }

    /// Blocks until every block queued before this call is on disk (or failed).
    pub fn flush(&self) {
        let (done_tx, done_rx) = mpsc::channel();
        let tx = self.tx.as_ref().expect("writer is running");
        if tx.send(Job::Flush(done_tx)).is_ok() {
            let _ = done_rx.recv();
        }
    }
}

fn write_one(disk: &DiskCache, stats: &WriterStats, key: &BlockKey, data: &[u8]) {
    match disk.put(key, data) {
        Ok(_) => {
            stats.written.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            let n = stats.failed.fetch_add(1, Ordering::Relaxed);
            if n.is_multiple_of(1000) {
                let full = e.raw_os_error() == Some(libc::ENOSPC);
                tracing::warn!(
                    dir = %disk.root().display(),
                    error = %e,
                    disk_full = full,
                    failures = n + 1,
                    "cache block not written to disk"
                );
            }
        }
    }
}

impl Drop for DiskWriter {
    /// Finishes the queued writes, then stops the thread.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::cache::key::FileKey;
    use futures::FutureExt;

    fn key(i: u64) -> BlockKey {
        BlockKey::new(FileKey::new("/f", "v"), i)
    }

    #[tokio::test]
    async fn a_slow_disk_makes_the_producer_wait_and_drops_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskCache::open(dir.path(), 1 << 20).unwrap());
        let writer = DiskWriter::spawn(disk.clone(), 2048, STALL).unwrap();
        let stalled = disk.stall();
        for i in 0..8 {
            writer.submit(key(i), Bytes::from(vec![i as u8; 1024]));
        }
        // The writer cannot finish a block while the disk is stalled.
        assert_eq!(writer.backlog(), 8 * 1024);
        assert!(writer.wait_for_room().now_or_never().is_none());
        drop(stalled);
        writer.wait_for_room().await;
        assert!(writer.backlog() <= 2048);
        writer.flush();
        assert_eq!(writer.backlog(), 0);
        assert_eq!(writer.stats.written.load(Ordering::Relaxed), 8);
        assert!(writer.stats.waits.load(Ordering::Relaxed) >= 1);
        for i in 0..8 {
            assert_eq!(disk.get(&key(i)).unwrap(), vec![i as u8; 1024]);
        }
    }

    #[tokio::test]
    async fn under_its_bound_the_queue_never_waits() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskCache::open(dir.path(), 1 << 20).unwrap());
        let writer = DiskWriter::spawn(disk.clone(), 4096, STALL).unwrap();
        let stalled = disk.stall();
        for i in 0..4 {
            writer.submit(key(i), Bytes::from(vec![0u8; 1024]));
        }
        assert!(writer.wait_for_room().now_or_never().is_some());
        drop(stalled);
        writer.flush();
        assert_eq!(writer.stats.waits.load(Ordering::Relaxed), 0);
        assert_eq!(disk.len(), 4);
    }

    #[tokio::test]
    async fn a_disk_that_writes_nothing_is_bypassed_until_it_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskCache::open(dir.path(), 1 << 20).unwrap());
        let writer = DiskWriter::spawn(disk.clone(), 1024, Duration::from_millis(1)).unwrap();
        let stalled = disk.stall();
        writer.submit(key(0), Bytes::from(vec![0u8; 1024]));
        writer.submit(key(1), Bytes::from(vec![1u8; 1024]));
        // The disk finishes nothing: the wait ends after `stall` and later blocks are skipped.
        writer.wait_for_room().await;
        writer.submit(key(2), Bytes::from(vec![2u8; 1024]));
        writer.wait_for_room().await;
        assert_eq!(writer.stats.skipped.load(Ordering::Relaxed), 1);
        drop(stalled);
        writer.flush();
        // Caught up: blocks are queued again.
        writer.submit(key(3), Bytes::from(vec![3u8; 1024]));
        writer.flush();
        assert!(disk.contains(&key(0)) && disk.contains(&key(1)) && disk.contains(&key(3)));
        assert!(!disk.contains(&key(2)));
        assert_eq!(writer.stats.skipped.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn failed_writes_are_counted_and_free_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let disk = Arc::new(DiskCache::open(dir.path(), 1 << 20).unwrap());
        // A file where the version's folder goes (a stand-in for ENOSPC).
        let (path, _) = disk.slot_of(&key(0));
        std::fs::write(path.parent().unwrap(), b"not a folder").unwrap();
        let writer = DiskWriter::spawn(disk.clone(), 1024, STALL).unwrap();
        for i in 0..3 {
            writer.submit(key(i), Bytes::from(vec![0u8; 1024]));
        }
        writer.flush();
        assert_eq!(writer.backlog(), 0);
        assert_eq!(writer.stats.failed.load(Ordering::Relaxed), 3);
        assert!(disk.is_empty());
    }
}
