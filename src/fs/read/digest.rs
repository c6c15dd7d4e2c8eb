//! MD5 check of a whole-file download, on a blocking thread beside it.
//!
//! MD5 runs at roughly 0.5-0.7 GB/s on one core, slower than a loopback download (~2.8 GB/s),
//! so hashing in line would cap reads at MD5 speed. The hasher is fed completed blocks (shared
//! `Bytes`, no copy) through a bounded queue of 16 blocks instead. In the background check,
//! when the hasher falls a full queue behind, the download goes on without feeding it, and at
//! the end the hasher reads the blocks it missed back from the cache (memory, else the disk
//! tier through the page cache), so the check is done for every file whose blocks the cache
//! still holds, after the reads rather than in their way. Only a block gone from both tiers
//! (a cache smaller than the file) gives the check up, logged at debug level.

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::{mpsc, oneshot};

/// When the MD5 digest of a whole-file download is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DigestCheck {
    Off,
    /// Beside the download, never slowing it: a hasher that falls behind catches up from the
    /// cache once the download is done. A mismatch fails the reads waiting then and every
    /// later read of that version through its open handles, and drops its cached blocks;
    /// bytes already returned were the server's bytes, but not what its catalog lists.
    #[default]
    Background,
    /// The file's last block is released only once the digest matched, so a reader that reads
    /// to the end (cp, a checksum) gets EIO on a mismatch. The download then goes no faster than
    /// MD5.
    Strict,
}

pub(crate) const QUEUE_BLOCKS: usize = 16;

/// Files up to this size that have a digest are fetched whole (even when the server honours
/// ranges) and held until the digest matched: no byte of them reaches a reader or the cache
/// before it is known right. Larger files stream, checked as [`DigestCheck`] says.
pub const VERIFY_WHOLE_MAX: u64 = 4 << 20;

/// Reads block `index` of the download back from where it was cached.
pub(crate) type ReadBack = Box<dyn Fn(u64) -> Option<Bytes> + Send>;

enum Feed {
    Block(Bytes),
    /// Blocks `from..to`, which the queue did not carry, read back.
    CatchUp {
        from: u64,
        to: u64,
        read: ReadBack,
    },
}

pub(crate) struct Hasher {
    tx: Option<mpsc::Sender<Feed>>,
    done: oneshot::Receiver<Option<[u8; 16]>>,
    strict: bool,
    /// Blocks pushed so far.
    pushed: u64,
    /// The first block the queue had no room for: from it on, blocks are read back at the end.
    behind_from: Option<u64>,
}

impl Hasher {
    pub fn start(strict: bool) -> Self {
        let (tx, mut rx) = mpsc::channel::<Feed>(QUEUE_BLOCKS);
        let (done_tx, done) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let mut md5 = Md5::new();
            while let Some(feed) = rx.blocking_recv() {
                match feed {
                    Feed::Block(block) => md5.update(&block),
                    Feed::CatchUp { from, to, read } => {
                        for index in from..to {
                            let Some(block) = read(index) else {
                                tracing::debug!(
                                    block = index,
                                    "MD5 check given up: the block \
                                    is no longer cached"
                                );
                                let _ = done_tx.send(None);
                                return;
                            };
                            md5.update(&block);
                        }
                    }
                }
            }
            let _ = done_tx.send(Some(md5.finalize().into()));
        });
        Hasher {
            tx: Some(tx),
            done,
            strict,
            pushed: 0,
            behind_from: None,
        }
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Feeds the next block. Strict: waits for room. Background: once the queue is full, this
    /// block and the ones after are left for [`finish`](Self::finish) to read back.
    pub async fn push(&mut self, block: Bytes) {
        let index = self.pushed;
        self.pushed += 1;
        if self.behind_from.is_some() {
            return;
        }
        let Some(tx) = &self.tx else { return };
        let sent = if self.strict {
            tx.send(Feed::Block(block)).await.is_ok()
        } else {
            match tx.try_send(Feed::Block(block)) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.behind_from = Some(index);
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        };
        if !sent {
            self.tx = None;
        }
    }

    /// The digest of every block pushed, those the queue did not carry read back with `read`;
    /// `None` if the check was given up.
    pub async fn finish(mut self, read: ReadBack) -> Option<[u8; 16]> {
        let tx = self.tx.take()?;
        if let Some(from) = self.behind_from {
            let to = self.pushed;
            tx.send(Feed::CatchUp { from, to, read }).await.ok()?;
        }
        drop(tx);
        self.done.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn blocks() -> Arc<Vec<Bytes>> {
        // Enough megabyte blocks, pushed at once, that the queue is sure to fill.
        Arc::new((0..64u8).map(|i| Bytes::from(vec![i; 1 << 20])).collect())
    }

    fn md5_of(blocks: &[Bytes]) -> [u8; 16] {
        let mut md5 = Md5::new();
        blocks.iter().for_each(|b| md5.update(b));
        md5.finalize().into()
    }

    async fn hash(blocks: &Arc<Vec<Bytes>>, read: ReadBack) -> (Option<[u8; 16]>, bool) {
        let mut hasher = Hasher::start(false);
        for b in blocks.iter() {
            hasher.push(b.clone()).await;
        }
        let behind = hasher.behind_from.is_some();
        (hasher.finish(read).await, behind)
    }

    #[tokio::test]
    async fn a_hasher_behind_the_download_catches_up_from_the_cache() {
        let all = blocks();
        let cached = all.clone();
        let (digest, behind) = hash(&all, Box::new(move |i| cached.get(i as usize).cloned())).await;
        assert!(behind, "the queue never filled: the test shows nothing");
        assert_eq!(digest, Some(md5_of(&all)));
    }

    #[tokio::test]
    async fn a_wrong_block_read_back_is_a_different_digest_and_a_gone_one_no_check() {
        let all = blocks();
        let cached = all.clone();
        let wrong = Box::new(move |i: u64| {
            let b = cached.get(i as usize).cloned()?;
            Some(if i == 60 {
                Bytes::from(vec![0xff; b.len()])
            } else {
                b
            })
        });
        let (digest, _) = hash(&all, wrong).await;
        assert!(digest.is_some_and(|d| d != md5_of(&all)));
        let (digest, _) = hash(&all, Box::new(|_| None)).await;
        assert_eq!(digest, None, "a block no longer cached gives the check up");
    }
}
