//! MD5 check of a whole-file download, on a blocking thread beside it.
//!
//! MD5 runs at roughly 0.5-0.7 GB/s on one core, slower than a loopback download (~2.8 GB/s),
//! so hashing in line would cap reads at MD5 speed. The hasher is fed completed blocks (shared
//! `Bytes`, no copy) through a bounded queue of 16 blocks instead, and `DigestCheck` says what
//! happens when it falls behind.

use bytes::Bytes;
use md5::{Digest, Md5};
use tokio::sync::{mpsc, oneshot};

/// When the MD5 digest of a whole-file download is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DigestCheck {
    Off,
    /// Beside the download, never slowing it: if the hasher falls a full queue behind, the check
    /// of that download is skipped (logged at debug level). A mismatch fails the reads waiting
    /// then and every later read of that version through its open handles, and drops its cached
    /// blocks; bytes already returned were the server's bytes, but not what its catalog lists.
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

pub(crate) struct Hasher {
    tx: Option<mpsc::Sender<Bytes>>,
    done: oneshot::Receiver<[u8; 16]>,
    strict: bool,
}

impl Hasher {
    pub fn start(strict: bool) -> Self {
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE_BLOCKS);
        let (done_tx, done) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let mut md5 = Md5::new();
            while let Some(block) = rx.blocking_recv() {
                md5.update(&block);
            }
            let _ = done_tx.send(md5.finalize().into());
        });
        Hasher {
            tx: Some(tx),
            done,
            strict,
        }
    }

    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Feeds the next block. Strict: waits for room. Background: gives the check up if full.
    pub async fn push(&mut self, block: Bytes) {
        let Some(tx) = &self.tx else { return };
        let sent = if self.strict {
            tx.send(block).await.is_ok()
        } else {
            tx.try_send(block).is_ok()
        };
        if !sent {
            tracing::debug!("MD5 check skipped: the hasher fell behind the download");
            self.tx = None;
        }
    }

    /// The digest of everything fed, or `None` if the check was given up.
    pub async fn finish(mut self) -> Option<[u8; 16]> {
        drop(self.tx.take()?);
        self.done.await.ok()
    }
}
