//! The disk tier's background writer: one thread fed through a bounded queue, so a block's trip
//! to disk never stalls the download or a reader. When the queue is full the block is simply not
//! written (it stays in the memory tier until evicted): caching is best effort, reading is not.
//! A full disk (ENOSPC) is logged (the first time, then every 1,000th) and the block skipped.

use super::disk::DiskCache;
use super::key::BlockKey;
use bytes::Bytes;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

enum Job {
    Put(BlockKey, Bytes),
    Flush(mpsc::Sender<()>),
}

#[derive(Default)]
pub struct WriterStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

pub struct DiskWriter {
    tx: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<WriterStats>,
}

impl DiskWriter {
    pub fn spawn(disk: Arc<DiskCache>, queue_blocks: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Job>(queue_blocks.max(1));
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name("xnatfs-cache-writer".into())
            .spawn(move || {
                for job in rx {
                    match job {
                        Job::Put(key, data) => write_one(&disk, &thread_stats, &key, &data),
                        Job::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })?;
        Ok(DiskWriter {
            tx: Some(tx),
            thread: Some(thread),
            stats,
        })
    }

    /// Queues a block for writing; never blocks. Returns false when the queue was full and the
    /// block was dropped.
    pub fn submit(&self, key: BlockKey, data: Bytes) -> bool {
        let tx = self.tx.as_ref().expect("writer is running");
        match tx.try_send(Job::Put(key, data)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
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
