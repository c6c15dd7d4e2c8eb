//! Block buffers, recycled. Every full block, downloaded or read back from disk, lives in a
//! buffer of the same capacity (a block plus room for an aligned disk read). When the last
//! `Bytes` that refers to one drops (the block evicted from the memory tier, written to disk,
//! replied to the kernel), the buffer goes back to a short free list and the next block reuses
//! it. A steady stream of blocks then allocates nothing, and the allocator never sees the
//! churn of megabyte buffers freed on one thread and wanted on another, which is what left the
//! daemon's heap fragmented well above its live data under many readers.

use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// Extra capacity beyond a block: a disk read of a block file (its 64-byte header, rounded up
/// to the 4 KiB O_DIRECT unit) plus the alignment gap before it.
pub const SLACK: usize = 8 << 10;

/// Free buffers kept for reuse; beyond this, a returned buffer is freed.
pub const DEFAULT_KEEP: usize = 8;

pub struct BlockBuffers {
    capacity: usize,
    keep: usize,
    free: Mutex<Vec<Vec<u8>>>,
}

impl BlockBuffers {
    /// Buffers for blocks of `block_size` bytes, keeping up to `keep` free ones.
    pub fn new(block_size: u64, keep: usize) -> Arc<Self> {
        Arc::new(BlockBuffers {
            capacity: usize::try_from(block_size).expect("block size fits in memory") + SLACK,
            keep,
            free: Mutex::new(Vec::new()),
        })
    }

    /// Bytes a buffer from `take` holds without growing.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// An empty buffer that holds a block and its slack without growing.
    pub fn take(&self) -> Vec<u8> {
        match self.free.lock().unwrap().pop() {
            Some(buf) => buf,
            None => Vec::with_capacity(self.capacity),
        }
    }

    /// Whether `buf` came from `take` (a smaller one is the allocator's business).
    fn is_ours(&self, buf: &Vec<u8>) -> bool {
        buf.capacity() == self.capacity
    }

    /// Gives back a buffer that no `Bytes` refers to.
    pub fn give_back(&self, mut buf: Vec<u8>) {
        if !self.is_ours(&buf) {
            return;
        }
        buf.clear();
        let mut free = self.free.lock().unwrap();
        if free.len() < self.keep {
            free.push(buf);
        }
    }

    /// `buf`'s bytes as `Bytes` (no copy); the buffer comes back here when the last clone
    /// drops.
    pub fn freeze(self: &Arc<Self>, buf: Vec<u8>) -> Bytes {
        if !self.is_ours(&buf) {
            return Bytes::from(buf);
        }
        Bytes::from_owner(Recycled {
            buf,
            home: self.clone(),
        })
    }

    /// Free buffers on hand (for tests).
    pub fn free_count(&self) -> usize {
        self.free.lock().unwrap().len()
    }
}

/// A buffer lent to `Bytes`, going home on drop.
struct Recycled {
    buf: Vec<u8>,
    home: Arc<BlockBuffers>,
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        self.home.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_slice_drops_and_is_reused() {
        let pool = BlockBuffers::new(1024, 2);
        let mut buf = pool.take();
        assert!(buf.capacity() >= 1024 + SLACK);
        buf.extend_from_slice(&[7u8; 1024]);
        let ptr = buf.as_ptr();
        let bytes = pool.freeze(buf);
        let part = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(pool.free_count(), 0, "a slice still refers to the buffer");
        assert_eq!(&part[..], &[7u8; 10]);
        drop(part);
        assert_eq!(pool.free_count(), 1);
        let again = pool.take();
        assert_eq!(again.as_ptr(), ptr, "the same allocation is reused");
        assert!(again.is_empty());
    }

    #[test]
    fn the_free_list_is_bounded_and_foreign_buffers_are_left_alone() {
        let pool = BlockBuffers::new(1024, 2);
        let held: Vec<Bytes> = (0..4).map(|_| pool.freeze(pool.take())).collect();
        drop(held);
        assert_eq!(pool.free_count(), 2);
        let foreign = pool.freeze(vec![1, 2, 3]);
        drop(foreign);
        pool.give_back(Vec::with_capacity(10));
        assert_eq!(pool.free_count(), 2);
    }
}
